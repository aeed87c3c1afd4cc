//! The shared-state configuration file, e.g.
//! `/etc/security/pam_totp_shared.conf`:
//!
//! ```text
//! # one "key = value" a line; a comment is a line of its own
//! url = redis://10.0.0.5:6379/0
//! user = pam_totp_bastion1
//! password_file = /etc/security/pam_totp_shared.pass
//! namespace = pam_totp
//! timeout_ms = 300
//! failure_policy = local
//! min_replicas = 1
//! rate_limit = 3 30
//! # rediss:// only:
//! ca_file = /etc/ssl/redis-ca.pem
//! client_cert = /etc/ssl/host.pem
//! client_key = /etc/ssl/host.key
//! tls_server_name = redis.example.net
//! ```
//!
//! It holds a password, so it is refused unless it is a regular file owned
//! by root with no group or other permission bits (and so is the password
//! file). The host must be an IP address: resolving a name would put the
//! system resolver, which has no deadline, inside the time budget.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

pub const DEFAULT_PATH: &str = "/etc/security/pam_totp_shared.conf";
pub const DEFAULT_NAMESPACE: &str = "pam_totp";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(300);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONFIG_SIZE: u64 = 16 * 1024;
const DEFAULT_PORT: u16 = 6379;

/// A password, wiped from memory when dropped.
pub type Password = Zeroizing<String>;

/// What to do when the store cannot give an answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Decide with the local file alone, and log it.
    Local,
    /// Refuse the login with PAM_AUTHINFO_UNAVAIL.
    Closed,
}

impl FailurePolicy {
    pub fn parse(text: &str) -> Option<FailurePolicy> {
        match text {
            "local" => Some(FailurePolicy::Local),
            "closed" => Some(FailurePolicy::Closed),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailurePolicy::Local => "local",
            FailurePolicy::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca_file: PathBuf,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub server_name: String,
}

/// The fleet-wide rate limit: from the config, or the file's RATE_LIMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetLimit {
    FromFile,
    Fixed { attempts: u32, seconds: u32 },
    None,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub address: SocketAddr,
    pub database: u32,
    pub tls: Option<Tls>,
    pub user: Option<String>,
    pub password: Option<Zeroizing<String>>,
    pub namespace: String,
    pub timeout: Duration,
    pub failure_policy: FailurePolicy,
    pub min_replicas: u32,
    pub rate_limit: FleetLimit,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("address", &self.address)
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "(set)"))
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .field("failure_policy", &self.failure_policy)
            .field("min_replicas", &self.min_replicas)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Could not open or read it (e.g. EACCES in an unprivileged process).
    Unreadable {
        path: PathBuf,
        reason: String,
    },
    Insecure {
        path: PathBuf,
        reason: String,
    },
    Line {
        line: usize,
        reason: String,
    },
    Missing(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
            ConfigError::Insecure { path, reason } => {
                write!(f, "refusing {}: {reason}", path.display())
            }
            ConfigError::Line { line, reason } => write!(f, "line {line}: {reason}"),
            ConfigError::Missing(key) => write!(f, "{key} is required"),
        }
    }
}

