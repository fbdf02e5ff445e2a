//! The on-disk workspace: where things live, the lock, atomic writes, the inventory of
//! issued certificates and the audit log. Makes no crypto decisions.

pub mod audit;
pub mod ca_record;
pub mod current;
pub mod fsutil;
pub mod hierarchy;
pub mod inventory;
pub mod journal;
pub mod lock;
pub mod recover;

pub use hierarchy::CaLoc;
pub use lock::{Holder, Lock, LockWait, OnWait};

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::pki::Kind;

/// The workspace's marker and main configuration file.
pub const CONFIG_FILE: &str = "mtlsctl.yaml";
/// The file every run that changes the workspace holds an flock on.
pub const LOCK_FILE: &str = ".mtlsctl.lock";
/// How long a run waits for another to release the workspace, unless told otherwise.
pub const LOCK_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Error)]
pub enum WsError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{} already exists; nothing was overwritten", .0.display())]
    Exists(PathBuf),
    #[error(
        "no workspace found: no {CONFIG_FILE} in {} or any parent folder; run `mtlsctl init DIR`, or point to one with -C DIR or MTLSCTL_WORKSPACE",
        .0.display()
    )]
    NotFound(PathBuf),
    #[error(
        "{} is not a workspace (no {CONFIG_FILE} in it): run `mtlsctl init {}` or fix -C / MTLSCTL_WORKSPACE",
        .0.display(), .0.display()
    )]
    NotAWorkspace(PathBuf),
    #[error("{}", lock::locked_message(path, holder.as_ref(), *wait))]
    Locked {
        path: PathBuf,
        /// Who holds it, as it wrote itself into the lock file.
        holder: Option<Holder>,
        /// How long the run was to wait (--wait).
        wait: Duration,
    },
    #[error("{} is corrupt: {reason}; restore it from backup or remove it", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    #[error(
        "{} is a symbolic link, which mtlsctl does not follow inside a workspace (it could lead to any file on this machine): replace the link with the file or folder itself",
        .0.display()
    )]
    Symlink(PathBuf),
    #[error("{} is not a regular file: replace it with one", .0.display())]
    NotAFile(PathBuf),
}

pub(crate) fn io_err(path: &Path, action: &'static str, source: std::io::Error) -> WsError {
    WsError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// A located workspace.
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
    lock_wait: LockWait,
}

impl Workspace {
    /// Opens the workspace at `dir`, which must hold mtlsctl.yaml.
    pub fn open(dir: &Path) -> Result<Self, WsError> {
        let root = absolute(dir);
        if root.join(CONFIG_FILE).is_file() {
            Ok(Workspace::at(root))
        } else {
            Err(WsError::NotAWorkspace(root))
        }
    }

    /// Finds the nearest folder at or above `start` that holds mtlsctl.yaml.
    pub fn discover(start: &Path) -> Result<Self, WsError> {
        let start = absolute(start);
        let mut cur = Some(start.as_path());
        while let Some(d) = cur {
            if d.join(CONFIG_FILE).is_file() {
                return Ok(Workspace::at(d.to_path_buf()));
            }
            cur = d.parent();
        }
        Err(WsError::NotFound(start))
    }

    /// A workspace object for a folder being created by `init`.
    pub fn at_new(dir: &Path) -> Self {
        Workspace::at(absolute(dir))
    }

    fn at(root: PathBuf) -> Self {
        Workspace {
            root,
            lock_wait: LockWait::default(),
        }
    }

