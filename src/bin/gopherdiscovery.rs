//! `gopherdiscovery` — run a discovery server, join as a member, watch or list
//! members; make a key and list a keyring's key ids.
//!
//! Exit codes: 0 on success and on SIGINT/SIGTERM (every command, `members`
//! included, stops at once on either); 1 on a runtime failure (an address in use,
//! a server that does not answer); 2 on bad arguments (a URL without a port, an
//! argument that is not UTF-8, a keyring file that does not parse…). Every
//! failure is one line on stderr. Text output never carries raw control
//! characters (they are shown escaped, `\u{1b}`). `serve`, `join` and `watch`
//! re-read their keyring file on SIGHUP.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gopherdiscovery::merge::Merge;
use gopherdiscovery::{
    fetch_snapshot_with, Auth, Client, Error, Keyring, Limits, Member, Server, State,
    SubscribedServer, Subscriber, Update, DEFAULT_EVICT_AFTER, DEFAULT_INTERVAL,
    DEFAULT_PUBLISH_URL, DEFAULT_SNAPSHOT_URL, DEFAULT_SURVEY_URL,
};

#[path = "gopherdiscovery/help.rs"]
mod help;
#[cfg(feature = "http")]
#[path = "gopherdiscovery/http.rs"]
mod http;
#[path = "gopherdiscovery/keys.rs"]
mod keys;
#[path = "gopherdiscovery/logging.rs"]
mod logging;

use keys::Keys;

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
const SWITCHES: &[&str] = &["json", "legacy", "help", "version"];

/// Options every command takes.
const COMMON: &[&str] = &["log-level", "log-format", "help", "version"];

