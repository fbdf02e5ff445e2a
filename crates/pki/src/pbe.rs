//! Password-based encryption as PKCS#12 bags and encrypted PKCS#8 keys declare it (PBES2,
//! PBES1, the PKCS#12 PBE schemes), read with RustCrypto's types: described for reports and
//! bounded before any password derivation runs, so that a crafted file cannot make a reader
//! spend hours (or gigabytes) on it.

use der::{Decode, Encode};
use pkcs5::pbes2::{self, Pbkdf2Prf};
use pkcs8::spki::AlgorithmIdentifierOwned;

use crate::{PkiError, Result};

/// The key derivation an encryption scheme asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    /// PBKDF2 (PBES2) with its PRF, e.g. "HMAC-SHA-256".
    Pbkdf2 { prf: &'static str, iterations: u32 },
    /// scrypt (PBES2): cost N, block size r, parallelism p.
    Scrypt { n: u64, r: u16, p: u16 },
    /// The PKCS#12 (RFC 7292 appendix B) or PKCS#5 v1.5 derivation.
    Legacy { iterations: u64 },
    /// A scheme this tool does not know: it cannot say what opening it would cost.
    Unknown,
}

impl Kdf {
    /// The iteration count, where the derivation has one.
    pub fn iterations(self) -> Option<u64> {
        match self {
            Kdf::Pbkdf2 { iterations, .. } => Some(u64::from(iterations)),
            Kdf::Legacy { iterations } => Some(iterations),
            Kdf::Scrypt { .. } | Kdf::Unknown => None,
        }
    }

    /// The memory scrypt needs: 128 * N * r bytes.
    fn scrypt_bytes(self) -> Option<u64> {
        match self {
            Kdf::Scrypt { n, r, .. } => Some(n.saturating_mul(128).saturating_mul(u64::from(r))),
            _ => None,
        }
    }
}

/// What may be asked of a reader before it refuses a file.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// What the limits protect, for the error: "this PKCS#12 file", "this encrypted key".
    pub subject: &'static str,
    pub iterations: u64,
    pub scrypt_bytes: u64,
}

/// PFX files from elsewhere (`inspect`, `probe`): every MAC and bag derivation.
pub const PFX_LIMITS: Limits = Limits {
    subject: "this PKCS#12 file",
    iterations: 1_000_000,
    scrypt_bytes: 1 << 30,
};

/// Encrypted PKCS#8 keys (CA keys, keys given to `pfx`).
pub const PKCS8_LIMITS: Limits = Limits {
    subject: "this encrypted key",
    iterations: 10_000_000,
    scrypt_bytes: 1 << 30,
};

