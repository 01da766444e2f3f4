//! `serve --http ADDR:PORT`: a read-only window on the running server. `/` (an
//! HTML status page, no JavaScript), `/metrics` (Prometheus text format),
//! `/members.json`, `/status.json` and `/healthz`. Nothing here can change the
//! server, and no key material is ever shown.
//!
//! One thread (`gd-http`) answers the requests one at a time; tiny_http accepts
//! and parses them on threads of its own.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gopherdiscovery::{
    AuthMode, Histogram, KeyId, LoggedEvent, MemberInfo, Server, ServerStats, ServerStatus,
};
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{json_id, json_snapshot, json_str, logging::rfc3339, Fail};

/// Members shown on the status page; the total is always given.
const PAGE_MEMBERS: usize = 1000;

/// The running endpoint; [`Endpoint::stop`] ends it.
pub struct Endpoint {
    http: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

/// Parses `ADDR:PORT` (e.g. `127.0.0.1:9090`, `[::1]:0`).
pub fn parse_addr(s: &str) -> Result<SocketAddr, Fail> {
    s.parse().map_err(|_| {
        Fail(
            2,
            format!("--http expects ADDR:PORT, e.g. 127.0.0.1:9090, got {s:?}"),
        )
    })
}

impl Endpoint {
    /// Listens on `addr` and starts answering; returns the bound address.
    pub fn start(addr: SocketAddr, server: Arc<Server>) -> Result<(Endpoint, SocketAddr), Fail> {
        let http = tiny_http::Server::http(addr).map_err(|e| {
            let in_use = e
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse);
            if in_use {
                Fail(1, format!("address in use: http {addr}"))
            } else {
                Fail(1, format!("cannot serve http on {addr}: {e}"))
            }
        })?;
        let bound = http.server_addr().to_ip().unwrap_or(addr);
        let http = Arc::new(http);
        let h = http.clone();
        let thread = std::thread::Builder::new()
            .name("gd-http".into())
            .spawn(move || {
                for rq in h.incoming_requests() {
                    let (code, ctype, body) = route(rq.method(), rq.url(), &server);
                    let resp = tiny_http::Response::from_string(body)
                        .with_status_code(code)
                        .with_header(header("Content-Type", ctype))
                        .with_header(header("Cache-Control", "no-store"));
                    if let Err(e) = rq.respond(resp) {
                        log::debug!("http response not sent: {e}");
                    }
                }
            })
            .map_err(|e| Fail(1, format!("cannot start the http thread: {e}")))?;
        Ok((
            Endpoint {
                http,
                thread: Some(thread),
            },
            bound,
        ))
    }

