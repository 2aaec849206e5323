//! Writes a large capture by replaying real ones ([`flowmeter::write_replayed_capture`]): the
//! result is **synthetic (replayed real traffic)**, for speed tests only.
//!
//! `cargo run --release -p flowmeter --example replay_capture -- OUT.pcap FRAMES CAPTURE…`
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: replay_capture OUT.pcap FRAMES CAPTURE…");
        std::process::exit(2);
    }
    let frames: u64 = args[2].parse().expect("FRAMES must be a number");
    match flowmeter::write_replayed_capture(args[1].as_ref(), frames, &args[3..]) {
        Ok(r) => println!(
            "wrote {} frames (synthetic: {} real frames replayed {} times) to {}",
            r.frames, r.real_frames, r.copies, args[1]
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
