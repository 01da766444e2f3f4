//! `gopherdiscovery --help` and `gopherdiscovery <command> --help`: each command's
//! own options with their defaults. The numbers come from the library's constants.

use gopherdiscovery::{
    DEFAULT_EVICT_AFTER, DEFAULT_INTERVAL, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_MEMBERS_PER_CONNECTION, DEFAULT_PUBLISH_URL, DEFAULT_SNAPSHOT_URL,
    DEFAULT_SURVEY_URL,
};

const COMMON: &str = "\
common options:
  --log-level LEVEL    off, error, warn, info, debug or trace
                       (default: info for serve, warn for the others)
  --log-format FORMAT  text or json (default text); logs go to stderr, one line each,
                       with an RFC 3339 UTC timestamp and the level
  -h, --help           this text
  -V, --version        library, wire and NNG versions
";

/// The key options of serve, join, watch and members.
const KEYS: &str = "\
authentication (a key is never given on the command line):
  --keyring-file PATH  one base64 32-byte key per line, the first signs, all
                       verify; `#` starts a comment; keep it chmod 600 (default:
                       the file named by $GOPHERDISCOVERY_KEYRING_FILE, else the
                       one key in $GOPHERDISCOVERY_KEY, else no key)
  --auth MODE          off, permissive (sign, accept unsigned too, counted) or
                       required (default: required with a key, off without)
  --mesh-label TEXT    covered by every signature: two meshes sharing a key by
                       mistake refuse each other (default: empty)
";

/// The overview (`gopherdiscovery --help`).
pub fn overview() -> String {
    format!(
        "\
usage: gopherdiscovery <command> [options]

commands:
  serve    run a discovery server
  join     join the mesh as a member
  watch    print every change of the member set
  members  print the member set once
  keygen   print a new random key (base64) for a keyring file
  keyring  `keyring list`: print the key ids of the configured keyring

`gopherdiscovery <command> --help` shows that command's options and defaults.

{COMMON}"
    )
}

/// One command's help, or None for an unknown command.
pub fn command(name: &str) -> Option<String> {
    let interval = DEFAULT_INTERVAL.as_millis();
    let (max_connections, max_per_connection) =
        (DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MEMBERS_PER_CONNECTION);
    let body = match name {
        "keygen" => "\
usage: gopherdiscovery keygen

Prints one new random 32-byte key, base64, and a newline: a line of a keyring
file. `gopherdiscovery keygen > mesh.key; chmod 600 mesh.key`
"
        .to_string(),
        "keyring" | "keyring list" => "\
usage: gopherdiscovery keyring list [--keyring-file PATH]

Prints the key ids (8 hex digits) of the configured keyring, one per line,
primary first; never a key. The ids are those of /metrics
(gopherdiscovery_auth_messages_total{key_id}) and of the logs.

options:
  --keyring-file PATH  the keyring file (default: $GOPHERDISCOVERY_KEYRING_FILE,
                       else the one key in $GOPHERDISCOVERY_KEY)
"
        .to_string(),
        "serve" => format!(
            "\
usage: gopherdiscovery serve [options]

Surveys the members, publishes every change and serves snapshots. Prints one
line `serving survey=… publish=… snapshot=… epoch=…` once listening (with
`http=ADDR:PORT` when --http is given), then runs until SIGINT or SIGTERM.
SIGHUP re-reads the keyring file (a bad file keeps the old keyring).

options:
  --survey URL          survey socket (default {DEFAULT_SURVEY_URL})
  --publish URL         publish socket (default {DEFAULT_PUBLISH_URL})
  --snapshot URL        snapshot socket (default {DEFAULT_SNAPSHOT_URL})
  --legacy-publish URL  also publish the `|`-joined full list, as the original Go
                        server does (default: none)
  --interval MS         time between surveys (default {interval})
  --deadline MS         how long answers are awaited (default: half the interval)
  --evict-after N       missed surveys before a member leaves (default {DEFAULT_EVICT_AFTER})
  --max-members N       most members kept (default 100000)
  --max-connections N   most connections per socket; more are closed as they
                        come, with a warning (default {max_connections})
  --max-members-per-connection N
                        members one survey connection may answer for: 1 for
                        native and legacy clients; raise it only for a trusted
                        proxy (default {max_per_connection})
  --http ADDR:PORT      serve a read-only status page, /metrics, /healthz,
                        /members.json and /status.json (default: off; port 0
                        picks a free port, printed as http=… on the serving line)
"
        ),
        "join" => format!(
            "\
usage: gopherdiscovery join --name NAME [options]

Answers the servers' surveys as member NAME until SIGINT or SIGTERM. Prints
`joined NAME incarnation=…`; warns on stderr when no server has surveyed it
within 3 intervals (and keeps trying). SIGHUP re-reads the keyring file.

options:
  --name NAME        the member's name, e.g. http://10.0.0.1:8080 (required;
                     --service is accepted as an alias)
  --survey URL       a server's survey URL; repeat for several servers
                     (default {DEFAULT_SURVEY_URL})
  --meta KEY=VALUE   metadata; repeat for several keys (default: none)
  --interval MS      the servers' survey interval, for the warning above
                     (default {interval})
"
        ),
        "watch" => format!(
            "\
usage: gopherdiscovery watch [options]

Prints the member set on every change until SIGINT or SIGTERM; warns on stderr
when it cannot reach its URLs (and keeps trying). SIGHUP re-reads the keyring
file.

options:
  --publish URL    the server's publish URL (default {DEFAULT_PUBLISH_URL})
  --snapshot URL   the server's snapshot URL (default {DEFAULT_SNAPSHOT_URL})
  --server PUBLISH_URL,SNAPSHOT_URL
                   a server to merge; repeat for each server (instead of
                   --publish and --snapshot). The view holds a member while
                   some live server does; stale only when no server is live
  --legacy         the publisher is an original Go server (no snapshot socket)
  --json           one JSON object per line; epoch and incarnation are
                   16-digit hex strings; live_servers, configured_servers and
                   servers (publish, snapshot, epoch, seq, state, warming)
"
        ),
        "members" => format!(
            "\
usage: gopherdiscovery members [options]

Prints the member set once, as a table (NAME, INCARNATION, STATUS, METADATA).

options:
  --snapshot URL   the server's snapshot URL (default {DEFAULT_SNAPSHOT_URL})
  --publish URL    that server's publish URL, only named in --json's servers
                   block (default {DEFAULT_PUBLISH_URL})
  --server PUBLISH_URL,SNAPSHOT_URL
                   a server to merge; repeat for each server (instead of
                   --snapshot); fails only when no server answers
  --timeout MS     how long to wait for the snapshot (default 3000)
  --json           one JSON object; epoch, digest and incarnation are
                   16-digit hex strings; also live_servers,
                   configured_servers and servers as in watch --json
"
        ),
        _ => return None,
    };
    let keyed = matches!(name, "serve" | "join" | "watch" | "members");
    Some(format!(
        "{body}\n{}{COMMON}",
        if keyed {
            format!("{KEYS}\n")
        } else {
            String::new()
        }
    ))
}