    /// Stops answering and joins the thread.
    pub fn stop(mut self) {
        self.http.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// Status code, content type and body of the answer to one request.
fn route(method: &tiny_http::Method, url: &str, server: &Server) -> (u16, &'static str, String) {
    if !matches!(method, tiny_http::Method::Get | tiny_http::Method::Head) {
        return (405, TEXT, "read-only: GET only\n".into());
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    match path {
        "/healthz" => {
            let st = server.status();
            if st.healthy() {
                (200, TEXT, "ok\n".into())
            } else {
                let age = st.last_round_age.unwrap_or(st.uptime);
                let why = format!(
                    "unhealthy: no survey round completed for {} ms (interval {} ms)\n",
                    age.as_millis(),
                    st.interval.as_millis()
                );
                (503, TEXT, why)
            }
        }
        "/metrics" => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(
                &server.status(),
                &server.stats(),
                server.auth_mode(),
                &server.key_use(),
            ),
        ),
        "/members.json" => {
            let st = server.status();
            let members = server.members();
            (
                200,
                JSON,
                json_snapshot(st.epoch, st.seq, st.digest, &members),
            )
        }
        "/status.json" => (200, JSON, status_json(server)),
        "/" => {
            let refresh = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("refresh="))
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|n| (1..=3600).contains(n));
            (200, "text/html; charset=utf-8", page(server, refresh))
        }
        _ => (
            404,
            TEXT,
            "not found: try /, /metrics, /healthz, /members.json, /status.json\n".into(),
        ),
    }
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

// ------------------------------------------------------------------ /metrics

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Counter families whose every label set is present from the start, at 0.
fn counter_family(reg: &mut Registry, name: &str, help: &str, samples: &[(&[(&str, &str)], u64)]) {
    let fam = Family::<Labels, Counter>::default();
    for (l, v) in samples {
        fam.get_or_create(&labels(l)).inc_by(*v);
    }
    reg.register(name, help, fam);
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g = Gauge::<i64>::default();
    g.set(v);
    reg.register(name, help, g);
}

/// A histogram read from the server's fixed buckets at scrape time.
#[derive(Debug)]
struct Fixed(Histogram);

impl EncodeMetric for Fixed {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Per-bucket counts: the encoder makes them cumulative.
        let bounds = gopherdiscovery::HISTOGRAM_BOUNDS_SECONDS;
        let buckets: Vec<(f64, u64)> = (self.0.buckets.iter().enumerate())
            .map(|(i, n)| (bounds.get(i).copied().unwrap_or(f64::INFINITY), *n))
            .collect();
        let sum = self.0.sum_micros as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, self.0.count, &buckets, None)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

fn gauge_f(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    g.set(v);
    reg.register(name, help, g);
}

/// The Prometheus text exposition of the server's state now. Counters get
/// `_total` from the encoder; the registry is built afresh from the server's own
/// counters at each scrape. `key_use`: messages verified per key id of the
/// keyring in force ([`Server::key_use`]).
pub fn metrics(
    st: &ServerStatus,
    s: &ServerStats,
    mode: AuthMode,
    key_use: &[(KeyId, u64)],
) -> String {
    let mut reg = Registry::with_prefix("gopherdiscovery");
    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&labels(&[
        ("version", gopherdiscovery::VERSION),
        ("wire_version", &gopherdiscovery::WIRE_VERSION.to_string()),
    ]))
    .set(1);
    reg.register(
        "build_info",
        "Library and wire protocol versions (always 1)",
        info,
    );
    gauge_f(
        &mut reg,
        "server_start_time_seconds",
        "When the server started, in seconds since the Unix epoch",
        secs(st.started),
    );
    let members = Family::<Labels, Gauge>::default();
    members
        .get_or_create(&labels(&[("kind", "native")]))
        .set((st.members - st.legacy_members) as i64);
    members
        .get_or_create(&labels(&[("kind", "legacy")]))
        .set(st.legacy_members as i64);
    reg.register(
        "members",
        "Members now, by kind (legacy: raw-string answers of the original Go client)",
        members,
    );
    gauge(
        &mut reg,
        "survey_connections",
        "Live connections on the survey socket",
        st.survey_connections as i64,
    );
    gauge(
        &mut reg,
        "publish_connections",
        "Live connections on the publish socket (subscribers)",
        st.publish_connections as i64,
    );
    gauge(
        &mut reg,
        "seq",
        "Sequence number of the last delta publication",
        st.seq as i64,
    );
    gauge(&mut reg, "warming", "1 while the server is still learning its members after a start (not used by a single server: always 0)", 0);
    gauge(
        &mut reg,
        "round_answered_members",
        "Members that answered the last completed survey round",
        st.round_answered as i64,
    );
    gauge(
        &mut reg,
        "round_missed_members",
        "Members that missed the last completed survey round",
        st.round_missed as i64,
    );
    gauge_f(
        &mut reg,
        "last_round_age_seconds",
        "Time since the last completed survey round (since the start before the first)",
        st.last_round_age.unwrap_or(st.uptime).as_secs_f64(),
    );
    counter(&mut reg, "rounds", "Survey rounds completed", s.rounds);
    let regular = s.surveys - s.early_surveys;
    counter_family(
        &mut reg,
        "surveys",
        "Surveys sent: regular (every interval) and early (to new connections)",
        &[
            (&[("kind", "regular")], regular),
            (&[("kind", "early")], s.early_surveys),
        ],
    );
    counter_family(
        &mut reg,
        "answers",
        "Answers taken, by kind (native and legacy answers to surveys; announces a member sent unasked)",
        &[
            (&[("kind", "native")], s.answers),
            (&[("kind", "legacy")], s.legacy_answers),
            (&[("kind", "announce")], s.announces),
        ],
    );
    reg.register(
        "answer_latency_seconds",
        "Time from a survey sent to an answer to it taken",
        Fixed(s.answer_latency),
    );
    reg.register(
        "round_lag_seconds",
        "How late each regular survey round started against its schedule",
        Fixed(s.round_lag),
    );
    counter_family(
        &mut reg,
        "member_events",
        "Member events published, by event and reason",
        &[
            (
                &[("event", "joined"), ("reason", "none")],
                s.joined - s.restarted,
            ),
            (&[("event", "joined"), ("reason", "restarted")], s.restarted),
            (&[("event", "left"), ("reason", "closed")], s.left_closed),
            (&[("event", "left"), ("reason", "timeout")], s.left_timeout),
            (&[("event", "left"), ("reason", "restarted")], s.restarted),
            (&[("event", "updated"), ("reason", "none")], s.updated),
        ],
    );
    counter(
        &mut reg,
        "member_flaps",
        "Members that left and came back within 60 s",
        s.flaps,
    );
    let drops = s.drops();
    let drop_labels: Vec<[(&str, &str); 2]> = drops
        .iter()
        .map(|(socket, reason, _)| [("socket", *socket), ("reason", *reason)])
        .collect();
    let drop_samples: Vec<(&[(&str, &str)], u64)> = drop_labels
        .iter()
        .zip(drops.iter())
        .map(|(l, d)| (&l[..], d.2))
        .collect();
    counter_family(
        &mut reg,
        "dropped_messages",
        "Messages dropped, by socket and reason",
        &drop_samples,
    );
    counter(
        &mut reg,
        "refused_connections",
        "Connections closed at once because the socket held max_connections",
        s.refused_connections,
    );
    counter(
        &mut reg,
        "idle_connections_closed",
        "Survey connections closed after evict_after rounds without an answer",
        s.closed_idle,
    );
    auth_metrics(&mut reg, s, mode, key_use);
    counter_family(
        &mut reg,
        "publications",
        "Publications sent, by type",
        &[
            (&[("type", "delta")], s.deltas),
            (&[("type", "heartbeat")], s.heartbeats),
        ],
    );
    counter_family(
        &mut reg,
        "published_bytes",
        "Bytes published, by type",
        &[
            (&[("type", "delta")], s.delta_bytes),
            (&[("type", "heartbeat")], s.heartbeat_bytes),
        ],
    );
    counter(
        &mut reg,
        "snapshots_served",
        "Snapshots served",
        s.snapshots,
    );
    counter(
        &mut reg,
        "snapshot_bytes",
        "Bytes of snapshots served",
        s.snapshot_bytes,
    );
    counter_family(
        &mut reg,
        "connections_opened",
        "Connections opened, by socket",
        &[
            (&[("socket", "survey")], s.survey_connections_opened),
            (&[("socket", "publish")], s.publish_connections_opened),
        ],
    );
    counter_family(
        &mut reg,
        "connections_closed",
        "Connections closed, by socket",
        &[
            (&[("socket", "survey")], s.survey_connections_closed),
            (&[("socket", "publish")], s.publish_connections_closed),
        ],
    );
    let mut open_metrics = String::new();
    encode_registry(&mut open_metrics, &reg).expect("writing to a String");
    let mut out = counters_as_prometheus(&open_metrics);
    process_metrics(&mut out);
    out
}

