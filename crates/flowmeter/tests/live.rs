//! Live capture on the loopback interface (`--features live`): the test meters `lo` while it
//! sends a TCP connection and UDP datagrams to itself, then finds both flows with the packet
//! counts it sent. Capturing needs root or CAP_NET_RAW: without it the test says so and fails
//! under CI=true (CI runs as root); elsewhere it prints why it could not run.
#![cfg(feature = "live")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flowmeter::{
    extract_live, FlowRecord, LiveCapture, LiveLimits, LiveOptions, MeterOptions, Mode, V3_HEADER,
};

fn column(name: &str) -> usize {
    V3_HEADER
        .iter()
        .position(|h| h.trim() == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn cell(flow: &FlowRecord, name: &str) -> String {
    flow.cells[column(name)].to_string()
}

fn number(flow: &FlowRecord, name: &str) -> f64 {
    cell(flow, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name}: {}", cell(flow, name)))
}

/// Opens `lo` once to learn whether this process may capture; `Err` says why not.
fn may_capture(options: &LiveOptions) -> Result<(), String> {
    LiveCapture::open("lo", options)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn loopback_traffic_becomes_flows() {
    let live = LiveOptions {
        filter: Some("tcp or udp".into()),
        read_timeout: Duration::from_millis(20),
        ..LiveOptions::default()
    };
    if let Err(why) = may_capture(&live) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot capture on lo under CI=true: {why}"
        );
        eprintln!("NOT RUN: cannot capture on lo ({why}); run as root or with CAP_NET_RAW");
        return;
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = listener.local_addr().unwrap().port();
    let udp_rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp_rx.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));

    let meter = {
        let (stop, started) = (Arc::clone(&stop), Arc::clone(&started));
        let options = MeterOptions::of_mode(Mode::Corrected);
        std::thread::spawn(move || {
            let mut flows = Vec::new();
            let report = extract_live(
                "lo",
                &options,
                &live,
                LiveLimits {
                    duration: Some(Duration::from_secs(60)),
                    frames: None,
                },
                &stop,
                |f| flows.push(f),
                |_| started.store(true, Ordering::Relaxed),
            );
            (report, flows)
        })
    };
    // The first read timeout says the capture is open.
    let waiting = std::time::Instant::now();
    while !started.load(Ordering::Relaxed) {
        if meter.is_finished() {
            let (report, _) = meter.join().unwrap();
            panic!("the capture ended before any traffic: {report:?}");
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "no read timeout within 10 s: the capture never reported progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // TCP: connect, 3 requests and answers, close (a full FIN exchange).
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            s.read_exact(&mut buf[..5]).unwrap();
            s.write_all(b"world").unwrap();
        }
        assert_eq!(s.read(&mut buf).unwrap(), 0);
    });
    {
        let mut c = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
        c.set_nodelay(true).unwrap();
        let mut buf = [0u8; 5];
        for _ in 0..3 {
            c.write_all(b"hello").unwrap();
            c.read_exact(&mut buf).unwrap();
        }
    }
    server.join().unwrap();
    // UDP: 10 datagrams of 100 bytes, one way.
    let udp_tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..10 {
        udp_tx
            .send_to(&[7u8; 100], ("127.0.0.1", udp_port))
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (report, flows) = meter.join().unwrap();
    let report = report.unwrap();

    assert_eq!(
        report.frames,
        report.packets_in_flows + report.rejected_total(),
        "{report:?}"
    );
    let tcp_port = tcp_port.to_string();
    let tcp: Vec<&FlowRecord> = flows
        .iter()
        .filter(|f| cell(f, "Destination Port") == tcp_port && cell(f, "Protocol") == "6")
        .collect();
    assert_eq!(tcp.len(), 1, "one TCP flow to port {tcp_port}: {flows:?}");
    let tcp = tcp[0];
    // 3-way handshake, 3 requests and 3 answers (each maybe ACKed alone), FIN exchange.
    assert!(tcp.packets >= 3 + 6 + 3, "{tcp:?}");
    assert_eq!(number(tcp, "Total Length of Fwd Packets"), 15.0);
    assert_eq!(number(tcp, "Total Length of Bwd Packets"), 15.0);
    assert_eq!(number(tcp, "SYN Flag Count"), 2.0, "SYN and SYN-ACK");
    assert_eq!(tcp.end.as_str(), "fin", "the FIN exchange closes it");

    let udp_port = udp_port.to_string();
    let udp: Vec<&FlowRecord> = flows
        .iter()
        .filter(|f| cell(f, "Destination Port") == udp_port && cell(f, "Protocol") == "17")
        .collect();
    assert_eq!(udp.len(), 1, "one UDP flow to port {udp_port}: {flows:?}");
    assert_eq!(udp[0].packets, 10);
    assert_eq!(number(udp[0], "Total Fwd Packets"), 10.0);
    assert_eq!(number(udp[0], "Total Length of Fwd Packets"), 1000.0);
    assert_eq!(udp[0].end.as_str(), "end_of_capture");
}

#[test]
fn a_missing_interface_is_a_clear_error() {
    let e = LiveCapture::open("flowxai-no-such-if0", &LiveOptions::default()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("interface flowxai-no-such-if0: "),
        "{text}"
    );
}