/// The commands, for error messages.
const COMMANDS: &str = "serve, join, watch, members, keygen or keyring";

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
            None => return Err(usage(format!("missing command ({COMMANDS})"))),
        };
        let mut it = it.peekable();
        // `keyring list`: a command of two words.
        let command = match it.peek() {
            Some(sub) if command == "keyring" && !sub.starts_with('-') => {
                format!("keyring {}", it.next().unwrap_or_default())
            }
            _ => command,
        };
        let mut flags = Vec::new();
        while let Some(a) = it.next() {
            if a == "-h" || a == "-V" {
                flags.push((if a == "-h" { "help" } else { "version" }.into(), None));
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

    /// Refuses options outside `known` and the common ones.
    fn check_known(&self, known: &[&str]) -> Result<(), Fail> {
        self.check_in(&[known, COMMON])
    }

    /// The same for a command that speaks to a mesh: the key options too.
    fn check_known_keyed(&self, known: &[&str]) -> Result<(), Fail> {
        self.check_in(&[known, COMMON, keys::FLAGS])
    }

    fn check_in(&self, lists: &[&[&str]]) -> Result<(), Fail> {
        for (name, _) in &self.flags {
            if matches!(name.as_str(), "key" | "keys" | "keyring") {
                return Err(usage(format!(
                    "--{name}: keys are never given on the command line (ps shows it to \
                     everyone): use --keyring-file PATH, or {} or {} in the environment",
                    keys::ENV_FILE,
                    keys::ENV_KEY
                )));
            }
            if !lists.iter().any(|l| l.contains(&name.as_str())) {
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

fn init_log(args: &Args, default: log::LevelFilter) -> Result<(), Fail> {
    let level = match args.one("log-level")?.as_deref() {
        None => default,
        Some(s) => s.parse::<log::LevelFilter>().map_err(|_| {
            usage(format!(
                "--log-level expects off, error, warn, info, debug or trace, got {s:?}"
            ))
        })?,
    };
    let format = match args.one("log-format")?.as_deref() {
        None | Some("text") => logging::Format::Text,
        Some("json") => logging::Format::Json,
        Some(s) => {
            return Err(usage(format!(
                "--log-format expects text or json, got {s:?}"
            )))
        }
    };
    logging::init(format, level);
    Ok(())
}

// ------------------------------------------------------------------ signals

/// Blocks SIGINT and SIGTERM (and SIGHUP, for the commands that reload their
/// keyring on it) in this thread and every thread started after it, so that
/// [`wait_for_signal`] takes them synchronously: no signal handler runs, and the
/// reload happens on the main thread like any other work.
fn block_signals(hup: bool) -> libc::sigset_t {
    // SAFETY: plain libc calls on a local, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if hup {
            libc::sigaddset(&mut set, libc::SIGHUP);
        }
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

/// Waits for SIGINT or SIGTERM (returned); on each SIGHUP meanwhile, re-reads
/// the keyring file and gives it to `apply`.
fn run_until_stopped(
    set: &libc::sigset_t,
    keys: &Keys,
    apply: &dyn Fn(Keyring) -> gopherdiscovery::Result<()>,
) -> i32 {
    loop {
        match wait_for_signal(set) {
            libc::SIGHUP => keys.reload(apply),
            sig => return sig,
        }
    }
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

/// A 64-bit identifier (epoch, incarnation, digest) as JSON: a 16-digit lowercase
/// hex string, exact in JavaScript and jq (numbers above 2^53 are not).
fn json_id(id: u64) -> String {
    format!("\"{id:016x}\"")
}

fn json_member(out: &mut String, m: &Member) {
    out.push_str("{\"name\":");
    json_str(out, &m.name);
    out.push_str(",\"metadata\":");
    json_metadata(out, &m.metadata);
    let _ = write!(out, ",\"incarnation\":{}}}", json_id(m.incarnation));
}

/// The member set as `members --json` prints it (and `/members.json` serves it).
fn json_snapshot(epoch: u64, seq: u64, digest: u64, members: &[Member]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{{\"epoch\":{},\"seq\":{seq},\"digest\":{},\"peers\":",
        json_id(epoch),
        json_id(digest)
    );
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    json_strs(&mut o, &names);
    o.push_str(",\"members\":[");
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        json_member(&mut o, m);
    }
    o.push_str("]}");
    o
}

fn json_update(u: &Update) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{{\"epoch\":{},\"seq\":{},\"state\":\"{}\",\"snapshot\":{},\"peers\":",
        json_id(u.epoch),
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
        let _ = write!(o, ",\"incarnation\":{}}}", json_id(e.member.incarnation));
    }
    o.push(']');
    json_servers(&mut o, u.live_servers, &u.servers);
    o.push('}');
    o
}

/// `s` with every control character escaped (`\n`, `\u{1b}`…): a peer's bytes
/// cannot forge lines or terminal sequences in text output.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

fn text_update(u: &Update) -> String {
    let events: Vec<String> = u
        .events
        .iter()
        .map(|e| printable(&e.to_string()).into_owned())
        .collect();
    let mut line = format!(
        "[{}] epoch={:016x} seq={} peers={}",
        u.state.as_str(),
        u.epoch,
        u.seq,
        if u.peers.is_empty() {
            "-".to_string()
        } else {
            printable(&u.peers.join(",")).into_owned()
        }
    );
    if u.servers.len() > 1 {
        let _ = write!(line, " servers={}/{}", u.live_servers, u.servers.len());
    }
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
    args.check_known_keyed(&[
        "survey",
        "publish",
        "snapshot",
        "legacy-publish",
        "interval",
        "deadline",
        "evict-after",
        "max-members",
        "max-connections",
        "max-members-per-connection",
        "http",
    ])?;
    let keys = Keys::from_args(args)?;
    let http_addr = match args.one("http")? {
        #[cfg(feature = "http")]
        Some(a) => Some(http::parse_addr(&a)?),
        #[cfg(not(feature = "http"))]
        Some(_) => {
            return Err(usage(
                "--http: this build has no HTTP endpoint (cargo feature \"http\")",
            ))
        }
        None => None,
    };
    let mut limits = Limits::default();
    if let Some(n) = args.number("max-members")? {
        limits.max_members = n as usize;
    }
    let evict = args
        .number("evict-after")?
        .unwrap_or(DEFAULT_EVICT_AFTER.into());
    let mut builder = Server::builder();
    if let Some(n) = args.number("max-connections")? {
        builder = builder.max_connections(n as usize);
    }
    if let Some(n) = args.number("max-members-per-connection")? {
        builder = builder.max_members_per_connection(n as usize);
    }
    // Without --deadline, the library's default: half the interval.
    if let Some(d) = args.number("deadline")? {
        builder = builder.deadline(Duration::from_millis(d));
    }
    let server = builder
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
        .interval(millis(
            args,
            "interval",
            DEFAULT_INTERVAL.as_millis() as u64,
        )?)
        .evict_after(u32::try_from(evict).map_err(|_| usage("--evict-after is too large"))?)
        .limits(limits)
        .authentication(keys.auth.clone())
        .start()?;
    let server = std::sync::Arc::new(server);
    #[cfg(feature = "http")]
    let endpoint = http_addr
        .map(|a| http::Endpoint::start(a, server.clone()))
        .transpose()?;
    #[cfg(feature = "http")]
    let http_note = endpoint
        .as_ref()
        .map(|(_, a)| format!(" http={a}"))
        .unwrap_or_default();
    #[cfg(not(feature = "http"))]
    let http_note = {
        let _: Option<()> = http_addr;
        String::new()
    };
    let u = server.urls();
    print_line(&format!(
        "serving survey={} publish={} snapshot={}{}{http_note} epoch={:016x}",
        u.survey,
        u.publish,
        u.snapshot,
        u.legacy_publish
            .as_ref()
            .map(|l| format!(" legacy-publish={l}"))
            .unwrap_or_default(),
        server.epoch()
    ));
    keys.log_start();
    let sig = run_until_stopped(signals, &keys, &|k| server.set_keyring(k));
    log::info!("signal {sig}: shutting down");
    #[cfg(feature = "http")]
    if let Some((e, _)) = endpoint {
        e.stop();
    }
    drop(server);
    Ok(())
}

fn join(args: &Args, signals: &libc::sigset_t) -> Result<(), Fail> {
    args.check_known_keyed(&["name", "service", "survey", "meta", "interval"])?;
    let keys = Keys::from_args(args)?;
    // --service is the old word for --name, kept as an alias.
    let name = match (args.one("name")?, args.one("service")?) {
        (Some(_), Some(_)) => {
            return Err(usage("--name and --service are the same option; give one"))
        }
        (Some(n), None) | (None, Some(n)) => n,
        (None, None) => return Err(usage("join needs --name NAME")),
    };
    let interval = millis(args, "interval", DEFAULT_INTERVAL.as_millis() as u64)?;
    if interval.is_zero() {
        return Err(usage("--interval must be greater than zero"));
    }
    let mut surveys = args.all("survey");
    if surveys.is_empty() {
        surveys.push(DEFAULT_SURVEY_URL.into());
    }
    let mut b = Client::builder(name).authentication(keys.auth.clone());
    for url in &surveys {
        b = b.survey(url);
    }
    for kv in args.all("meta") {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| usage(format!("--meta expects KEY=VALUE, got {kv:?}")))?;
        b = b.meta(k, v);
    }
    let client = std::sync::Arc::new(b.start()?);
    let m = client.member();
    print_line(&format!(
        "joined {} incarnation={:016x}",
        m.name, m.incarnation
    ));
    let watched = std::sync::Arc::downgrade(&client);
    let patience = 3 * interval;
    let urls = surveys.join(" ");
    std::thread::spawn(move || {
        let started = Instant::now();
        let mut warned = false;
        while let Some(c) = watched.upgrade() {
            let st = c.stats();
            drop(c);
            let quiet = st.last_survey_age.unwrap_or_else(|| started.elapsed()) >= patience;
            if quiet && !warned {
                // Surveys that arrive but fail authentication are not "surveyed".
                let refused: Vec<String> = st
                    .auth
                    .reasons()
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(r, n)| format!("{n} {r}"))
                    .collect();
                let auth_note = if refused.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; surveys refused by authentication ({}): check the keyring (and the mesh label)",
                        refused.join(", ")
                    )
                };
                log::warn!(
                    "no server has surveyed this member within {} ms (survey {urls}, {} connected{auth_note}); still trying",
                    patience.as_millis(),
                    st.connections
                );
            } else if !quiet && warned {
                log::warn!("surveyed by a server again");
            }
            warned = quiet;
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    keys.log_start();
    let sig = run_until_stopped(signals, &keys, &|k| client.set_keyring(k));
    log::info!("signal {sig}: leaving");
    drop(client);
    Ok(())
}

/// The `--server PUBLISH_URL,SNAPSHOT_URL` options, in order (empty when none).
fn servers(args: &Args) -> Result<Vec<(String, String)>, Fail> {
    args.all("server")
        .into_iter()
        .map(|v| match v.split_once(',') {
            Some((p, s)) if !p.is_empty() && !s.is_empty() && !s.contains(',') => {
                Ok((p.to_string(), s.to_string()))
            }
            _ => Err(usage(format!(
                "--server expects PUBLISH_URL,SNAPSHOT_URL, got {v:?}"
            ))),
        })
        .collect()
}

fn watch(args: &Args, signals: &libc::sigset_t) -> Result<(), Fail> {
    args.check_known_keyed(&["publish", "snapshot", "legacy", "json", "server"])?;
    let keys = Keys::from_args(args)?;
    let json = args.has("json");
    let legacy = args.has("legacy");
    let several = servers(args)?;
    if !several.is_empty() && (legacy || args.has("publish") || args.has("snapshot")) {
        return Err(usage(
            "--server excludes --publish, --snapshot and --legacy (a legacy publisher can only be the single server)",
        ));
    }
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
    let publish = args
        .one("publish")?
        .unwrap_or_else(|| DEFAULT_PUBLISH_URL.into());
    let mut builder = Subscriber::builder()
        .authentication(keys.auth.clone())
        .publish(publish)
        .snapshot(snapshot)
        .on_update(move |u| print_line(&if json { json_update(u) } else { text_update(u) }));
    for (p, s) in several {
        builder = builder.server(p, s);
    }
    let sub = std::sync::Arc::new(builder.start()?);
    report_unreachable(&sub);
    keys.log_start();
    let sig = run_until_stopped(signals, &keys, &|k| sub.set_keyring(k));
    log::info!("signal {sig}: stopping");
    drop(sub);
    Ok(())
}

/// Warns (on stderr, from a thread of its own) while `watch` cannot reach a
/// server: after 3 s without a connection or without a first view; it keeps trying.
fn report_unreachable(sub: &std::sync::Arc<Subscriber>) {
    let watched = std::sync::Arc::downgrade(sub);
    std::thread::spawn(move || {
        let patience = 3 * DEFAULT_INTERVAL;
        let mut since = Instant::now();
        let mut warned = false;
        while let Some(s) = watched.upgrade() {
            let servers = s.servers();
            drop(s);
            let mut missing = Vec::new();
            for srv in &servers {
                if srv.publish_connections == 0 {
                    missing.push(format!("publish {}", srv.publish));
                }
                if let Some(url) = &srv.snapshot {
                    if srv.snapshot_connections == 0 {
                        missing.push(format!("snapshot {url}"));
                    } else if srv.state == State::Syncing {
                        missing.push(format!("a snapshot from {url}"));
                    }
                }
            }
            if missing.is_empty() {
                if warned {
                    log::warn!("reached the servers again");
                }
                warned = false;
                since = Instant::now();
            } else if !warned && since.elapsed() >= patience {
                log::warn!(
                    "cannot reach {} after {} ms; still trying",
                    missing.join(" and "),
                    patience.as_millis()
                );
                warned = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

fn members(args: &Args, signals: &libc::sigset_t) -> Result<(), Fail> {
    args.check_known_keyed(&["snapshot", "publish", "timeout", "json", "server"])?;
    let keys = Keys::from_args(args)?;
    // The fetch blocks up to --timeout; a signal ends the process at once, with 0.
    let set = *signals;
    std::thread::spawn(move || {
        wait_for_signal(&set);
        std::process::exit(0);
    });
    let several = servers(args)?;
    if !several.is_empty() {
        if args.has("snapshot") || args.has("publish") {
            return Err(usage("--server excludes --snapshot and --publish"));
        }
        return members_merged(args, &several, &keys.auth);
    }
    // One server: the same path, a merge of one (so --json has the same shape).
    let snapshot = args
        .one("snapshot")?
        .unwrap_or_else(|| DEFAULT_SNAPSHOT_URL.into());
    let publish = args
        .one("publish")?
        .unwrap_or_else(|| DEFAULT_PUBLISH_URL.into());
    members_merged(args, &[(publish, snapshot)], &keys.auth)
}

/// The reason `members` gives when a snapshot did not come: a server with a
/// keyring does not answer a request it cannot verify, so a timeout may be a
/// keyring (or mesh label) mismatch as much as a server that is down.
fn no_snapshot(url: &str, timeout: Duration, auth: &Auth) -> String {
    let hint = if auth.signs() {
        "is the server up, and does it have this keyring (and mesh label)?"
    } else {
        "is the server up? (a server with a keyring answers only signed requests: give this command its keyring)"
    };
    format!(
        "no snapshot from {url} within {} ms: {hint}",
        timeout.as_millis()
    )
}

/// `members --server P,S …`: every server's snapshot, fetched in parallel, merged
/// as a subscriber merges them; fails only when no server answered.
fn members_merged(args: &Args, several: &[(String, String)], auth: &Auth) -> Result<(), Fail> {
    let timeout = millis(args, "timeout", 3000)?;
    if timeout.is_zero() {
        return Err(usage("--timeout must be greater than zero"));
    }
    let fetches: Vec<_> = several
        .iter()
        .map(|(_, url)| {
            let (url, auth) = (url.clone(), auth.clone());
            std::thread::spawn(move || {
                fetch_snapshot_with(&url, timeout, &Limits::default(), &auth)
            })
        })
        .collect();
    let mut merge = Merge::new(several.len());
    for (i, f) in fetches.into_iter().enumerate() {
        let url = &several[i].1;
        match f.join().unwrap_or(Err(Error::Closed)) {
            Ok(snap) => {
                let mut src = merge.source(i);
                src.set_warming(snap.warming);
                if let Err(e) = src.apply_snapshot(snap) {
                    log::warn!("bad snapshot from {url}: {e:?}");
                    continue;
                }
                src.set_state(State::Live);
            }
            // One server: its failure is the command's.
            Err(Error::Timeout) if several.len() == 1 => {
                return Err(Fail(1, no_snapshot(url, timeout, auth)))
            }
            Err(e) if several.len() == 1 => return Err(Fail::from(e)),
            Err(Error::Timeout) => log::warn!("{}", no_snapshot(url, timeout, auth)),
            Err(e) => log::warn!("no snapshot from {url}: {e}"),
        }
    }
    if merge.live() == 0 {
        return Err(Fail(
            1,
            format!(
                "no snapshot from any server within {} ms",
                timeout.as_millis()
            ),
        ));
    }
    let members: Vec<Member> = merge.view().members().cloned().collect();
    if args.has("json") {
        let first = (0..merge.servers())
            .find(|&i| merge.state(i) == State::Live)
            .unwrap_or(0);
        let (epoch, seq) = merge.replica(first).position();
        let mut o = json_snapshot(epoch, seq, merge.view().digest(), &members);
        o.pop(); // the closing brace: the servers block follows
        let servers: Vec<SubscribedServer> = several
            .iter()
            .enumerate()
            .map(|(i, (publish, snapshot))| {
                let (epoch, seq) = merge.replica(i).position();
                SubscribedServer {
                    publish: publish.clone(),
                    snapshot: Some(snapshot.clone()),
                    epoch,
                    seq,
                    // No answer within the timeout: no live server vouches for it.
                    state: match merge.state(i) {
                        State::Live => State::Live,
                        _ => State::Stale,
                    },
                    warming: merge.warming(i),
                    members: merge.replica(i).len(),
                    publish_connections: 0,
                    snapshot_connections: u64::from(merge.state(i) == State::Live),
                    last_publication_age: None,
                    publications: 0,
                    resyncs: 0,
                }
            })
            .collect();
        json_servers(&mut o, merge.live(), &servers);
        o.push('}');
        print_line(&o);
    } else {
        for line in members_table(&members) {
            print_line(&line);
        }
    }
    Ok(())
}

/// `,"live_servers":n,"configured_servers":m,"servers":[…]`, the servers block of
/// `watch --json` and `members --json`.
fn json_servers(o: &mut String, live: usize, servers: &[SubscribedServer]) {
    let _ = write!(
        o,
        ",\"live_servers\":{live},\"configured_servers\":{},\"servers\":[",
        servers.len()
    );
    for (i, s) in servers.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push_str("{\"publish\":");
        json_str(o, &s.publish);
        o.push_str(",\"snapshot\":");
        match &s.snapshot {
            Some(u) => json_str(o, u),
            None => o.push_str("null"),
        }
        let _ = write!(
            o,
            ",\"epoch\":{},\"seq\":{},\"state\":\"{}\",\"warming\":{}}}",
            json_id(s.epoch),
            s.seq,
            s.state.as_str(),
            s.warming
        );
    }
    o.push(']');
}

/// `members` as an aligned table: NAME, INCARNATION, STATUS, METADATA. Every
/// member in a snapshot answered within `evict_after` surveys: its status is
/// `alive` (`alive (legacy)` for a raw-string member of the original Go client).
fn members_table(members: &[Member]) -> Vec<String> {
    let mut rows = vec![[
        "NAME".to_string(),
        "INCARNATION".to_string(),
        "STATUS".to_string(),
        "METADATA".to_string(),
    ]];
    for m in members {
        let md: Vec<String> = m
            .metadata
            .iter()
            .map(|(k, v)| format!("{}={}", printable(k), printable(v)))
            .collect();
        rows.push([
            printable(&m.name).into_owned(),
            format!("{:016x}", m.incarnation),
            if m.incarnation == 0 {
                "alive (legacy)"
            } else {
                "alive"
            }
            .to_string(),
            md.join(","),
        ]);
    }
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    rows.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let _ = write!(line, "{:<w$}  ", r[i]);
            }
            line.push_str(&r[3]);
            line.trim_end().to_string()
        })
        .collect()
}

/// `keygen`: one new random key, base64, on stdout.
fn keygen(args: &Args) -> Result<(), Fail> {
    args.check_known(&[])?;
    let key = zeroize::Zeroizing::new(Keyring::generate()?);
    print_line(&key);
    Ok(())
}

/// `keyring list`: the key ids of the configured keyring, primary first.
fn keyring_list(args: &Args) -> Result<(), Fail> {
    args.check_known(&["keyring-file"])?;
    let Some((ring, _)) = keys::keyring(args)? else {
        return Err(usage(format!(
            "no keyring: give --keyring-file PATH, or set {} or {}",
            keys::ENV_FILE,
            keys::ENV_KEY
        )));
    };
    for id in ring.key_ids() {
        print_line(&id.to_string());
    }
    Ok(())
}

fn run() -> Result<(), Fail> {
    let mut raw = Vec::new();
    for (i, a) in std::env::args_os().skip(1).enumerate() {
        match a.into_string() {
            Ok(s) => raw.push(s),
            Err(a) => {
                return Err(usage(format!(
                    "argument {} ({}) is not valid UTF-8",
                    i + 1,
                    printable(&a.to_string_lossy())
                )))
            }
        }
    }
    let args = Args::parse(raw)?;
    if args.command == "help" || args.has("help") {
        match help::command(&args.command) {
            Some(text) => print!("{text}"),
            None => print!("{}", help::overview()),
        }
        return Ok(());
    }
    if args.command == "version" || args.has("version") {
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
    let reloads = matches!(args.command.as_str(), "serve" | "join" | "watch");
    let signals = block_signals(reloads);
    match args.command.as_str() {
        "serve" => serve(&args, &signals),
        "join" => join(&args, &signals),
        "watch" => watch(&args, &signals),
        "members" => members(&args, &signals),
        "keygen" => keygen(&args),
        "keyring list" => keyring_list(&args),
        "keyring" => Err(usage("keyring needs a subcommand: keyring list")),
        other => match other.strip_prefix("keyring ") {
            Some(sub) => Err(usage(format!("unknown keyring command {sub:?} (list)"))),
            None => Err(usage(format!("unknown command {other:?} ({COMMANDS})"))),
        },
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
