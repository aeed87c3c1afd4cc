//! A small RESP2 client: just what the shared state needs (AUTH, SELECT,
//! EVAL, SET NX PX, WAIT), over a byte stream, with one deadline for the
//! whole exchange.
//!
//! Why not the `redis` crate: its sync timeouts apply to each reply, not to
//! the exchange (a stopped server held a 500 ms connect for about 2 s), and
//! it adds about 0.6 MB and 44 crates to the module, which every login of
//! every user would load whether or not fleet mode is configured. This
//! client is a few hundred lines with no dependency; its reply parser is a
//! pure function over bytes, so it is unit-tested and fuzzed on its own.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

/// Largest bulk string accepted in a reply: the replies we ask for are a
/// few bytes; anything bigger is a confused or hostile server.
pub const MAX_BULK: usize = 4096;
/// Largest array accepted in a reply.
pub const MAX_ARRAY: usize = 16;
/// Deepest nesting of arrays accepted.
pub const MAX_DEPTH: usize = 2;
/// Largest reply line (simple string or error), as for bulk strings.
pub const MAX_LINE: usize = 4096;

/// One reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    /// `-ERR ...`: the server refused the command.
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

/// A reply that is not RESP2, or bigger than we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad reply from the server: {}", self.0)
    }
}

/// Encodes one command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the start of `buf`. `Ok(None)`: not all of it has
/// arrived yet. `Ok(Some((reply, used)))`: the reply and how many bytes it
/// took.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    parse_at(buf, 0)
}

/// `a + b` for lengths; no reply we accept comes near overflowing.
fn add(a: usize, b: usize) -> Result<usize, ProtocolError> {
    a.checked_add(b).ok_or(ProtocolError("length overflow"))
}

fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let window = buf.get(..MAX_LINE + 2).unwrap_or(buf);
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => match window.get(..end) {
            Some(head) => Ok(Some((head, add(end, 2)?))),
            None => Err(ProtocolError("line out of bounds")),
        },
        None if buf.len() > MAX_LINE + 2 => Err(ProtocolError("line too long")),
        None => Ok(None),
    }
}

fn number(text: &[u8]) -> Result<i64, ProtocolError> {
    let bad = ProtocolError("not a number");
    let text = std::str::from_utf8(text).map_err(|_| bad)?;
    if text.is_empty() || text.starts_with('+') {
        return Err(bad);
    }
    text.parse().map_err(|_| bad)
}

fn parse_at(buf: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let Some((&kind, rest)) = buf.split_first() else {
        return Ok(None);
    };
    let Some((head, head_len)) = line(rest)? else {
        return Ok(None);
    };
    let mut used = add(1, head_len)?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let reply = match kind {
        b'+' => Reply::Simple(text(head)),
        b'-' => Reply::Error(text(head)),
        b':' => Reply::Integer(number(head)?),
        b'$' => {
            let len = number(head)?;
            if len == -1 {
                Reply::Nil
            } else {
                let len = usize::try_from(len).map_err(|_| ProtocolError("negative length"))?;
                if len > MAX_BULK {
                    return Err(ProtocolError("bulk string too long"));
                }
                let whole = add(len, 2)?;
                let Some(body) = buf.get(used..).and_then(|rest| rest.get(..whole)) else {
                    return Ok(None);
                };
                let (data, end) = body.split_at(len.min(body.len()));
                if end != b"\r\n" {
                    return Err(ProtocolError("bulk string not terminated"));
                }
                used = add(used, whole)?;
                Reply::Bulk(data.to_vec())
            }
        }
        b'*' => {
            let len = number(head)?;
            if len == -1 {
                Reply::Nil
            } else {
                let len = usize::try_from(len).map_err(|_| ProtocolError("negative length"))?;
                if len > MAX_ARRAY {
                    return Err(ProtocolError("array too long"));
                }
                if depth >= MAX_DEPTH {
                    return Err(ProtocolError("arrays nested too deep"));
                }
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    let rest = buf.get(used..).unwrap_or_default();
                    let Some((item, item_len)) = parse_at(rest, add(depth, 1)?)? else {
                        return Ok(None);
                    };
                    used = add(used, item_len)?;
                    items.push(item);
                }
                Reply::Array(items)
            }
        }
        _ => return Err(ProtocolError("unknown reply type")),
    };
    Ok(Some((reply, used)))
}

/// Why an exchange with the server failed.
#[derive(Debug)]
pub enum ClientError {
    /// The deadline passed (connecting, sending or waiting for a reply).
    Timeout,
    Io(io::Error),
    Protocol(ProtocolError),
    /// The server closed the connection.
    Closed,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Timeout => f.write_str("no answer within the time budget"),
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Protocol(e) => write!(f, "{e}"),
            ClientError::Closed => f.write_str("the server closed the connection"),
        }
    }
}