/// The authentication families: the mode and primary key id, messages verified
/// per key id (no samples without a keyring), drops by reason, unsigned input
/// accepted under `permissive`, challenge surveys. Key ids only, never keys.
fn auth_metrics(reg: &mut Registry, s: &ServerStats, mode: AuthMode, key_use: &[(KeyId, u64)]) {
    let ids: Vec<String> = key_use.iter().map(|(id, _)| id.to_string()).collect();
    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&labels(&[
        ("mode", mode.as_str()),
        ("primary_key_id", ids.first().map_or("", String::as_str)),
    ]))
    .set(1);
    reg.register(
        "auth_info",
        "Authentication mode and the key id that signs (empty without a keyring); always 1",
        info,
    );
    let key_labels: Vec<[(&str, &str); 1]> = ids.iter().map(|id| [("key_id", &id[..])]).collect();
    let key_samples: Vec<(&[(&str, &str)], u64)> = key_labels
        .iter()
        .zip(key_use)
        .map(|(l, (_, n))| (&l[..], *n))
        .collect();
    counter_family(
        reg,
        "auth_messages",
        "Messages whose signature verified, by key id of the keyring in force (answers and \
         snapshot requests); in a rotation, the old key is unused once its count stops rising",
        &key_samples,
    );
    let reasons = s.auth.reasons();
    let reason_labels: Vec<[(&str, &str); 1]> =
        reasons.iter().map(|(r, _)| [("reason", *r)]).collect();
    let reason_samples: Vec<(&[(&str, &str)], u64)> = reason_labels
        .iter()
        .zip(reasons.iter())
        .map(|(l, (_, n))| (&l[..], *n))
        .collect();
    counter_family(
        reg,
        "auth_dropped",
        "Messages dropped by authentication, by reason (answers and snapshot requests)",
        &reason_samples,
    );
    counter(
        reg,
        "auth_unsigned_accepted",
        "Unsigned messages accepted under auth permissive (once it stops rising, the mesh can \
         move to required)",
        s.auth.unsigned_accepted,
    );
    counter(
        reg,
        "challenges",
        "Challenge surveys sent to one connection, to admit an announce or a member on a new \
         connection (with a keyring)",
        s.challenges,
    );
}

