//! Keys and signature algorithms: weak CA keys (errors), weak leaf keys and SHA-1
//! signatures (warnings).

use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::X509;

use super::finding::{Detail, Finding, WeakKey};
use super::{Cert, Checks, Code};

const SHA1_OIDS: &[&str] = &[
    "1.2.840.113549.1.1.5",
    "1.2.840.10045.4.1",
    "1.2.840.10040.4.3",
];

/// A SHA-1 signature on a certificate the verifier does not trust directly.
pub(super) fn sha1_signature(k: &Checks, c: &Cert) -> Option<Finding> {
    let oid = c
        .parsed()
        .map(|x| x.signature_algorithm.algorithm.to_id_string())
        .unwrap_or_default();
    (!k.is_anchor(c) && SHA1_OIDS.contains(&oid.as_str()))
        .then(|| Finding::new(Code::Sha1Signature, Some(c.r()), Detail::None))
}

/// A weak key: an error on a CA, a warning on the leaf.
pub(super) fn weak_key(c: &Cert) -> Option<Finding> {
    let key = X509::from_der(&c.der).ok()?.public_key().ok()?;
    let weak = weakness(&key)?;
    let code = if c.depth > 0 {
        Code::WeakCaKey
    } else {
        Code::WeakRsaKey
    };
    Some(Finding::new(code, Some(c.r()), Detail::WeakKey(Some(weak))))
}

/// RSA under 2048 bits or not a multiple of 8, DSA, EC curves other than P-256/384/521.
fn weakness(k: &PKey<Public>) -> Option<WeakKey> {
    match k.id() {
        Id::RSA => {
            let bits = k.bits();
            if bits < 2048 {
                Some(WeakKey::RsaTooSmall { bits })
            } else if !bits.is_multiple_of(8) {
                Some(WeakKey::RsaOddSize { bits })
            } else {
                None
            }
        }
        Id::DSA => Some(WeakKey::Dsa),
        Id::EC => {
            let curve = k.ec_key().ok().and_then(|e| e.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1) | Some(Nid::SECP384R1) | Some(Nid::SECP521R1) => None,
                other => Some(WeakKey::EcCurve {
                    curve: other.and_then(|n| n.short_name().ok()).map(str::to_string),
                }),
            }
        }
        _ => None,
    }
}