/// Reads a root-only file: a regular file (not through a symlink), owned
/// by root, without group or other permission bits.
pub fn read_root_only(path: &Path) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let unreadable = |e: std::io::Error| ConfigError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let insecure = |reason: String| ConfigError::Insecure {
        path: path.to_owned(),
        reason,
    };
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                insecure("it is a symlink".into())
            } else {
                unreadable(e)
            }
        })?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.file_type().is_file() {
        return Err(insecure("not a regular file".into()));
    }
    if meta.uid() != 0 {
        return Err(insecure(format!("owned by uid {}, not root", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(insecure(format!(
            "mode {:04o} lets group or others in (it holds a password: 0600 or 0400)",
            meta.mode() & 0o7777
        )));
    }
    if meta.len() > MAX_CONFIG_SIZE {
        return Err(insecure("larger than 16 KiB".into()));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_CONFIG_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    Ok(bytes)
}

impl Config {
    /// Reads and parses the file at `path` after its ownership checks.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = read_root_only(path)?;
        Config::parse(&bytes, &|password_file| {
            let bytes = read_root_only(password_file)?;
            let text = std::str::from_utf8(&bytes).map_err(|_| ConfigError::Insecure {
                path: password_file.to_owned(),
                reason: "not UTF-8".into(),
            })?;
            Ok(Zeroizing::new(
                text.trim_end_matches(['\n', '\r']).to_owned(),
            ))
        })
    }

    /// Parses the text; `read_password` reads a `password_file`.
    pub fn parse(
        bytes: &[u8],
        read_password: &dyn Fn(&Path) -> Result<Password, ConfigError>,
    ) -> Result<Config, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ConfigError::Line {
            line: 0,
            reason: "not UTF-8".into(),
        })?;
        let mut url = None;
        let mut user = None;
        let mut password = None;
        let mut password_file = None;
        let mut namespace = DEFAULT_NAMESPACE.to_owned();
        let mut timeout = DEFAULT_TIMEOUT;
        let mut failure_policy = FailurePolicy::Local;
        let mut min_replicas = 0;
        let mut rate_limit = FleetLimit::FromFile;
        let (mut ca_file, mut client_cert, mut client_key, mut server_name) =
            (None, None, None, None);
        let mut seen = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index.saturating_add(1);
            let bad = |reason: &str| ConfigError::Line {
                line,
                reason: reason.to_owned(),
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (key, value) = trimmed
                .split_once('=')
                .ok_or_else(|| bad("expected key = value"))?;
            let (key, value) = (key.trim(), value.trim());
            if seen.contains(&key.to_owned()) {
                return Err(bad(&format!("{key} given twice")));
            }
            seen.push(key.to_owned());
            if value.is_empty() {
                return Err(bad(&format!("{key}: empty value")));
            }
            match key {
                "url" => url = Some(value.to_owned()),
                "user" => user = Some(value.to_owned()),
                // The value may hold anything but a newline; never logged.
                "password" => password = Some(Zeroizing::new(value.to_owned())),
                "password_file" => password_file = Some(PathBuf::from(value)),
                "namespace" => {
                    if !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.:{}".contains(&b))
                        || value.len() > 64
                    {
                        return Err(bad(
                            "namespace: letters, digits and _-.:{} only, at most 64",
                        ));
                    }
                    namespace = value.to_owned();
                }
                "timeout_ms" => {
                    let ms: u64 = value.parse().map_err(|_| bad("timeout_ms: not a number"))?;
                    timeout = Duration::from_millis(ms);
                    if ms == 0 || timeout > MAX_TIMEOUT {
                        return Err(bad("timeout_ms: between 1 and 10000"));
                    }
                }
                "failure_policy" => {
                    failure_policy = FailurePolicy::parse(value)
                        .ok_or_else(|| bad("failure_policy: local or closed"))?
                }
                "min_replicas" => {
                    min_replicas = value
                        .parse()
                        .ok()
                        .filter(|&n| n <= 100)
                        .ok_or_else(|| bad("min_replicas: a number from 0 to 100"))?
                }
                "rate_limit" => {
                    rate_limit = match value {
                        "none" => FleetLimit::None,
                        "file" => FleetLimit::FromFile,
                        _ => {
                            let parts: Vec<&str> = value.split_whitespace().collect();
                            let numbers: Option<Vec<u32>> =
                                parts.iter().map(|p| p.parse().ok()).collect();
                            match numbers.as_deref() {
                                Some(&[attempts @ 1..=100, seconds @ 1..=3600]) => {
                                    FleetLimit::Fixed { attempts, seconds }
                                }
                                _ => {
                                    return Err(bad(
                                        "rate_limit: \"ATTEMPTS SECONDS\" (1-100, 1-3600), none or file",
                                    ))
                                }
                            }
                        }
                    }
                }
                "ca_file" => ca_file = Some(PathBuf::from(value)),
                "client_cert" => client_cert = Some(PathBuf::from(value)),
                "client_key" => client_key = Some(PathBuf::from(value)),
                "tls_server_name" => server_name = Some(value.to_owned()),
                _ => return Err(bad(&format!("unknown key {}", key.escape_debug()))),
            }
        }
        let url = url.ok_or(ConfigError::Missing("url"))?;
        let (tls_wanted, address, database) = parse_url(&url)?;
        if password.is_some() && password_file.is_some() {
            return Err(ConfigError::Line {
                line: 0,
                reason: "password and password_file: give one".into(),
            });
        }
        if let Some(path) = &password_file {
            password = Some(read_password(path)?);
        }
        if user.is_some() && password.is_none() {
            return Err(ConfigError::Missing("password (with user)"));
        }
        let tls = if tls_wanted {
            if client_cert.is_some() != client_key.is_some() {
                return Err(ConfigError::Missing("client_cert and client_key together"));
            }
            Some(Tls {
                ca_file: ca_file.ok_or(ConfigError::Missing("ca_file (for rediss://)"))?,
                client_cert,
                client_key,
                server_name: server_name.unwrap_or_else(|| address.ip().to_string()),
            })
        } else {
            if ca_file.is_some() || client_cert.is_some() || server_name.is_some() {
                return Err(ConfigError::Line {
                    line: 0,
                    reason: "TLS settings given but the url is redis://, not rediss://".into(),
                });
            }
            None
        };
        Ok(Config {
            address,
            database,
            tls,
            user,
            password,
            namespace,
            timeout,
            failure_policy,
            min_replicas,
            rate_limit,
        })
    }
}

