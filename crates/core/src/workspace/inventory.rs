//! What the workspace has issued. The certificates on disk are the truth; `meta.json`
//! beside each holds what a certificate cannot say (tenant, env, kind, status,
//! supersession, revocation), and `state.json` beside each CA holds its CRL number and
//! revocations.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::fsutil::{self, PUBLIC};
use super::{Workspace, WsError};
use crate::pki::Kind;

pub const META: &str = "meta.json";
pub const CERT: &str = "cert.pem";
pub const KEY: &str = "key.pem";
pub const CHAIN: &str = "chain.pem";
pub const PFX: &str = "bundle.pfx";
pub const PFX_PASS: &str = "bundle.pfx.pass";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Active,
    Superseded,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Superseded => "superseded",
            Status::Revoked => "revoked",
        }
    }
}

/// The metadata of one issued leaf.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeafMeta {
    pub serial: String,
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub status: Status,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub subject: String,
    pub sha256: String,
    /// "issue", "import", "renew" or "sign".
    pub origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_from: Option<String>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    /// The renewal window (seconds) this certificate was issued with, when it was not the
    /// profile's own: given by --renew-before, or a third of a life the profile's window
    /// did not fit. Absent, the profile's current window applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_before_secs: Option<i64>,
}

impl LeafMeta {
    /// The renewal window that applies to this certificate: its own when it was issued
    /// with one, else the profile's `window`.
    pub fn fit_window(&self, window: time::Duration) -> time::Duration {
        self.renew_before_secs
            .map(time::Duration::seconds)
            .unwrap_or(window)
    }
}

/// A leaf found on disk.
#[derive(Clone, Debug)]
pub struct LeafRecord {
    pub dir: PathBuf,
    pub meta: LeafMeta,
}

impl LeafRecord {
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT)
    }
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY)
    }
    pub fn chain_path(&self) -> PathBuf {
        self.dir.join(CHAIN)
    }
    pub fn pfx_path(&self) -> PathBuf {
        self.dir.join(PFX)
    }
    pub fn pfx_pass_path(&self) -> PathBuf {
        self.dir.join(PFX_PASS)
    }
    pub fn has_pfx(&self) -> bool {
        self.pfx_path().is_file()
    }

    /// Rewrites meta.json atomically.
    pub fn save(&self) -> Result<(), WsError> {
        let json = serde_json::to_vec_pretty(&self.meta).expect("metadata serialises");
        fsutil::write_atomic(&self.dir.join(META), &json, PUBLIC)
    }
}

fn read_meta(path: &Path) -> Result<LeafMeta, WsError> {
    let bytes = fsutil::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| WsError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn subdirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match fs::read_dir(p) {
        Ok(rd) => rd
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Filters for [`Workspace::leaves`].
#[derive(Clone, Debug, Default)]
pub struct Filter<'a> {
    pub tenant: Option<&'a str>,
    pub env: Option<&'a str>,
    pub kind: Option<Kind>,
}

impl Workspace {
    /// Every issued leaf matching `f`, oldest first within each tenant/env/kind.
    pub fn leaves(&self, f: &Filter<'_>) -> Result<Vec<LeafRecord>, WsError> {
        let mut out = Vec::new();
        let pki = self.root().join("pki");
        // a named env or tenant is one folder: no need to list its siblings
        let env_dirs = match f.env {
            Some(e) => one(&pki, e),
            None => subdirs(&pki),
        };
        for env_dir in env_dirs {
            let tenant_dirs = match f.tenant {
                Some(t) => one(&env_dir, t),
                None => subdirs(&env_dir),
            };
            for tenant_dir in tenant_dirs {
                let tenant = name_of(&tenant_dir);
                if tenant == "ca" || f.tenant.is_some_and(|t| t != tenant) {
                    continue;
                }
                let kind_dirs = match f.kind {
                    Some(k) => vec![tenant_dir.join(k.as_str())],
                    None => subdirs(&tenant_dir),
                };
                for kind_dir in kind_dirs {
                    if name_of(&kind_dir).parse::<Kind>().is_err() {
                        continue;
                    }
                    let mut recs = Vec::new();
                    for leaf_dir in subdirs(&kind_dir) {
                        let meta_path = leaf_dir.join(META);
                        if !meta_path.is_file() {
                            continue; // pending/ and similar
                        }
                        recs.push(LeafRecord {
                            meta: read_meta(&meta_path)?,
                            dir: leaf_dir,
                        });
                    }
                    recs.sort_by_key(|r| r.meta.issued_at);
                    out.extend(recs);
                }
            }
        }
        Ok(out)
    }

    /// The newest active leaf of tenant/env/kind, if any.
    pub fn current_leaf(
        &self,
        tenant: &str,
        env: &str,
        kind: Kind,
    ) -> Result<Option<LeafRecord>, WsError> {
        // straight to the one folder: `issue --all` asks this once per tenant
        let mut recs = Vec::new();
        for leaf_dir in subdirs(&self.kind_dir(env, tenant, kind)) {
            let meta_path = leaf_dir.join(META);
            if meta_path.is_file() {
                recs.push(LeafRecord {
                    meta: read_meta(&meta_path)?,
                    dir: leaf_dir,
                });
            }
        }
        recs.sort_by_key(|r| r.meta.issued_at);
        Ok(recs
            .into_iter()
            .rev()
            .find(|r| r.meta.status == Status::Active))
    }

    /// Finds a leaf of `env` by serial (any tenant, any kind).
    pub fn leaf_by_serial(&self, env: &str, serial: &str) -> Result<Option<LeafRecord>, WsError> {
        let recs = self.leaves(&Filter {
            env: Some(env),
            ..Filter::default()
        })?;
        Ok(recs.into_iter().find(|r| r.meta.serial == serial))
    }
}

/// `parent/name` when `name` is a plain folder name (never `..` or a path).
fn one(parent: &Path, name: &str) -> Vec<PathBuf> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
        Vec::new()
    } else {
        vec![parent.join(name)]
    }
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One revocation as the CA records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revocation {
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// What a CA remembers between runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CaState {
    /// The number of the last CRL signed (0: none yet).
    pub crl_number: u64,
    #[serde(default)]
    pub revocations: Vec<Revocation>,
}

impl Workspace {
    pub fn load_ca_state(&self, env: &str) -> Result<CaState, WsError> {
        let p = self.ca_state(env);
        if !p.exists() {
            return Ok(CaState::default());
        }
        let bytes = fsutil::read(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| WsError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    pub fn save_ca_state(&self, env: &str, st: &CaState) -> Result<(), WsError> {
        let json = serde_json::to_vec_pretty(st).expect("state serialises");
        fsutil::write_atomic(&self.ca_state(env), &json, PUBLIC)
    }
}
