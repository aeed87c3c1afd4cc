//! TLS for `rediss://`, through the system's OpenSSL (libssl.so.3), loaded
//! with dlopen only when a configuration asks for TLS.
//!
//! Why this way: a TLS stack built into the module (rustls with its crypto
//! provider) would add about 2 MB to pam_totp.so, which every login of every
//! user maps and relocates whether or not fleet mode is configured. Loading
//! the distribution's libssl on demand costs nothing to those who do not
//! use it, adds no NEEDED entry, and gets the distribution's security
//! updates. libssl.so.3 is present wherever OpenSSH is (sshd links
//! libcrypto.so.3 from the same package).
//!
//! OpenSSL never touches the socket: the handshake and records go through
//! memory BIOs, and this module moves the bytes with the same
//! deadline-bounded socket calls as the plain connection. So no SIGPIPE
//! (std sends with MSG_NOSIGNAL) and no internal blocking read that could
//! outlast the time budget.
//!
//! Only the CA file of the configuration is trusted (never the system
//! bundle), TLS 1.2 is the minimum, and the server's certificate must name
//! `tls_server_name` (the address by default: an IP SAN).
#![allow(unsafe_code)]

use super::config::Tls;
use super::net::Socket;
use super::resp::{remaining, Stream};
use super::FleetError;
use libc::{c_char, c_int, c_long, c_ulong, c_void, size_t};
use std::ffi::{CStr, CString};
use std::io;
use std::net::IpAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const SSL_VERIFY_PEER: c_int = 1;
const SSL_FILETYPE_PEM: c_int = 1;
const SSL_CTRL_SET_TLSEXT_HOSTNAME: c_int = 55;
const TLSEXT_NAMETYPE_HOST_NAME: c_long = 0;
const SSL_CTRL_SET_MIN_PROTO_VERSION: c_int = 123;
const TLS1_2_VERSION: c_long = 0x0303;
const BIO_CTRL_PENDING: c_int = 10;
const SSL_ERROR_WANT_READ: c_int = 2;
const SSL_ERROR_WANT_WRITE: c_int = 3;
const SSL_ERROR_ZERO_RETURN: c_int = 6;
const X509_V_OK: c_long = 0;

type Ptr = *mut c_void;

/// The libssl functions used, resolved once per process.
struct Api {
    tls_client_method: unsafe extern "C" fn() -> *const c_void,
    ctx_new: unsafe extern "C" fn(*const c_void) -> Ptr,
    ctx_free: unsafe extern "C" fn(Ptr),
    ctx_set_verify: unsafe extern "C" fn(Ptr, c_int, *const c_void),
    ctx_load_verify_locations: unsafe extern "C" fn(Ptr, *const c_char, *const c_char) -> c_int,
    ctx_use_certificate_chain_file: unsafe extern "C" fn(Ptr, *const c_char) -> c_int,
    ctx_use_private_key_file: unsafe extern "C" fn(Ptr, *const c_char, c_int) -> c_int,
    ctx_check_private_key: unsafe extern "C" fn(Ptr) -> c_int,
    ctx_ctrl: unsafe extern "C" fn(Ptr, c_int, c_long, Ptr) -> c_long,
    ssl_new: unsafe extern "C" fn(Ptr) -> Ptr,
    ssl_free: unsafe extern "C" fn(Ptr),
    ssl_set_bio: unsafe extern "C" fn(Ptr, Ptr, Ptr),
    ssl_set1_host: unsafe extern "C" fn(Ptr, *const c_char) -> c_int,
    ssl_ctrl: unsafe extern "C" fn(Ptr, c_int, c_long, Ptr) -> c_long,
    ssl_connect: unsafe extern "C" fn(Ptr) -> c_int,
    ssl_read: unsafe extern "C" fn(Ptr, Ptr, c_int) -> c_int,
    ssl_write: unsafe extern "C" fn(Ptr, *const c_void, c_int) -> c_int,
    ssl_get_error: unsafe extern "C" fn(Ptr, c_int) -> c_int,
    ssl_get_verify_result: unsafe extern "C" fn(Ptr) -> c_long,
    verify_error_string: unsafe extern "C" fn(c_long) -> *const c_char,
    err_get_error: unsafe extern "C" fn() -> c_ulong,
    err_error_string_n: unsafe extern "C" fn(c_ulong, *mut c_char, size_t),
    err_clear_error: unsafe extern "C" fn(),
    bio_new: unsafe extern "C" fn(*const c_void) -> Ptr,
    bio_s_mem: unsafe extern "C" fn() -> *const c_void,
    bio_read: unsafe extern "C" fn(Ptr, Ptr, c_int) -> c_int,
    bio_write: unsafe extern "C" fn(Ptr, *const c_void, c_int) -> c_int,
    bio_ctrl: unsafe extern "C" fn(Ptr, c_int, c_long, Ptr) -> c_long,
    bio_free: unsafe extern "C" fn(Ptr) -> c_int,
}