/// OpenMetrics names a counter family `x` with samples `x_total`; the Prometheus
/// text format (0.0.4) names the family by its sample, `x_total`, in HELP and TYPE.
fn counters_as_prometheus(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 64 * counters.len());
    for line in text.lines() {
        let head = ["# HELP ", "# TYPE "].into_iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let name = rest.split(' ').next()?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total{}", &rest[name.len()..]))
        });
        out.push_str(head.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The standard `process_*` families, read from /proc (Linux; absent elsewhere).
fn process_metrics(out: &mut String) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let tick = if tick > 0 { tick as f64 } else { 100.0 };
    // Fields 14, 15 (utime, stime), 22 (starttime), 24 (rss) of proc(5), counted
    // from 3 (state) at index 0.
    let cpu = (num(11) + num(12)) / tick;
    let rss = num(21) * page.max(1) as f64;
    let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let mut family = |name: &str, kind: &str, help: &str, v: f64| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
        );
    };
    family(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu,
    );
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        rss,
    );
    family(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        fds as f64,
    );
    if let Some(b) = boot {
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            b + num(19) / tick,
        );
    }
}

// ------------------------------------------------------------------ /status.json

fn status_json(server: &Server) -> String {
    let st = server.status();
    let s = server.stats();
    let u = server.urls();
    let mut o = String::new();
    let _ = write!(
        o,
        "{{\"version\":\"{}\",\"wire_version\":{},\"epoch\":{},\"seq\":{},\"digest\":{},\"healthy\":{},\"members\":{},\"legacy_members\":{},\"round_answered\":{},\"round_missed\":{},",
        gopherdiscovery::VERSION,
        gopherdiscovery::WIRE_VERSION,
        json_id(st.epoch),
        st.seq,
        json_id(st.digest),
        st.healthy(),
        st.members,
        st.legacy_members,
        st.round_answered,
        st.round_missed
    );
    let _ = write!(
        o,
        "\"started\":\"{}\",\"uptime_seconds\":{:.3},\"last_round_age_seconds\":{},\"interval_ms\":{},\"deadline_ms\":{},\"evict_after\":{},\"survey_connections\":{},\"publish_connections\":{},\"urls\":{{\"survey\":",
        rfc3339(st.started),
        st.uptime.as_secs_f64(),
        st.last_round_age
            .map_or("null".to_string(), |a| format!("{:.3}", a.as_secs_f64())),
        st.interval.as_millis(),
        st.deadline.as_millis(),
        st.evict_after,
        st.survey_connections,
        st.publish_connections
    );
    json_str(&mut o, &u.survey);
    o.push_str(",\"publish\":");
    json_str(&mut o, &u.publish);
    o.push_str(",\"snapshot\":");
    json_str(&mut o, &u.snapshot);
    o.push_str(",\"legacy_publish\":");
    match &u.legacy_publish {
        Some(l) => json_str(&mut o, l),
        None => o.push_str("null"),
    }
    o.push_str("},\"dropped\":{");
    for (i, (socket, reason, n)) in s.drops().iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(o, "{sep}\"{socket}.{reason}\":{n}");
    }
    let _ = write!(
        o,
        "}},\"refused_connections\":{},\"idle_connections_closed\":{},\"auth\":{{\"mode\":\"{}\",\"keys\":[",
        s.refused_connections,
        s.closed_idle,
        server.auth_mode()
    );
    for (i, (id, n)) in server.key_use().iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            o,
            "{sep}{{\"key_id\":\"{id}\",\"primary\":{},\"verified\":{n}}}",
            i == 0
        );
    }
    o.push_str("],\"dropped\":{");
    for (i, (reason, n)) in s.auth.reasons().iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(o, "{sep}\"{reason}\":{n}");
    }
    let _ = write!(
        o,
        "}},\"unsigned_accepted\":{},\"challenges\":{}}}}}",
        s.auth.unsigned_accepted, s.challenges
    );
    o
}

