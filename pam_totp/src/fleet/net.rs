//! The shared state's TCP socket, made with raw system calls through libc's
//! `syscall` (which the module imports anyway).
//!
//! Why not `std::net::TcpStream`: libpam loads the module with RTLD_NOW at
//! every login, and each libc function the module imports is looked up
//! then, configured or not. std's TCP client would import nine more
//! (socket, connect, poll, ioctl, getsockopt, setsockopt, send, recv...),
//! about 10,000 more instructions per load, measurable against a load that
//! costs ~100,000. Raw system calls keep that cost at zero for those who do
//! not use fleet mode.
//!
//! The socket is non-blocking; every wait is a `ppoll` for the time left
//! until the deadline, so no call outlasts it, however the server trickles.
#![allow(unsafe_code)]

use super::resp::Stream;
use libc::{c_int, c_long, c_void, socklen_t};
use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A connected TCP socket with a deadline for every call.
pub struct Socket {
    fd: c_int,
    deadline: Instant,
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: `fd` is the socket this struct owns, closed once, here.
        unsafe { libc::close(self.fd) };
    }
}

/// `syscall(number, args...)` as an io::Result, retried on EINTR.
fn call(number: c_long, args: [c_long; 6]) -> io::Result<c_long> {
    loop {
        // SAFETY: every caller passes a system call number with arguments
        // of the kinds it takes (descriptors, lengths, and pointers to
        // memory valid for the lengths given); see each call site.
        let result =
            unsafe { libc::syscall(number, args[0], args[1], args[2], args[3], args[4], args[5]) };
        if result >= 0 {
            return Ok(result);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "deadline")
}

/// A sockaddr for `address`, and its length.
fn sockaddr(address: &SocketAddr) -> (libc::sockaddr_storage, socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let length = match address {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in; one write of a plain struct.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, length as socklen_t)
}

impl Socket {
    /// Connects to `address` before `deadline`.
    pub fn connect(address: &SocketAddr, deadline: Instant) -> io::Result<Socket> {
        let family = match address {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        };
        let fd = call(
            libc::SYS_socket,
            [
                c_long::from(family),
                c_long::from(libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC),
                0,
                0,
                0,
                0,
            ],
        )? as c_int;
        let socket = Socket { fd, deadline };
        let (storage, length) = sockaddr(address);
        // connect(fd, &storage, length): the address lives across the call.
        match call(
            libc::SYS_connect,
            [
                c_long::from(fd),
                &storage as *const libc::sockaddr_storage as c_long,
                c_long::from(length),
                0,
                0,
                0,
            ],
        ) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                socket.wait(libc::POLLOUT)?;
                let mut error: c_int = 0;
                let mut size = size_of::<c_int>() as socklen_t;
                // getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size).
                call(
                    libc::SYS_getsockopt,
                    [
                        c_long::from(fd),
                        c_long::from(libc::SOL_SOCKET),
                        c_long::from(libc::SO_ERROR),
                        &mut error as *mut c_int as c_long,
                        &mut size as *mut socklen_t as c_long,
                        0,
                    ],
                )?;
                if error != 0 {
                    return Err(io::Error::from_raw_os_error(error));
                }
            }
            Err(e) => return Err(e),
        }
        let one: c_int = 1;
        // setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, 4): small commands
        // go out at once. Best effort.
        let _ = call(
            libc::SYS_setsockopt,
            [
                c_long::from(fd),
                c_long::from(libc::IPPROTO_TCP),
                c_long::from(libc::TCP_NODELAY),
                &one as *const c_int as c_long,
                size_of::<c_int>() as c_long,
                0,
            ],
        );
        Ok(socket)
    }

    /// Waits until the socket is ready for `events`, at most until the
    /// deadline.
    fn wait(&self, events: libc::c_short) -> io::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        let timeout = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: c_long::from(left.subsec_nanos()),
        };
        let mut poll = libc::pollfd {
            fd: self.fd,
            events,
            revents: 0,
        };
        // ppoll(&poll, 1, &timeout, NULL, 0): both structs live across the call.
        let ready = call(
            libc::SYS_ppoll,
            [
                &mut poll as *mut libc::pollfd as c_long,
                1,
                &timeout as *const libc::timespec as c_long,
                0,
                0,
                0,
            ],
        )?;
        if ready == 0 {
            return Err(timed_out());
        }
        Ok(())
    }

    /// Reads what is there (waiting for it until the deadline); 0 at EOF.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // recvfrom(fd, buf, len, 0, NULL, NULL): `buf` is writable for len.
            match call(
                libc::SYS_recvfrom,
                [
                    c_long::from(self.fd),
                    buf.as_mut_ptr() as c_long,
                    buf.len() as c_long,
                    0,
                    0,
                    0,
                ],
            ) {
                Ok(n) => return Ok(n as usize),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(libc::POLLIN)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes all of `buf` before the deadline.
    pub fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            // sendto(fd, buf, len, MSG_NOSIGNAL, NULL, 0): no SIGPIPE for a
            // closed connection, an EPIPE error instead.
            match call(
                libc::SYS_sendto,
                [
                    c_long::from(self.fd),
                    buf.as_ptr() as *const c_void as c_long,
                    buf.len() as c_long,
                    c_long::from(libc::MSG_NOSIGNAL),
                    0,
                    0,
                ],
            ) {
                Ok(n) => {
                    buf = usize::try_from(n)
                        .ok()
                        .and_then(|n| buf.get(n..))
                        .ok_or_else(|| io::Error::other("sendto reported more than it sent"))?
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(libc::POLLOUT)?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
}

impl Stream for Socket {
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()> {
        self.deadline = deadline_after(timeout)?;
        Ok(())
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Socket::read(self, buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Socket::write_all(self, buf)
    }
}

/// The instant `timeout` from now. The timeouts passed are what is left of
/// a deadline, so this cannot overflow; an error if it ever did.
pub fn deadline_after(timeout: Duration) -> io::Result<Instant> {
    Instant::now()
        .checked_add(timeout)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "timeout too long"))
}
