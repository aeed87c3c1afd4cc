//! What fleet mode costs, in one process, cases interleaved:
//! - `dlopen+dlclose` (`--only loads`): the module loaded and unloaded
//!   alone (RTLD_NOW, as libpam does), for the build without fleet support
//!   (`--without`) and the build with it (`--ours`);
//! - a successful login (pam_start..pam_end, fresh file each time) with the
//!   build without fleet support, with the build with it but not
//!   configured, and with it configured against a store on loopback
//!   (`--shared-state CONF`; the store is emptied before each such login,
//!   outside the timing, so every login claims a fresh marker and counts
//!   one attempt in an empty window).
//!
//! ```text
//! pam-bench fleet-prepare --dir DIR --ours SO --without SO --shared-state CONF
//! pam-bench fleet --dir DIR --ours SO --without SO --redis-port P [--iterations N] [--only CASE]
//! ```
//! `--only without|with|store` runs that login alone N times (callgrind).

use crate::pam;
use crate::setup::{self, TOTP_TEMPLATE};
use pam_totp::fleet::resp::{Connection, Reply, Stream};
use std::ffi::{CStr, CString};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `--only` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    Login(Login),
    /// dlopen+dlclose of one build, or of both, interleaved (wall clock).
    LoadWithout,
    LoadWith,
    Loads,
}

impl Only {
    pub fn parse(name: &str) -> Result<Only, String> {
        match name {
            "load-without" => Ok(Only::LoadWithout),
            "load-with" => Ok(Only::LoadWith),
            "loads" => Ok(Only::Loads),
            _ => Login::parse(name).map(Only::Login),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The build without fleet support.
    Without,
    /// The build with it, the PAM line without `shared_state`.
    With,
    /// The build with it, `shared_state=CONF`.
    Store,
}

const LOGINS: [Login; 3] = [Login::Without, Login::With, Login::Store];

impl Login {
    pub fn parse(name: &str) -> Result<Login, String> {
        match name {
            "without" => Ok(Login::Without),
            "with" => Ok(Login::With),
            "store" => Ok(Login::Store),
            _ => Err(format!(
                "--only: without, with, store, load-without, load-with or loads, not {name:?}"
            )),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Login::Without => "fleet-without",
            Login::With => "fleet-with",
            Login::Store => "fleet-store",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Login::Without => "success, build without fleet support",
            Login::With => "success, fleet support built in, not configured",
            Login::Store => "success, fleet mode, store on loopback",
        }
    }
}

fn secret_path(dir: &Path, login: Login) -> PathBuf {
    dir.join(login.name()).join("secret")
}

/// Writes the three services (pam_wrapper reads them when the process
/// starts) and prints the environment, as `prepare` does.
pub fn prepare(dir: &Path, ours: &Path, without: &Path, shared_state: &Path) -> Result<(), String> {
    let services = dir.join("services");
    fs::create_dir_all(&services).map_err(|e| e.to_string())?;
    fs::write(services.join("other"), "auth required pam_deny.so\n").map_err(|e| e.to_string())?;
    for login in LOGINS {
        let secret = secret_path(dir, login);
        fs::create_dir_all(secret.parent().expect("a directory")).map_err(|e| e.to_string())?;
        let (module, extra) = match login {
            Login::Without => (without, String::new()),
            Login::With => (ours, String::new()),
            Login::Store => (ours, format!(" shared_state={}", shared_state.display())),
        };
        let module = fs::canonicalize(module).map_err(|e| format!("{}: {e}", module.display()))?;
        fs::write(
            services.join(login.name()),
            format!(
                "auth required {} secret={}{extra}\n",
                module.display(),
                secret.display()
            ),
        )
        .map_err(|e| e.to_string())?;
    }
    println!(
        "LD_PRELOAD={}:{}",
        pam_totp_tests::system::pam_wrapper_lib().display(),
        pam_totp_tests::system::syslog_shim().display()
    );
    println!("PAM_WRAPPER=1");
    println!("PAM_WRAPPER_SERVICE_DIR={}", services.display());
    println!("PAM_WRAPPER_USE_SYSLOG=1");
    println!("PAM_TOTP_TEST_SYSLOG=/dev/null");
    Ok(())
}

/// dlopen + dlclose of `path`, timed.
fn load_unload(path: &CStr) -> Result<Duration, String> {
    let started = Instant::now();
    // SAFETY: a valid C string; loading a PAM module runs no code of ours
    // beyond its (Rust-generated) initialisers, as libpam's dlopen does.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    if handle.is_null() {
        return Err(format!("dlopen {path:?} failed"));
    }
    // SAFETY: the handle just returned, closed once.
    unsafe { libc::dlclose(handle) };
    Ok(started.elapsed())
}

/// A plain std socket for the benchmark's own commands to the store.
struct Plain(TcpStream);

impl Stream for Plain {
    fn set_timeouts(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.0.set_read_timeout(Some(timeout))?;
        self.0.set_write_timeout(Some(timeout))
    }
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.write_all(buf)
    }
}

