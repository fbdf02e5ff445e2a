//! Environment CAs: creation, loading for signing, CRL refresh.

use std::path::PathBuf;

use openssl::x509::X509;
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::pki::PkiError;
use crate::pki::cert::{self, Signer};
use crate::pki::crl;
use crate::pki::inspect::{CertInfo, cert_info};
use crate::pki::keys::{self, KEY_ITERATIONS, PrivateKey, is_encrypted_pem};
use crate::profile::{Profiles, ResolvedCa};
use crate::workspace::audit::Event;
use crate::workspace::fsutil::{self, PUBLIC, SECRET};
use crate::workspace::{Workspace, WsError};

#[derive(Debug, Serialize)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub crl: PathBuf,
}

/// What `ca init` and `ca show` report.
#[derive(Debug, Serialize)]
pub struct CaReport {
    pub env: String,
    /// false when the CA already existed and nothing was written.
    pub created: bool,
    pub key_encrypted: bool,
    pub files: CaFiles,
    #[serde(flatten)]
    pub cert: CertInfo,
    pub sha256: String,
}

pub fn files(ws: &Workspace, env: &str) -> CaFiles {
    CaFiles {
        cert: ws.ca_cert(env),
        key: ws.ca_key(env),
        crl: ws.crl(env),
    }
}

pub fn exists(ws: &Workspace, env: &str) -> bool {
    ws.ca_cert(env).is_file()
}

/// The CA certificate of `env`, or an error telling how to create it.
pub fn ca_cert_der(ws: &Workspace, profiles: &Profiles, env: &str) -> Result<Vec<u8>> {
    profiles.check_env(env)?;
    let p = ws.ca_cert(env);
    if !p.is_file() {
        let ca = profiles.resolve_ca(env)?;
        if ca.external.value {
            return Err(OpError::Msg(format!(
                "environment '{env}' uses an external CA (ca.external in its profile): make a request with `mtlsctl csr --tenant T --env {env}` and bring the certificate back with `mtlsctl import`"
            )));
        }
        return Err(OpError::Msg(format!(
            "environment '{env}' has no CA yet: run `mtlsctl ca init --env {env}`"
        )));
    }
    let pem = fsutil::read(&p)?;
    let ders = crate::pki::inspect::certificates(&pem).map_err(|e| WsError::Corrupt {
        path: p.clone(),
        reason: e.to_string(),
    })?;
    Ok(ders.into_iter().next().expect("at least one"))
}

pub fn report(ws: &Workspace, profiles: &Profiles, env: &str, created: bool) -> Result<CaReport> {
    let der = ca_cert_der(ws, profiles, env)?;
    let info = cert_info(&der)?;
    let key_encrypted = std::fs::read(ws.ca_key(env))
        .map(|k| is_encrypted_pem(&k))
        .unwrap_or(false);
    Ok(CaReport {
        env: env.to_string(),
        created,
        key_encrypted,
        files: files(ws, env),
        sha256: crate::pki::fingerprint::hex(&crate::pki::fingerprint::sha256(&der)),
        cert: info,
    })
}