/// `redis://IP[:PORT][/DB]` or `rediss://...`; IPv6 in brackets.
fn parse_url(url: &str) -> Result<(bool, SocketAddr, u32), ConfigError> {
    let bad = |reason: &str| ConfigError::Line {
        line: 0,
        reason: format!("url: {reason}"),
    };
    let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("redis://") {
        (false, rest)
    } else {
        return Err(bad("must start with redis:// or rediss://"));
    };
    if rest.contains('@') {
        return Err(bad("put the credentials in user/password, not in the url"));
    }
    let (authority, database) = match rest.split_once('/') {
        Some((authority, "")) => (authority, 0),
        Some((authority, db)) => (
            authority,
            db.parse()
                .map_err(|_| bad("the database is not a number"))?,
        ),
        None => (rest, 0),
    };
    let address = if let Ok(address) = authority.parse::<SocketAddr>() {
        address
    } else {
        let ip = authority
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| bad("the host must be an IP address (a name would need the resolver, which has no deadline)"))?;
        SocketAddr::new(ip, DEFAULT_PORT)
    };
    Ok((tls, address, database))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text.as_bytes(), &|path| {
            assert_eq!(path, Path::new("/pw"));
            Ok(Zeroizing::new("from-file".into()))
        })
    }

    #[test]
    fn minimal_and_full() {
        let c = parse("url = redis://127.0.0.1\n").unwrap();
        assert_eq!(c.address, "127.0.0.1:6379".parse().unwrap());
        assert_eq!(
            (c.database, c.timeout, c.failure_policy, c.min_replicas),
            (0, DEFAULT_TIMEOUT, FailurePolicy::Local, 0)
        );
        assert_eq!(c.rate_limit, FleetLimit::FromFile);
        assert_eq!(c.namespace, "pam_totp");
        let c = parse(
            "# fleet\nurl = rediss://[::1]:6380/2\nuser = host1\npassword_file = /pw\n\
             namespace = totp{a}\ntimeout_ms = 150\nfailure_policy = closed\nmin_replicas = 1\n\
             rate_limit = 3 30\nca_file = /ca.pem\nclient_cert = /c.pem\nclient_key = /k.pem\n\
             tls_server_name = redis.example\n",
        )
        .unwrap();
        assert_eq!(c.address, "[::1]:6380".parse().unwrap());
        assert_eq!(c.database, 2);
        assert_eq!(c.user.as_deref(), Some("host1"));
        assert_eq!(c.password.as_deref().map(String::as_str), Some("from-file"));
        assert_eq!(c.timeout, Duration::from_millis(150));
        assert_eq!(c.failure_policy, FailurePolicy::Closed);
        assert_eq!(
            c.rate_limit,
            FleetLimit::Fixed {
                attempts: 3,
                seconds: 30
            }
        );
        let tls = c.tls.unwrap();
        assert_eq!(tls.server_name, "redis.example");
        assert_eq!(tls.client_key.as_deref(), Some(Path::new("/k.pem")));
        assert!(!format!(
            "{:?}",
            parse("url=redis://1.2.3.4\npassword=hunter2\n").unwrap()
        )
        .contains("hunter2"));
    }

    #[test]
    fn mistakes_are_errors() {
        for bad in [
            "",
            "url redis://127.0.0.1",
            "url = http://127.0.0.1",
            "url = redis://localhost:6379",
            "url = redis://u:p@127.0.0.1",
            "url = redis://127.0.0.1/x",
            "url = redis://127.0.0.1\nurl = redis://127.0.0.2",
            "url = redis://127.0.0.1\ntimeout_ms = 0",
            "url = redis://127.0.0.1\ntimeout_ms = 10001",
            "url = redis://127.0.0.1\nfailure_policy = open",
            "url = redis://127.0.0.1\nrate_limit = 0 30",
            "url = redis://127.0.0.1\nrate_limit = 3",
            "url = redis://127.0.0.1\nnamespace = a b",
            "url = redis://127.0.0.1\nuser = x",
            "url = redis://127.0.0.1\npassword = a\npassword_file = /pw",
            "url = redis://127.0.0.1\nca_file = /ca",
            "url = rediss://127.0.0.1",
            "url = rediss://127.0.0.1\nca_file = /ca\nclient_cert = /c",
            "url = redis://127.0.0.1\nbogus = 1",
            "url = redis://127.0.0.1\npassword =",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_files_others_can_read_or_not_owned_by_root() {
        let dir = std::env::temp_dir().join(format!("pam_totp-fleet-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("conf");
        std::fs::write(&path, "url = redis://127.0.0.1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let result = Config::load(&path);
        assert!(
            matches!(result, Err(ConfigError::Insecure { .. })),
            "{result:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            Config::load(&link),
            Err(ConfigError::Insecure { .. })
        ));
        let result = Config::load(&path);
        if nix::unistd::Uid::effective().is_root() {
            assert!(result.is_ok(), "{result:?}");
        } else {
            assert!(
                matches!(result, Err(ConfigError::Insecure { .. })),
                "{result:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
