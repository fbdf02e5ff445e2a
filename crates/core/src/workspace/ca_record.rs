//! `pki/<env>/ca/ca.json`: what the tool recorded about an environment's CA, so that a
//! run can check what it reads back without the CA passphrase. The encrypted key's
//! public half cannot be read without the passphrase, so the record keeps the SHA-256
//! of the CA certificate's public key, taken when the key was known to match it; and it
//! keeps a second copy of the highest CRL number signed, beside the one in state.json,
//! so that losing either file never makes the number go back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::fsutil::{self, PUBLIC};
use super::{Workspace, WsError};

/// The record's file name, beside ca.crt.
pub const CA_RECORD: &str = "ca.json";

/// The current format of ca.json.
pub const FORMAT: u32 = 1;

/// What ca.json holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaRecord {
    pub format: u32,
    pub env: String,
    /// SHA-256 (hex) of the CA certificate's DER SubjectPublicKeyInfo.
    pub spki_sha256: String,
    /// SHA-256 (hex) of the CA certificate's DER, when it was recorded.
    pub cert_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// "ca-init" (written with the CA), "signer" (written when the key was loaded and
    /// matched the certificate) or "doctor" (taken by `doctor --repair` from ca.crt as
    /// found; a later run that loads the key confirms it and says "signer").
    pub recorded_by: String,
    /// The highest CRL number signed (0: none yet).
    #[serde(default)]
    pub crl_number: u64,
}

impl Workspace {
    pub fn ca_record_path(&self, ca: impl Into<super::CaLoc>) -> PathBuf {
        self.ca_dir(ca).join(CA_RECORD)
    }

    /// The record, or None when there is none yet.
    pub fn load_ca_record(&self, ca: impl Into<super::CaLoc>) -> Result<Option<CaRecord>, WsError> {
        let p = self.ca_record_path(ca);
        if !p.exists() {
            return Ok(None);
        }
        let bytes = self.read(&p)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| WsError::Corrupt {
                path: p,
                reason: e.to_string(),
            })
    }

    /// Writes the record atomically (0644: it holds only public facts).
    pub fn save_ca_record(
        &self,
        ca: impl Into<super::CaLoc>,
        rec: &CaRecord,
    ) -> Result<(), WsError> {
        let json = serde_json::to_vec_pretty(rec).expect("record serialises");
        fsutil::write_atomic(&self.ca_record_path(ca), &json, PUBLIC)
    }
}
