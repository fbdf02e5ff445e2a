//! Environment CAs: creation, loading for signing, CRL refresh.

use std::path::PathBuf;

use openssl::x509::X509;
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::fault::{self, Fault};
use crate::pki::PkiError;
use crate::pki::cert::{self, Signer};
use crate::pki::crl;
use crate::pki::inspect::{CertInfo, cert_info};
use crate::pki::keys::{self, KEY_ITERATIONS, PrivateKey, is_encrypted_pem};
use crate::profile::{Profiles, ResolvedCa};
use crate::workspace::audit::Event;
use crate::workspace::fsutil::{self, NewFile, PUBLIC, SECRET};
use crate::workspace::inventory::CaState;
use crate::workspace::journal::{CaStep, Intent};
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
    /// Where `ca init` moved a CA folder that had no ca.crt (left by an older version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_aside: Option<PathBuf>,
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
        moved_aside: None,
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
        return Err(OpError::PassphraseTooShort {
            chars: n,
            min: MIN_PASSPHRASE_CHARS,
        });
    }
    Ok(())
}

/// Creates `env`'s root CA from its profile unless it exists. The key is written as
/// encrypted PKCS#8 under `passphrase` (plain only when `passphrase` is None, which the
/// CLI allows only with --no-passphrase). An initial empty CRL is signed too. The serial
/// is drawn and the intent journaled first; the CA folder is staged whole in
/// `pki/<env>/.stage-ca` and renamed to `pki/<env>/ca`, so a kill leaves no half-made CA
/// in place. A `pki/<env>/ca` without ca.crt (from an older version) is moved aside first
/// (the report's `moved_aside`).
/// The passphrase must have at least [`MIN_PASSPHRASE_CHARS`] characters.
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
        return Err(OpError::ExternalCaNotCreated { env: env.clone() });
    }
    if let Some(p) = passphrase {
        check_new_passphrase(p)?;
    }
    let serial = crate::pki::serial::random_serial()?;
    let mut intent = Intent::new("ca-init", now);
    let audit = intent.audit_step("ca-init", None);
    intent.ca = Some(CaStep {
        env: env.clone(),
        serial: crate::pki::serial::to_hex(&serial),
        audit,
    });
    let journal = ws.begin(&intent)?;
    let step = intent.ca.as_ref().expect("journaled above");
    let (moved_aside, sha) = match build_and_place(ws, ca, passphrase, now, &serial) {
        Ok(m) => m,
        Err(e) => {
            // a failed stage removes itself; a CA in place keeps the journal for its audit line
            if !exists(ws, env) {
                journal.done();
            }
            return Err(e);
        }
    };
    let mut ev = step.audit.event();
    ev.env = Some(env);
    ev.serial = Some(&step.serial);
    ev.sha256 = Some(&sha);
    super::issue::audit(ws, &[ev], true)?;
    journal.done();
    let mut rep = report(ws, profiles, env, true)?;
    rep.moved_aside = moved_aside;
    Ok(rep)
}

/// Makes the CA (key, certificate under `serial`, first CRL, state) and puts its folder
/// in place: staged with the key first and ca.crt last, each file fsynced, then renamed.
/// Returns where a CA folder without ca.crt was moved aside (if there was one) and the
/// certificate's SHA-256.
fn build_and_place(
    ws: &Workspace,
    ca: &ResolvedCa,
    passphrase: Option<&SecretString>,
    now: OffsetDateTime,
    serial: &[u8; 16],
) -> Result<(Option<PathBuf>, String)> {
    let key = PrivateKey::generate(ca.key.value)?;
    let built = cert::self_signed_ca_with_serial(&ca.ca_request(), &key, now, serial)?;
    let key_pem = match passphrase {
        Some(p) => key.to_encrypted_pkcs8_pem(p)?,
        None => key.to_pkcs8_pem()?.to_vec(),
    };
    let signer = Signer::new(&built.der, &key)?;
    let (crl_pem, _) = crl::sign(&signer, 1, &[], ca.crl_validity.value.to_time(), now)?;
    fault::hit(Fault::AfterSign);
    let state = CaState {
        crl_number: 1,
        revocations: Vec::new(),
    };
    let state_json = serde_json::to_vec_pretty(&state).expect("state serialises");
    ws.check_no_symlink(&ws.ca_dir(&ca.env))?;
    let moved = ws.move_aside_broken_ca(&ca.env)?;
    let dir = ws.ca_dir(&ca.env);
    let file = |name, bytes, mode| NewFile { name, bytes, mode };
    // key first, certificate last: a staged CA is complete when its ca.crt reads
    let staged = fsutil::stage_dir_synced(
        &dir,
        &[
            file("ca.key", &key_pem, SECRET),
            file("crl.pem", crl_pem.as_bytes(), PUBLIC),
            file("state.json", &state_json, PUBLIC),
            file("ca.crt", built.pem.as_bytes(), PUBLIC),
        ],
    )?;
    fault::hit(Fault::AfterStage);
    staged.commit()?;
    fsutil::sync_dir(dir.parent().unwrap_or(ws.root()))?;
    fault::hit(Fault::AfterPlace);
    // what later runs check ca.crt against without the passphrase
    super::doctor::record_ca(ws, &ca.env, &built.der, "ca-init", 1)?;
    let sha = crate::pki::fingerprint::hex(&crate::pki::fingerprint::sha256(&built.der));
    Ok((moved, sha))
}

/// Whether `env`'s CA key needs a passphrase.
pub fn key_is_encrypted(ws: &Workspace, env: &str) -> Result<bool> {
    let p = ws.ca_key(env);
    if !p.is_file() {
        return Err(OpError::CaKeyMissing { path: p });
    }
    Ok(is_encrypted_pem(&ws.read(&p)?))
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
    let key_pem = zeroize::Zeroizing::new(ws.read(&key_path)?);
    let loaded = keys::load(&key_pem, passphrase).map_err(|e| match e {
        PkiError::WrongPassphrase => OpError::WrongCaPassphrase {
            path: key_path.clone(),
            var: passphrase_var(env),
        },
        PkiError::PassphraseNeeded => OpError::CaPassphraseNeeded {
            path: key_path.clone(),
            var: passphrase_var(env),
        },
        other => OpError::input(&key_path, other),
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
