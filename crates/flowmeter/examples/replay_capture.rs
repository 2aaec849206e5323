//! Writes a large capture by replaying real captures: every Ethernet frame of the inputs, in
//! order, copy after copy, with timestamps moved on so each copy follows the last and the IPv4
//! addresses of copy `c` changed in their last byte (XOR `c`) so copies do not merge into one
//! flow. The result is **synthetic (replayed real traffic)**: for speed tests only.
//!
//! `cargo run --release -p flowmeter --example replay_capture -- OUT.pcap PACKETS CAPTURE…`
use std::io::Write;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: replay_capture OUT.pcap PACKETS CAPTURE…");
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[1]);
    let target: u64 = args[2].parse().expect("PACKETS must be a number");
    let mut frames: Vec<(i64, Vec<u8>)> = Vec::new();
    for path in &args[3..] {
        let mut capture = flowmeter::Capture::open(path.as_ref()).expect("readable capture");
        while let Some(f) = capture.next_frame().expect("well-formed capture") {
            if f.link_type == 1 && f.data.len() as u32 <= f.wire_len {
                frames.push((f.timestamp_us, f.data));
            }
        }
    }
    assert!(!frames.is_empty(), "no Ethernet frames in the inputs");
    let mut w = std::io::BufWriter::with_capacity(1 << 22, std::fs::File::create(&out).unwrap());
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        w.write_all(&v.to_le_bytes()).unwrap();
    }
    let (mut written, mut copy, mut clock) = (0u64, 0u8, 1_700_000_000_000_000i64);
    'outer: loop {
        let mut prev = frames[0].0;
        for (ts, data) in &frames {
            // Keep each capture's gaps, but never go back in time.
            clock += (ts - prev).clamp(0, 1_000_000);
            prev = *ts;
            let mut d = data.clone();
            if d.len() >= 34 && d[12] == 0x08 && d[13] == 0x00 {
                d[14 + 15] ^= copy;
                d[14 + 19] ^= copy;
            }
            w.write_all(&((clock / 1_000_000) as u32).to_le_bytes())
                .unwrap();
            w.write_all(&((clock % 1_000_000) as u32).to_le_bytes())
                .unwrap();
            w.write_all(&(d.len() as u32).to_le_bytes()).unwrap();
            w.write_all(&(d.len() as u32).to_le_bytes()).unwrap();
            w.write_all(&d).unwrap();
            written += 1;
            if written >= target {
                break 'outer;
            }
        }
        copy = copy.wrapping_add(1);
        clock += 200_000_000; // copies 200 s apart: past the flow timeout
    }
    w.flush().unwrap();
    println!(
        "wrote {written} frames (synthetic: {} real frames replayed {} times) to {}",
        frames.len(),
        copy as u64 + 1,
        out.display()
    );
}
