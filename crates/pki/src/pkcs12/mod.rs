//! PKCS#12 (PFX) bundles in the two compatibility modes DESIGN.md section 5 names, each
//! opened again and checked before it is handed back. `modern` files are written and
//! checked by [`modern`] (fast password derivations); `legacy` files by OpenSSL's
//! PKCS#12 code. Files from elsewhere are always opened by OpenSSL.

mod der;
pub mod modern;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::stack::Stack;
use openssl::x509::X509;
use secrecy::{ExposeSecret, SecretString};

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

/// Iterations of every password derivation in a PFX we write, both profiles: OpenSSL's
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
    let pw = password.expose_secret();
    let (der, held) = match compat {
        PfxCompat::Pbmac1 => {
            return Err(PkiError::Invalid(
                "the pbmac1 PFX target is not available yet".into(),
            ));
        }
        PfxCompat::Modern => {
            let pkcs8 = key.pkcs8_der()?;
            let mut derived = modern::Derived::default();
            let der = modern::write(pkcs8, cert_der, chain, friendly_name, pw, &mut derived)?;
            let c = modern::read_with(&der, pw, &mut derived)?;
            // the certificate tied to the key by its local key id is the leaf
            let (leaf, rest): (Vec<_>, Vec<_>) = c
                .certs
                .into_iter()
                .partition(|f| f.local_key_id.is_some() && f.local_key_id == c.key_local_id);
            let held = Held {
                same_key: c.key_pkcs8.map(|k| k.as_slice() == pkcs8),
                certs: leaf.into_iter().map(|f| f.der).collect(),
                chain: rest.into_iter().map(|f| f.der).collect(),
            };
            (der, held)
        }
        PfxCompat::Legacy => {
            let cert = X509::from_der(cert_der)?;
            let mut ca = Stack::new()?;
            for c in chain {
                ca.push(X509::from_der(c)?)?;
            }
            let mut b = Pkcs12::builder();
            b.name(friendly_name)
                .pkey(key.pkey())
                .cert(&cert)
                .ca(ca)
                .key_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
                .cert_algorithm(Nid::PBE_WITHSHA1AND3_KEY_TRIPLEDES_CBC)
                .key_iter(ITERATIONS)
                .mac_md(MessageDigest::sha1())
                .mac_iter(ITERATIONS);
            let der = b.build2(pw)?.to_der()?;
            let o = open(&der, password)?;
            let held = Held {
                same_key: o.key.map(|k| k.pkey().public_eq(key.pkey())),
                certs: o
                    .cert
                    .map(|c| c.to_der())
                    .transpose()?
                    .into_iter()
                    .collect(),
                chain: o
                    .chain
                    .iter()
                    .map(|c| c.to_der())
                    .collect::<Result<_, _>>()?,
            };
            (der, held)
        }
    };
    check(held, key, cert_der, chain)?;
    Ok(der)
}

/// What a PFX just written turned out to hold, opened again with its password.
struct Held {
    /// None when it holds no key; else whether it is the key that went in.
    same_key: Option<bool>,
    /// The certificates that belong to the key (exactly one is expected).
    certs: Vec<Vec<u8>>,
    /// The other certificates.
    chain: Vec<Vec<u8>>,
}

