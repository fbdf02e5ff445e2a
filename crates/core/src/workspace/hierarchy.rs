//! Where an environment's CAs live, and `hierarchy.json`, the record of which CA is
//! which.
//!
//! A CA set is the CAs certificates of one scope chain to: an environment's
//! (`pki/<env>/ca`) or, with `ca.scope: tenant`, one tenant's in that environment
//! (`pki/<env>/<tenant>/ca`). The set's first root lives in the set's folder itself
//! (ca.crt, ca.key, crl.pem, state.json, ca.json), which is all a one-tier environment
//! made by an older version has. Every other CA lives in a folder below it with the same
//! files: `issuing/<serial>` (issuing CAs), `roots/<serial>` (a rotation's new root),
//! `cross/<serial>` (a cross-certificate: ca.crt only). `hierarchy.json` in the set's
//! folder lists them with their role, the kind of leaf an issuing CA signs, their
//! issuer and status. A set without hierarchy.json is the one-tier set of its root.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::fsutil::{self, PUBLIC};
use super::{Workspace, WsError};
use crate::pki::Kind;

/// The record's file name, in the set's folder.
pub const HIERARCHY: &str = "hierarchy.json";
/// The current format of hierarchy.json.
pub const FORMAT: u32 = 1;

/// One CA's folder: a set (env, and tenant for a tenant's own CAs) and the folder below
/// the set's own (`None`: the set's first root).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaLoc {
    pub env: String,
    pub tenant: Option<String>,
    /// `issuing/<serial>`, `roots/<serial>` or `cross/<serial>`.
    pub sub: Option<String>,
}

impl CaLoc {
    /// The first root of `env`'s set (its only CA in one tier).
    pub fn env(env: &str) -> CaLoc {
        CaLoc {
            env: env.to_string(),
            tenant: None,
            sub: None,
        }
    }

    /// The first root of the set of `tenant` in `env` (None: the env's own set).
    pub fn base(env: &str, tenant: Option<&str>) -> CaLoc {
        CaLoc {
            env: env.to_string(),
            tenant: tenant.map(str::to_string),
            sub: None,
        }
    }

    /// The set this CA belongs to (its first root).
    pub fn set(&self) -> CaLoc {
        CaLoc {
            sub: None,
            ..self.clone()
        }
    }

    /// A CA of the same set in the folder `sub` (`issuing/<serial>`, ...).
    pub fn child(&self, sub: &str) -> CaLoc {
        CaLoc {
            sub: Some(sub.to_string()),
            ..self.set()
        }
    }

    /// The folder below the set's, "" for the set's own.
    pub fn sub_str(&self) -> &str {
        self.sub.as_deref().unwrap_or("")
    }

    /// The folder, relative to the workspace root.
    pub fn rel(&self) -> PathBuf {
        let mut p = PathBuf::from("pki").join(&self.env);
        if let Some(t) = &self.tenant {
            p.push(t);
        }
        p.push("ca");
        if let Some(s) = &self.sub {
            p.push(s);
        }
        p
    }

    /// Parses what [`fmt::Display`] writes: `<env>[/<tenant>]:ca[/<sub>]`.
    pub fn parse(s: &str) -> Option<CaLoc> {
        let (scope, rest) = s.split_once(":ca")?;
        let (env, tenant) = match scope.split_once('/') {
            Some((e, t)) => (e, Some(t)),
            None => (scope, None),
        };
        let sub = match rest.strip_prefix('/') {
            Some(r) => Some(r),
            None if rest.is_empty() => None,
            None => return None,
        };
        let ok = |n: &str| super::check_name("name", n).is_ok();
        if !ok(env) || tenant.is_some_and(|t| !ok(t)) {
            return None;
        }
        if let Some(sub) = sub {
            let (dir, serial) = sub.split_once('/')?;
            if !matches!(dir, "issuing" | "roots" | "cross")
                || serial.is_empty()
                || !serial.chars().all(|c| c.is_ascii_hexdigit())
            {
                return None;
            }
        }
        Some(CaLoc {
            env: env.to_string(),
            tenant: tenant.map(str::to_string),
            sub: sub.map(str::to_string),
        })
    }
}

