//! What a PFX declares about its own protection, read without its password (RustCrypto's
//! `pkcs12` types; the algorithm identifiers are outside the encryption): the MAC and its
//! iteration count, and how each bag or safe is encrypted. `inspect` shows it; [`open`]
//! bounds every derivation with it before OpenSSL runs one.
//!
//! [`open`]: super::open

use der::asn1::{ContextSpecific, OctetString};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};
use pkcs8::spki::AlgorithmIdentifierOwned;
use serde::Serialize;

use crate::pbe::{self, Kdf, Limits, asn1};
use crate::{PkiError, Result};

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const PBMAC1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.14");

/// RFC 8018 appendix A.5 PBMAC1-params (pkcs5 0.8 has no type for it).
#[derive(der::Sequence)]
struct Pbmac1Params {
    kdf: AlgorithmIdentifierOwned,
    mac: AlgorithmIdentifierOwned,
}

/// The MAC that protects a PFX's contents.
#[derive(Clone, Debug, Serialize)]
pub struct MacInfo {
    /// "HMAC-SHA-256", "HMAC-SHA-1", ... or "PBMAC1".
    pub algorithm: String,
    /// PBMAC1 only: the PRF of the PBKDF2 that derives the HMAC key, e.g. "HMAC-SHA-256".
    pub prf: Option<String>,
    /// PBMAC1 only: the HMAC itself.
    pub hmac: Option<String>,
    /// Iterations of the key derivation (PKCS#12 KDF, or PBMAC1's PBKDF2).
    pub iterations: u64,
    pub salt_length: usize,
    /// For people: "HMAC-SHA-256, 2048 iterations".
    pub description: String,
}

/// How one safe or bag of a PFX is encrypted.
#[derive(Clone, Debug, Serialize)]
pub struct BagEncryption {
    /// "encrypted_data" (a whole encrypted safe; OpenSSL puts the certificates there),
    /// "shrouded_key" (a key in its own envelope), or a bag in the clear: "key",
    /// "certificate", "other".
    pub bag: &'static str,
    /// "PBES2 PBKDF2-HMAC-SHA-256 2048 iterations AES-256-CBC", or "none".
    pub encryption: String,
    pub iterations: Option<u64>,
}

/// What a PFX says about its protection.
#[derive(Clone, Debug, Serialize)]
pub struct Protection {
    /// None: the file has no MAC (its integrity is not protected).
    pub mac: Option<MacInfo>,
    pub bags: Vec<BagEncryption>,
    /// Every derivation opening the file would run, with what it is for.
    #[serde(skip)]
    derivations: Vec<(&'static str, Kdf)>,
}

impl Protection {
    /// Refuses a file whose MAC or bags ask for more than `limits`.
    pub fn check(&self, limits: &Limits) -> Result<()> {
        for (what, kdf) in &self.derivations {
            limits.check(*kdf, what)?;
        }
        Ok(())
    }
}

fn digest_name(oid: ObjectIdentifier) -> Option<&'static str> {
    Some(match oid.to_string().as_str() {
        "1.3.14.3.2.26" => "HMAC-SHA-1",
        "2.16.840.1.101.3.4.2.4" => "HMAC-SHA-224",
        "2.16.840.1.101.3.4.2.1" => "HMAC-SHA-256",
        "2.16.840.1.101.3.4.2.2" => "HMAC-SHA-384",
        "2.16.840.1.101.3.4.2.3" => "HMAC-SHA-512",
        "2.16.840.1.101.3.4.2.5" => "HMAC-SHA-512/224",
        "2.16.840.1.101.3.4.2.6" => "HMAC-SHA-512/256",
        _ => return None,
    })
}

fn hmac_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.113549.2.7" => "HMAC-SHA-1".into(),
        "1.2.840.113549.2.8" => "HMAC-SHA-224".into(),
        "1.2.840.113549.2.9" => "HMAC-SHA-256".into(),
        "1.2.840.113549.2.10" => "HMAC-SHA-384".into(),
        "1.2.840.113549.2.11" => "HMAC-SHA-512".into(),
        other => other.to_string(),
    }
}

/// The DER of `alg`'s parameters.
fn params(alg: &AlgorithmIdentifierOwned) -> Result<Vec<u8>> {
    let p = alg
        .parameters
        .as_ref()
        .ok_or_else(|| PkiError::Parse(format!("{} without parameters", alg.oid)))?;
    p.to_der().map_err(asn1)
}