// ------------------------------------------------------------------ the page

/// The auth row of the header: the mode and the key ids, primary first.
fn auth_summary(mode: AuthMode, key_use: &[(KeyId, u64)]) -> String {
    if key_use.is_empty() {
        return format!("{} (no keyring)", escape(mode.as_str()));
    }
    let ids: Vec<String> = key_use.iter().map(|(id, _)| id.to_string()).collect();
    format!(
        "{}, keys <code>{}</code> (primary first)",
        escape(mode.as_str()),
        escape(&ids.join(", "))
    )
}

/// The Authentication section: messages verified per key id, then the drops by
/// reason, unsigned input accepted and challenges.
fn auth_section(h: &mut String, mode: AuthMode, key_use: &[(KeyId, u64)], s: &ServerStats) {
    let _ = write!(
        h,
        "<h2>Authentication</h2><p>Mode <b>{}</b>.</p>\
<table id=\"auth-keys\"><tr><th>key id</th><th>role</th><th>messages verified</th></tr>",
        escape(mode.as_str())
    );
    if key_use.is_empty() {
        h.push_str("<tr><td colspan=\"3\">no keyring</td></tr>");
    }
    for (i, (id, n)) in key_use.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td><td class=\"num\">{n}</td></tr>",
            escape(&id.to_string()),
            if i == 0 {
                "primary (signs)"
            } else {
                "verifies"
            }
        );
    }
    h.push_str("</table><table id=\"auth-drops\"><tr><th>messages</th><th>count</th></tr>");
    for (reason, n) in s.auth.reasons() {
        let _ = write!(
            h,
            "<tr><td>dropped: {}</td><td class=\"num\">{n}</td></tr>",
            escape(reason)
        );
    }
    let _ = write!(
        h,
        "<tr><td>unsigned, accepted (permissive)</td><td class=\"num\">{}</td></tr>\
<tr><td>challenge surveys sent</td><td class=\"num\">{}</td></tr></table>",
        s.auth.unsigned_accepted, s.challenges
    );
}

/// `s` made safe for HTML text and attribute values (member names are untrusted).
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{:.1} s", d.as_secs_f64()),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}td.num{text-align:right}\
.banner{padding:.6em 1em;margin:.5em 0;font-weight:bold}\
.bad{background:#c62828;color:#fff}.ok{background:#2e7d32;color:#fff}\
code{font-size:90%}";