impl fmt::Display for CaLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.env)?;
        if let Some(t) = &self.tenant {
            write!(f, "/{t}")?;
        }
        f.write_str(":ca")?;
        if let Some(s) = &self.sub {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

impl Serialize for CaLoc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CaLoc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CaLoc::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("'{s}' does not name a CA folder")))
    }
}

impl From<&str> for CaLoc {
    fn from(env: &str) -> Self {
        CaLoc::env(env)
    }
}

impl From<&String> for CaLoc {
    fn from(env: &String) -> Self {
        CaLoc::env(env)
    }
}

impl From<&CaLoc> for CaLoc {
    fn from(l: &CaLoc) -> Self {
        l.clone()
    }
}

/// What a CA is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaRole {
    /// Self-signed; a trust anchor.
    Root,
    /// Signed by a root; signs leaves.
    Issuing,
    /// A new root's key certified by an old root (no key of its own).
    Cross,
}

impl CaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CaRole::Root => "root",
            CaRole::Issuing => "issuing",
            CaRole::Cross => "cross",
        }
    }
}

/// Where a CA stands in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaStatus {
    /// Signs (an issuing CA: leaves of its kind; a root: issuing CAs).
    Active,
    /// Replaced by a rotation: signs nothing new but its CRL, still in every trust
    /// bundle until retired.
    Retiring,
    /// Out of the trust bundles; signs its CRL until its last leaf expires.
    Retired,
}

impl CaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaStatus::Active => "active",
            CaStatus::Retiring => "retiring",
            CaStatus::Retired => "retired",
        }
    }
}

/// One CA of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaEntry {
    /// The folder below the set's ("" for the set's first root).
    pub dir: String,
    pub role: CaRole,
    /// The kind of leaf an issuing CA signs; None for a root (and a one-tier root,
    /// which signs both kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// The `dir` of the CA that signed this one (None: self-signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For a cross-certificate: the `dir` of the root whose key it certifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certifies: Option<String>,
    pub status: CaStatus,
    /// Lowercase hex.
    pub serial: String,
    /// SHA-256 (hex) of the certificate's DER.
    pub sha256: String,
    /// Whether the key is kept outside the workspace (an offline root).
    #[serde(default)]
    pub offline: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl CaEntry {
    /// Whether a gateway must trust it now (not retired, and not a cross-certificate,
    /// which travels in chains).
    pub fn in_bundle(&self) -> bool {
        self.status != CaStatus::Retired && self.role != CaRole::Cross
    }
}

/// hierarchy.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub format: u32,
    pub cas: Vec<CaEntry>,
}

impl Hierarchy {
    pub fn get(&self, dir: &str) -> Option<&CaEntry> {
        self.cas.iter().find(|c| c.dir == dir)
    }

    pub fn get_mut(&mut self, dir: &str) -> Option<&mut CaEntry> {
        self.cas.iter_mut().find(|c| c.dir == dir)
    }

    /// The active issuing CA for leaves of `kind`, if there is one.
    pub fn issuing(&self, kind: Kind) -> Option<&CaEntry> {
        self.cas.iter().find(|c| {
            c.role == CaRole::Issuing && c.status == CaStatus::Active && c.kind == Some(kind)
        })
    }

    /// The active root.
    pub fn active_root(&self) -> Option<&CaEntry> {
        self.cas
            .iter()
            .find(|c| c.role == CaRole::Root && c.status == CaStatus::Active)
    }

    /// Whether leaves are signed by issuing CAs (two tiers) rather than by the root.
    pub fn two_tier(&self) -> bool {
        self.cas.iter().any(|c| c.role == CaRole::Issuing)
    }

