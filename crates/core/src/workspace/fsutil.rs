//! File primitives: private folders, atomic writes with the mode set at open.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{WsError, io_err};

/// Mode for private keys, passwords and anything secret.
pub const SECRET: u32 = 0o600;
/// Mode for public material (certificates, CRLs, metadata).
pub const PUBLIC: u32 = 0o644;

/// Creates `dir` and its missing parents with mode 0700.
pub fn private_dir(dir: &Path) -> Result<(), WsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err(dir, "create folder", e))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder created with
/// `mode`, written, fsynced, renamed over `path`, then the folder fsynced. A failure at
/// any point leaves `path` as it was.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WsError> {
    write_impl(path, bytes, mode, false)
}

/// Like [`write_atomic`] but refuses to replace an existing file.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WsError> {
    write_impl(path, bytes, mode, true)
}

fn write_impl(path: &Path, bytes: &[u8], mode: u32, no_clobber: bool) -> Result<(), WsError> {
    let dir = parent(path);
    private_dir(&dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(&dir)
        .map_err(|e| io_err(&dir, "create a temporary file in", e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| io_err(tmp.path(), "write", e))?;
    if no_clobber {
        tmp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                WsError::Exists(path.to_path_buf())
            } else {
                io_err(path, "write", e.error)
            }
        })?;
    } else {
        tmp.persist(path)
            .map_err(|e| io_err(path, "write", e.error))?;
    }
    sync_dir(&dir)
}

/// Fsyncs a folder so a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), WsError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(dir, "sync", e))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// One file of a set written together.
pub struct NewFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
    pub mode: u32,
}

/// How the hidden sibling folder a folder is staged in begins: `.stage-<name>`.
pub const STAGE_PREFIX: &str = ".stage-";

/// The hidden sibling folder `dir` is staged in: `.stage-<name of dir>`, a name fixed by
/// the final one (for a leaf, its serial), so a later run finds what a killed one left.
pub fn stage_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent(dir).join(format!("{STAGE_PREFIX}{name}"))
}

/// Writes a whole folder at once: every file goes into its staging folder
/// ([`stage_path`], 0700), in the order given, each created with its mode and fsynced,
/// then the folder is renamed into place. A crash leaves either the complete folder or
/// none (plus the hidden staging folder, which every listing of the workspace skips and
/// the next run that takes the lock for writing settles).
pub fn write_dir_atomic(dir: &Path, files: &[NewFile<'_>]) -> Result<(), WsError> {
    stage_dir_synced(dir, files)?.commit()?;
    sync_dir(&parent(dir))
}

/// The first half of [`write_dir_atomic`]: the folder staged with every file and the
/// staging folder itself fsynced, ready for [`Staged::commit`] (after which the caller
/// syncs the parent folder).
pub fn stage_dir_synced(dir: &Path, files: &[NewFile<'_>]) -> Result<Staged, WsError> {
    let staged = stage(dir, files, true)?;
    if let Some(tmp) = &staged.tmp {
        sync_dir(tmp)?;
    }
    Ok(staged)
}

/// A folder written into its staging folder but not yet made durable or put in place:
/// see [`stage_dir`].
#[must_use = "a staged folder must be committed, or it is removed on drop"]
pub struct Staged {
    tmp: Option<PathBuf>,
    dir: PathBuf,
}

impl Staged {
    /// Renames the staged folder into place (refusing to replace an existing one). The
    /// caller must have made its contents durable first ([`sync_fs`]) and syncs again
    /// afterwards so that the rename itself survives a crash.
    pub fn commit(mut self) -> Result<(), WsError> {
        let tmp = self.tmp.take().expect("staged once");
        place_staged(&tmp, &self.dir).inspect_err(|_| {
            let _ = fs::remove_dir_all(&tmp);
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(t) = self.tmp.take() {
            let _ = fs::remove_dir_all(t);
        }
    }
}

/// Renames the staging folder `stage` to `dir`, refusing to replace an existing `dir`.
/// Leaves `stage` as it is on failure.
pub fn place_staged(stage: &Path, dir: &Path) -> Result<(), WsError> {
    if dir.exists() {
        return Err(WsError::Exists(dir.to_path_buf()));
    }
    fs::rename(stage, dir).map_err(|e| io_err(dir, "move into place", e))
}

/// The first half of [`write_dir_atomic`] for batches: writes every file (mode set at
/// open) into the staging folder of `dir` without syncing. Sync the file system once for
/// the whole batch with [`sync_fs`], then [`Staged::commit`] each folder, then
/// [`sync_fs`] again: a crash leaves each folder complete or absent.
pub fn stage_dir(dir: &Path, files: &[NewFile<'_>]) -> Result<Staged, WsError> {
    stage(dir, files, false)
}

/// Writes `files`, in order, into the staging folder of `dir` (created 0700, and refused
/// when it exists: it holds what an earlier run left), each created with its mode;
/// `sync_each` fsyncs every file as it is written. On failure the staging folder is
/// removed.
fn stage(dir: &Path, files: &[NewFile<'_>], sync_each: bool) -> Result<Staged, WsError> {
    let parent_dir = parent(dir);
    private_dir(&parent_dir)?;
    if dir.exists() {
        return Err(WsError::Exists(dir.to_path_buf()));
    }
    let tmp = stage_path(dir);
    DirBuilder::new().mode(0o700).create(&tmp).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            WsError::Exists(tmp.clone())
        } else {
            io_err(&tmp, "create folder", e)
        }
    })?;
    // from here a failure drops `staged`, which removes the folder
    let staged = Staged {
        tmp: Some(tmp.clone()),
        dir: dir.to_path_buf(),
    };
    for f in files {
        let p = tmp.join(f.name);
        let mut h = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(f.mode)
            .open(&p)
            .map_err(|e| io_err(&p, "create", e))?;
        h.write_all(f.bytes)
            .and_then(|_| if sync_each { h.sync_all() } else { Ok(()) })
            .map_err(|e| io_err(&p, "write", e))?;
        crate::fault::hit(crate::fault::Fault::StageFile);
    }
    Ok(staged)
}

/// Fsyncs every file directly inside `dir`, then `dir` itself: makes a folder found
/// staged by an earlier run durable before it is renamed into place.
pub fn sync_tree(dir: &Path) -> Result<(), WsError> {
    let rd = fs::read_dir(dir).map_err(|e| io_err(dir, "list", e))?;
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
            let p = e.path();
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_err(&p, "sync", e))?;
        }
    }
    sync_dir(dir)
}