/// Checks a PFX just written and opened again: it holds the key that went in, that key
/// matches the certificate, the certificate is the one meant, and the whole chain is
/// inside.
fn check(held: Held, key: &PrivateKey, cert_der: &[u8], chain: &[Vec<u8>]) -> Result<()> {
    let invalid = |m: String| Err(PkiError::Invalid(m));
    match held.same_key {
        None => return invalid("the PFX written holds no private key".into()),
        Some(false) => return invalid("the PFX written does not hold the private key".into()),
        Some(true) => {}
    }
    match held.certs.as_slice() {
        [] => return invalid("the PFX written holds no certificate".into()),
        [c] if c.as_slice() == cert_der => {}
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

/// Opens a PFX with its password.
pub fn open(der: &[u8], password: &SecretString) -> Result<Opened> {
    check_password(password)?;
    let p12 = Pkcs12::from_der(der).map_err(|_| PkiError::PfxPassword)?;
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
    use time::{Duration, OffsetDateTime};

    #[test]
    fn both_modes_round_trip_and_wrong_password_fails() {
        let (key, cert) = key_and_cert("x");
        let pw = SecretString::from("pw".to_string());
        for compat in [PfxCompat::Modern, PfxCompat::Legacy] {
            let der = build(&key, &cert, &[], "x", &pw, compat).unwrap();
            assert!(open(&der, &pw).is_ok());
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
    fn modern_files_open_in_openssl_with_name_key_and_chain() {
        let (key, leaf, ca) = ca_and_leaf();
        let pw = SecretString::from("pässwörd-1".to_string());
        let der = build(
            &key,
            &leaf,
            std::slice::from_ref(&ca),
            "Tenant Ä",
            &pw,
            PfxCompat::Modern,
        )
        .unwrap();
        let parsed = Pkcs12::from_der(&der)
            .unwrap()
            .parse2("pässwörd-1")
            .unwrap();
        assert_eq!(
            parsed.cert.unwrap().to_der().unwrap(),
            leaf.to_der().unwrap()
        );
        assert!(parsed.pkey.unwrap().public_eq(key.pkey()));
        let chain: Vec<X509> = parsed.ca.unwrap().into_iter().collect();
        assert_eq!(chain.len(), 1);
        assert_eq!(chain[0].to_der().unwrap(), ca.to_der().unwrap());
        assert!(Pkcs12::from_der(&der).unwrap().parse2("wrong").is_err());
        // and the OpenSSL-based opener that inspect and probe use reads it
        let opened = open(&der, &pw).unwrap();
        assert!(opened.key.is_some());
    }

    #[test]
    fn the_check_names_what_is_missing_or_wrong() {
        let (key, leaf, ca) = ca_and_leaf();
        let (leaf, ca) = (leaf.to_der().unwrap(), ca.to_der().unwrap());
        let chain = vec![ca.clone()];
        let good = || Held {
            same_key: Some(true),
            certs: vec![leaf.clone()],
            chain: vec![ca.clone()],
        };
        assert!(check(good(), &key, &leaf, &chain).is_ok());
        let err = |h: Held, k: &PrivateKey| check(h, k, &leaf, &chain).unwrap_err().to_string();
        let cases = [
            (
                Held {
                    same_key: None,
                    ..good()
                },
                "holds no private key",
            ),
            (
                Held {
                    same_key: Some(false),
                    ..good()
                },
                "does not hold the private key",
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
                    certs: vec![ca.clone()],
                    ..good()
                },
                "holds another certificate",
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
        let (other, _) = key_and_cert("other");
        assert!(err(good(), &other).contains("does not match its certificate"));
    }

    #[test]
    fn openssl_agrees_on_empty_and_astral_passwords() {
        let (key, leaf) = key_and_cert("leaf");
        for pw in ["", "key \u{1F511} and \u{00E9}"] {
            let secret = SecretString::from(pw.to_string());
            let der = build(&key, &leaf, &[], "x", &secret, PfxCompat::Modern).unwrap();
            let parsed = Pkcs12::from_der(&der).unwrap().parse2(pw).unwrap();
            assert!(parsed.pkey.unwrap().public_eq(key.pkey()), "{pw:?}");
            assert!(Pkcs12::from_der(&der).unwrap().parse2("other").is_err());
        }
    }

    #[test]
    fn modern_reader_opens_what_openssl_writes() {
        let (key, leaf, ca) = ca_and_leaf();
        let mut stack = Stack::new().unwrap();
        stack.push(ca.clone()).unwrap();
        let mut b = Pkcs12::builder();
        b.name("x").pkey(key.pkey()).cert(&leaf).ca(stack);
        let der = b.build2("pw").unwrap().to_der().unwrap();
        let c = modern::read(&der, "pw").unwrap();
        let k = openssl::pkey::PKey::private_key_from_pkcs8(&c.key_pkcs8.unwrap()).unwrap();
        assert!(k.public_eq(key.pkey()));
        assert_eq!(c.certs.len(), 2);
        let leaf_der = leaf.to_der().unwrap();
        let found = c.certs.iter().find(|f| f.der == leaf_der).unwrap();
        assert_eq!(found.local_key_id, c.key_local_id);
        assert!(matches!(
            modern::read(&der, "pW"),
            Err(PkiError::PfxPassword)
        ));
    }

    #[test]
    fn remembered_keys_serve_only_the_same_password_and_parameters() {
        let (key, leaf, ca) = ca_and_leaf();
        let pkcs8 = key.pkey().private_key_to_pkcs8().unwrap();
        let (cert, chain) = (leaf.to_der().unwrap(), vec![ca.to_der().unwrap()]);
        let mut d = modern::Derived::default();
        let der = modern::write(&pkcs8, &cert, &chain, "x", "right", &mut d).unwrap();
        // another password does not get the remembered keys
        assert!(matches!(
            modern::read_with(&der, "wrong", &mut d),
            Err(PkiError::PfxPassword)
        ));
        let c = modern::read_with(&der, "right", &mut d).unwrap();
        assert_eq!(c.key_pkcs8.unwrap().as_slice(), &pkcs8[..]);
        // a changed MAC salt misses the memory and fails the MAC; a changed byte of
        // ciphertext fails too
        for pos in [der.len() - 20, der.len() / 2] {
            let mut bad = der.clone();
            bad[pos] ^= 0x01;
            assert!(modern::read_with(&bad, "right", &mut d).is_err(), "{pos}");
        }
    }

    #[test]
    fn modern_reader_refuses_tampering_and_legacy_files() {
        let (key, leaf) = key_and_cert("leaf");
        let pw = SecretString::from("pw".to_string());
        let mut der = build(&key, &leaf, &[], "x", &pw, PfxCompat::Modern).unwrap();
        let mid = der.len() / 2;
        der[mid] ^= 1;
        assert!(modern::read(&der, "pw").is_err());
        let legacy = build(&key, &leaf, &[], "x", &pw, PfxCompat::Legacy).unwrap();
        assert!(modern::read(&legacy, "pw").is_err());
        assert!(modern::read(b"not a pfx", "pw").is_err());
    }
}