// SAFETY: the table holds plain function pointers into a library that is
// never unloaded; calling them from any thread is what OpenSSL 3 allows.
unsafe impl Send for Api {}
// SAFETY: as above; the table is never written after it is built.
unsafe impl Sync for Api {}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// Resolves `name` in `handle` as a function of type `F`.
///
/// # Safety
/// `F` must be the exact C signature of the symbol `name`.
unsafe fn symbol<F: Copy>(handle: Ptr, name: &CStr) -> Result<F, String> {
    // SAFETY: `handle` is a live dlopen handle, `name` a C string.
    let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if address.is_null() {
        return Err(format!(
            "{} not found in libssl.so.3",
            name.to_string_lossy()
        ));
    }
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<Ptr>());
    // SAFETY: a function pointer and a data pointer have the same size and
    // representation on the platforms libc's dlsym serves; the caller
    // vouches for the signature.
    Ok(unsafe { std::mem::transmute_copy::<Ptr, F>(&address) })
}

fn load() -> Result<Api, String> {
    // RTLD_NODELETE: OpenSSL 3 cannot be unloaded (it registers exit
    // handlers); it stays for the life of the process, as libcrypto does in
    // sshd anyway.
    // SAFETY: a constant C string; dlopen runs libssl's initialisers, which
    // is what loading it means.
    let handle = unsafe {
        libc::dlopen(
            c"libssl.so.3".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE,
        )
    };
    if handle.is_null() {
        // (dlerror would say more, at the price of one more imported symbol
        // in every load of the module.)
        return Err("cannot load libssl.so.3 (package libssl3)".into());
    }
    // Each symbol is resolved in its own block, under the C declaration
    // from OpenSSL 3's headers that its Rust type in `Api` transcribes
    // (pointers to opaque types as void *).
    Ok(Api {
        // SAFETY: const SSL_METHOD *TLS_client_method(void)
        tls_client_method: unsafe { symbol(handle, c"TLS_client_method") }?,
        // SAFETY: SSL_CTX *SSL_CTX_new(const SSL_METHOD *)
        ctx_new: unsafe { symbol(handle, c"SSL_CTX_new") }?,
        // SAFETY: void SSL_CTX_free(SSL_CTX *)
        ctx_free: unsafe { symbol(handle, c"SSL_CTX_free") }?,
        // SAFETY: void SSL_CTX_set_verify(SSL_CTX *, int, SSL_verify_cb)
        ctx_set_verify: unsafe { symbol(handle, c"SSL_CTX_set_verify") }?,
        // SAFETY: int SSL_CTX_load_verify_locations(SSL_CTX *, const char *, const char *)
        ctx_load_verify_locations: unsafe { symbol(handle, c"SSL_CTX_load_verify_locations") }?,
        // SAFETY: int SSL_CTX_use_certificate_chain_file(SSL_CTX *, const char *)
        ctx_use_certificate_chain_file: unsafe {
            symbol(handle, c"SSL_CTX_use_certificate_chain_file")
        }?,
        // SAFETY: int SSL_CTX_use_PrivateKey_file(SSL_CTX *, const char *, int)
        ctx_use_private_key_file: unsafe { symbol(handle, c"SSL_CTX_use_PrivateKey_file") }?,
        // SAFETY: int SSL_CTX_check_private_key(const SSL_CTX *)
        ctx_check_private_key: unsafe { symbol(handle, c"SSL_CTX_check_private_key") }?,
        // SAFETY: long SSL_CTX_ctrl(SSL_CTX *, int, long, void *)
        ctx_ctrl: unsafe { symbol(handle, c"SSL_CTX_ctrl") }?,
        // SAFETY: SSL *SSL_new(SSL_CTX *)
        ssl_new: unsafe { symbol(handle, c"SSL_new") }?,
        // SAFETY: void SSL_free(SSL *)
        ssl_free: unsafe { symbol(handle, c"SSL_free") }?,
        // SAFETY: void SSL_set_bio(SSL *, BIO *, BIO *)
        ssl_set_bio: unsafe { symbol(handle, c"SSL_set_bio") }?,
        // SAFETY: int SSL_set1_host(SSL *, const char *)
        ssl_set1_host: unsafe { symbol(handle, c"SSL_set1_host") }?,
        // SAFETY: long SSL_ctrl(SSL *, int, long, void *)
        ssl_ctrl: unsafe { symbol(handle, c"SSL_ctrl") }?,
        // SAFETY: int SSL_connect(SSL *)
        ssl_connect: unsafe { symbol(handle, c"SSL_connect") }?,
        // SAFETY: int SSL_read(SSL *, void *, int)
        ssl_read: unsafe { symbol(handle, c"SSL_read") }?,
        // SAFETY: int SSL_write(SSL *, const void *, int)
        ssl_write: unsafe { symbol(handle, c"SSL_write") }?,
        // SAFETY: int SSL_get_error(const SSL *, int)
        ssl_get_error: unsafe { symbol(handle, c"SSL_get_error") }?,
        // SAFETY: long SSL_get_verify_result(const SSL *)
        ssl_get_verify_result: unsafe { symbol(handle, c"SSL_get_verify_result") }?,
        // SAFETY: const char *X509_verify_cert_error_string(long)
        verify_error_string: unsafe { symbol(handle, c"X509_verify_cert_error_string") }?,
        // SAFETY: unsigned long ERR_get_error(void)
        err_get_error: unsafe { symbol(handle, c"ERR_get_error") }?,
        // SAFETY: void ERR_error_string_n(unsigned long, char *, size_t)
        err_error_string_n: unsafe { symbol(handle, c"ERR_error_string_n") }?,
        // SAFETY: void ERR_clear_error(void)
        err_clear_error: unsafe { symbol(handle, c"ERR_clear_error") }?,
        // SAFETY: BIO *BIO_new(const BIO_METHOD *)
        bio_new: unsafe { symbol(handle, c"BIO_new") }?,
        // SAFETY: const BIO_METHOD *BIO_s_mem(void)
        bio_s_mem: unsafe { symbol(handle, c"BIO_s_mem") }?,
        // SAFETY: int BIO_read(BIO *, void *, int)
        bio_read: unsafe { symbol(handle, c"BIO_read") }?,
        // SAFETY: int BIO_write(BIO *, const void *, int)
        bio_write: unsafe { symbol(handle, c"BIO_write") }?,
        // SAFETY: long BIO_ctrl(BIO *, int, long, void *)
        bio_ctrl: unsafe { symbol(handle, c"BIO_ctrl") }?,
        // SAFETY: int BIO_free(BIO *)
        bio_free: unsafe { symbol(handle, c"BIO_free") }?,
    })
}

