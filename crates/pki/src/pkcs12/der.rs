//! The few DER pieces a PKCS#12 file is made of: a writer that concatenates
//! tag-length-value triples, and a strict reader for the same (definite lengths only).
//! Only what `modern` needs; certificates and keys themselves are encoded by OpenSSL.

use super::super::{PkiError, Result};

pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const NULL: u8 = 0x05;
pub const OID: u8 = 0x06;
pub const BMP_STRING: u8 = 0x1E;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
/// `[0]` constructed: an explicit tag around one value.
pub const EXPLICIT_0: u8 = 0xA0;
/// `[0]` primitive: an implicitly tagged OCTET STRING.
pub const IMPLICIT_0: u8 = 0x80;

/// One TLV.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already encoded parts.
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// A SET OF already encoded elements, sorted by their encodings as DER requires.
pub fn set_of(mut elems: Vec<Vec<u8>>) -> Vec<u8> {
    elems.sort();
    tlv(SET, &elems.concat())
}

pub fn explicit0(inner: &[u8]) -> Vec<u8> {
    tlv(EXPLICIT_0, inner)
}

pub fn octets(b: &[u8]) -> Vec<u8> {
    tlv(OCTET_STRING, b)
}

/// An OBJECT IDENTIFIER from its content octets.
pub fn oid(content: &[u8]) -> Vec<u8> {
    tlv(OID, content)
}

pub fn null() -> Vec<u8> {
    tlv(NULL, &[])
}

/// A non-negative INTEGER.
pub fn uint(n: u32) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let skip = bytes[..3].iter().take_while(|b| **b == 0).count();
    let mut content = Vec::with_capacity(5);
    if bytes[skip] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[skip..]);
    tlv(INTEGER, &content)
}

/// A BMPString (UTF-16 big-endian), as PKCS#12 friendly names are.
pub fn bmp(s: &str) -> Vec<u8> {
    let units: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    tlv(BMP_STRING, &units)
}

fn malformed(what: &str) -> PkiError {
    PkiError::Parse(format!("malformed PKCS#12 structure: {what}"))
}

/// Reads TLVs one after another from a buffer.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// The next TLV: its tag and content.
    pub fn any(&mut self) -> Result<(u8, &'a [u8])> {
        let (&tag, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| malformed("truncated"))?;
        if tag & 0x1F == 0x1F {
            return Err(malformed("multi-byte tag"));
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(|| malformed("truncated"))?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7F) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err(malformed("bad length"));
            }
            let mut len = 0usize;
            for b in &rest[..n] {
                len = (len << 8) | *b as usize;
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(malformed("truncated"));
        }
        let (content, after) = rest.split_at(len);
        self.buf = after;
        Ok((tag, content))
    }

    /// The next TLV, which must carry `tag`; returns its content.
    pub fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8]> {
        let (t, c) = self.any()?;
        if t != tag {
            return Err(malformed(&format!("expected {what}")));
        }
        Ok(c)
    }

    /// The next TLV if it carries `tag`.
    pub fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>> {
        if self.peek_tag() == Some(tag) {
            Ok(Some(self.any()?.1))
        } else {
            Ok(None)
        }
    }

    /// A SEQUENCE, as a reader over its content.
    pub fn sequence(&mut self, what: &str) -> Result<Reader<'a>> {
        Ok(Reader::new(self.expect(SEQUENCE, what)?))
    }

    pub fn oid(&mut self, what: &str) -> Result<&'a [u8]> {
        self.expect(OID, what)
    }

    /// A non-negative INTEGER that fits 32 bits.
    pub fn uint(&mut self, what: &str) -> Result<u32> {
        let c = self.expect(INTEGER, what)?;
        if c.is_empty() || c[0] & 0x80 != 0 {
            return Err(malformed(what));
        }
        let c = if c[0] == 0 { &c[1..] } else { c };
        if c.len() > 4 {
            return Err(malformed(what));
        }
        Ok(c.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32))
    }

    /// Fails unless everything was read.
    pub fn end(&self, what: &str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(malformed(&format!("trailing data in {what}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for n in [0usize, 1, 127, 128, 255, 256, 65_535, 65_536] {
            let body = vec![7u8; n];
            let enc = tlv(OCTET_STRING, &body);
            let mut r = Reader::new(&enc);
            assert_eq!(r.expect(OCTET_STRING, "x").unwrap(), &body[..]);
            r.end("x").unwrap();
        }
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(uint(0), [2, 1, 0]);
        assert_eq!(uint(127), [2, 1, 127]);
        assert_eq!(uint(128), [2, 2, 0, 128]);
        assert_eq!(uint(2048), [2, 2, 8, 0]);
        for n in [0, 1, 255, 2048, 600_000, u32::MAX] {
            assert_eq!(Reader::new(&uint(n)).uint("n").unwrap(), n);
        }
    }

    #[test]
    fn truncated_and_indefinite_input_is_refused() {
        assert!(Reader::new(&[0x30, 0x05, 1]).any().is_err());
        assert!(Reader::new(&[0x30, 0x80, 0, 0]).any().is_err());
        assert!(Reader::new(&[0x30]).any().is_err());
        assert!(Reader::new(&[]).any().is_err());
    }

    #[test]
    fn set_of_sorts_its_elements() {
        let s = set_of(vec![octets(&[2]), octets(&[1])]);
        assert_eq!(s, [0x31, 6, 4, 1, 1, 4, 1, 2]);
    }
}
