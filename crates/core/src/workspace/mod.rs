//! The on-disk workspace: where things live, the lock, atomic writes, the inventory of
//! issued certificates and the audit log. Makes no crypto decisions.

pub mod audit;
pub mod fsutil;
pub mod inventory;
pub mod journal;
pub mod recover;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::pki::Kind;

/// The workspace's marker and main configuration file.
pub const CONFIG_FILE: &str = "mtlsctl.yaml";
const LOCK_FILE: &str = ".mtlsctl.lock";
/// How long a run waits for another to release the workspace.
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
    #[error(
        "another mtlsctl run has held the workspace lock {} for {}s; wait for it to finish, or remove the lock file if no mtlsctl is running",
        .0.display(), LOCK_WAIT.as_secs()
    )]
    Locked(PathBuf),
    #[error("{} is corrupt: {reason}; restore it from backup or remove it", path.display())]
    Corrupt { path: PathBuf, reason: String },
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
}

/// Held while a run changes the workspace; released on drop.
pub struct Lock {
    _file: File,
}

impl Workspace {
    /// Opens the workspace at `dir`, which must hold mtlsctl.yaml.
    pub fn open(dir: &Path) -> Result<Self, WsError> {
        let root = absolute(dir);
        if root.join(CONFIG_FILE).is_file() {
            Ok(Workspace { root })
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
                return Ok(Workspace {
                    root: d.to_path_buf(),
                });
            }
            cur = d.parent();
        }
        Err(WsError::NotFound(start))
    }

    /// A workspace object for a folder being created by `init`.
    pub fn at_new(dir: &Path) -> Self {
        Workspace {
            root: absolute(dir),
        }
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

    pub fn ca_dir(&self, env: &str) -> PathBuf {
        self.root.join("pki").join(env).join("ca")
    }

    pub fn ca_cert(&self, env: &str) -> PathBuf {
        self.ca_dir(env).join("ca.crt")
    }

    pub fn ca_key(&self, env: &str) -> PathBuf {
        self.ca_dir(env).join("ca.key")
    }

    pub fn crl(&self, env: &str) -> PathBuf {
        self.ca_dir(env).join("crl.pem")
    }

    /// CA state that a certificate cannot hold: CRL number, revocations.
    pub fn ca_state(&self, env: &str) -> PathBuf {
        self.ca_dir(env).join("state.json")
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

    /// Takes the workspace lock, waiting up to [`LOCK_WAIT`] for another run.
    pub fn lock(&self) -> Result<Lock, WsError> {
        let path = self.root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, "open the lock file", e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Lock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() > LOCK_WAIT {
                        return Err(WsError::Locked(path));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io_err(&path, "lock", e));
                }
            }
        }
    }
}

/// Makes a path absolute against the current folder without touching the file system.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A name usable as a file name and in a certificate: letters, digits, '-', '_', '.'.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "ca"
        && name != "pending";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a valid {what} name: use 1-64 letters, digits, '-', '_' or '.', not starting with '.' or '-' (and not 'ca' or 'pending')"
        ))
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
        let f = OpenOptions::new()
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
    }
}
