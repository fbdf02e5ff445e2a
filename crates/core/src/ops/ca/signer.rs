//! Loading a CA's key for signing, and bringing an old key's encryption up to date.

use std::path::Path;

use secrecy::SecretString;

use super::read_cert;
use crate::ops::{OpError, Result};
use crate::pki::PkiError;
use crate::pki::cert::Signer;
use crate::pki::keys::{self, KEY_ITERATIONS, PrivateKey, is_encrypted_pem};
use crate::workspace::audit::Event;
use crate::workspace::fsutil::{self, SECRET};
use crate::workspace::{CaLoc, Workspace};

/// Whether the key of the CA `ca` needs a passphrase.
pub fn key_is_encrypted(ws: &Workspace, ca: &CaLoc) -> Result<bool> {
    let p = ws.ca_key(ca);
    if !p.is_file() {
        return Err(OpError::CaKeyMissing { path: p });
    }
    Ok(is_encrypted_pem(&ws.read(&p)?))
}

/// Loads the CA `ca` for signing, its key from the workspace or from `key_file` (an
/// offline root's, outside it). A key in the workspace encrypted with weaker parameters
/// than `ca init` uses now (fewer than 600,000 PBKDF2 iterations) is re-encrypted under
/// the same passphrase while it is in hand, replacing `ca.key` atomically (mode 0600)
/// once the new file has been read back.
pub fn load_signer(
    ws: &Workspace,
    ca: &CaLoc,
    passphrase: Option<&SecretString>,
    key_file: Option<&Path>,
) -> Result<Signer> {
    let der = read_cert(ws, ca)?;
    let key = load_key(ws, ca, passphrase, key_file)?;
    let signer = Signer::new(&der, &key).map_err(|e| match e {
        PkiError::Invalid(m) => OpError::input(
            &key_file.map_or_else(|| ws.ca_key(ca), Path::to_path_buf),
            PkiError::Invalid(m),
        ),
        other => other.into(),
    })?;
    // best effort: a read-only workspace still signs, and doctor keeps saying "not yet
    // recorded"; the key matching the certificate is what lets an older workspace
    // record it
    let _ = crate::ops::doctor::record_on_unlock(ws, ca, &signer.cert_der);
    Ok(signer)
}

/// The key of the CA `ca` (see [`load_signer`]), re-encrypted with today's parameters
/// when it is in the workspace under weaker ones.
pub fn load_key(
    ws: &Workspace,
    ca: &CaLoc,
    passphrase: Option<&SecretString>,
    key_file: Option<&Path>,
) -> Result<PrivateKey> {
    let env = &ca.env;
    let (key_path, key_pem) = match key_file {
        Some(f) => (f.to_path_buf(), fsutil::read_nofollow(f)?),
        None => {
            let p = ws.ca_key(ca);
            if !p.is_file() {
                return Err(OpError::CaKeyMissing { path: p });
            }
            let pem = ws.read(&p)?;
            (p, pem)
        }
    };
    let key_pem = zeroize::Zeroizing::new(key_pem);
    let loaded = keys::load(&key_pem, passphrase).map_err(|e| match e {
        PkiError::WrongPassphrase => OpError::WrongCaPassphrase {
            path: key_path.clone(),
            var: super::passphrase_var(env),
        },
        PkiError::PassphraseNeeded => OpError::CaPassphraseNeeded {
            path: key_path.clone(),
            var: super::passphrase_var(env),
        },
        other => OpError::input(&key_path, other),
    })?;
    if key_file.is_none()
        && let Some(p) = passphrase
        && loaded.protection.weaker_than_current()
    {
        reencrypt(ws, ca, &loaded.key, p)?;
    }
    Ok(loaded.key)
}

/// Rewrites the CA key encrypted with today's parameters, after checking that the new
/// file opens with `passphrase` and holds the same key.
fn reencrypt(
    ws: &Workspace,
    ca: &CaLoc,
    key: &PrivateKey,
    passphrase: &SecretString,
) -> Result<()> {
    let pem = key.to_encrypted_pkcs8_pem(passphrase)?;
    let back = PrivateKey::from_pem_or_der(&pem, Some(passphrase))?;
    if back.pkcs8_der()? != key.pkcs8_der()? {
        return Err(OpError::Msg(
            "re-encrypting the CA key gave a different key back; ca.key is unchanged".into(),
        ));
    }
    fsutil::write_atomic(&ws.ca_key(ca), &pem, SECRET)?;
    let detail = format!("{ca}: PBES2 PBKDF2-HMAC-SHA-256 {KEY_ITERATIONS} iterations AES-256-CBC");
    let mut ev = Event::new("ca-key-reencrypt");
    ev.env = Some(&ca.env);
    ev.detail = Some(detail);
    ws.audit(&ev)?;
    Ok(())
}