/// Empties the store (outside the timing).
fn flush(port: u16, password: Option<&str>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("store: {e}"))?;
    let mut connection = Connection::new(Plain(tcp), deadline);
    if let Some(password) = password {
        connection
            .command(&[b"AUTH", password.as_bytes()])
            .map_err(|e| format!("store: {e}"))?;
    }
    match connection.command(&[b"FLUSHALL"]) {
        Ok(Reply::Simple(_)) => Ok(()),
        other => Err(format!("store: FLUSHALL: {other:?}")),
    }
}

fn login(dir: &Path, user: &CStr, login: Login) -> Result<pam::Timed, String> {
    let secret = setup::secret();
    let path = secret_path(dir, login);
    let fresh = setup::install_fresh(&path, TOTP_TEMPLATE.as_bytes())
        .map_err(|e| format!("cannot install {}: {e}", path.display()))?;
    let service = CString::new(login.name()).expect("no NUL");
    let answer = CString::new(setup::code_now(&secret)).expect("digits");
    let timed = pam::transaction(&service, user, &answer)?;
    if timed.rc != pam::PAM_SUCCESS {
        return Err(format!(
            "{}: pam_authenticate returned {} (set PAM_TOTP_TEST_SYSLOG to a file to see why)",
            login.label(),
            timed.rc
        ));
    }
    if setup::inode(&path).map_err(|e| e.to_string())? == fresh {
        return Err(format!("{}: the file was not rewritten", login.label()));
    }
    Ok(timed)
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    dir: &Path,
    user: &CStr,
    ours: &Path,
    without: &Path,
    port: u16,
    password: Option<&str>,
    iterations: usize,
    only: Option<Only>,
) -> Result<(), String> {
    let path = |p: &Path| {
        CString::new(
            fs::canonicalize(p)
                .map_err(|e| e.to_string())?
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(|e| e.to_string())
    };
    let (with_so, without_so) = (path(ours)?, path(without)?);
    match only {
        Some(Only::Login(case)) => {
            for _ in 0..iterations {
                if case == Login::Store {
                    flush(port, password)?;
                }
                login(dir, user, case)?;
            }
            return Ok(());
        }
        Some(Only::LoadWithout) => {
            for _ in 0..iterations {
                load_unload(&without_so)?;
            }
            return Ok(());
        }
        Some(Only::LoadWith) => {
            for _ in 0..iterations {
                load_unload(&with_so)?;
            }
            return Ok(());
        }
        Some(Only::Loads) => {
            let mut samples = [Vec::new(), Vec::new()];
            for i in 0..iterations {
                for k in 0..2 {
                    let which = (i + k) % 2;
                    let so = if which == 0 { &without_so } else { &with_so };
                    samples[which].push(load_unload(so)?);
                }
            }
            let (a, b) = (median(&mut samples[0]), median(&mut samples[1]));
            println!(
                "dlopen+dlclose alone, {iterations} interleaved pairs: without {:.4} ms, with {:.4} ms; ratio {:.3}",
                ms(a),
                ms(b),
                b.as_secs_f64() / a.as_secs_f64()
            );
            return Ok(());
        }
        None => {}
    }
    // Loads are measured on their own (`--only loads`): between logins, the
    // build the logins use more often would have its pages warmer.
    let mut logins: [Vec<Duration>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let warmup = 20;
    for iteration in 0..warmup + iterations {
        for k in 0..LOGINS.len() {
            let index = (iteration + k) % LOGINS.len();
            let which = LOGINS[index];
            if which == Login::Store {
                flush(port, password)?;
            }
            let took = login(dir, user, which)?.transaction;
            if iteration >= warmup {
                logins[index].push(took);
            }
        }
    }
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!("fleet mode, {iterations} interleaved iterations per case, medians in ms");
    println!(
        "pam_totp.so size: without fleet support {} bytes, with {} bytes ({:+.1} %)",
        size(without),
        size(ours),
        100.0 * (size(ours) as f64 / size(without) as f64 - 1.0)
    );
    let medians: Vec<Duration> = logins.iter_mut().map(|s| median(s)).collect();
    for (login, m) in LOGINS.iter().zip(&medians) {
        println!(
            "{:<50} pam_start..end {:.3}  ratio to the build without {:.3}",
            login.label(),
            ms(*m),
            m.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
    println!(
        "fleet mode against the same build not configured: ratio {:.3} (+{:.3} ms)",
        medians[2].as_secs_f64() / medians[1].as_secs_f64(),
        ms(medians[2].saturating_sub(medians[1]))
    );
    Ok(())
}
