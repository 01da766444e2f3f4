//! `serve --http`: the endpoints over a real socket, the escaping of member
//! names, /metrics checked line by line as Prometheus text (with and without a
//! keyring: key ids, auth drops), and /healthz following a stopped and resumed
//! server process.
#![cfg(feature = "http")]

mod common;

use std::time::{Duration, Instant};

use common::*;

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
    for h in ["answer_latency_seconds", "round_lag_seconds"] {
        let family = format!("gopherdiscovery_{h}");
        assert!(
            body.contains(&format!("# TYPE {family} histogram")),
            "{body}"
        );
        assert!(
            body.contains(&format!("{family}_bucket{{le=\"0.001\"}}")),
            "{body}"
        );
        let count = format!("{family}_count ");
        let inf = format!("{family}_bucket{{le=\"+Inf\"}} ");
        let value = |prefix: &str| {
            let line = body.lines().find(|l| l.starts_with(prefix)).expect(prefix);
            line[prefix.len()..].parse::<u64>().unwrap()
        };
        assert_eq!(value(&count), value(&inf), "{body}");
    }
    // Both members announced themselves on connecting.
    let announces = "gopherdiscovery_answers_total{kind=\"announce\"} ";
    let line = body
        .lines()
        .find(|l| l.starts_with(announces))
        .expect(announces);
    assert!(
        line[announces.len()..].parse::<u64>().unwrap() >= 1,
        "{body}"
    );
    assert!(
        !body.contains("# EOF"),
        "Prometheus text format, not OpenMetrics: {body}"
    );
    check_exposition(&body);
    // No keyring: the auth families are there, at 0, with no key id.
    for reason in [
        "bad_mac",
        "unknown_key",
        "unsigned",
        "replayed",
        "stale_survey",
        "wrong_connection",
    ] {
        let name = format!("gopherdiscovery_auth_dropped_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&body, &name), Some(0.0), "{body}");
    }
    assert!(
        !body.contains("gopherdiscovery_auth_messages_total{"),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "gopherdiscovery_auth_info{mode=\"off\",primary_key_id=\"\"}"
        ),
        Some(1.0),
        "{body}"
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

/// Checks a Prometheus text exposition (format 0.0.4) line by line: every
/// family has one HELP and one TYPE before its samples; every sample belongs to
/// the family declared last (a histogram's `_bucket`, `_sum`, `_count`), has
/// well-formed labels and a number, and appears once.
fn check_exposition(body: &str) {
    let mut family: Option<(String, String)> = None;
    let mut helped = std::collections::HashSet::new();
    let mut typed = std::collections::HashSet::new();
    let mut samples = std::collections::HashSet::new();
    let is_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(is_name(name), "bad family name: {line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.contains(name), "TYPE before HELP: {line}");
            assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        assert!(!line.starts_with('#'), "stray comment: {line}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value: {line}"
        );
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, Some(l.strip_suffix('}').expect(line))),
            None => (series, None),
        };
        let (fam, kind) = family.as_ref().unwrap_or_else(|| panic!("no TYPE: {line}"));
        let belongs = name == fam
            || (kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(fam)));
        assert!(belongs, "sample {name} outside its family {fam}: {line}");
        if let Some(labels) = labels {
            // key="value" pairs, comma-separated; values escape \\, \" and \n.
            let mut rest = labels;
            while !rest.is_empty() {
                let (key, after) = rest.split_once("=\"").expect(line);
                assert!(is_name(key), "bad label name: {line}");
                let mut chars = after.char_indices();
                let end = loop {
                    match chars.next().expect(line) {
                        (_, '\\') => {
                            chars.next();
                        }
                        (i, '"') => break i,
                        _ => {}
                    }
                };
                rest = &after[end + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
        }
        assert!(samples.insert(series.to_string()), "sample twice: {line}");
    }
    assert!(!samples.is_empty(), "no samples: {body}");
}

#[test]
fn metrics_status_and_page_show_auth_with_a_keyring() {
    let dir = Scratch::new("httpauth");
    let (k1, k2) = (keygen(), keygen());
    let (id1, id2) = (key_id(&k1), key_id(&k2));
    let file = dir.0.join("mesh.keys");
    write_keyring(&file, &[&k1, &k2]);
    let f = file.to_str().unwrap();
    let (_server, addr) = serve_http(&dir, &["--keyring-file", f]);
    let _m = join(&dir, "m", &["--keyring-file", f]);
    let verified = format!("gopherdiscovery_auth_messages_total{{key_id=\"{id1}\"}}");
    wait_until("m joined, its answers verified with the primary", || {
        let (_, _, body) = get(&addr, "/metrics");
        sample(&body, &verified).is_some_and(|n| n > 0.0)
            && sample(&body, "gopherdiscovery_members{kind=\"native\"}") == Some(1.0)
    });
    let (code, _, body) = get(&addr, "/metrics");
    assert_eq!(code, 200);
    check_exposition(&body);
    let id2_line = format!("gopherdiscovery_auth_messages_total{{key_id=\"{id2}\"}}");
    assert_eq!(sample(&body, &id2_line), Some(0.0), "{body}");
    for reason in [
        "bad_mac",
        "unknown_key",
        "unsigned",
        "replayed",
        "stale_survey",
        "wrong_connection",
    ] {
        let name = format!("gopherdiscovery_auth_dropped_total{{reason=\"{reason}\"}}");
        assert!(sample(&body, &name).is_some(), "no {name}: {body}");
    }
    assert_eq!(
        sample(&body, "gopherdiscovery_auth_unsigned_accepted_total"),
        Some(0.0),
        "{body}"
    );
    // m announced itself: it was admitted through a challenge.
    assert!(
        sample(&body, "gopherdiscovery_challenges_total").is_some_and(|n| n >= 1.0),
        "{body}"
    );
    let info = format!("gopherdiscovery_auth_info{{mode=\"required\",primary_key_id=\"{id1}\"}}");
    assert_eq!(sample(&body, &info), Some(1.0), "{body}");

    let (code, _, status) = get(&addr, "/status.json");
    assert_eq!(code, 200);
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["auth"]["mode"], "required", "{status}");
    assert_eq!(st["auth"]["keys"][0]["key_id"], id1.as_str(), "{status}");
    assert_eq!(st["auth"]["keys"][0]["primary"], true, "{status}");
    assert_eq!(st["auth"]["keys"][1]["key_id"], id2.as_str(), "{status}");
    assert_eq!(st["auth"]["dropped"]["unknown_key"], 0, "{status}");
    assert!(st["auth"]["challenges"].as_u64().unwrap() >= 1, "{status}");

    let (code, _, page) = get(&addr, "/");
    assert_eq!(code, 200);
    assert!(
        page.contains(&format!("required, keys <code>{id1}, {id2}</code>")),
        "{page}"
    );
    assert!(
        page.contains("id=\"auth-keys\"") && page.contains("dropped: unknown_key"),
        "{page}"
    );
    let (_, _, members) = get(&addr, "/members.json");
    for text in [&body, &status, &page, &members] {
        assert!(
            !text.contains(&k1) && !text.contains(&k2),
            "key text served: {text}"
        );
    }
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
