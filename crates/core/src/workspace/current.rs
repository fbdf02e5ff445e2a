//! The stable path of a tenant/env/kind's active certificate:
//! `pki/<env>/<tenant>/<kind>/current`, a relative symbolic link to the sibling folder
//! named by the active serial.
//!
//! It is the one symbolic link inside a workspace that mtlsctl makes and reads, and it
//! is held to a narrow shape: its target is a single path component, a serial in hex,
//! naming a real folder (not a link) beside it. mtlsctl never reads or writes *through*
//! it; it only reads the link's own text and checks it. It is a view of the leaves'
//! meta.json, not a record: [`Workspace::refresh_current`] derives it from them, so a
//! run killed before the link moved is put right by the recovery of its journal.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Workspace, WsError, fsutil, io_err};
use crate::pki::Kind;

/// The name of the link in each `pki/<env>/<tenant>/<kind>/` folder.
pub const CURRENT: &str = "current";
/// The prefix of the link's temporary name while it is being swapped.
const TMP_PREFIX: &str = ".tmp-current-";

fn is_serial(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// What `current` in `kind_dir` designates: `Ok(None)` when there is no such entry,
/// the serial when it is a well-formed link to a sibling serial folder, and an error
/// naming the link and what to do otherwise (an absolute or `..` target, a dangling
/// link, a target that is itself a link, or a `current` that is no link at all).
pub fn read_link(kind_dir: &Path) -> Result<Option<String>, WsError> {
    let link = kind_dir.join(CURRENT);
    let md = match fs::symlink_metadata(&link) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&link, "read", e)),
    };
    let bad = |reason: String| WsError::Corrupt {
        path: link.clone(),
        reason: format!(
            "{reason}; mtlsctl makes this link itself (a relative link to the active serial's folder beside it): remove it and the next issue, renew or activate puts it back"
        ),
    };
    if !md.file_type().is_symlink() {
        return Err(bad("it is not the symbolic link mtlsctl makes".into()));
    }
    let target = fs::read_link(&link).map_err(|e| io_err(&link, "read", e))?;
    let serial = target.to_str().unwrap_or_default();
    if target.components().count() != 1 || !is_serial(serial) {
        return Err(bad(format!(
            "it points to '{}', not to a serial folder beside it",
            crate::pki::text::sanitize(&target.to_string_lossy())
        )));
    }
    match fs::symlink_metadata(kind_dir.join(serial)) {
        Ok(t) if t.file_type().is_dir() => Ok(Some(serial.to_string())),
        Ok(_) => Err(bad(format!("its target {serial} is not a plain folder"))),
        Err(_) => Err(bad(format!("its target {serial} does not exist"))),
    }
}

/// Points `current` in `kind_dir` at `serial` (or removes it for `None`): the new link
/// is made at a temporary name and renamed over the old, so a reader sees the old link
/// or the new one, never none. Leftover temporary links of a killed run are removed.
pub fn set_link(kind_dir: &Path, serial: Option<&str>) -> Result<(), WsError> {
    if let Ok(rd) = fs::read_dir(kind_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let link = kind_dir.join(CURRENT);
    let Some(serial) = serial else {
        return match fs::symlink_metadata(&link) {
            Ok(md) if md.file_type().is_symlink() => fsutil::remove_synced(&link),
            _ => Ok(()),
        };
    };
    debug_assert!(is_serial(serial));
    if matches!(read_link(kind_dir), Ok(Some(s)) if s == serial) {
        return Ok(());
    }
    if fs::symlink_metadata(&link).is_ok_and(|m| !m.file_type().is_symlink()) {
        // a folder or file an operator put there: never replaced silently
        return Err(WsError::Corrupt {
            path: link,
            reason: "it should be the symbolic link mtlsctl makes to the active certificate's folder; move it away".into(),
        });
    }
    let tmp = kind_dir.join(format!("{TMP_PREFIX}{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(serial, &tmp).map_err(|e| io_err(&tmp, "create", e))?;
    if let Err(e) = fs::rename(&tmp, &link) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&link, "replace", e));
    }
    fsutil::sync_dir(kind_dir)
}

