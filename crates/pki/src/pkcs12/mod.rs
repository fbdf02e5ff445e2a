//! PKCS#12 (PFX) bundles in the three profiles of [`PfxCompat`]. OpenSSL writes them
//! ([`writer`]); each is opened again by a different implementation before it is handed
//! back: p12-keystore (pure Rust) for `modern` and `legacy`, OpenSSL itself for `pbmac1`,
//! which no other reader here understands (and which derives every key again from the
//! file). Files from elsewhere (`inspect`, `probe`) are opened by OpenSSL once
//! [`structure`] has read their parameters and bounded every derivation.

pub mod structure;
pub mod writer;

use openssl::pkcs12::Pkcs12;
use openssl::stack::Stack;
use openssl::x509::X509;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::keys::PrivateKey;
use super::{PkiError, Result};

/// Which readers a PFX must open in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PfxCompat {
    /// AES-256-CBC / PBKDF2-HMAC-SHA-256 with an HMAC-SHA-256 MAC (OpenSSL 3 default).
    #[default]
    #[serde(alias = "openssl3")]
    Modern,
    /// PBE-SHA1-3DES for key and certificates with a SHA-1 MAC: Windows Server 2016 / IIS,
    /// older macOS and Java 8; OpenSSL 3 reads it without its legacy provider.
    #[serde(alias = "windows2016", alias = "java8", alias = "macos")]
    Legacy,
    /// As modern, with the RFC 9579 PBMAC1 MAC (PBKDF2-HMAC-SHA-256 keyed HMAC-SHA-256):
    /// for FIPS-mode consumers and OpenSSL 3.4 or later.
    Pbmac1,
}

impl PfxCompat {
    /// Every name `pfx.compat` and `--pfx-target` take, aliases after the three profiles.
    pub const NAMES: [(&'static str, PfxCompat); 7] = [
        ("modern", PfxCompat::Modern),
        ("legacy", PfxCompat::Legacy),
        ("pbmac1", PfxCompat::Pbmac1),
        ("openssl3", PfxCompat::Modern),
        ("windows2016", PfxCompat::Legacy),
        ("java8", PfxCompat::Legacy),
        ("macos", PfxCompat::Legacy),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PfxCompat::Modern => "modern",
            PfxCompat::Legacy => "legacy",
            PfxCompat::Pbmac1 => "pbmac1",
        }
    }
}

impl std::str::FromStr for PfxCompat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                format!("unknown PFX target '{s}': use one of {}", names.join(", "))
            })
    }
}

/// Builds a PFX holding the key, its certificate and the chain, under `friendly_name`,
/// then opens it again with the password and checks what it holds.
pub fn build(
    key: &PrivateKey,
    cert: &X509,
    chain: &[X509],
    friendly_name: &str,
    password: &SecretString,
    compat: PfxCompat,
) -> Result<Vec<u8>> {
    let chain: Vec<Vec<u8>> = chain.iter().map(|c| c.to_der()).collect::<Result<_, _>>()?;
    build_der(
        key,
        &cert.to_der()?,
        &chain,
        friendly_name,
        password,
        compat,
    )
}

/// Iterations of every password derivation in a PFX we write, every profile: OpenSSL's
/// default for PKCS#12 (PKCS12_DEFAULT_ITER).
pub const ITERATIONS: u32 = 2048;

/// [`build`] for a certificate and chain given as DER.
pub fn build_der(
    key: &PrivateKey,
    cert_der: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &SecretString,
    compat: PfxCompat,
) -> Result<Vec<u8>> {
    check_password(password)?;
    if compat == PfxCompat::Pbmac1 {
        writer::pbmac1_available()?;
    }
    let cert = X509::from_der(cert_der)?;
    let mut ca = Stack::new()?;
    for c in chain {
        ca.push(X509::from_der(c)?)?;
    }
    let pw = password.expose_secret();
    let der = writer::write(key.pkey(), &cert, &ca, friendly_name, pw, compat)?;
    // p12-keystore reads passwords as BMPStrings; beyond the BMP (and for PBMAC1) only
    // OpenSSL can reopen the file
    let beyond_bmp = pw.chars().any(|c| u32::from(c) > 0xFFFF);
    let held = if compat == PfxCompat::Pbmac1 || beyond_bmp {
        reopen_with_openssl(&der, pw)?
    } else {
        reopen_with_p12_keystore(&der, pw)?
    };
    check(held, key, cert_der, chain, friendly_name)?;
    Ok(der)
}

