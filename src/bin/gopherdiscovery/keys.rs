//! Keys for authenticated meshes: where every command finds its keyring, the
//! `--auth` and `--mesh-label` options, and the keyring reload on SIGHUP.
//!
//! A key never comes from the command line (anyone on the host reads it with
//! `ps`): from `--keyring-file PATH`, else the file named by
//! `GOPHERDISCOVERY_KEYRING_FILE`, else the one base64 key in
//! `GOPHERDISCOVERY_KEY`. No message of this module holds key text: the
//! library's keyring errors name the file and line only, and keys are shown by
//! their ids.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use gopherdiscovery::{Auth, AuthMode, Error, Keyring};

use super::{usage, Args, Fail};

/// The options of every command that speaks to a mesh.
pub const FLAGS: &[&str] = &["keyring-file", "auth", "mesh-label"];
/// The environment variable naming a keyring file.
pub const ENV_FILE: &str = "GOPHERDISCOVERY_KEYRING_FILE";
/// The environment variable holding one base64 key.
pub const ENV_KEY: &str = "GOPHERDISCOVERY_KEY";

/// Where the keyring comes from.
enum Source {
    /// `--keyring-file` or `GOPHERDISCOVERY_KEYRING_FILE`, with the name to
    /// give in errors.
    File(PathBuf, &'static str),
    /// `GOPHERDISCOVERY_KEY`.
    EnvKey,
    /// No key anywhere.
    Nothing,
}

/// A non-empty environment variable (an empty one counts as unset).
fn env(name: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

fn source(args: &Args) -> Result<Source, Fail> {
    if let Some(p) = args.one("keyring-file")? {
        if p.is_empty() {
            return Err(usage("--keyring-file needs a path"));
        }
        return Ok(Source::File(p.into(), "--keyring-file"));
    }
    if let Some(p) = env(ENV_FILE) {
        return Ok(Source::File(p.into(), ENV_FILE));
    }
    Ok(if env(ENV_KEY).is_some() {
        Source::EnvKey
    } else {
        Source::Nothing
    })
}

/// Warns when a keyring file can be read or written by others than its owner.
fn check_mode(path: &Path) {
    if let Ok(md) = std::fs::metadata(path) {
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            log::warn!(
                "keyring file {} is accessible to group or others (mode {mode:04o}): chmod 600 {}",
                path.display(),
                path.display()
            );
        }
    }
}

/// Reads a keyring file; the error (exit code 2) names the file and the line.
fn read_file(path: &Path, origin: &str) -> Result<Keyring, Fail> {
    check_mode(path);
    Keyring::from_file(path).map_err(|e| match e {
        // The reason starts with the path: "PATH: line 3: not a base64 key".
        Error::InvalidOption { reason, .. } => usage(format!("{origin}: {reason}")),
        e => usage(format!("{origin}: {e}")),
    })
}

fn read_env_key() -> Result<Keyring, Fail> {
    let text = zeroize::Zeroizing::new(std::env::var(ENV_KEY).map_err(|_| {
        usage(format!(
            "{ENV_KEY}: not valid UTF-8 (expected one base64 key)"
        ))
    })?);
    Keyring::from_base64(text.trim()).map_err(|e| match e {
        Error::InvalidOption { reason, .. } => {
            let reason = reason.strip_prefix("line 1: ").unwrap_or(&reason);
            usage(format!("{ENV_KEY}: {reason}"))
        }
        e => usage(format!("{ENV_KEY}: {e}")),
    })
}

/// The configured keyring, if any, and the file it came from.
pub fn keyring(args: &Args) -> Result<Option<(Keyring, Option<PathBuf>)>, Fail> {
    Ok(match source(args)? {
        Source::File(p, origin) => Some((read_file(&p, origin)?, Some(p))),
        Source::EnvKey => Some((read_env_key()?, None)),
        Source::Nothing => None,
    })
}

/// What a command was told about authentication.
pub struct Keys {
    /// Keyring, mode and mesh label, for a builder or `fetch_snapshot_with`.
    pub auth: Auth,
    /// The file SIGHUP re-reads (None: the key came from `GOPHERDISCOVERY_KEY`,
    /// or there is none).
    file: Option<PathBuf>,
}

/// One line about a keyring, never its keys: `2 keys, primary 03defadb`.
pub fn describe(k: &Keyring) -> String {
    let n = k.key_ids().len();
    format!(
        "{n} key{}, primary {}",
        if n == 1 { "" } else { "s" },
        k.primary()
    )
}

impl Keys {
    /// Reads `--keyring-file` (or the environment), `--auth` and `--mesh-label`.
    pub fn from_args(args: &Args) -> Result<Keys, Fail> {
        let found = keyring(args)?;
        let mode = match args.one("auth")? {
            None => None,
            Some(m) => Some(m.parse::<AuthMode>().map_err(|_| {
                usage(format!(
                    "--auth expects off, permissive or required, got {m:?}"
                ))
            })?),
        };
        if found.is_none() {
            if let Some(m) = mode.filter(|m| *m != AuthMode::Off) {
                return Err(usage(format!(
                    "--auth {m} needs a key: --keyring-file PATH, or {ENV_FILE} or {ENV_KEY} \
                     in the environment (`gopherdiscovery keygen` makes one)"
                )));
            }
        }
        let label = args.one("mesh-label")?;
        if label.is_some() && found.is_none() {
            log::warn!("--mesh-label has no effect without a key");
        }
        let (ring, file) = match found {
            Some((k, f)) => (Some(k), f),
            None => (None, None),
        };
        let mut auth = Auth::off().keyring(ring);
        if let Some(m) = mode {
            auth = auth.mode(m);
        }
        if let Some(l) = label {
            auth = auth.mesh_label(l);
        }
        auth.validate().map_err(|e| match e {
            Error::InvalidOption {
                option: "mesh_label",
                reason,
            } => usage(format!("--mesh-label: {reason}")),
            e => Fail::from(e),
        })?;
        Ok(Keys { auth, file })
    }

    /// Logs (at info) the mode and the keyring in force, by key ids.
    pub fn log_start(&self) {
        let mode = self.auth.effective_mode();
        match (self.auth.get_keyring(), &self.file) {
            (None, _) => log::info!("auth {mode}: no keyring"),
            (Some(k), Some(f)) => {
                log::info!("auth {mode}, keyring from {}: {}", f.display(), describe(k))
            }
            (Some(k), None) => log::info!("auth {mode}, key from {ENV_KEY}: {}", describe(k)),
        }
    }

    /// SIGHUP: re-reads the keyring file and hands it to `apply` (a handle's
    /// `set_keyring`). On any failure the old keyring stays, with an error logged.
    pub fn reload(&self, apply: &dyn Fn(Keyring) -> gopherdiscovery::Result<()>) {
        let Some(path) = &self.file else {
            let why = if self.auth.get_keyring().is_some() {
                format!("the key comes from {ENV_KEY}, which a running process cannot re-read")
            } else {
                "no keyring is configured".to_string()
            };
            log::warn!("SIGHUP: nothing to reload ({why})");
            return;
        };
        let fresh = match read_file(path, "keyring file") {
            Ok(k) => k,
            Err(Fail(_, msg)) => {
                log::error!("SIGHUP: keyring not reloaded, the old one stays: {msg}");
                return;
            }
        };
        let what = describe(&fresh);
        match apply(fresh) {
            Ok(()) => log::info!("keyring reloaded from {}: {what}", path.display()),
            Err(e) => log::error!(
                "SIGHUP: keyring from {} not taken, the old one stays: {e}",
                path.display()
            ),
        }
    }
}
