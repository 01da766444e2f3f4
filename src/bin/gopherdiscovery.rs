//! `gopherdiscovery` — run a discovery server, join as a member, watch or list members.
//!
//! Exit codes: 0 on success and on SIGINT/SIGTERM; 1 on a runtime failure (an
//! address in use, a server that does not answer); 2 on bad arguments. Every
//! failure is one line on stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use gopherdiscovery::{
    fetch_snapshot, Client, Error, Event, Limits, Member, Server, Subscriber, Update,
    DEFAULT_PUBLISH_URL, DEFAULT_SNAPSHOT_URL, DEFAULT_SURVEY_URL,
};

const USAGE: &str = "\
usage: gopherdiscovery <command> [options]

commands:
  serve   [--survey URL] [--publish URL] [--snapshot URL] [--legacy-publish URL]
          [--interval MS] [--deadline MS] [--evict-after N] [--max-members N]
  join    --service NAME [--survey URL]... [--meta KEY=VALUE]...
  watch   [--publish URL] [--snapshot URL] [--legacy] [--json]
  members [--snapshot URL] [--timeout MS] [--json]

every command: --log-level off|error|warn|info|debug|trace, --help
defaults: survey tcp://127.0.0.1:40007, publish tcp://127.0.0.1:50007, snapshot tcp://127.0.0.1:50008
";

/// A failure with its exit code.
struct Fail(u8, String);

fn usage(msg: impl Into<String>) -> Fail {
    Fail(2, msg.into())
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let code = match e {
            Error::InvalidUrl { .. } | Error::InvalidOption { .. } | Error::InvalidMember(_) => 2,
            _ => 1,
        };
        Fail(code, e.to_string())
    }
}

/// Parsed `--flag value` pairs, in order, with repeats.
struct Args {
    command: String,
    flags: Vec<(String, Option<String>)>,
}

/// Flags that take no value.
const SWITCHES: &[&str] = &["json", "legacy", "help"];

impl Args {
    fn parse(raw: Vec<String>) -> Result<Args, Fail> {
        let mut it = raw.into_iter();
        let command = match it.next() {
            Some(c) if c == "-h" || c == "--help" => "help".to_string(),
            Some(c) if c == "--version" || c == "-V" => "version".to_string(),
            Some(c) if c.starts_with('-') => {
                return Err(usage(format!("expected a command before {c}")))
            }
            Some(c) => c,
            None => return Err(usage("missing command (serve, join, watch or members)")),
        };
        let mut flags = Vec::new();
        while let Some(a) = it.next() {
            if a == "-h" {
                flags.push(("help".into(), None));
                continue;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(usage(format!("unexpected argument {a:?}")));
            };
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (body.to_string(), None),
            };
            if SWITCHES.contains(&name.as_str()) {
                if inline.is_some() {
                    return Err(usage(format!("--{name} takes no value")));
                }
                flags.push((name, None));
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .ok_or_else(|| usage(format!("--{name} needs a value")))?,
            };
            flags.push((name, Some(value)));
        }
        Ok(Args { command, flags })
    }

    fn check_known(&self, known: &[&str]) -> Result<(), Fail> {
        for (name, _) in &self.flags {
            if !known.contains(&name.as_str()) && name != "log-level" && name != "help" {
                return Err(usage(format!(
                    "unknown option --{name} for {}",
                    self.command
                )));
            }
        }
        Ok(())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    fn one(&self, name: &str) -> Result<Option<String>, Fail> {
        let mut v = self.all(name);
        if v.len() > 1 {
            return Err(usage(format!("--{name} given more than once")));
        }
        Ok(v.pop())
    }

    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }

    fn number(&self, name: &str) -> Result<Option<u64>, Fail> {
        match self.one(name)? {
            None => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| usage(format!("--{name} expects a whole number, got {v:?}"))),
        }
    }
}

// ------------------------------------------------------------------ logging

struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) && r.target().starts_with("gopherdiscovery") {
            let _ = writeln!(
                std::io::stderr(),
                "gopherdiscovery: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

fn init_log(args: &Args, default: log::LevelFilter) -> Result<(), Fail> {
    let level = match args.one("log-level")?.as_deref() {
        None => default,
        Some(s) => s.parse::<log::LevelFilter>().map_err(|_| {
            usage(format!(
                "--log-level expects off, error, warn, info, debug or trace, got {s:?}"
            ))
        })?,
    };
    let _ = log::set_logger(&StderrLog);
    log::set_max_level(level);
    Ok(())
}

// ------------------------------------------------------------------ signals

/// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so
/// that [`wait_for_signal`] can take them synchronously.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a local, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: the set is initialised; sig is a valid out-pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

// ------------------------------------------------------------------ output

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_strs(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, s);
    }
    out.push(']');
}