/// What a PFX just written turned out to hold, opened again with its password.
struct Held {
    /// The PKCS#8 DER of every key in it.
    keys: Vec<Zeroizing<Vec<u8>>>,
    /// The certificates that belong to the key (exactly one is expected), with their
    /// friendly names.
    certs: Vec<(Vec<u8>, Option<String>)>,
    /// The other certificates.
    chain: Vec<Vec<u8>>,
}

/// p12-keystore verifies the MAC, decrypts every bag and hands back the bags with their
/// attributes; the leaf is the certificate whose local key id is the key's.
fn reopen_with_p12_keystore(der: &[u8], password: &str) -> Result<Held> {
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(der, password)
        .map_err(|e| PkiError::Invalid(format!("the PFX written does not open again: {e}")))?;
    let key_id = match archive.keys.as_slice() {
        [k] => k.local_key_id.as_ref().map(|i| i.as_ref().to_vec()),
        _ => None,
    };
    let (leaf, rest): (Vec<_>, Vec<_>) = archive
        .certs
        .into_iter()
        .partition(|c| key_id.is_some() && c.local_key_id == key_id);
    Ok(Held {
        keys: archive
            .keys
            .into_iter()
            .map(|k| Zeroizing::new(k.key.as_der().to_vec()))
            .collect(),
        certs: leaf
            .into_iter()
            .map(|c| (c.cert.as_der().to_vec(), c.friendly_name))
            .collect(),
        chain: rest.into_iter().map(|c| c.cert.as_der().to_vec()).collect(),
    })
}

/// OpenSSL's `PKCS12_parse` verifies the MAC and decrypts every bag; the leaf is the
/// certificate it matched with the key.
fn reopen_with_openssl(der: &[u8], password: &str) -> Result<Held> {
    let parsed = Pkcs12::from_der(der)?
        .parse2(password)
        .map_err(|e| PkiError::Invalid(format!("the PFX written does not open again: {e}")))?;
    let keys = match parsed.pkey {
        Some(k) => vec![Zeroizing::new(k.private_key_to_pkcs8()?)],
        None => Vec::new(),
    };
    let certs = match parsed.cert {
        Some(c) => vec![(
            c.to_der()?,
            c.alias().map(|a| String::from_utf8_lossy(a).into_owned()),
        )],
        None => Vec::new(),
    };
    let chain = parsed
        .ca
        .map(|s| s.iter().map(|c| c.to_der()).collect::<Result<_, _>>())
        .transpose()?
        .unwrap_or_default();
    Ok(Held { keys, certs, chain })
}

