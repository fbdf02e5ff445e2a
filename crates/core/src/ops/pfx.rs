//! Standalone PFX bundling from PEM/DER files.

use std::path::Path;

use openssl::x509::X509;
use secrecy::SecretString;

use super::{OpError, Result};
use crate::pki::PkiError;
use crate::pki::inspect::certificates;
use crate::pki::keys::PrivateKey;
use crate::pki::pkcs12::{self, PfxCompat};
use crate::workspace::fsutil::{self, SECRET};

/// Whether the private key file at `path` is encrypted (so its passphrase is needed).
/// An unreadable file is not: reading it later says what is wrong.
pub fn key_is_encrypted(path: &Path) -> bool {
    fsutil::read(path)
        .map(|d| {
            crate::pki::keys::is_encrypted_pem(&d) || crate::pki::keys::encryption_of(&d).is_some()
        })
        .unwrap_or(false)
}

pub struct Request<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub chain: Option<&'a Path>,
    pub out: &'a Path,
    pub key_passphrase: Option<&'a SecretString>,
    pub password: &'a SecretString,
    pub compat: PfxCompat,
    pub friendly_name: Option<&'a str>,
    pub overwrite: bool,
}

pub struct Outcome {
    pub chain_len: usize,
    pub friendly_name: String,
    pub subject: String,
}

fn load_certs(p: &Path) -> Result<Vec<X509>> {
    let data = fsutil::read(p)?;
    let ders = certificates(&data).map_err(|e| OpError::input(p, e))?;
    ders.iter()
        .map(|d| X509::from_der(d).map_err(|e| PkiError::from(e).into()))
        .collect()
}

/// Builds, checks and writes (0600, atomically) a PFX.
pub fn bundle(r: &Request<'_>) -> Result<Outcome> {
    let mut certs = load_certs(r.cert)?;
    let leaf = certs.remove(0);
    let mut chain = certs; // a fullchain file carries its chain
    if let Some(c) = r.chain {
        chain.extend(load_certs(c)?);
    }
    let key_bytes = zeroize::Zeroizing::new(fsutil::read(r.key)?);
    let key = PrivateKey::from_pem_or_der(&key_bytes, r.key_passphrase).map_err(|e| match e {
        PkiError::PassphraseNeeded => OpError::KeyPassphraseNeeded {
            path: r.key.to_path_buf(),
        },
        other => OpError::input(r.key, other),
    })?;
    if !leaf
        .public_key()
        .map_err(PkiError::from)?
        .public_eq(key.pkey())
    {
        return Err(OpError::KeyMismatch {
            key: r.key.to_path_buf(),
            cert: r.cert.to_path_buf(),
        });
    }
    let info = crate::pki::inspect::cert_info(&leaf.to_der().map_err(PkiError::from)?)?;
    let name = r.friendly_name.map(str::to_string).unwrap_or_else(|| {
        leaf.subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .and_then(|e| e.data().to_string().ok())
            .unwrap_or_else(|| info.serial.clone())
    });
    let der = pkcs12::build(&key, &leaf, &chain, &name, r.password, r.compat)?;
    if r.overwrite {
        fsutil::write_atomic(r.out, &der, SECRET)?;
    } else {
        fsutil::write_new(r.out, &der, SECRET).map_err(|e| match e {
            crate::workspace::WsError::Exists(p) => OpError::OutputExists { path: p },
            o => o.into(),
        })?;
    }
    Ok(Outcome {
        chain_len: chain.len(),
        friendly_name: name,
        subject: info.subject,
    })
}
