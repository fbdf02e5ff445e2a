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
use crate::pki::{Kind, text};

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
    /// A renewal's successor issued ahead of the switch for gateways that pin the
    /// certificate (`renew --stage`, `handoff.pinning`): never `current` until
    /// `activate` makes it the active one.
    Staged,
    Superseded,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Staged => "staged",
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
    /// When `activate` superseded it by its staged successor: the overlap after which
    /// `renew` revokes it counts from here.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub superseded_at: Option<OffsetDateTime>,
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
    /// The CA that signed it (absent: the env's first root, as older versions issued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<super::CaLoc>,
    /// A test fixture (`issue --fixture`, `gateway-test`): never the current certificate
    /// of its tenant/env/kind, never renewed or reissued by `issue --all`, left to expire.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixture: bool,
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
    // the folder is known not to be a link; the file itself must not be one either
    let bytes = fsutil::read_nofollow(path)?;
    serde_json::from_slice(&bytes).map_err(|e| WsError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A folder or file of the inventory that could not be read, and why; the rest of the
/// workspace is still listed.
#[derive(Debug)]
pub struct Problem {
    pub path: PathBuf,
    pub error: WsError,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// What a walk of `pki/` found: every readable leaf, and every folder that is not.
#[derive(Debug, Default)]
pub struct Inventory {
    pub leaves: Vec<LeafRecord>,
    pub problems: Vec<Problem>,
}

impl Inventory {
    fn problem(&mut self, error: WsError) {
        let path = match &error {
            WsError::Io { path, .. }
            | WsError::Exists(path)
            | WsError::NotFound(path)
            | WsError::NotAWorkspace(path)
            | WsError::Locked { path, .. }
            | WsError::Corrupt { path, .. }
            | WsError::Symlink(path)
            | WsError::NotAFile(path) => path.clone(),
            WsError::Audit(_) => PathBuf::new(),
        };
        self.problems.push(Problem { path, error });
    }
}

/// The folders in `parent` (hidden ones skipped), or the one named `name`; a symbolic
/// link among them is a problem, never followed.
fn dirs(parent: &Path, name: Option<&str>, inv: &mut Inventory) -> Vec<PathBuf> {
    let entries: Vec<(PathBuf, std::io::Result<fs::FileType>)> = match name {
        Some(n) => one(parent, n)
            .into_iter()
            .map(|p| {
                let t = fs::symlink_metadata(&p).map(|m| m.file_type());
                (p, t)
            })
            .collect(),
        None => match fs::read_dir(parent) {
            Ok(rd) => rd
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| (e.path(), e.file_type()))
                .collect(),
            Err(_) => Vec::new(),
        },
    };
    let mut v = Vec::new();
    for (p, t) in entries {
        match t {
            // the `current` link of a kind folder, made by us, never followed: not a leaf
            Ok(t) if t.is_symlink() && super::current::is_own_link(&p) => {}
            Ok(t) if t.is_symlink() => inv.problem(WsError::Symlink(p)),
            Ok(t) if t.is_dir() => v.push(p),
            _ => {}
        }
    }
    v.sort();
    v
}

/// The leaf in `dir`, if it holds a meta.json: read without following links, and
/// checked against the folder it lies in (`pki/<env>/<tenant>/<kind>/<serial>/`), so a
/// copied or edited meta.json cannot claim another tenant's place.
fn leaf_at(dir: &Path, env: &str, tenant: &str, kind: Kind) -> Option<Result<LeafRecord, WsError>> {
    let meta_path = dir.join(META);
    fs::symlink_metadata(&meta_path).ok()?;
    let meta = match read_meta(&meta_path) {
        Ok(m) => m,
        Err(e) => return Some(Err(e)),
    };
    let serial = name_of(dir);
    if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(Err(WsError::Corrupt {
            path: dir.to_path_buf(),
            reason: "a certificate's folder is named by its serial in hex, and this one is not"
                .into(),
        }));
    }
    let wrong = [
        ("environment", meta.env.as_str(), env),
        ("tenant", meta.tenant.as_str(), tenant),
        ("kind", meta.kind.as_str(), kind.as_str()),
        ("serial", meta.serial.as_str(), serial.as_str()),
    ]
    .into_iter()
    .find(|(_, said, place)| said != place);
    Some(match wrong {
        Some((what, said, place)) => Err(WsError::Corrupt {
            path: meta_path,
            reason: format!(
                "it names {what} '{}' but lies in the folder of {what} '{}'",
                text::sanitize(said),
                text::sanitize(place)
            ),
        }),
        None => Ok(LeafRecord {
            dir: dir.to_path_buf(),
            meta,
        }),
    })
}

/// Filters for [`Workspace::leaves`].
#[derive(Clone, Debug, Default)]
pub struct Filter<'a> {
    pub tenant: Option<&'a str>,
    pub env: Option<&'a str>,
    pub kind: Option<Kind>,
}

