//! Fingerprints and thumbprints in the forms gateways ask for.

use openssl::hash::{MessageDigest, hash};

use super::Result;

pub fn sha256(der: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(der)
}

pub fn sha1(der: &[u8]) -> Result<Vec<u8>> {
    Ok(hash(MessageDigest::sha1(), der)?.to_vec())
}

/// Lowercase hex, no separators (Tyk, Envoy `verify_certificate_hash`).
pub fn hex(bytes: &[u8]) -> String {
    super::serial::to_hex(bytes)
}

/// Uppercase hex with colons, as `openssl x509 -fingerprint` prints.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Unpadded base64url (RFC 8705 `x5t#S256`).
pub fn base64url(bytes: &[u8]) -> String {
    let std = openssl::base64::encode_block(bytes);
    std.trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Standard base64 without line breaks.
pub fn base64(bytes: &[u8]) -> String {
    openssl::base64::encode_block(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(colon_hex(&[0xab, 0x01]), "AB:01");
        assert_eq!(hex(&[0xab, 0x01]), "ab01");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