fn page(server: &Server, refresh: Option<u32>) -> String {
    let st = server.status();
    let s = server.stats();
    let u = server.urls();
    let members: Vec<MemberInfo> = server.member_info();
    let events: Vec<LoggedEvent> = server.recent_events();
    let key_use = server.key_use();
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    if let Some(n) = refresh {
        let _ = write!(h, "<meta http-equiv=\"refresh\" content=\"{n}\">");
    }
    let _ = write!(
        h,
        "<title>gopherdiscovery {}</title><style>{STYLE}</style></head><body>",
        escape(&u.survey)
    );
    // 1. header
    let _ = write!(
        h,
        "<h1>gopherdiscovery server</h1><table id=\"server\">\
<tr><th>version</th><td>{} (wire {}, NNG {})</td></tr>\
<tr><th>epoch</th><td><code>{:016x}</code></td></tr>\
<tr><th>started</th><td>{} (up {})</td></tr>\
<tr><th>survey</th><td><code>{}</code></td></tr>\
<tr><th>publish</th><td><code>{}</code></td></tr>\
<tr><th>snapshot</th><td><code>{}</code></td></tr>",
        escape(gopherdiscovery::VERSION),
        gopherdiscovery::WIRE_VERSION,
        escape(gopherdiscovery::nng_version()),
        st.epoch,
        rfc3339(st.started),
        age(st.uptime),
        escape(&u.survey),
        escape(&u.publish),
        escape(&u.snapshot),
    );
    if let Some(l) = &u.legacy_publish {
        let _ = write!(
            h,
            "<tr><th>legacy publish</th><td><code>{}</code></td></tr>",
            escape(l)
        );
    }
    let _ = write!(
        h,
        "<tr><th>timing</th><td>interval {} ms, deadline {} ms, evict after {} missed surveys</td></tr>\
<tr><th>auth</th><td id=\"auth-mode\">{}</td></tr></table>",
        st.interval.as_millis(),
        st.deadline.as_millis(),
        st.evict_after,
        auth_summary(server.auth_mode(), &key_use)
    );
    // 2. health
    h.push_str("<h2>Health</h2>");
    let late = !st.healthy();
    let most_missed = st.members > 0 && st.round_missed * 2 > st.members;
    if late {
        let _ = write!(
            h,
            "<div class=\"banner bad\" id=\"late\">The survey loop is late: no round completed for {}.</div>",
            age(st.last_round_age.unwrap_or(st.uptime))
        );
    }
    if most_missed {
        let _ = write!(
            h,
            "<div class=\"banner bad\" id=\"missed\">{} of {} members missed the last round.</div>",
            st.round_missed, st.members
        );
    }
    if !late && !most_missed {
        h.push_str("<div class=\"banner ok\" id=\"healthy\">Healthy.</div>");
    }
    let _ = write!(
        h,
        "<table id=\"health\"><tr><th>members</th><td>{} ({} native, {} legacy)</td></tr>\
<tr><th>connections</th><td>{} survey, {} subscribers</td></tr>\
<tr><th>last round</th><td>{} answered, {} missed, {} ago</td></tr>\
<tr><th>seq</th><td>{}</td></tr><tr><th>warming</th><td>no</td></tr></table>",
        st.members,
        st.members - st.legacy_members,
        st.legacy_members,
        st.survey_connections,
        st.publish_connections,
        st.round_answered,
        st.round_missed,
        st.last_round_age.map_or("no round yet".to_string(), age),
        st.seq
    );
    // 3. members
    let _ = write!(
        h,
        "<h2>Members</h2><p>{} members{}.</p><table id=\"members\"><thead><tr><th>name</th><th>metadata</th><th>incarnation</th><th>joined</th><th>last answer</th><th>missed</th><th>legacy</th></tr></thead><tbody>",
        members.len(),
        if members.len() > PAGE_MEMBERS {
            format!(", the first {PAGE_MEMBERS} shown")
        } else {
            String::new()
        }
    );
    for m in members.iter().take(PAGE_MEMBERS) {
        let md: Vec<String> = m
            .member
            .metadata
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
            .collect();
        let _ = write!(
            h,
            "<tr class=\"member\"><td>{}</td><td>{}</td><td><code>{:016x}</code></td><td>{}</td><td>{} ago</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&m.member.name),
            md.join("<br>"),
            m.member.incarnation,
            rfc3339(m.joined),
            age(m.last_answer_age),
            m.missed,
            if m.legacy { "yes" } else { "no" }
        );
    }
    h.push_str("</tbody></table>");
    // 4. events
    let _ = write!(h, "<h2>Last {} events</h2><table id=\"events\"><thead><tr><th>time</th><th>event</th><th>reason</th><th>name</th></tr></thead><tbody>", gopherdiscovery::RECENT_EVENTS);
    for e in events.iter().rev() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            rfc3339(e.time),
            e.kind.as_str(),
            e.reason.as_str().unwrap_or(""),
            escape(&e.name)
        );
    }
    h.push_str("</tbody></table>");
    // 5. drops
    h.push_str(
        "<h2>Drops</h2><table id=\"drops\"><tr><th>socket</th><th>reason</th><th>count</th></tr>",
    );
    for (socket, reason, n) in s.drops() {
        let _ = write!(
            h,
            "<tr><td>{socket}</td><td>{reason}</td><td class=\"num\">{n}</td></tr>"
        );
    }
    let _ = write!(
        h,
        "<tr><td>all</td><td>refused connections (cap)</td><td class=\"num\">{}</td></tr>\
<tr><td>survey</td><td>idle connections closed</td><td class=\"num\">{}</td></tr></table>",
        s.refused_connections, s.closed_idle
    );
    // 6. authentication
    auth_section(&mut h, server.auth_mode(), &key_use, &s);
    h.push_str("<p><a href=\"/metrics\">/metrics</a> · <a href=\"/status.json\">/status.json</a> · <a href=\"/members.json\">/members.json</a> · <a href=\"/healthz\">/healthz</a></p></body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert(1)</script>&\"'"),
            "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;"
        );
        assert_eq!(escape("a\u{1b}[31m"), "a\u{FFFD}[31m");
    }
}