impl Workspace {
    /// Every readable leaf matching `f`, oldest first within each tenant/env/kind, and
    /// every folder that could not be read (a corrupt meta.json, a symbolic link, a
    /// folder that is no tenant's): one broken folder never hides the others.
    pub fn inventory(&self, f: &Filter<'_>) -> Inventory {
        let mut inv = Inventory::default();
        let pki = self.root().join("pki");
        if let Err(e) = fsutil::refuse_symlinks(self.root(), &pki) {
            inv.problem(e);
            return inv;
        }
        // a named env or tenant is one folder: no need to list its siblings
        for env_dir in dirs(&pki, f.env, &mut inv) {
            let env = name_of(&env_dir);
            if let Err(m) = super::check_name("environment", &env) {
                inv.problem(WsError::Corrupt {
                    path: env_dir,
                    reason: format!("this folder is no environment's: {m}"),
                });
                continue;
            }
            for tenant_dir in dirs(&env_dir, f.tenant, &mut inv) {
                let tenant = name_of(&tenant_dir);
                if is_own_folder(&tenant) {
                    continue;
                }
                if let Err(m) = super::check_stored_tenant(&tenant) {
                    inv.problem(WsError::Corrupt {
                        path: tenant_dir,
                        reason: format!("this folder is no tenant's: {m}"),
                    });
                    continue;
                }
                let kind_name = f.kind.map(Kind::as_str);
                for kind_dir in dirs(&tenant_dir, kind_name, &mut inv) {
                    let Ok(kind) = name_of(&kind_dir).parse::<Kind>() else {
                        continue;
                    };
                    let mut recs = Vec::new();
                    for leaf_dir in dirs(&kind_dir, None, &mut inv) {
                        match leaf_at(&leaf_dir, &env, &tenant, kind) {
                            Some(Ok(r)) => recs.push(r),
                            Some(Err(e)) => inv.problem(e),
                            None => {} // pending/ and similar
                        }
                    }
                    recs.sort_by_key(|r| r.meta.issued_at);
                    inv.leaves.extend(recs);
                }
            }
        }
        inv
    }

    /// Every issued leaf matching `f`, oldest first within each tenant/env/kind; the
    /// first folder that cannot be read is an error (see [`Workspace::inventory`] to go
    /// on past it).
    pub fn leaves(&self, f: &Filter<'_>) -> Result<Vec<LeafRecord>, WsError> {
        let inv = self.inventory(f);
        match inv.problems.into_iter().next() {
            Some(p) => Err(p.error),
            None => Ok(inv.leaves),
        }
    }

