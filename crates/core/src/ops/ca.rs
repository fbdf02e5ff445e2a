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
use crate::pki::keys::{PrivateKey, is_encrypted_pem};
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
            return Err(OpError::ExternalCa { env: env.into() });
        }
        return Err(OpError::NoCa { env: env.into() });
    }
    let pem = ws.read(&p)?;
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

/// Creates `env`'s root CA from its profile unless it exists. The key is written as
/// encrypted PKCS#8 under `passphrase` (plain only when `passphrase` is None, which the
/// CLI allows only with --no-passphrase). An initial empty CRL is signed too.
pub fn init(
    ws: &Workspace,
    profiles: &Profiles,
    ca: &ResolvedCa,
    passphrase: Option<&SecretString>,
    now: OffsetDateTime,
) -> Result<CaReport> {
    ws.audit_preflight()?;
    let env = &ca.env;
    if exists(ws, env) {
        return report(ws, profiles, env, false);
    }
    if ca.external.value {
        return Err(OpError::Msg(format!(
            "environment '{env}' declares an external CA (ca.external: true), so mtlsctl does not create one; use `mtlsctl csr` and `mtlsctl import`"
        )));
    }
    let key = PrivateKey::generate(ca.key.value)?;
    let built = cert::self_signed_ca(&ca.ca_request(), &key, now)?;
    let key_pem = match passphrase {
        Some(p) => key.to_encrypted_pkcs8_pem(p)?,
        None => key.to_pkcs8_pem()?.to_vec(),
    };
    let signer = Signer::new(&built.der, &key)?;
    let (crl_pem, _) = crl::sign(&signer, 1, &[], ca.crl_validity.value.to_time(), now)?;

    ws.check_no_symlink(&ws.ca_dir(env))?;
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
    // what later runs check ca.crt against without the passphrase
    super::doctor::record_ca(ws, env, &built.der, "ca-init", 1)?;
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
        return Err(OpError::CaKeyMissing { path: p });
    }
    Ok(is_encrypted_pem(&ws.read(&p)?))
}

/// Loads `env`'s CA for signing.
pub fn signer(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    passphrase: Option<&SecretString>,
) -> Result<Signer> {
    let der = ca_cert_der(ws, profiles, env)?;
    let key_path = ws.ca_key(env);
    let key_pem = zeroize::Zeroizing::new(ws.read(&key_path)?);
    let key = PrivateKey::from_pem_or_der(&key_pem, passphrase).map_err(|e| match e {
        PkiError::WrongPassphrase => OpError::WrongCaPassphrase {
            path: key_path.clone(),
        },
        PkiError::PassphraseNeeded => OpError::CaPassphraseNeeded {
            path: key_path.clone(),
        },
        other => other.into(),
    })?;
    Ok(Signer::new(&der, &key)?)
}

/// The chain a leaf of `env` is handed with: the CA certificate(s), as X509, checked
/// as [`open`] checks them.
pub fn chain(ws: &Workspace, profiles: &Profiles, env: &str) -> Result<Vec<X509>> {
    Ok(open(ws, profiles, env)?.chain)
}

/// An environment's CA as every operation sees it: its settings, the issuing chain
/// handed with each leaf, the trust bundle a gateway installs and the CRL of each CA in
/// it. [`open`] needs no passphrase; [`EnvCa::unlock`] adds the signer. This is the one
/// place that knows how an environment's CAs are laid out on disk.
pub struct EnvCa {
    pub env: String,
    pub settings: ResolvedCa,
    /// The issuing chain, issuing CA first.
    chain: Vec<X509>,
    /// DER of every CA a gateway must trust now.
    pub trust: Vec<Vec<u8>>,
    /// The current CRL file of each CA in the chain.
    pub crls: Vec<PathBuf>,
}

/// An [`EnvCa`] whose issuing key is loaded: it can sign leaves and CRLs.
pub struct CaSigner<'a> {
    pub ca: &'a EnvCa,
    pub signer: Signer,
}

/// Opens `env`'s CA, or explains how to create it (or that the env's CA is external).
/// Refuses a CA certificate whose public key is not the one recorded for `env`
/// ([`super::doctor::check_ca_cert`]).
pub fn open(ws: &Workspace, profiles: &Profiles, env: &str) -> Result<EnvCa> {
    let settings = profiles.resolve_ca(env)?;
    let der = ca_cert_der(ws, profiles, env)?;
    super::doctor::check_ca_cert(ws, env, &der)?;
    let x = X509::from_der(&der).map_err(PkiError::from)?;
    Ok(EnvCa {
        env: env.to_string(),
        settings,
        chain: vec![x],
        trust: vec![der],
        crls: vec![ws.crl(env)],
    })
}

impl EnvCa {
    /// The chain handed with each leaf, issuing CA first.
    pub fn chain(&self) -> &[X509] {
        &self.chain
    }

    /// Whether the issuing key needs a passphrase.
    pub fn key_is_encrypted(&self, ws: &Workspace) -> Result<bool> {
        key_is_encrypted(ws, &self.env)
    }

    /// Loads the issuing key with `passphrase` (None for an unencrypted key). The key
    /// matching the certificate is what lets a workspace older than ca.json record it.
    pub fn unlock(
        &self,
        ws: &Workspace,
        profiles: &Profiles,
        passphrase: Option<&SecretString>,
    ) -> Result<CaSigner<'_>> {
        let signer = signer(ws, profiles, &self.env, passphrase)?;
        // best effort: a read-only workspace still signs, and doctor keeps saying
        // "not yet recorded"
        let _ = super::doctor::record_on_unlock(ws, &self.env, &signer.cert_der);
        Ok(CaSigner { ca: self, signer })
    }
}