/// Removes the folder `dir`: the files named in `secrets` first (so a failure half-way
/// never leaves a key in a folder whose certificate is gone), then the rest, then syncs
/// the parent folder so the removal survives a crash. A missing `dir` is not an error.
pub fn destroy_dir(dir: &Path, secrets: &[&str]) -> Result<(), WsError> {
    if !dir.exists() {
        return Ok(());
    }
    for s in secrets {
        let p = dir.join(s);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(&p, "remove", e));
            }
            _ => {}
        }
    }
    fs::remove_dir_all(dir).map_err(|e| io_err(dir, "remove", e))?;
    sync_dir(&parent(dir))
}

/// Removes the file `path` and syncs its folder, so the removal survives a crash. A
/// missing file is not an error.
pub fn remove_synced(path: &Path) -> Result<(), WsError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(path, "remove", e)),
        _ => sync_dir(&parent(path)),
    }
}

/// Flushes every written file and rename of the file system holding `path` to disk
/// (`syncfs`): one durability barrier for a whole batch of writes.
pub fn sync_fs(path: &Path) -> Result<(), WsError> {
    use std::os::fd::AsRawFd;
    let f = File::open(path).map_err(|e| io_err(path, "open", e))?;
    // SAFETY: syncfs takes a file descriptor that stays open for the call.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io_err(path, "sync", std::io::Error::last_os_error()))
    }
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, WsError> {
    fs::read(path).map_err(|e| io_err(path, "read", e))
}

/// Appends one line to a file opened with O_APPEND, so concurrent writers never interleave
/// within a line, and syncs it.
pub fn append_line(path: &Path, line: &str, mode: u32) -> Result<(), WsError> {
    append(path, &[line], mode, true)
}

/// Appends several lines with one write to a file opened with O_APPEND, without syncing
/// (the caller syncs with [`sync_fs`]).
pub fn append_lines_unsynced(path: &Path, lines: &[String], mode: u32) -> Result<(), WsError> {
    append(path, lines, mode, false)
}

fn append<S: AsRef<str>>(path: &Path, lines: &[S], mode: u32, sync: bool) -> Result<(), WsError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io_err(path, "open", e))?;
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l.as_ref().as_bytes());
        buf.push(b'\n');
    }
    f.write_all(&buf)
        .and_then(|_| if sync { f.sync_data() } else { Ok(()) })
        .map_err(|e| io_err(path, "append to", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/key.pem");
        write_atomic(&p, b"one", SECRET).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o777,
            0o700
        );
        write_atomic(&p, b"two", SECRET).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(matches!(
            write_new(&p, b"x", SECRET),
            Err(WsError::Exists(_))
        ));
    }

    #[test]
    fn dir_write_is_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("a/b");
        write_dir_atomic(
            &target,
            &[
                NewFile {
                    name: "k",
                    bytes: b"k",
                    mode: SECRET,
                },
                NewFile {
                    name: "c",
                    bytes: b"c",
                    mode: PUBLIC,
                },
            ],
        )
        .unwrap();
        assert_eq!(
            fs::metadata(target.join("k")).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(target.join("c")).unwrap().mode() & 0o777,
            0o644
        );
        // a duplicate name inside the set fails and leaves nothing behind
        let t2 = d.path().join("a/c");
        assert!(
            write_dir_atomic(
                &t2,
                &[
                    NewFile {
                        name: "x",
                        bytes: b"1",
                        mode: SECRET
                    },
                    NewFile {
                        name: "x",
                        bytes: b"2",
                        mode: SECRET
                    },
                ],
            )
            .is_err()
        );
        assert!(!t2.exists());
        let leftovers: Vec<_> = fs::read_dir(d.path().join("a"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn staged_folder_appears_only_on_commit_and_vanishes_on_drop() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("t/leaf");
        let files = [NewFile {
            name: "k",
            bytes: b"k",
            mode: SECRET,
        }];
        let st = stage_dir(&target, &files).unwrap();
        assert!(!target.exists());
        sync_fs(d.path()).unwrap();
        st.commit().unwrap();
        assert_eq!(
            fs::metadata(target.join("k")).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o700);
        // an existing folder is never replaced
        assert!(matches!(
            stage_dir(&target, &files),
            Err(WsError::Exists(_))
        ));
        let other = d.path().join("t/other");
        drop(stage_dir(&other, &files).unwrap());
        assert!(!other.exists());
        let left: Vec<_> = fs::read_dir(d.path().join("t"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty());
        // destroying a folder takes its secrets first and tolerates a missing one
        destroy_dir(&target, &["k"]).unwrap();
        assert!(!target.exists());
        destroy_dir(&target, &["k"]).unwrap();
        // the staging folder is named after the final one, and one left over is refused
        std::fs::create_dir(stage_path(&other)).unwrap();
        assert_eq!(stage_path(&other), d.path().join("t/.stage-other"));
        assert!(matches!(
            stage_dir(&other, &files),
            Err(WsError::Exists(p)) if p == stage_path(&other)
        ));
    }
}