    /// How many roots the set has had (the next root is generation this + 1).
    pub fn root_generations(&self) -> u32 {
        self.cas.iter().filter(|c| c.role == CaRole::Root).count() as u32
    }

    /// How many issuing CAs for `kind` the set has had.
    pub fn issuing_generations(&self, kind: Kind) -> u32 {
        self.cas
            .iter()
            .filter(|c| c.role == CaRole::Issuing && c.kind == Some(kind))
            .count() as u32
    }
}

impl Workspace {
    /// A CA's folder.
    pub fn ca_dir_of(&self, ca: &CaLoc) -> PathBuf {
        self.root().join(ca.rel())
    }

    /// The hierarchy.json of the set `set` belongs to.
    pub fn hierarchy_path(&self, set: &CaLoc) -> PathBuf {
        self.ca_dir_of(&set.set()).join(HIERARCHY)
    }

    /// The set's record, or None for a set without one (a one-tier set made before
    /// hierarchies, or none at all).
    pub fn load_hierarchy(&self, set: &CaLoc) -> Result<Option<Hierarchy>, WsError> {
        let p = self.hierarchy_path(set);
        if !p.exists() {
            return Ok(None);
        }
        let bytes = self.read(&p)?;
        let h: Hierarchy = serde_json::from_slice(&bytes).map_err(|e| WsError::Corrupt {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        check(&p, &h)?;
        Ok(Some(h))
    }

    /// Writes the set's record atomically (0644: public facts only).
    pub fn save_hierarchy(&self, set: &CaLoc, h: &Hierarchy) -> Result<(), WsError> {
        let json = serde_json::to_vec_pretty(h).expect("hierarchy serialises");
        fsutil::write_atomic(&self.hierarchy_path(set), &json, PUBLIC)
    }
}

/// Refuses a record that names folders outside the set, or is inconsistent.
fn check(p: &Path, h: &Hierarchy) -> Result<(), WsError> {
    let bad = |reason: String| WsError::Corrupt {
        path: p.to_path_buf(),
        reason,
    };
    if h.format != FORMAT {
        return Err(bad(format!(
            "format {} is not one this version reads ({FORMAT})",
            h.format
        )));
    }
    for c in &h.cas {
        if !c.dir.is_empty() && CaLoc::parse(&format!("x:ca/{}", c.dir)).is_none() {
            return Err(bad(format!("'{}' is not a CA folder of the set", c.dir)));
        }
        for other in [&c.parent, &c.certifies].into_iter().flatten() {
            if h.get(other).is_none() {
                return Err(bad(format!(
                    "'{}' names '{other}', which it does not list",
                    c.dir
                )));
            }
        }
    }
    let mut dirs: Vec<&str> = h.cas.iter().map(|c| c.dir.as_str()).collect();
    dirs.sort_unstable();
    if dirs.windows(2).any(|w| w[0] == w[1]) {
        return Err(bad("a CA folder is listed twice".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_round_trips() {
        for s in [
            "prod:ca",
            "prod/acme:ca",
            "prod:ca/issuing/ab12",
            "nonprod/globex:ca/roots/0f",
        ] {
            let l = CaLoc::parse(s).unwrap();
            assert_eq!(l.to_string(), s);
        }
        let l = CaLoc::parse("prod/acme:ca/issuing/ab").unwrap();
        assert_eq!(l.rel(), PathBuf::from("pki/prod/acme/ca/issuing/ab"));
        assert_eq!(CaLoc::env("prod").rel(), PathBuf::from("pki/prod/ca"));
        for bad in [
            "prod",
            "prod:ca/../x/ab",
            "prod:ca/issuing/zz",
            "../x:ca",
            "prod:cax",
            "prod:ca/issuing",
        ] {
            assert!(CaLoc::parse(bad).is_none(), "{bad}");
        }
    }
}