/// Whether `path` is a `current` link of the shape mtlsctl makes (in a kind folder, a
/// relative link to a serial), whether or not its target exists: the inventory passes
/// it by (it is never followed; a target removed under it only means no certificate is
/// designated until the next change puts it right).
pub fn is_own_link(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == CURRENT)
        && path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|k| k.to_str())
            .is_some_and(|k| k.parse::<Kind>().is_ok())
        && fs::read_link(path)
            .is_ok_and(|t| t.components().count() == 1 && t.to_str().is_some_and(is_serial))
}

/// Whether `path` is a `current` link in a kind folder that [`read_link`] accepts: the
/// one symbolic link `doctor` lets be.
pub fn is_valid_current(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == CURRENT)
        && path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|k| k.to_str())
            .is_some_and(|k| k.parse::<Kind>().is_ok())
        && path
            .parent()
            .is_some_and(|d| matches!(read_link(d), Ok(Some(_))))
}

impl Workspace {
    /// The stable path of tenant/env/kind's active certificate.
    pub fn current_path(&self, env: &str, tenant: &str, kind: Kind) -> PathBuf {
        self.kind_dir(env, tenant, kind).join(CURRENT)
    }

    /// The serial `current` designates, checked ([`read_link`]).
    pub fn current_serial(
        &self,
        env: &str,
        tenant: &str,
        kind: Kind,
    ) -> Result<Option<String>, WsError> {
        let dir = self.kind_dir(env, tenant, kind);
        fsutil::refuse_symlinks(self.root(), &dir)?;
        read_link(&dir)
    }

    /// Makes `current` designate the active certificate of tenant/env/kind, or removes
    /// it when there is none. Idempotent: every change of which certificate is active
    /// calls it, and so does the recovery of an interrupted run.
    pub fn refresh_current(&self, env: &str, tenant: &str, kind: Kind) -> Result<(), WsError> {
        let dir = self.kind_dir(env, tenant, kind);
        if !dir.is_dir() {
            return Ok(());
        }
        let active = self.current_leaf(tenant, env, kind)?;
        set_link(&dir, active.as_ref().map(|r| r.meta.serial.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_and_checks_the_link() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path().join("client");
        fs::create_dir_all(k.join("aa01")).unwrap();
        fs::create_dir_all(k.join("bb02")).unwrap();
        assert_eq!(read_link(&k).unwrap(), None);
        set_link(&k, Some("aa01")).unwrap();
        assert_eq!(read_link(&k).unwrap().as_deref(), Some("aa01"));
        assert_eq!(fs::read_link(k.join(CURRENT)).unwrap(), Path::new("aa01"));
        set_link(&k, Some("bb02")).unwrap();
        assert_eq!(read_link(&k).unwrap().as_deref(), Some("bb02"));
        assert!(is_valid_current(&k.join(CURRENT)));
        fs::remove_dir(k.join("bb02")).unwrap();
        assert!(read_link(&k).is_err(), "a dangling link designates nothing");
        assert!(is_own_link(&k.join(CURRENT)) && !is_valid_current(&k.join(CURRENT)));
        set_link(&k, None).unwrap();
        assert_eq!(read_link(&k).unwrap(), None);
        // links of another shape are refused, never followed
        for target in ["/etc", "../client/aa01", "cc03", "aa01/"] {
            let _ = fs::remove_file(k.join(CURRENT));
            std::os::unix::fs::symlink(target, k.join(CURRENT)).unwrap();
            assert!(read_link(&k).is_err(), "{target}");
            assert!(!is_valid_current(&k.join(CURRENT)), "{target}");
            assert_eq!(is_own_link(&k.join(CURRENT)), target == "cc03", "{target}");
        }
        // a leftover temporary link is cleaned up by the next swap
        std::os::unix::fs::symlink("aa01", k.join(".tmp-current-1")).unwrap();
        let _ = fs::remove_file(k.join(CURRENT));
        set_link(&k, Some("aa01")).unwrap();
        assert!(fs::symlink_metadata(k.join(".tmp-current-1")).is_err());
    }
}