fn mac_info(m: &pkcs12::MacData, out: &mut Vec<(&'static str, Kdf)>) -> Result<MacInfo> {
    let declared = u64::try_from(m.iterations)
        .map_err(|_| PkiError::Parse("the MAC has a negative iteration count".into()))?;
    out.push((
        "MAC",
        Kdf::Legacy {
            iterations: declared,
        },
    ));
    let salt_length = m.mac_salt.as_bytes().len();
    let alg = &m.mac.algorithm;
    if alg.oid != PBMAC1 {
        let name = digest_name(alg.oid).map_or_else(|| alg.oid.to_string(), str::to_string);
        if digest_name(alg.oid).is_none() {
            out.push(("MAC", Kdf::Unknown));
        }
        return Ok(MacInfo {
            description: format!("{name}, {declared} iterations"),
            algorithm: name,
            prf: None,
            hmac: None,
            iterations: declared,
            salt_length,
        });
    }
    let p = Pbmac1Params::from_der(&params(alg)?).map_err(asn1)?;
    let k = pkcs5::pbes2::Pbkdf2Params::from_der(&params(&p.kdf)?).map_err(asn1)?;
    let prf = pbe::prf_name(k.prf);
    let hmac = hmac_name(p.mac.oid);
    out.push((
        "PBMAC1 key derivation",
        Kdf::Pbkdf2 {
            prf,
            iterations: k.iteration_count,
        },
    ));
    Ok(MacInfo {
        description: format!(
            "PBMAC1 {hmac} (key: PBKDF2-{prf}, {} iterations)",
            k.iteration_count
        ),
        algorithm: "PBMAC1".into(),
        prf: Some(prf.to_string()),
        hmac: Some(hmac),
        iterations: u64::from(k.iteration_count),
        salt_length: k.salt.as_bytes().len(),
    })
}

fn encrypted(
    bag: &'static str,
    alg: &AlgorithmIdentifierOwned,
    out: &mut Vec<(&'static str, Kdf)>,
) -> Result<BagEncryption> {
    let s = pbe::scheme(alg)?;
    out.push((
        if bag == "shrouded_key" {
            "key bag encryption"
        } else {
            "encrypted safe"
        },
        s.kdf,
    ));
    Ok(BagEncryption {
        bag,
        encryption: s.description,
        iterations: s.kdf.iterations(),
    })
}

/// The inner DER of a ContentInfo's `[0] EXPLICIT` content, as an OCTET STRING's bytes.
fn octets(any: &der::Any) -> Result<Vec<u8>> {
    let os = OctetString::from_der(&any.to_der().map_err(asn1)?).map_err(asn1)?;
    Ok(os.into_bytes().into_vec())
}

/// Reads a PFX's protection. Fails when the file is not a DER PKCS#12 in password
/// integrity mode (which is all this tool, and OpenSSL's default, writes).
pub fn read(der: &[u8]) -> Result<Protection> {
    let not_pfx = |e: der::Error| PkiError::Parse(format!("not a DER PKCS#12 file: {e}"));
    let pfx = pkcs12::Pfx::from_der(der).map_err(not_pfx)?;
    let mut derivations = Vec::new();
    let mac = pfx
        .mac_data
        .as_ref()
        .map(|m| mac_info(m, &mut derivations))
        .transpose()?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(PkiError::Parse(
            "this PKCS#12 file uses public-key integrity mode, which mtlsctl does not read".into(),
        ));
    }
    let safes =
        pkcs12::AuthenticatedSafe::from_der(&octets(&pfx.auth_safe.content)?).map_err(not_pfx)?;
    let mut bags = Vec::new();
    for ci in safes {
        if ci.content_type == ID_ENCRYPTED_DATA {
            let ed = pkcs12::cms::encrypted_data::EncryptedData::from_der(
                &ci.content.to_der().map_err(asn1)?,
            )
            .map_err(asn1)?;
            let alg = &ed.enc_content_info.content_enc_alg;
            bags.push(encrypted("encrypted_data", alg, &mut derivations)?);
        } else if ci.content_type == ID_DATA {
            let contents =
                pkcs12::safe_bag::SafeContents::from_der(&octets(&ci.content)?).map_err(asn1)?;
            for b in contents {
                bags.push(clear_bag(&b, &mut derivations)?);
            }
        } else {
            return Err(PkiError::Parse(format!(
                "this PKCS#12 file holds a {} safe (public-key encryption), which mtlsctl does not read",
                ci.content_type
            )));
        }
    }
    Ok(Protection {
        mac,
        bags,
        derivations,
    })
}

/// A bag in a safe that is not encrypted as a whole.
fn clear_bag(b: &pkcs12::SafeBag, out: &mut Vec<(&'static str, Kdf)>) -> Result<BagEncryption> {
    let none = |bag| BagEncryption {
        bag,
        encryption: "none".into(),
        iterations: None,
    };
    Ok(if b.bag_id == pkcs12::PKCS_12_PKCS8_KEY_BAG_OID {
        let cs: ContextSpecific<pkcs12::pbe_params::EncryptedPrivateKeyInfo> =
            ContextSpecific::from_der(&b.bag_value).map_err(asn1)?;
        encrypted("shrouded_key", &cs.value.encryption_algorithm, out)?
    } else if b.bag_id == pkcs12::PKCS_12_KEY_BAG_OID {
        none("key")
    } else if b.bag_id == pkcs12::PKCS_12_CERT_BAG_OID {
        none("certificate")
    } else if b.bag_id == pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID {
        // nested safes could hide derivations we do not see: refuse rather than guess
        return Err(PkiError::Parse(
            "this PKCS#12 file nests safes inside bags, which mtlsctl does not read".into(),
        ));
    } else {
        none("other")
    })
}
