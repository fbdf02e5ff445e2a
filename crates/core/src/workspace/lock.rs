//! The workspace lock: an `flock` on `.mtlsctl.lock`, held by every run that changes the
//! workspace. The kernel releases it when its holder ends, however it ends, so a lock
//! left by a killed run is free at once and the file itself never needs removing. The
//! holder writes who it is into the file, so that a run that has to wait can say whom
//! it waits for.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::fsutil::SECRET;
use super::{LOCK_WAIT, WsError, io_err};
use crate::pki::text::sanitize;

/// Who holds the workspace lock, as it wrote itself into the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// The command line, program name first (no secret ever goes on it).
    pub command: String,
    /// When it took the lock.
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    pub host: String,
}

impl Holder {
    fn this_process() -> Holder {
        let mut args = std::env::args_os();
        let prog = args
            .next()
            .map(|a| {
                Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let mut command = prog;
        for a in args {
            let a = a.to_string_lossy();
            command.push(' ');
            if a.is_empty() || a.contains(char::is_whitespace) {
                command.push_str(&format!("'{a}'"));
            } else {
                command.push_str(&a);
            }
        }
        Holder {
            pid: std::process::id(),
            command,
            started: crate::pki::cert::whole_seconds(OffsetDateTime::now_utc()),
            host: host_name(),
        }
    }
}

/// Text read from the lock file is escaped: another process wrote it.
impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on host {} (`{}`, holding it since {})",
            self.pid,
            sanitize(&self.host),
            sanitize(&self.command),
            crate::pki::text::rfc3339(self.started)
        )
    }
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Called once when a run finds the lock taken: the holder (None when it has not
/// recorded itself) and how long the run will wait.
pub type OnWait = Arc<dyn Fn(Option<&Holder>, Duration) + Send + Sync>;

/// How [`super::Workspace::lock`] waits.
#[derive(Clone)]
pub struct LockWait {
    pub wait: Duration,
    pub on_wait: Option<OnWait>,
}

impl Default for LockWait {
    fn default() -> Self {
        LockWait {
            wait: LOCK_WAIT,
            on_wait: None,
        }
    }
}

impl std::fmt::Debug for LockWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockWait")
            .field("wait", &self.wait)
            .field("on_wait", &self.on_wait.as_ref().map(|_| "callback"))
            .finish()
    }
}

/// Held while a run changes the workspace; released on drop (or by the kernel when the
/// process ends).
pub struct Lock {
    file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // still held here: no one reads a stale holder once it is released
        let _ = self.file.set_len(0);
    }
}

const POLL: Duration = Duration::from_millis(50);

/// Opens (creating it 0600) and takes the lock, waiting as `w` says.
pub(super) fn acquire(path: &Path, w: &LockWait) -> Result<Lock, WsError> {
    let file = open(path)?;
    let start = Instant::now();
    let mut told = w.wait.is_zero();
    loop {
        match file.try_lock() {
            Ok(()) => {
                write_holder(&file);
                return Ok(Lock { file });
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(io_err(path, "lock", e)),
        }
        let waited = start.elapsed();
        if waited >= w.wait {
            return Err(WsError::Locked {
                path: path.to_path_buf(),
                holder: read_holder(&file),
                wait: w.wait,
            });
        }
        if !told {
            told = true;
            if let Some(cb) = &w.on_wait {
                cb(holder_soon(&file).as_ref(), w.wait);
            }
        }
        std::thread::sleep(POLL.min(w.wait - waited));
    }
}

fn open(path: &Path) -> Result<File, WsError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(SECRET)
        .open(path)
        .map_err(|e| io_err(path, "open the lock file", e))?;
    // a lock file made before it carried the holder's command line was 0644
    if let Ok(m) = file.metadata()
        && m.permissions().mode() & 0o777 != SECRET
    {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(SECRET));
    }
    Ok(file)
}

/// Records this process as the holder. Advisory: a lock whose holder could not be
/// written is still held.
fn write_holder(file: &File) {
    let mut json = serde_json::to_vec(&Holder::this_process()).expect("holder serialises");
    json.push(b'\n');
    let _ = file.set_len(0).and_then(|_| file.write_all_at(&json, 0));
}

fn read_holder(file: &File) -> Option<Holder> {
    let mut buf = vec![0u8; 4096];
    let n = file.read_at(&mut buf, 0).ok()?;
    serde_json::from_slice(&buf[..n]).ok()
}

/// The holder, allowing it a moment to write itself after taking the lock.
fn holder_soon(file: &File) -> Option<Holder> {
    read_holder(file).or_else(|| {
        std::thread::sleep(Duration::from_millis(100));
        read_holder(file)
    })
}

/// The message of [`WsError::Locked`]. It never suggests removing the lock file: that
/// frees nothing (the lock is on the open file, not its name) and lets a second run
/// lock a new file while the first still writes.
pub(super) fn locked_message(path: &Path, holder: Option<&Holder>, wait: Duration) -> String {
    let who = match holder {
        Some(h) => format!("another mtlsctl run holds the workspace lock: {h}"),
        None => format!(
            "another process holds the workspace lock {} without saying who it is (`fuser -v {}` names it)",
            path.display(),
            path.display()
        ),
    };
    let waited = if wait.is_zero() {
        "not waiting (--wait 0s)".to_string()
    } else {
        format!(
            "gave up after {}",
            crate::profile::Dur::from_secs(wait.as_secs() as i64)
        )
    };
    format!(
        "{who}; {waited}. Wait for it to finish, or stop it if it is stuck (the lock is released as soon as it ends), then run again; --wait DUR waits longer"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::sync::Mutex;

    #[test]
    fn holder_is_recorded_in_a_private_file_and_cleared_on_release() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".mtlsctl.lock");
        let l = acquire(&p, &LockWait::default()).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let h: Holder = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(h.pid, std::process::id());
        assert!(!h.host.is_empty());
        drop(l);
        assert!(std::fs::read(&p).unwrap().is_empty());
    }

    #[test]
    fn a_waiting_run_is_told_who_holds_it_then_gives_up_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".mtlsctl.lock");
        let _held = acquire(&p, &LockWait::default()).unwrap();
        type Seen = Arc<Mutex<Vec<(Option<u32>, Duration)>>>;
        let seen: Seen = Arc::default();
        let s2 = seen.clone();
        let w = LockWait {
            wait: Duration::from_millis(300),
            on_wait: Some(Arc::new(move |h, d| {
                s2.lock().unwrap().push((h.map(|h| h.pid), d))
            })),
        };
        let t = Instant::now();
        let e = acquire(&p, &w).err().unwrap();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![(Some(std::process::id()), Duration::from_millis(300))]
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(!msg.contains("remove") && !msg.contains("delete"), "{msg}");
        // --wait 0s: no wait, no callback
        let w0 = LockWait {
            wait: Duration::ZERO,
            on_wait: w.on_wait.clone(),
        };
        let msg = acquire(&p, &w0).err().unwrap().to_string();
        assert!(msg.contains("not waiting"), "{msg}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_old_world_readable_lock_file_becomes_private() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".mtlsctl.lock");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _l = acquire(&p, &LockWait::default()).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn held_text_is_escaped() {
        let h = Holder {
            pid: 1,
            command: "mtlsctl \u{1b}[2J".into(),
            started: OffsetDateTime::UNIX_EPOCH,
            host: "h\u{202e}".into(),
        };
        let s = h.to_string();
        assert!(!s.contains('\u{1b}') && !s.contains('\u{202e}'), "{s}");
    }
}