fn json_metadata(out: &mut String, md: &BTreeMap<String, String>) {
    out.push('{');
    for (i, (k, v)) in md.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_str(out, k);
        out.push(':');
        json_str(out, v);
    }
    out.push('}');
}

fn json_member(out: &mut String, m: &Member) {
    out.push_str("{\"name\":");
    json_str(out, &m.name);
    out.push_str(",\"metadata\":");
    json_metadata(out, &m.metadata);
    let _ = write!(out, ",\"incarnation\":{}}}", m.incarnation);
}

fn json_update(u: &Update) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{{\"epoch\":{},\"seq\":{},\"state\":\"{}\",\"snapshot\":{},\"peers\":",
        u.epoch,
        u.seq,
        u.state.as_str(),
        u.snapshot
    );
    json_strs(&mut o, &u.peers);
    o.push_str(",\"events\":[");
    for (i, e) in u.events.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "{{\"kind\":\"{}\",\"name\":", e.kind.as_str());
        json_str(&mut o, &e.member.name);
        o.push_str(",\"reason\":");
        match e.reason.as_str() {
            Some(r) => json_str(&mut o, r),
            None => o.push_str("null"),
        }
        o.push_str(",\"metadata\":");
        json_metadata(&mut o, &e.member.metadata);
        let _ = write!(o, ",\"incarnation\":{}}}", e.member.incarnation);
    }
    o.push_str("]}");
    o
}

fn text_update(u: &Update) -> String {
    let events: Vec<String> = u.events.iter().map(Event::to_string).collect();
    let mut line = format!(
        "[{}] epoch={:016x} seq={} peers={}",
        u.state.as_str(),
        u.epoch,
        u.seq,
        if u.peers.is_empty() {
            "-".to_string()
        } else {
            u.peers.join(",")
        }
    );
    if u.snapshot {
        line.push_str(" (snapshot)");
    }
    if !events.is_empty() {
        line.push_str(" | ");
        line.push_str(&events.join("; "));
    }
    line
}

/// Prints one line and flushes; a closed stdout (`| head`) ends the process quietly.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

// ------------------------------------------------------------------ commands

fn millis(args: &Args, name: &str, default: u64) -> Result<Duration, Fail> {
    Ok(Duration::from_millis(args.number(name)?.unwrap_or(default)))
}

fn serve(args: &Args, signals: &libc::sigset_t) -> Result<(), Fail> {
    args.check_known(&[
        "survey",
        "publish",
        "snapshot",
        "legacy-publish",
        "interval",
        "deadline",
        "evict-after",
        "max-members",
    ])?;
    let mut limits = Limits::default();
    if let Some(n) = args.number("max-members")? {
        limits.max_members = n as usize;
    }
    let evict = args.number("evict-after")?.unwrap_or(3);
    let server = Server::builder()
        .survey(
            args.one("survey")?
                .unwrap_or_else(|| DEFAULT_SURVEY_URL.into()),
        )
        .publish(
            args.one("publish")?
                .unwrap_or_else(|| DEFAULT_PUBLISH_URL.into()),
        )
        .snapshot(
            args.one("snapshot")?
                .unwrap_or_else(|| DEFAULT_SNAPSHOT_URL.into()),
        )
        .legacy_publish(args.one("legacy-publish")?)
        .interval(millis(args, "interval", 1000)?)
        .deadline(millis(args, "deadline", 500)?)
        .evict_after(u32::try_from(evict).map_err(|_| usage("--evict-after is too large"))?)
        .limits(limits)
        .start()?;
    let u = server.urls();
    print_line(&format!(
        "serving survey={} publish={} snapshot={}{} epoch={:016x}",
        u.survey,
        u.publish,
        u.snapshot,
        u.legacy_publish
            .as_ref()
            .map(|l| format!(" legacy-publish={l}"))
            .unwrap_or_default(),
        server.epoch()
    ));
    let sig = wait_for_signal(signals);
    log::info!("signal {sig}: shutting down");
    drop(server);
    Ok(())
}