    /// The newest active leaf of tenant/env/kind, if any. A folder of that
    /// tenant/env/kind that cannot be read, or a link on the way to it, is an error.
    pub fn current_leaf(
        &self,
        tenant: &str,
        env: &str,
        kind: Kind,
    ) -> Result<Option<LeafRecord>, WsError> {
        // straight to the one folder: `issue --all` asks this once per tenant
        let kind_dir = self.kind_dir(env, tenant, kind);
        fsutil::refuse_symlinks(self.root(), &kind_dir)?;
        let mut inv = Inventory::default();
        let mut recs = Vec::new();
        for leaf_dir in dirs(&kind_dir, None, &mut inv) {
            match leaf_at(&leaf_dir, env, tenant, kind) {
                Some(Ok(r)) => recs.push(r),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if let Some(p) = inv.problems.into_iter().next() {
            return Err(p.error);
        }
        recs.sort_by_key(|r| r.meta.issued_at);
        Ok(recs
            .into_iter()
            .rev()
            .find(|r| r.meta.status == Status::Active && !r.meta.fixture))
    }

    /// The newest staged successor of tenant/env/kind, if any (`renew --stage`).
    pub fn staged_leaf(
        &self,
        tenant: &str,
        env: &str,
        kind: Kind,
    ) -> Result<Option<LeafRecord>, WsError> {
        let kind_dir = self.kind_dir(env, tenant, kind);
        fsutil::refuse_symlinks(self.root(), &kind_dir)?;
        let mut inv = Inventory::default();
        let mut recs = Vec::new();
        for leaf_dir in dirs(&kind_dir, None, &mut inv) {
            match leaf_at(&leaf_dir, env, tenant, kind) {
                Some(Ok(r)) => recs.push(r),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        if let Some(p) = inv.problems.into_iter().next() {
            return Err(p.error);
        }
        recs.sort_by_key(|r| r.meta.issued_at);
        Ok(recs
            .into_iter()
            .rev()
            .find(|r| r.meta.status == Status::Staged && !r.meta.fixture))
    }

    /// Finds a leaf of `env` by serial (any tenant, any kind). A folder that cannot be
    /// read is an error only when the serial is found nowhere else (it may be in there).
    pub fn leaf_by_serial(&self, env: &str, serial: &str) -> Result<Option<LeafRecord>, WsError> {
        let inv = self.inventory(&Filter {
            env: Some(env),
            ..Filter::default()
        });
        match inv.leaves.into_iter().find(|r| r.meta.serial == serial) {
            Some(r) => Ok(Some(r)),
            None => match inv.problems.into_iter().next() {
                Some(p) => Err(p.error),
                None => Ok(None),
            },
        }
    }
}

/// Folders under `pki/<env>/` that are mtlsctl's own, not a tenant's (the CA and the
/// other reserved names; the pseudo-tenant of `sign` is a tenant folder).
fn is_own_folder(name: &str) -> bool {
    name != super::SIGNED_TENANT && super::RESERVED_NAMES.contains(&name)
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
    /// The revoked certificate's notAfter, when known: once a CRL signed after it has
    /// listed the serial, later CRLs leave it out (RFC 5280 5.1.2.6); state.json keeps it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub not_after: Option<OffsetDateTime>,
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
    pub fn load_ca_state(&self, ca: impl Into<super::CaLoc>) -> Result<CaState, WsError> {
        let p = self.ca_state(ca);
        if !p.exists() {
            return Ok(CaState::default());
        }
        let bytes = self.read(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| WsError::Corrupt {
            path: p,
            reason: e.to_string(),
        })
    }

    pub fn save_ca_state(&self, ca: impl Into<super::CaLoc>, st: &CaState) -> Result<(), WsError> {
        let json = serde_json::to_vec_pretty(st).expect("state serialises");
        fsutil::write_atomic(&self.ca_state(ca), &json, PUBLIC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn meta(tenant: &str, env: &str, serial: &str) -> LeafMeta {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        LeafMeta {
            serial: serial.into(),
            tenant: tenant.into(),
            env: env.into(),
            kind: Kind::Client,
            status: Status::Active,
            issued_at: now,
            not_after: now + time::Duration::days(30),
            subject: format!("CN={tenant}"),
            sha256: "00".into(),
            origin: "issue".into(),
            superseded_by: None,
            renewed_from: None,
            superseded_at: None,
            revoked_at: None,
            revocation_reason: None,
            renew_before_secs: None,
            ca: None,
            fixture: false,
        }
    }

    fn put(ws: &Workspace, m: &LeafMeta) -> PathBuf {
        let dir = ws.leaf_dir(&m.env, &m.tenant, m.kind, &m.serial);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(META), serde_json::to_vec(m).unwrap()).unwrap();
        dir
    }

    #[test]
    fn one_broken_folder_is_a_problem_not_a_failure_of_the_whole() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::at_new(d.path());
        put(&ws, &meta("acme", "prod", "01"));
        let broken = put(&ws, &meta("beta", "prod", "02"));
        fs::write(broken.join(META), "{ not json").unwrap();
        // a tenant folder that is a link to somewhere else
        let elsewhere = tempfile::tempdir().unwrap();
        symlink(elsewhere.path(), ws.root().join("pki/prod/gamma")).unwrap();
        // a meta.json that claims another tenant's place
        let mut moved = meta("delta", "prod", "03");
        let dir = put(&ws, &moved);
        moved.tenant = "acme".into();
        fs::write(dir.join(META), serde_json::to_vec(&moved).unwrap()).unwrap();

        let inv = ws.inventory(&Filter::default());
        let tenants: Vec<&str> = inv.leaves.iter().map(|r| r.meta.tenant.as_str()).collect();
        assert_eq!(tenants, ["acme"]);
        let paths: Vec<&Path> = inv.problems.iter().map(|p| p.path.as_path()).collect();
        assert!(paths.contains(&broken.join(META).as_path()), "{paths:?}");
        assert!(paths.contains(&ws.root().join("pki/prod/gamma").as_path()));
        assert!(paths.contains(&dir.join(META).as_path()));
        assert!(
            inv.problems
                .iter()
                .any(|p| p.to_string().contains("names tenant 'acme'"))
        );
        // the strict form names the first problem
        assert!(ws.leaves(&Filter::default()).is_err());
        // the one tenant/env/kind asked for: broken is an error, others are fine
        assert!(
            ws.current_leaf("acme", "prod", Kind::Client)
                .unwrap()
                .is_some()
        );
        assert!(ws.current_leaf("beta", "prod", Kind::Client).is_err());
        assert!(matches!(
            ws.current_leaf("gamma", "prod", Kind::Client),
            Err(WsError::Symlink(_))
        ));
        // a serial found elsewhere is found; nothing was written through the link
        assert!(ws.leaf_by_serial("prod", "01").unwrap().is_some());
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn own_folders_are_skipped_and_odd_ones_reported() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::at_new(d.path());
        put(&ws, &meta(crate::workspace::SIGNED_TENANT, "prod", "01"));
        fs::create_dir_all(ws.root().join("pki/prod/ca")).unwrap();
        fs::create_dir_all(ws.root().join("pki/prod/journal")).unwrap();
        fs::create_dir_all(ws.root().join("pki/prod/bad name")).unwrap();
        let inv = ws.inventory(&Filter::default());
        assert_eq!(inv.leaves.len(), 1);
        assert_eq!(inv.problems.len(), 1, "{:?}", inv.problems);
        assert!(inv.problems[0].path.ends_with("bad name"));
    }
}