/// A byte stream whose every blocking call can be bounded: the time left
/// until the deadline is set before each read and write.
pub trait Stream {
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()>;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
}

impl<S: Stream + ?Sized> Stream for Box<S> {
    fn set_timeouts(&mut self, timeout: Duration) -> io::Result<()> {
        (**self).set_timeouts(timeout)
    }
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (**self).write_all(buf)
    }
}

/// The time left until `deadline`; `Err(Timeout)` once it has passed.
pub fn remaining(deadline: Instant) -> Result<Duration, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    // A zero timeout means "block forever" to the socket calls.
    if left < Duration::from_micros(100) {
        return Err(ClientError::Timeout);
    }
    Ok(left)
}

fn io_error(e: io::Error, deadline: Instant) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout,
        _ if Instant::now() >= deadline => ClientError::Timeout,
        _ => ClientError::Io(e),
    }
}

/// A connection with its deadline.
pub struct Connection<S: Stream> {
    stream: S,
    deadline: Instant,
    buffer: Vec<u8>,
}

impl<S: Stream> Connection<S> {
    pub fn new(stream: S, deadline: Instant) -> Self {
        Connection {
            stream,
            deadline,
            buffer: Vec::new(),
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sends the commands in one write and reads one reply for each.
    pub fn pipeline(&mut self, commands: &[&[&[u8]]]) -> Result<Vec<Reply>, ClientError> {
        let mut out = Vec::new();
        for command in commands {
            encode(command, &mut out);
        }
        let left = remaining(self.deadline)?;
        self.stream
            .set_timeouts(left)
            .map_err(|e| io_error(e, self.deadline))?;
        self.stream
            .write_all(&out)
            .map_err(|e| io_error(e, self.deadline))?;
        zeroize::Zeroize::zeroize(&mut out);
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            replies.push(self.read_reply()?);
        }
        Ok(replies)
    }

    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply, ClientError> {
        let mut replies = self.pipeline(&[args])?;
        replies.pop().ok_or(ClientError::Closed)
    }

    fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            if let Some((reply, used)) = parse(&self.buffer).map_err(ClientError::Protocol)? {
                self.buffer.drain(..used);
                return Ok(reply);
            }
            let left = remaining(self.deadline)?;
            self.stream
                .set_timeouts(left)
                .map_err(|e| io_error(e, self.deadline))?;
            let mut chunk = [0u8; 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| io_error(e, self.deadline))?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            let received = chunk.get(..n).ok_or(ClientError::Protocol(ProtocolError(
                "the stream reported more bytes than it read",
            )))?;
            self.buffer.extend_from_slice(received);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Reply {
        let (reply, used) = parse(bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len(), "{bytes:?}");
        reply
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode(&[b"SET", b"k", b""], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(one(b"+OK\r\n"), Reply::Simple("OK".into()));
        assert_eq!(one(b"-NOPERM no\r\n"), Reply::Error("NOPERM no".into()));
        assert_eq!(one(b":-3\r\n"), Reply::Integer(-3));
        assert_eq!(one(b"$2\r\na\n\r\n"), Reply::Bulk(b"a\n".to_vec()));
        assert_eq!(one(b"$-1\r\n"), Reply::Nil);
        assert_eq!(one(b"*-1\r\n"), Reply::Nil);
        assert_eq!(
            one(b"*2\r\n:1\r\n*1\r\n$0\r\n\r\n"),
            Reply::Array(vec![
                Reply::Integer(1),
                Reply::Array(vec![Reply::Bulk(vec![])])
            ])
        );
    }

    #[test]
    fn incomplete_replies_wait_for_more() {
        for whole in [&b"+OK\r\n"[..], b"$3\r\nabc\r\n", b"*2\r\n:1\r\n:2\r\n"] {
            for cut in 0..whole.len() {
                assert_eq!(parse(&whole[..cut]), Ok(None), "{whole:?} cut at {cut}");
            }
        }
        let (_, used) = parse(b":1\r\n:2\r\n").unwrap().unwrap();
        assert_eq!(used, 4);
    }

    #[test]
    fn refuses_malformed_or_oversized_replies() {
        let long_bulk = format!("${}\r\n", MAX_BULK + 1);
        let long_array = format!("*{}\r\n", MAX_ARRAY + 1);
        let long_line = [b"+".as_slice(), &[b'a'; MAX_LINE + 3]].concat();
        for bad in [
            &b"?\r\n"[..],
            b":x\r\n",
            b":+1\r\n",
            b"$-2\r\n",
            b"$1\r\nab\r\n",
            long_bulk.as_bytes(),
            long_array.as_bytes(),
            b"*1\r\n*1\r\n*1\r\n:1\r\n",
            &long_line,
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