impl Limits {
    /// Refuses a derivation above the limits, or one whose cost cannot be known.
    pub fn check(&self, kdf: Kdf, what: &str) -> Result<()> {
        let over = |count: u64, limit: u64, unit: &'static str| PkiError::CostLimit {
            subject: self.subject,
            what: what.to_string(),
            count,
            limit,
            unit,
        };
        match kdf {
            Kdf::Unknown => Err(PkiError::Parse(format!(
                "{} uses a {what} this tool does not know, so it cannot bound what opening it costs",
                self.subject
            ))),
            Kdf::Scrypt { p, .. } if p > 16 => Err(over(u64::from(p), 16, "scrypt lanes")),
            k => {
                if let Some(b) = k.scrypt_bytes()
                    && b > self.scrypt_bytes
                {
                    return Err(over(
                        b >> 20,
                        self.scrypt_bytes >> 20,
                        "MiB of scrypt memory",
                    ));
                }
                match k.iterations() {
                    Some(i) if i > self.iterations => Err(over(i, self.iterations, "iterations")),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// A password-based encryption scheme, read from its AlgorithmIdentifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheme {
    /// For people: "PBES2 PBKDF2-HMAC-SHA-256 2048 iterations AES-256-CBC".
    pub description: String,
    pub kdf: Kdf,
    /// PBES2 parameters in a form RustCrypto can decrypt with (PBKDF2 with a SHA-2 PRF or
    /// scrypt, and AES-CBC), else None.
    pub pbes2: Option<pbes2::Parameters>,
}

/// RFC 7292 appendix C names of the PKCS#12 PBE schemes.
const PKCS12_PBE: [(der::oid::ObjectIdentifier, &str); 6] = [
    (
        pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC4,
        "pbeWithSHAAnd128BitRC4",
    ),
    (
        pkcs12::PKCS_12_PBE_WITH_SHAAND40_BIT_RC4,
        "pbeWithSHAAnd40BitRC4",
    ),
    (
        pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC,
        "pbeWithSHAAnd3-KeyTripleDES-CBC",
    ),
    (
        pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC,
        "pbeWithSHAAnd2-KeyTripleDES-CBC",
    ),
    (
        pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC,
        "pbeWithSHAAnd128BitRC2-CBC",
    ),
    (
        pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC,
        "pbeWithSHAAnd40BitRC2-CBC",
    ),
];

/// The DER of an AlgorithmIdentifier's parameters (empty when absent).
fn params_der(alg: &AlgorithmIdentifierOwned) -> Result<Vec<u8>> {
    Ok(alg
        .parameters
        .as_ref()
        .map(|p| p.to_der())
        .transpose()
        .map_err(asn1)?
        .unwrap_or_default())
}

pub(crate) fn asn1(e: der::Error) -> PkiError {
    PkiError::Parse(format!("ASN.1: {e}"))
}

/// Reads a password-based encryption AlgorithmIdentifier. Schemes it does not know come
/// back with [`Kdf::Unknown`] and their OID as the description.
pub fn scheme(alg: &AlgorithmIdentifierOwned) -> Result<Scheme> {
    let unknown = |description: String| Scheme {
        description,
        kdf: Kdf::Unknown,
        pbes2: None,
    };
    if alg.oid == pbes2::PBES2_OID {
        let raw = params_der(alg)?;
        return Ok(match pbes2::Parameters::from_der(&raw) {
            Ok(p) => pbes2_scheme(p),
            Err(_) => unknown("PBES2 with parameters this tool does not know".into()),
        });
    }
    if let Some((_, name)) = PKCS12_PBE.iter().find(|(oid, _)| *oid == alg.oid) {
        let p = pkcs12::pbe_params::Pkcs12PbeParams::from_der(&params_der(alg)?).map_err(asn1)?;
        let iterations = u64::try_from(p.iterations)
            .map_err(|_| PkiError::Parse(format!("{name}: negative iteration count")))?;
        return Ok(Scheme {
            description: format!("{name} {iterations} iterations"),
            kdf: Kdf::Legacy { iterations },
            pbes2: None,
        });
    }
    let mut der = Vec::new();
    alg.encode_to_vec(&mut der).map_err(asn1)?;
    if let Ok(pkcs5::EncryptionScheme::Pbes1(p)) = pkcs5::EncryptionScheme::try_from(&der[..]) {
        let iterations = u64::from(p.parameters.iteration_count);
        return Ok(Scheme {
            description: format!("PBES1 {} {iterations} iterations", p.oid()),
            kdf: Kdf::Legacy { iterations },
            pbes2: None,
        });
    }
    Ok(unknown(format!("unknown scheme {}", alg.oid)))
}

pub(crate) fn prf_name(prf: Pbkdf2Prf) -> &'static str {
    match prf {
        Pbkdf2Prf::HmacWithSha1 => "HMAC-SHA-1",
        Pbkdf2Prf::HmacWithSha224 => "HMAC-SHA-224",
        Pbkdf2Prf::HmacWithSha256 => "HMAC-SHA-256",
        Pbkdf2Prf::HmacWithSha384 => "HMAC-SHA-384",
        Pbkdf2Prf::HmacWithSha512 => "HMAC-SHA-512",
        _ => "HMAC-?",
    }
}

fn pbes2_scheme(p: pbes2::Parameters) -> Scheme {
    let cipher = match p.encryption {
        pbes2::EncryptionScheme::Aes128Cbc { .. } => "AES-128-CBC",
        pbes2::EncryptionScheme::Aes192Cbc { .. } => "AES-192-CBC",
        pbes2::EncryptionScheme::Aes256Cbc { .. } => "AES-256-CBC",
        pbes2::EncryptionScheme::Aes128Gcm { .. } => "AES-128-GCM",
        pbes2::EncryptionScheme::Aes256Gcm { .. } => "AES-256-GCM",
        pbes2::EncryptionScheme::DesEde3Cbc { .. } => "DES-EDE3-CBC",
        _ => "an unknown cipher",
    };
    let cbc = cipher.starts_with("AES") && cipher.ends_with("CBC");
    let (kdf, text, rust) = if let Some(k) = p.kdf.pbkdf2() {
        let prf = prf_name(k.prf);
        let kdf = Kdf::Pbkdf2 {
            prf,
            iterations: k.iteration_count,
        };
        let sha2 = k.prf != Pbkdf2Prf::HmacWithSha1 && prf != "HMAC-?";
        let text = format!("PBKDF2-{prf} {} iterations", k.iteration_count);
        (kdf, text, sha2)
    } else if let Some(s) = p.kdf.scrypt() {
        let kdf = Kdf::Scrypt {
            n: s.cost_parameter,
            r: s.block_size,
            p: s.parallelization,
        };
        let text = format!(
            "scrypt N={} r={} p={}",
            s.cost_parameter, s.block_size, s.parallelization
        );
        (kdf, text, true)
    } else {
        (Kdf::Unknown, "an unknown KDF".to_string(), false)
    };
    Scheme {
        description: format!("PBES2 {text} {cipher}"),
        kdf,
        pbes2: (rust && cbc).then_some(p),
    }
}

/// 1234567 -> "1,234,567", for error messages.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_the_count_and_the_limit() {
        let k = Kdf::Pbkdf2 {
            prf: "HMAC-SHA-256",
            iterations: i32::MAX as u32,
        };
        let e = PFX_LIMITS.check(k, "MAC").unwrap_err().to_string();
        assert!(
            e.contains("2,147,483,647") && e.contains("1,000,000"),
            "{e}"
        );
        assert!(PKCS8_LIMITS.check(k, "key").is_err());
        let ok = Kdf::Pbkdf2 {
            prf: "HMAC-SHA-256",
            iterations: 600_000,
        };
        assert!(PFX_LIMITS.check(ok, "bag").is_ok());
        let big = Kdf::Scrypt {
            n: 1 << 21,
            r: 8,
            p: 1,
        };
        let e = PKCS8_LIMITS.check(big, "key").unwrap_err().to_string();
        assert!(e.contains("2,048 MiB") && e.contains("1,024"), "{e}");
        let fine = Kdf::Scrypt {
            n: 1 << 17,
            r: 8,
            p: 1,
        };
        assert!(PKCS8_LIMITS.check(fine, "key").is_ok());
        assert!(PFX_LIMITS.check(Kdf::Unknown, "bag").is_err());
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