fn join(args: &Args, signals: &libc::sigset_t) -> Result<(), Fail> {
    args.check_known(&["service", "survey", "meta"])?;
    let name = args
        .one("service")?
        .ok_or_else(|| usage("join needs --service NAME"))?;
    let mut b = Client::builder(name);
    for url in args.all("survey") {
        b = b.survey(url);
    }
    for kv in args.all("meta") {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| usage(format!("--meta expects KEY=VALUE, got {kv:?}")))?;
        b = b.meta(k, v);
    }
    let client = b.start()?;
    let m = client.member();
    print_line(&format!(
        "joined {} incarnation={:016x}",
        m.name, m.incarnation
    ));
    let sig = wait_for_signal(signals);
    log::info!("signal {sig}: leaving");
    drop(client);
    Ok(())
}

fn watch(args: &Args, signals: &libc::sigset_t) -> Result<(), Fail> {
    args.check_known(&["publish", "snapshot", "legacy", "json"])?;
    let json = args.has("json");
    let legacy = args.has("legacy");
    if legacy && args.one("snapshot")?.is_some() {
        return Err(usage("--legacy and --snapshot exclude each other (a legacy publisher has no snapshot socket)"));
    }
    let snapshot = if legacy {
        None
    } else {
        Some(
            args.one("snapshot")?
                .unwrap_or_else(|| DEFAULT_SNAPSHOT_URL.into()),
        )
    };
    let sub = Subscriber::builder()
        .publish(
            args.one("publish")?
                .unwrap_or_else(|| DEFAULT_PUBLISH_URL.into()),
        )
        .snapshot(snapshot)
        .on_update(move |u| print_line(&if json { json_update(u) } else { text_update(u) }))
        .start()?;
    let sig = wait_for_signal(signals);
    log::info!("signal {sig}: stopping");
    drop(sub);
    Ok(())
}

fn members(args: &Args) -> Result<(), Fail> {
    args.check_known(&["snapshot", "timeout", "json"])?;
    let url = args
        .one("snapshot")?
        .unwrap_or_else(|| DEFAULT_SNAPSHOT_URL.into());
    let timeout = millis(args, "timeout", 3000)?;
    if timeout.is_zero() {
        return Err(usage("--timeout must be greater than zero"));
    }
    let snap = fetch_snapshot(&url, timeout, &Limits::default()).map_err(|e| match e {
        Error::Timeout => Fail(
            1,
            format!("no snapshot from {url} within {} ms", timeout.as_millis()),
        ),
        other => Fail::from(other),
    })?;
    if args.has("json") {
        let mut o = String::new();
        let _ = write!(
            o,
            "{{\"epoch\":{},\"seq\":{},\"peers\":",
            snap.epoch, snap.seq
        );
        let names: Vec<String> = snap.members.iter().map(|m| m.name.clone()).collect();
        json_strs(&mut o, &names);
        o.push_str(",\"members\":[");
        for (i, m) in snap.members.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            json_member(&mut o, m);
        }
        o.push_str("]}");
        print_line(&o);
    } else {
        for m in &snap.members {
            let md: Vec<String> = m.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            print_line(&format!(
                "{}{}{}",
                m.name,
                if md.is_empty() { "" } else { " " },
                md.join(" ")
            ));
        }
    }
    Ok(())
}

fn run() -> Result<(), Fail> {
    let args = Args::parse(std::env::args().skip(1).collect())?;
    if args.command == "help" || args.has("help") {
        print!("{USAGE}");
        return Ok(());
    }
    if args.command == "version" {
        println!(
            "gopherdiscovery {} (wire {}, NNG {})",
            gopherdiscovery::VERSION,
            gopherdiscovery::WIRE_VERSION,
            gopherdiscovery::nng_version()
        );
        return Ok(());
    }
    let default_level = if args.command == "serve" {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    };
    init_log(&args, default_level)?;
    let signals = block_signals();
    match args.command.as_str() {
        "serve" => serve(&args, &signals),
        "join" => join(&args, &signals),
        "watch" => watch(&args, &signals),
        "members" => members(&args),
        other => Err(usage(format!(
            "unknown command {other:?} (serve, join, watch or members)"
        ))),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            let _ = writeln!(std::io::stderr(), "gopherdiscovery: {msg}");
            ExitCode::from(code)
        }
    }
}