fn api() -> Result<&'static Api, FleetError> {
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| FleetError::Tls(e.clone()))
}

impl Api {
    /// The oldest error OpenSSL queued, as text; the queue is emptied.
    fn last_error(&self) -> String {
        // SAFETY: no arguments; reads this thread's error queue.
        let code = unsafe { (self.err_get_error)() };
        // SAFETY: no arguments; empties this thread's error queue.
        unsafe { (self.err_clear_error)() };
        if code == 0 {
            return "unknown TLS error".into();
        }
        let mut buffer = [0 as c_char; 256];
        // SAFETY: the buffer is writable for its whole length, which is
        // passed; OpenSSL NUL-terminates within it.
        unsafe { (self.err_error_string_n)(code, buffer.as_mut_ptr(), buffer.len()) };
        // SAFETY: NUL-terminated by ERR_error_string_n (see above).
        unsafe { CStr::from_ptr(buffer.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}

fn path_cstring(path: &Path) -> Result<CString, FleetError> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| FleetError::Tls(format!("{}: NUL in the path", path.display())))
}

/// An SSL_CTX, freed on drop.
struct Context {
    api: &'static Api,
    raw: Ptr,
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: `raw` came from SSL_CTX_new and is freed once, here;
        // OpenSSL reference-counts it, so a live SSL keeps its own reference.
        unsafe { (self.api.ctx_free)(self.raw) };
    }
}

