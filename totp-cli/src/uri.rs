//! The `otpauth://` key URI that authenticator apps import (the "Key Uri
//! Format" that Google Authenticator defined and other apps follow).
//!
//! `otpauth://totp/ISSUER:LABEL?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`
//! or, counter-based, `otpauth://hotp/…&counter=N`. Label and issuer are
//! percent-encoded byte by byte (UTF-8), leaving only RFC 3986 unreserved
//! characters as they are: Google's tool escapes a handful of characters and
//! lets `#`, `/` and `+` through, which apps then read as URI syntax.

use std::fmt::Write as _;
use zeroize::Zeroizing;

/// Which counter the codes are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriKind {
    Time { period: u32 },
    Counter { initial: u64 },
}

/// `text` with everything but `A-Z a-z 0-9 - . _ ~` written as `%XX`.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The key URI. `secret_base32` is the unpadded base32 secret; an empty
/// `issuer` leaves out both the label prefix and the parameter.
pub fn otpauth_uri(
    kind: UriKind,
    secret_base32: &str,
    label: &str,
    issuer: &str,
) -> Zeroizing<String> {
    let mut uri = Zeroizing::new(String::with_capacity(
        128 + secret_base32.len() + 3 * (label.len() + 2 * issuer.len()),
    ));
    uri.push_str(match kind {
        UriKind::Time { .. } => "otpauth://totp/",
        UriKind::Counter { .. } => "otpauth://hotp/",
    });
    if !issuer.is_empty() {
        // The issuer prefix lets apps that ignore the parameter group accounts.
        uri.push_str(&percent_encode(issuer));
        uri.push(':');
    }
    uri.push_str(&percent_encode(label));
    uri.push_str("?secret=");
    uri.push_str(secret_base32);
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        uri.push_str(&percent_encode(issuer));
    }
    uri.push_str("&algorithm=SHA1&digits=6");
    // Writing to a String cannot fail.
    let _ = match kind {
        UriKind::Time { period } => write!(uri, "&period={period}"),
        UriKind::Counter { initial } => write!(uri, "&counter={initial}"),
    };
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(
            percent_encode("alice@host-1.example_x~"),
            "alice%40host-1.example_x~"
        );
        assert_eq!(
            percent_encode("a b&c=d?e#f/g+h:i%j"),
            "a%20b%26c%3Dd%3Fe%23f%2Fg%2Bh%3Ai%25j"
        );
        assert_eq!(percent_encode("Zoë"), "Zo%C3%AB");
        assert_eq!(percent_encode("\n\x7f"), "%0A%7F");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn totp_uri() {
        let uri = otpauth_uri(
            UriKind::Time { period: 30 },
            "JBSWY3DPEHPK3PXP",
            "alice@db1",
            "db1",
        );
        assert_eq!(
            &*uri,
            "otpauth://totp/db1:alice%40db1?secret=JBSWY3DPEHPK3PXP&issuer=db1&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn hotp_uri_and_odd_names() {
        let uri = otpauth_uri(
            UriKind::Counter { initial: 1 },
            "JBSWY3DPEHPK3PXP",
            "a b",
            "ACME & Co",
        );
        assert_eq!(
            &*uri,
            "otpauth://hotp/ACME%20%26%20Co:a%20b?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20%26%20Co&algorithm=SHA1&digits=6&counter=1"
        );
    }

    #[test]
    fn no_issuer() {
        let uri = otpauth_uri(UriKind::Time { period: 60 }, "AAAA", "me", "");
        assert_eq!(
            &*uri,
            "otpauth://totp/me?secret=AAAA&algorithm=SHA1&digits=6&period=60"
        );
    }
}
