//! Certificate serial numbers: random, positive, 128 bits wide.

use super::{PkiError, Result};

/// A random positive serial of 16 bytes with 126 bits of entropy.
///
/// The top byte is forced into 0x40..=0x7f so the DER INTEGER is positive and
/// minimally encoded, and every serial prints as 32 hex digits.
pub fn random_serial() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b)?;
    b[0] = (b[0] & 0x3f) | 0x40;
    Ok(b)
}

/// Lowercase hex without separators, the form used in paths and reports.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses a serial given by a user: hex, with or without colons, any case.
pub fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let clean: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if clean.is_empty()
        || !clean.len().is_multiple_of(2)
        || !clean.chars().all(|c| c.is_ascii_hexdigit())
    {
        return Err(PkiError::BadSerial {
            given: s.to_string(),
        });
    }
    let mut out = Vec::with_capacity(clean.len() / 2);
    for i in (0..clean.len()).step_by(2) {
        // every character is a hex digit, checked above
        out.push(u8::from_str_radix(&clean[i..i + 2], 16).unwrap_or_default());
    }
    // strip DER sign padding so 00:ab and ab compare equal
    while out.len() > 1 && out[0] == 0 {
        out.remove(0);
    }
    Ok(out)
}

/// Normalises a hex serial as printed by other tools to our form.
pub fn normalize_hex(s: &str) -> Result<String> {
    parse_hex(s).map(|b| to_hex(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_128_bit_and_distinct() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_ne!(a, b);
        assert!(a[0] >= 0x40 && a[0] < 0x80);
        assert_eq!(to_hex(&a).len(), 32);
    }

    #[test]
    fn parse_hex_accepts_colons_and_strips_padding() {
        assert_eq!(parse_hex("00:AB:cd").unwrap(), vec![0xab, 0xcd]);
        assert!(parse_hex("xyz").is_err());
        assert!(parse_hex("abc").is_err());
    }
}