impl Context {
    fn new(api: &'static Api, tls: &Tls) -> Result<Context, FleetError> {
        let fail = |what: &str| FleetError::Tls(format!("{what}: {}", api.last_error()));
        // SAFETY: no arguments; returns a static method table.
        let method = unsafe { (api.tls_client_method)() };
        // SAFETY: `method` is the table just returned.
        let raw = unsafe { (api.ctx_new)(method) };
        if raw.is_null() {
            return Err(fail("cannot create a TLS context"));
        }
        let context = Context { api, raw };
        // SAFETY: live context; a null callback keeps OpenSSL's verification.
        unsafe { (api.ctx_set_verify)(raw, SSL_VERIFY_PEER, std::ptr::null()) };
        // SAFETY: live context; SET_MIN_PROTO_VERSION takes the version as
        // the long argument and no pointer.
        let set = unsafe {
            (api.ctx_ctrl)(
                raw,
                SSL_CTRL_SET_MIN_PROTO_VERSION,
                TLS1_2_VERSION,
                std::ptr::null_mut(),
            )
        };
        if set != 1 {
            return Err(fail("cannot require TLS 1.2"));
        }
        let ca = path_cstring(&tls.ca_file)?;
        // SAFETY: live context, a C string path, and no CA directory.
        let loaded = unsafe { (api.ctx_load_verify_locations)(raw, ca.as_ptr(), std::ptr::null()) };
        if loaded != 1 {
            return Err(fail(&format!(
                "cannot load ca_file {}",
                tls.ca_file.display()
            )));
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            let cert_c = path_cstring(cert)?;
            // SAFETY: live context and a C string path.
            let used = unsafe { (api.ctx_use_certificate_chain_file)(raw, cert_c.as_ptr()) };
            if used != 1 {
                return Err(fail(&format!("cannot load client_cert {}", cert.display())));
            }
            let key_c = path_cstring(key)?;
            // SAFETY: live context, a C string path, and the PEM type.
            let used =
                unsafe { (api.ctx_use_private_key_file)(raw, key_c.as_ptr(), SSL_FILETYPE_PEM) };
            // SAFETY: live context.
            if used != 1 || unsafe { (api.ctx_check_private_key)(raw) } != 1 {
                return Err(fail(&format!("cannot use client_key {}", key.display())));
            }
        }
        Ok(context)
    }
}

/// A TLS connection over a TCP socket, with a deadline for every call.
pub struct TlsStream {
    api: &'static Api,
    tcp: Socket,
    ssl: Ptr,
    /// Network side of the memory BIOs: what OpenSSL reads, what it wrote.
    incoming: Ptr,
    outgoing: Ptr,
    deadline: Instant,
    _context: Context,
}

