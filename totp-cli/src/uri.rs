//! The `otpauth://` key URI that authenticator apps import (the "Key Uri
//! Format" that Google Authenticator defined and other apps follow).
//!
//! `otpauth://totp/ISSUER:LABEL?secret=…` (plus `&period=N` when not 30) or,
//! counter-based, `otpauth://hotp/ISSUER:LABEL?secret=…&counter=N`.
//!
//! Kept short so its QR code fits a terminal: parameters equal to what
//! every app assumes (`algorithm=SHA1`, `digits=6`, `period=30`) are left
//! out, and the issuer goes in the label prefix, which apps read, rather
//! than repeated as a parameter. When the prefix cannot carry it (an issuer
//! with a `:`, or an empty label) the `issuer` parameter does instead.
//!
//! Label and issuer are percent-encoded byte by byte (UTF-8), leaving only
//! RFC 3986 unreserved characters as they are, so that no `#`, `/`, `+`,
//! `?` or `:` in them is read as URI syntax.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt::Write as _;
use zeroize::Zeroizing;

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The time step every app assumes when the URI names none.
pub const DEFAULT_PERIOD: u32 = 30;

/// Which counter the codes are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriKind {
    Time { period: u32 },
    Counter { initial: u64 },
}

/// `text` with everything but `A-Z a-z 0-9 - . _ ~` written as `%XX`.
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// The key URI. `secret_base32` is the unpadded base32 secret; an empty
/// `issuer` names none.
pub fn otpauth_uri(
    kind: UriKind,
    secret_base32: &str,
    label: &str,
    issuer: &str,
) -> Zeroizing<String> {
    let mut uri = Zeroizing::new(String::with_capacity(
        64 + secret_base32.len() + 3 * (label.len() + issuer.len()),
    ));
    uri.push_str(match kind {
        UriKind::Time { .. } => "otpauth://totp/",
        UriKind::Counter { .. } => "otpauth://hotp/",
    });
    // Apps split the label at its first colon, literal or encoded: an issuer
    // holding one cannot be the prefix, and an empty label would leave the
    // issuer as the account name.
    let issuer_as_prefix = !issuer.is_empty() && !issuer.contains(':') && !label.is_empty();
    if issuer_as_prefix {
        uri.push_str(&percent_encode(issuer));
        uri.push(':');
    }
    uri.push_str(&percent_encode(label));
    uri.push_str("?secret=");
    uri.push_str(secret_base32);
    if !issuer.is_empty() && !issuer_as_prefix {
        uri.push_str("&issuer=");
        uri.push_str(&percent_encode(issuer));
    }
    // Writing to a String cannot fail.
    let _ = match kind {
        UriKind::Time {
            period: DEFAULT_PERIOD,
        } => Ok(()),
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
        // Every byte outside the unreserved set, one by one.
        for byte in 0u8..128 {
            let text = char::from(byte).to_string();
            let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
            let want = if unreserved {
                text.clone()
            } else {
                format!("%{byte:02X}")
            };
            assert_eq!(percent_encode(&text), want, "byte {byte}");
        }
    }

    #[test]
    fn totp_uri_leaves_out_the_defaults() {
        let uri = otpauth_uri(
            UriKind::Time { period: 30 },
            "JBSWY3DPEHPK3PXP",
            "alice@db1",
            "db1",
        );
        assert_eq!(
            &*uri,
            "otpauth://totp/db1:alice%40db1?secret=JBSWY3DPEHPK3PXP"
        );
        let uri = otpauth_uri(UriKind::Time { period: 60 }, "AAAA", "me", "db1");
        assert_eq!(&*uri, "otpauth://totp/db1:me?secret=AAAA&period=60");
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
            "otpauth://hotp/ACME%20%26%20Co:a%20b?secret=JBSWY3DPEHPK3PXP&counter=1"
        );
    }

    #[test]
    fn issuer_the_prefix_cannot_carry_goes_in_the_parameter() {
        let uri = otpauth_uri(UriKind::Time { period: 30 }, "AAAA", "me", "a:b");
        assert_eq!(&*uri, "otpauth://totp/me?secret=AAAA&issuer=a%3Ab");
        let uri = otpauth_uri(UriKind::Time { period: 30 }, "AAAA", "", "db1");
        assert_eq!(&*uri, "otpauth://totp/?secret=AAAA&issuer=db1");
    }

    #[test]
    fn no_issuer() {
        let uri = otpauth_uri(UriKind::Time { period: 60 }, "AAAA", "me", "");
        assert_eq!(&*uri, "otpauth://totp/me?secret=AAAA&period=60");
    }
}
