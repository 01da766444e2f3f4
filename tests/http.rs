//! `serve --http`: the endpoints over a real socket, the escaping of member
//! names, and /healthz following a stopped and resumed server process.
#![cfg(feature = "http")]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// `serve --http 127.0.0.1:0`; returns the process and the bound address.
fn serve_http(dir: &Scratch, extra: &[&str]) -> (Proc, String) {
    let (s, p, n) = (dir.url("survey"), dir.url("publish"), dir.url("snapshot"));
    let mut args = vec!["serve", "--survey", &s, "--publish", &p, "--snapshot", &n];
    args.extend_from_slice(&["--http", "127.0.0.1:0"]);
    args.extend_from_slice(extra);
    let mut proc = Proc::spawn(&args);
    let line = proc.next_line();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .unwrap_or_else(|| panic!("no http= on {line:?}"))
        .to_string();
    assert!(!addr.ends_with(":0"), "{line}");
    eprintln!("http endpoint at {addr}");
    (proc, addr)
}

/// Sends a GET; returns the open stream (the answer is read by [`answer`]).
fn send_get(addr: &str, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s
}

/// Status code, headers (lowercased names) and body.
fn answer(mut s: TcpStream) -> (u16, String, String) {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, head.to_lowercase(), body.to_string())
}

fn get(addr: &str, path: &str) -> (u16, String, String) {
    answer(send_get(addr, path))
}

#[test]
fn endpoints_serve_status_metrics_json_and_health() {
    let dir = Scratch::new("http");
    let (_server, addr) = serve_http(&dir, &[]);
    let _a = join(&dir, "<script>alert(1)</script>", &["--meta", "k=<b>&"]);
    let _b = join(&dir, "b", &[]);
    let mut v = serde_json::Value::Null;
    wait_until("both members in /members.json", || {
        let (code, head, body) = get(&addr, "/members.json");
        assert_eq!(code, 200);
        assert!(head.contains("content-type: application/json"), "{head}");
        v = serde_json::from_str(&body).unwrap();
        peers(&v).len() == 2
    });
    hex_id(&v["epoch"]);
    hex_id(&v["digest"]);
    assert_ne!(hex_id(&v["members"][0]["incarnation"]), 0);

    let (code, _, body) = get(&addr, "/status.json");
    assert_eq!(code, 200);
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["members"], 2);
    assert_eq!(st["version"], gopherdiscovery::VERSION);
    assert_eq!(hex_id(&st["epoch"]), hex_id(&v["epoch"]));
    assert_eq!(st["deadline_ms"], 500);

    let (code, head, body) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("gopherdiscovery_members{kind=\"native\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE gopherdiscovery_surveys_total counter"),
        "{body}"
    );
    assert!(
        body.contains("gopherdiscovery_surveys_total{kind=\"early\"}"),
        "{body}"
    );
    assert!(
        body.contains(
            "gopherdiscovery_dropped_messages_total{socket=\"survey\",reason=\"oversize\"} 0"
        ),
        "{body}"
    );
    assert!(
        !body.contains("# EOF"),
        "Prometheus text format, not OpenMetrics: {body}"
    );

    let (code, head, page) = get(&addr, "/");
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains("k=&lt;b&gt;&amp;"), "{page}");
    assert!(
        !page.contains("<script"),
        "an unescaped member name: {page}"
    );
    assert!(page.contains("<td>b</td>"), "{page}");

    let (code, _, _) = get(&addr, "/healthz");
    assert_eq!(code, 200);
    let (code, _, _) = get(&addr, "/nothing");
    assert_eq!(code, 404);
}

#[test]
fn bad_http_address_is_a_usage_error() {
    let out = std::process::Command::new(bin())
        .args(["serve", "--http", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http expects ADDR:PORT"));
}

fn process_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.trim_start().chars().next().unwrap()
}

#[test]
fn healthz_turns_503_while_the_server_is_stopped_and_200_after() {
    let dir = Scratch::new("healthz");
    // A resumed loop needs a whole deadline (1.9 s) to complete a round, while
    // the request queued during the stop is answered at once.
    let (server, addr) = serve_http(&dir, &["--interval", "2000", "--deadline", "1900"]);
    wait_until("healthy", || get(&addr, "/healthz").0 == 200);
    server.signal(libc::SIGSTOP);
    wait_until("stopped", || process_state(server.pid()) == 'T');
    // Let more than 2 intervals pass while it is stopped.
    let stopped = Instant::now();
    wait_until("2.5 intervals passed", || {
        stopped.elapsed() >= Duration::from_millis(5000)
    });
    // The kernel accepts the connection; the stopped process cannot answer.
    let pending = send_get(&addr, "/healthz");
    server.signal(libc::SIGCONT);
    let (code, _, body) = answer(pending);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("no survey round completed"), "{body}");
    wait_until("healthy again", || get(&addr, "/healthz").0 == 200);
}