// SAFETY: the SSL object is used only through `&mut self`, from one thread
// at a time, which OpenSSL permits.
unsafe impl Send for TlsStream {}

impl Drop for TlsStream {
    fn drop(&mut self) {
        // SAFETY: `ssl` came from SSL_new and is freed once, here; it owns
        // both BIOs since SSL_set_bio, and frees them.
        unsafe { (self.api.ssl_free)(self.ssl) };
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "deadline")
}

impl TlsStream {
    fn left(&self) -> io::Result<Duration> {
        remaining(self.deadline).map_err(|_| timed_out())
    }

    /// Sends what OpenSSL has written into the outgoing BIO.
    fn flush_outgoing(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            // SAFETY: live BIO; PENDING takes no argument.
            let pending = unsafe {
                (self.api.bio_ctrl)(self.outgoing, BIO_CTRL_PENDING, 0, std::ptr::null_mut())
            };
            if pending <= 0 {
                return Ok(());
            }
            // SAFETY: live BIO; the buffer is writable for the length given.
            let n = unsafe {
                (self.api.bio_read)(
                    self.outgoing,
                    chunk.as_mut_ptr().cast(),
                    chunk.len() as c_int,
                )
            };
            if n <= 0 {
                return Ok(());
            }
            self.left()?;
            self.tcp.set_deadline(self.deadline);
            let read = usize::try_from(n)
                .ok()
                .and_then(|n| chunk.get(..n))
                .ok_or_else(|| io::Error::other("TLS buffer read past its end"))?;
            self.tcp.write_all(read)?;
        }
    }

    /// Reads what the server sent into the incoming BIO.
    fn fill_incoming(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        self.left()?;
        self.tcp.set_deadline(self.deadline);
        let n = self.tcp.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        // SAFETY: live BIO; the buffer holds `n` readable bytes.
        let written =
            unsafe { (self.api.bio_write)(self.incoming, chunk.as_ptr().cast(), n as c_int) };
        if written != n as c_int {
            return Err(io::Error::other("TLS buffer full"));
        }
        Ok(())
    }

    /// Runs `step` (SSL_connect/read/write) until it completes, moving
    /// bytes between the BIOs and the socket within the deadline.
    fn drive(&mut self, mut step: impl FnMut(&Self) -> c_int) -> io::Result<c_int> {
        loop {
            // SAFETY: no arguments; starts this call with an empty error queue.
            unsafe { (self.api.err_clear_error)() };
            let result = step(self);
            self.flush_outgoing()?;
            if result > 0 {
                return Ok(result);
            }
            // SAFETY: live SSL object and the result of its last call.
            match unsafe { (self.api.ssl_get_error)(self.ssl, result) } {
                SSL_ERROR_WANT_READ => self.fill_incoming()?,
                SSL_ERROR_WANT_WRITE => {}
                SSL_ERROR_ZERO_RETURN => return Ok(0),
                _ => return Err(io::Error::other(self.api.last_error())),
            }
        }
    }
}

impl Stream for TlsStream {
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()> {
        self.deadline = super::net::deadline_after(timeout)?;
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(c_int::MAX as usize) as c_int;
        let ptr = buf.as_mut_ptr();
        // SAFETY: live SSL object; `ptr` is writable for `len` bytes and
        // outlives the call.
        let n = self.drive(|s| unsafe { (s.api.ssl_read)(s.ssl, ptr.cast(), len) })?;
        Ok(n as usize)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut rest = buf;
        while !rest.is_empty() {
            let len = rest.len().min(c_int::MAX as usize) as c_int;
            let ptr = rest.as_ptr();
            // SAFETY: live SSL object; `ptr` is readable for `len` bytes.
            let n = self.drive(|s| unsafe { (s.api.ssl_write)(s.ssl, ptr.cast(), len) })?;
            if n <= 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "TLS write"));
            }
            rest = usize::try_from(n)
                .ok()
                .and_then(|n| rest.get(n..))
                .ok_or_else(|| io::Error::other("TLS wrote more than it was given"))?;
        }
        Ok(())
    }
}