    /// How [`Workspace::lock`] waits for another run: at most `wait` (zero: not at
    /// all), calling `on_wait` once, as soon as it finds the lock taken, with the
    /// holder and the wait. The library never prints; the binary passes a callback
    /// that tells the person.
    pub fn with_lock_wait(mut self, wait: Duration, on_wait: Option<OnWait>) -> Self {
        self.lock_wait = LockWait { wait, on_wait };
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    pub fn env_profile(&self, env: &str) -> PathBuf {
        self.root
            .join("profiles/environments")
            .join(format!("{env}.yaml"))
    }

    pub fn tenant_profile(&self, tenant: &str) -> PathBuf {
        self.root
            .join("profiles/tenants")
            .join(format!("{tenant}.yaml"))
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.root.join("profiles/tenants")
    }

    pub fn envs_dir(&self) -> PathBuf {
        self.root.join("profiles/environments")
    }

    /// A CA's folder: an env name means the env's first root (`pki/<env>/ca`), a
    /// [`CaLoc`] any CA.
    pub fn ca_dir(&self, ca: impl Into<CaLoc>) -> PathBuf {
        self.ca_dir_of(&ca.into())
    }

    pub fn ca_cert(&self, ca: impl Into<CaLoc>) -> PathBuf {
        self.ca_dir(ca).join("ca.crt")
    }

    pub fn ca_key(&self, ca: impl Into<CaLoc>) -> PathBuf {
        self.ca_dir(ca).join("ca.key")
    }

    pub fn crl(&self, ca: impl Into<CaLoc>) -> PathBuf {
        self.ca_dir(ca).join("crl.pem")
    }

    /// CA state that a certificate cannot hold: CRL number, revocations.
    pub fn ca_state(&self, ca: impl Into<CaLoc>) -> PathBuf {
        self.ca_dir(ca).join("state.json")
    }

    pub fn kind_dir(&self, env: &str, tenant: &str, kind: Kind) -> PathBuf {
        self.root
            .join("pki")
            .join(env)
            .join(tenant)
            .join(kind.as_str())
    }

    pub fn leaf_dir(&self, env: &str, tenant: &str, kind: Kind, serial: &str) -> PathBuf {
        self.kind_dir(env, tenant, kind).join(serial)
    }

    pub fn pending_dir(&self, env: &str, tenant: &str, kind: Kind) -> PathBuf {
        self.kind_dir(env, tenant, kind).join("pending")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.root.join("audit.log")
    }

    /// The file the workspace lock is held on.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// Takes the workspace lock, waiting as [`Workspace::with_lock_wait`] set (by
    /// default up to [`LOCK_WAIT`], silently).
    pub fn lock(&self) -> Result<Lock, WsError> {
        lock::acquire(&self.lock_file(), &self.lock_wait)
    }
}

/// Makes a path absolute against the current folder without touching the file system.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Names that are folders of mtlsctl's own under `pki/` and beside it, never a tenant's
/// or an environment's: `pki/<env>/ca/`, `<kind>/pending/`, and those the lifecycle
/// keeps or will keep (`archive`, `current`, `staged`, `journal`, `audit`), plus the
/// pseudo-tenant [`SIGNED_TENANT`].
pub const RESERVED_NAMES: &[&str] = &[
    "ca",
    "pending",
    "archive",
    "current",
    "staged",
    "journal",
    "audit",
    SIGNED_TENANT,
];

/// Where `sign` records leaves signed from a CSR without `--tenant`:
/// `pki/<env>/_signed/<kind>/<serial>/`. Reserved, so no tenant profile can take it.
pub const SIGNED_TENANT: &str = "_signed";

/// A name usable as a file name and in a certificate: letters, digits, '-', '_', '.',
/// and none of [`RESERVED_NAMES`]. The one check for tenant and environment names,
/// wherever they come from (flags, file names, YAML lists). The message escapes the name,
/// which may come from a file name or a flag.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let well_formed = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let shown = crate::pki::text::sanitize(name);
    if !well_formed {
        return Err(format!(
            "'{shown}' is not a valid {what} name: use 1-64 letters, digits, '-', '_' or '.', not starting with '.' or '-'"
        ));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(format!(
            "'{shown}' is not a valid {what} name: it is reserved for mtlsctl's own folders ({}); choose another",
            RESERVED_NAMES.join(", ")
        ));
    }
    Ok(())
}

/// A tenant folder name under `pki/<env>/`: a valid tenant name, or the pseudo-tenant of
/// `sign`.
pub fn check_stored_tenant(name: &str) -> Result<(), String> {
    if name == SIGNED_TENANT {
        Ok(())
    } else {
        check_name("tenant", name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_walks_up() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(CONFIG_FILE), "org: x\n").unwrap();
        let deep = d.path().join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        let ws = Workspace::discover(&deep).unwrap();
        assert_eq!(ws.root(), d.path());
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            Workspace::discover(other.path()),
            Err(WsError::NotFound(_))
        ));
    }

    #[test]
    fn lock_is_exclusive_within_and_across_handles() {
        let d = tempfile::tempdir().unwrap();
        let ws = Workspace::at_new(d.path());
        let l = ws.lock().unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.path().join(LOCK_FILE))
            .unwrap();
        assert!(f.try_lock().is_err());
        drop(l);
        assert!(f.try_lock().is_ok());
    }

    #[test]
    fn names() {
        assert!(check_name("tenant", "acme-1").is_ok());
        assert!(check_name("tenant", "../x").is_err());
        assert!(check_name("tenant", "").is_err());
        assert!(check_name("tenant", "ca").is_err());
        for r in RESERVED_NAMES {
            let e = check_name("environment", r).unwrap_err();
            assert!(e.contains("reserved"), "{e}");
        }
        assert!(check_stored_tenant(SIGNED_TENANT).is_ok());
        assert!(check_stored_tenant("acme").is_ok());
        assert!(check_stored_tenant("pending").is_err());
        // a hostile name is escaped in the message, never echoed raw
        let e = check_name("tenant", "a\u{1b}[31mb\nc").unwrap_err();
        assert!(!e.contains('\u{1b}') && !e.contains('\n'), "{e}");
        assert!(e.contains("\\u{1b}"), "{e}");
    }
}