/// The shortest passphrase `ca init` accepts for a new CA key, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// The environment variable that holds `env`'s CA passphrase, read before
/// MTLSCTL_CA_PASSPHRASE: MTLSCTL_CA_PASSPHRASE_<ENV>, upper-cased, `-` and `.` as `_`.
pub fn passphrase_var(env: &str) -> String {
    format!(
        "MTLSCTL_CA_PASSPHRASE_{}",
        env.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// Refuses a new CA passphrase shorter than [`MIN_PASSPHRASE_CHARS`].
pub fn check_new_passphrase(passphrase: &SecretString) -> Result<()> {
    let n = secrecy::ExposeSecret::expose_secret(passphrase)
        .chars()
        .count();
    if n < MIN_PASSPHRASE_CHARS {
        return Err(OpError::Msg(format!(
            "the new CA passphrase has {n} characters: use at least {MIN_PASSPHRASE_CHARS} (a generated one from your secret store is best)"
        )));
    }
    Ok(())
}

/// Creates `env`'s root CA from its profile unless it exists. The key is written as
/// encrypted PKCS#8 under `passphrase` (plain only when `passphrase` is None, which the
/// CLI allows only with --no-passphrase), which must have at least
/// [`MIN_PASSPHRASE_CHARS`] characters. An initial empty CRL is signed too.
pub fn init(
    ws: &Workspace,
    profiles: &Profiles,
    ca: &ResolvedCa,
    passphrase: Option<&SecretString>,
    now: OffsetDateTime,
) -> Result<CaReport> {
    let env = &ca.env;
    if exists(ws, env) {
        return report(ws, profiles, env, false);
    }
    if ca.external.value {
        return Err(OpError::Msg(format!(
            "environment '{env}' declares an external CA (ca.external: true), so mtlsctl does not create one; use `mtlsctl csr` and `mtlsctl import`"
        )));
    }
    if let Some(p) = passphrase {
        check_new_passphrase(p)?;
    }
    let key = PrivateKey::generate(ca.key.value)?;
    let built = cert::self_signed_ca(&ca.ca_request(), &key, now)?;
    let key_pem = match passphrase {
        Some(p) => key.to_encrypted_pkcs8_pem(p)?,
        None => key.to_pkcs8_pem()?.to_vec(),
    };
    let signer = Signer::new(&built.der, &key)?;
    let (crl_pem, _) = crl::sign(&signer, 1, &[], ca.crl_validity.value.to_time(), now)?;

    fsutil::private_dir(&ws.ca_dir(env))?;
    // key first: a CA certificate without its key is useless, a key alone is harmless
    fsutil::write_new(&ws.ca_key(env), &key_pem, SECRET)?;
    fsutil::write_atomic(&ws.crl(env), crl_pem.as_bytes(), PUBLIC)?;
    ws.save_ca_state(
        env,
        &crate::workspace::inventory::CaState {
            crl_number: 1,
            revocations: Vec::new(),
        },
    )?;
    fsutil::write_new(&ws.ca_cert(env), built.pem.as_bytes(), PUBLIC)?;
    let serial = crate::pki::serial::to_hex(&built.serial);
    let sha = crate::pki::fingerprint::hex(&crate::pki::fingerprint::sha256(&built.der));
    let mut ev = Event::new("ca-init");
    ev.env = Some(env);
    ev.serial = Some(&serial);
    ev.sha256 = Some(&sha);
    ws.audit(&ev)?;
    report(ws, profiles, env, true)
}

/// Whether `env`'s CA key needs a passphrase.
pub fn key_is_encrypted(ws: &Workspace, env: &str) -> Result<bool> {
    let p = ws.ca_key(env);
    if !p.is_file() {
        return Err(OpError::Msg(format!(
            "the CA key {} is missing: restore it from backup (the certificate alone cannot sign)",
            p.display()
        )));
    }
    Ok(is_encrypted_pem(&fsutil::read(&p)?))
}

/// Loads `env`'s CA for signing. A key encrypted with weaker parameters than `ca init`
/// uses now (fewer than 600,000 PBKDF2 iterations: every key written before that) is
/// re-encrypted under the same passphrase while it is in hand, replacing `ca.key`
/// atomically (mode 0600) once the new file has been read back.
pub fn signer(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    passphrase: Option<&SecretString>,
) -> Result<Signer> {
    let der = ca_cert_der(ws, profiles, env)?;
    let key_path = ws.ca_key(env);
    let key_pem = zeroize::Zeroizing::new(fsutil::read(&key_path)?);
    let sources = format!(
        "--ca-passphrase-file, {} or MTLSCTL_CA_PASSPHRASE",
        passphrase_var(env)
    );
    let loaded = keys::load(&key_pem, passphrase).map_err(|e| match e {
        PkiError::WrongPassphrase => OpError::Msg(format!(
            "the passphrase does not decrypt the CA key {}: check {sources}",
            key_path.display()
        )),
        PkiError::PassphraseNeeded => OpError::Msg(format!(
            "the CA key {} is encrypted: give its passphrase with {sources}",
            key_path.display()
        )),
        other => OpError::Msg(format!("the CA key {}: {other}", key_path.display())),
    })?;
    if let Some(p) = passphrase
        && loaded.protection.weaker_than_current()
    {
        reencrypt(ws, env, &loaded.key, p)?;
    }
    Ok(Signer::new(&der, &loaded.key)?)
}

/// Rewrites `env`'s CA key encrypted with today's parameters, after checking that the new
/// file opens with `passphrase` and holds the same key.
fn reencrypt(ws: &Workspace, env: &str, key: &PrivateKey, passphrase: &SecretString) -> Result<()> {
    let pem = key.to_encrypted_pkcs8_pem(passphrase)?;
    let back = PrivateKey::from_pem_or_der(&pem, Some(passphrase))?;
    if back.pkcs8_der()? != key.pkcs8_der()? {
        return Err(OpError::Msg(
            "re-encrypting the CA key gave a different key back; ca.key is unchanged".into(),
        ));
    }
    fsutil::write_atomic(&ws.ca_key(env), &pem, SECRET)?;
    let detail = format!("PBES2 PBKDF2-HMAC-SHA-256 {KEY_ITERATIONS} iterations AES-256-CBC");
    let mut ev = Event::new("ca-key-reencrypt");
    ev.env = Some(env);
    ev.detail = Some(detail);
    ws.audit(&ev)?;
    Ok(())
}

/// The chain a leaf of `env` is handed with: the CA certificate(s), as X509.
pub fn chain(ws: &Workspace, profiles: &Profiles, env: &str) -> Result<Vec<X509>> {
    let der = ca_cert_der(ws, profiles, env)?;
    Ok(vec![X509::from_der(&der).map_err(PkiError::from)?])
}