/// Wraps `tcp` in TLS and completes the handshake before `deadline`.
pub fn connect(tcp: Socket, tls: &Tls, deadline: Instant) -> Result<Box<dyn Stream>, FleetError> {
    let api = api()?;
    let context = Context::new(api, tls)?;
    // SAFETY: live context.
    let ssl = unsafe { (api.ssl_new)(context.raw) };
    if ssl.is_null() {
        return Err(FleetError::Tls(api.last_error()));
    }
    // SAFETY: no arguments; a static method table.
    let mem = unsafe { (api.bio_s_mem)() };
    // SAFETY: the memory BIO method just returned.
    let incoming = unsafe { (api.bio_new)(mem) };
    // SAFETY: as above.
    let outgoing = unsafe { (api.bio_new)(mem) };
    if incoming.is_null() || outgoing.is_null() {
        for bio in [incoming, outgoing] {
            if !bio.is_null() {
                // SAFETY: a BIO of ours that nothing else owns yet.
                unsafe { (api.bio_free)(bio) };
            }
        }
        // SAFETY: the SSL object of ours, not yet shared.
        unsafe { (api.ssl_free)(ssl) };
        return Err(FleetError::Tls(api.last_error()));
    }
    // SAFETY: live SSL object and two live BIOs; the SSL object takes
    // ownership of both.
    unsafe { (api.ssl_set_bio)(ssl, incoming, outgoing) };
    let mut stream = TlsStream {
        api,
        tcp,
        ssl,
        incoming,
        outgoing,
        deadline,
        _context: context,
    };
    let name = CString::new(tls.server_name.as_bytes())
        .map_err(|_| FleetError::Tls("NUL in tls_server_name".into()))?;
    // SAFETY: live SSL object and a C string; OpenSSL 3 checks an IP
    // address literal against the certificate's IP SANs, a name against its
    // DNS names.
    if unsafe { (api.ssl_set1_host)(ssl, name.as_ptr()) } != 1 {
        return Err(FleetError::Tls(format!(
            "cannot verify the name: {}",
            api.last_error()
        )));
    }
    if tls.server_name.parse::<IpAddr>().is_err() {
        // SAFETY: live SSL object; SET_TLSEXT_HOSTNAME takes the name type
        // and a C string that OpenSSL copies.
        unsafe {
            (api.ssl_ctrl)(
                ssl,
                SSL_CTRL_SET_TLSEXT_HOSTNAME,
                TLSEXT_NAMETYPE_HOST_NAME,
                name.as_ptr().cast_mut().cast(),
            )
        };
    }
    // SAFETY: live SSL object.
    match stream.drive(|s| unsafe { (s.api.ssl_connect)(s.ssl) }) {
        Ok(_) => Ok(Box::new(stream)),
        Err(e) => {
            // SAFETY: live SSL object.
            let verify = unsafe { (api.ssl_get_verify_result)(ssl) };
            if verify != X509_V_OK {
                // SAFETY: takes any code; returns a static string.
                let text = unsafe { (api.verify_error_string)(verify) };
                let why = if text.is_null() {
                    format!("code {verify}")
                } else {
                    // SAFETY: non-null, and a static NUL-terminated string.
                    unsafe { CStr::from_ptr(text) }
                        .to_string_lossy()
                        .into_owned()
                };
                return Err(FleetError::Tls(format!("certificate verify failed: {why}")));
            }
            Err(match e.kind() {
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                    FleetError::Client(super::resp::ClientError::Timeout)
                }
                _ => FleetError::Tls(format!("handshake failed: {e}")),
            })
        }
    }
}