/// Checks a PFX just written and opened again: it holds the key that went in (the same
/// PKCS#8 bytes), that key matches the certificate, the certificate is the one meant
/// under the friendly name given, and the whole chain is inside.
fn check(
    held: Held,
    key: &PrivateKey,
    cert_der: &[u8],
    chain: &[Vec<u8>],
    name: &str,
) -> Result<()> {
    let invalid = |m: String| Err(PkiError::Invalid(m));
    match held.keys.as_slice() {
        [] => return invalid("the PFX written holds no private key".into()),
        [k] if k.as_slice() == key.pkcs8_der()? => {}
        [_] => return invalid("the PFX written does not hold the private key".into()),
        more => return invalid(format!("the PFX written holds {} private keys", more.len())),
    }
    match held.certs.as_slice() {
        [] => return invalid("the PFX written holds no certificate".into()),
        [(c, n)] if c.as_slice() == cert_der => {
            if n.as_deref() != Some(name) {
                return invalid(format!(
                    "the certificate in the PFX written is named {:?}, not {name:?}",
                    n.as_deref().unwrap_or("")
                ));
            }
        }
        _ => return invalid("the PFX written holds another certificate".into()),
    }
    if !key_matches_cert(key, cert_der)? {
        return invalid("the key in the PFX does not match its certificate".into());
    }
    // compared as sets: readers do not promise to keep the bags' order
    let (mut got, mut want) = (held.chain, chain.to_vec());
    got.sort();
    want.sort();
    if got != want {
        return invalid(format!(
            "the PFX written holds {} chain certificates, not the {} of the chain",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

/// Whether `cert_der` certifies the public half of `key`: the certificate's
/// SubjectPublicKeyInfo compared with the key's, and OpenSSL's own comparison when the
/// encodings differ (a compressed EC point, say).
fn key_matches_cert(key: &PrivateKey, cert_der: &[u8]) -> Result<bool> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::Parse(format!("certificate: {e}")))?;
    if parsed.tbs_certificate.subject_pki.raw == key.public_key_der()?.as_slice() {
        return Ok(true);
    }
    Ok(X509::from_der(cert_der)?
        .public_key()?
        .public_eq(key.pkey()))
}

/// What a PFX holds.
pub struct Opened {
    pub key: Option<PrivateKey>,
    pub cert: Option<X509>,
    pub chain: Vec<X509>,
}

/// Opens a PFX from elsewhere with its password (OpenSSL), once its iteration counts are
/// known to be within [`PFX_LIMITS`](crate::pbe::PFX_LIMITS).
pub fn open(der: &[u8], password: &SecretString) -> Result<Opened> {
    check_password(password)?;
    let p12 = Pkcs12::from_der(der).map_err(|_| PkiError::PfxPassword)?;
    structure::read(der)
        .map_err(|e| {
            PkiError::Parse(format!(
                "cannot read this PKCS#12 file's parameters, so it is not opened: {e}"
            ))
        })?
        .check(&crate::pbe::PFX_LIMITS)?;
    let parsed = p12
        .parse2(password.expose_secret())
        .map_err(|_| PkiError::PfxPassword)?;
    let key = match parsed.pkey {
        Some(k) => Some(PrivateKey::from_pkey(k)?),
        None => None,
    };
    Ok(Opened {
        key,
        cert: parsed.cert,
        chain: parsed
            .ca
            .map(|s| s.into_iter().collect())
            .unwrap_or_default(),
    })
}

fn check_password(p: &SecretString) -> Result<()> {
    if p.expose_secret().contains('\0') {
        return Err(PkiError::Invalid(
            "a PFX password cannot contain a NUL byte".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{CaRequest, self_signed_ca};
    use crate::dn::Subject;
    use crate::keys::KeyAlgorithm;
    use der::{Decode, Encode};
    use time::{Duration, OffsetDateTime};

    const ALL: [PfxCompat; 3] = [PfxCompat::Modern, PfxCompat::Legacy, PfxCompat::Pbmac1];

    /// Whether the linked OpenSSL writes PBMAC1 (3.4 or later, and built against it).
    fn has_pbmac1() -> bool {
        writer::pbmac1_available().is_ok()
    }

    #[test]
    fn every_profile_round_trips_and_a_wrong_password_fails() {
        let (key, cert) = key_and_cert("x");
        let pw = SecretString::from("pw".to_string());
        for compat in ALL {
            if compat == PfxCompat::Pbmac1 && !has_pbmac1() {
                let e = build(&key, &cert, &[], "x", &pw, compat).unwrap_err();
                assert!(matches!(e, PkiError::OpenSslTooOld { .. }), "{e}");
                let text = e.to_string();
                assert!(
                    text.contains("OpenSSL 3.4 or later") && text.contains("default features"),
                    "{text}"
                );
                continue;
            }
            let der = build(&key, &cert, &[], "x", &pw, compat).unwrap();
            assert!(open(&der, &pw).is_ok(), "{compat:?}");
            let bad = SecretString::from("bad".to_string());
            assert!(matches!(open(&der, &bad), Err(PkiError::PfxPassword)));
        }
    }

    /// A fresh P-256 key and a self-signed certificate for it: enough to bundle.
    fn key_and_cert(cn: &str) -> (PrivateKey, X509) {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let req = CaRequest {
            subject: Subject::parse(&format!("CN={cn}")).unwrap(),
            validity: Duration::days(1),
            path_length: 0,
        };
        let built = self_signed_ca(&req, &key, OffsetDateTime::now_utc()).unwrap();
        (key, X509::from_der(&built.der).unwrap())
    }

    fn ca_and_leaf() -> (PrivateKey, X509, X509) {
        let (key, leaf) = key_and_cert("leaf");
        (key, leaf, key_and_cert("Test CA").1)
    }

    #[test]
    fn files_open_in_both_readers_with_name_key_and_chain() {
        let (key, leaf, ca) = ca_and_leaf();
        let pw = SecretString::from("pässwörd-1".to_string());
        for compat in [PfxCompat::Modern, PfxCompat::Legacy] {
            let chain = std::slice::from_ref(&ca);
            let der = build(&key, &leaf, chain, "Tenant Ä", &pw, compat).unwrap();
            let parsed = Pkcs12::from_der(&der)
                .unwrap()
                .parse2("pässwörd-1")
                .unwrap();
            let cert = parsed.cert.unwrap();
            assert_eq!(cert.to_der().unwrap(), leaf.to_der().unwrap());
            assert_eq!(cert.alias(), Some("Tenant Ä".as_bytes()));
            assert!(parsed.pkey.unwrap().public_eq(key.pkey()));
            let chain: Vec<X509> = parsed.ca.unwrap().into_iter().collect();
            assert_eq!(chain.len(), 1);
            assert_eq!(chain[0].to_der().unwrap(), ca.to_der().unwrap());
            assert!(Pkcs12::from_der(&der).unwrap().parse2("wrong").is_err());
            // the other reader agrees, name and local key id included
            let a = p12_keystore::Pkcs12Archive::from_pkcs12(&der, "pässwörd-1").unwrap();
            assert_eq!(a.keys[0].friendly_name.as_deref(), Some("Tenant Ä"));
            let id = a.keys[0].local_key_id.as_ref().map(|i| i.as_ref().to_vec());
            assert!(id.is_some());
            assert_eq!(a.certs.iter().filter(|c| c.local_key_id == id).count(), 1);
        }
    }

    #[test]
    fn the_check_names_what_is_missing_or_wrong() {
        let (key, leaf, ca) = ca_and_leaf();
        let (leaf, ca) = (leaf.to_der().unwrap(), ca.to_der().unwrap());
        let chain = vec![ca.clone()];
        let pkcs8 = || vec![Zeroizing::new(key.pkcs8_der().unwrap().to_vec())];
        let good = || Held {
            keys: pkcs8(),
            certs: vec![(leaf.clone(), Some("n".into()))],
            chain: vec![ca.clone()],
        };
        assert!(check(good(), &key, &leaf, &chain, "n").is_ok());
        let err =
            |h: Held, k: &PrivateKey| check(h, k, &leaf, &chain, "n").unwrap_err().to_string();
        let (other, _) = key_and_cert("other");
        let other_pkcs8 = Zeroizing::new(other.pkcs8_der().unwrap().to_vec());
        let cases = [
            (
                Held {
                    keys: vec![],
                    ..good()
                },
                "holds no private key",
            ),
            (
                Held {
                    keys: vec![other_pkcs8.clone()],
                    ..good()
                },
                "does not hold the private key",
            ),
            (
                Held {
                    keys: vec![other_pkcs8.clone(), other_pkcs8],
                    ..good()
                },
                "holds 2 private keys",
            ),
            (
                Held {
                    certs: vec![],
                    ..good()
                },
                "holds no certificate",
            ),
            (
                Held {
                    certs: vec![(ca.clone(), Some("n".into()))],
                    ..good()
                },
                "holds another certificate",
            ),
            (
                Held {
                    certs: vec![(leaf.clone(), Some("m".into()))],
                    ..good()
                },
                "is named \"m\", not \"n\"",
            ),
            (
                Held {
                    certs: vec![(leaf.clone(), None)],
                    ..good()
                },
                "is named \"\", not \"n\"",
            ),
            (
                Held {
                    chain: vec![],
                    ..good()
                },
                "holds 0 chain certificates, not the 1",
            ),
        ];
        for (held, want) in cases {
            let e = err(held, &key);
            assert!(e.contains(want), "{e}");
        }
        let held = Held {
            keys: vec![Zeroizing::new(other.pkcs8_der().unwrap().to_vec())],
            ..good()
        };
        assert!(err(held, &other).contains("does not match its certificate"));
    }

    #[test]
    fn openssl_agrees_on_empty_and_astral_passwords() {
        let (key, leaf) = key_and_cert("leaf");
        for pw in ["", "key \u{1F511} and \u{00E9}"] {
            let secret = SecretString::from(pw.to_string());
            for compat in [PfxCompat::Modern, PfxCompat::Legacy] {
                let der = build(&key, &leaf, &[], "x", &secret, compat).unwrap();
                let parsed = Pkcs12::from_der(&der).unwrap().parse2(pw).unwrap();
                assert!(parsed.pkey.unwrap().public_eq(key.pkey()), "{pw:?}");
                assert!(Pkcs12::from_der(&der).unwrap().parse2("other").is_err());
            }
        }
    }

    #[test]
    fn the_files_declare_the_profile_they_were_written_in() {
        let (key, leaf) = key_and_cert("leaf");
        let pw = SecretString::from("pw".to_string());
        let pbes2 = "PBES2 PBKDF2-HMAC-SHA-256 2048 iterations AES-256-CBC";
        let des = "pbeWithSHAAnd3-KeyTripleDES-CBC 2048 iterations";
        let mut cases = vec![
            (PfxCompat::Modern, "HMAC-SHA-256, 2048 iterations", pbes2),
            (PfxCompat::Legacy, "HMAC-SHA-1, 2048 iterations", des),
        ];
        if has_pbmac1() {
            let mac = "PBMAC1 HMAC-SHA-256 (key: PBKDF2-HMAC-SHA-256, 2048 iterations)";
            cases.push((PfxCompat::Pbmac1, mac, pbes2));
        }
        for (compat, mac, bags) in cases {
            let der = build(&key, &leaf, &[], "x", &pw, compat).unwrap();
            let p = structure::read(&der).unwrap();
            let m = p.mac.as_ref().unwrap();
            assert_eq!(m.description, mac);
            assert_eq!(m.iterations, 2048);
            assert_eq!(m.salt_length, 16, "{compat:?}");
            let kinds: Vec<_> = p.bags.iter().map(|b| b.bag).collect();
            assert_eq!(kinds, ["encrypted_data", "shrouded_key"], "{compat:?}");
            for b in &p.bags {
                assert_eq!(b.encryption, bags);
                assert_eq!(b.iterations, Some(2048));
            }
            p.check(&crate::pbe::PFX_LIMITS).unwrap();
        }
    }

    #[test]
    fn tampered_files_fail_to_reopen() {
        let (key, leaf) = key_and_cert("leaf");
        let pw = SecretString::from("pw".to_string());
        let der = build(&key, &leaf, &[], "x", &pw, PfxCompat::Modern).unwrap();
        for pos in [der.len() - 20, der.len() / 2] {
            let mut bad = der.clone();
            bad[pos] ^= 0x01;
            assert!(reopen_with_p12_keystore(&bad, "pw").is_err(), "{pos}");
            assert!(reopen_with_openssl(&bad, "pw").is_err(), "{pos}");
        }
        assert!(reopen_with_p12_keystore(&der, "pW").is_err());
        assert!(reopen_with_openssl(b"not a pfx", "pw").is_err());
    }

    /// `der` with its MAC iteration count replaced by `n` (the MAC no longer verifies).
    fn with_mac_iterations(der: &[u8], n: i32) -> Vec<u8> {
        let mut pfx = pkcs12::Pfx::from_der(der).unwrap();
        pfx.mac_data.as_mut().unwrap().iterations = n;
        pfx.to_der().unwrap()
    }

    #[test]
    fn files_asking_for_too_many_iterations_are_refused_at_once() {
        let (key, leaf) = key_and_cert("leaf");
        let pw = SecretString::from("pw".to_string());
        let der = build(&key, &leaf, &[], "x", &pw, PfxCompat::Modern).unwrap();
        let crafted = with_mac_iterations(&der, i32::MAX);
        let t = std::time::Instant::now();
        let e = open(&crafted, &pw).err().unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(matches!(e, PkiError::CostLimit { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("2,147,483,647") && text.contains("1,000,000"),
            "{text}"
        );
        assert!(text.contains("MAC"), "{text}");
        // at the limit it is only a MAC that no longer verifies
        let at = with_mac_iterations(&der, 1_000_000);
        assert!(matches!(
            structure::read(&at).unwrap().check(&crate::pbe::PFX_LIMITS),
            Ok(())
        ));
        assert!(structure::read(b"not DER").is_err());
    }
}
