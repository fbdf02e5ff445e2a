//! File primitives: private folders, atomic writes with the mode set at open.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::{WsError, io_err};

/// Mode for private keys, passwords and anything secret.
pub const SECRET: u32 = 0o600;
/// Mode for public material (certificates, CRLs, metadata).
pub const PUBLIC: u32 = 0o644;
/// Mode for folders of public material that leaves the workspace (a gateway hand-off).
pub const PUBLIC_DIR: u32 = 0o755;
const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` and its missing parents with mode 0700.
pub fn private_dir(dir: &Path) -> Result<(), WsError> {
    make_dir(dir, PRIVATE_DIR)
}

fn make_dir(dir: &Path, mode: u32) -> Result<(), WsError> {
    DirBuilder::new()
        .recursive(true)
        .mode(mode)
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
    /// Relative to the folder; `/` separates subfolders (only plain names, no `..`).
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

    /// Renames the staged folder over `dir`: an existing `dir` is moved aside to a hidden
    /// sibling first, put back if the rename fails, and removed after it succeeds.
    fn replace(mut self) -> Result<(), WsError> {
        let tmp = self.tmp.take().expect("staged once");
        let dir = self.dir.clone();
        let old = if fs::symlink_metadata(&dir).is_ok() {
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            let aside = parent(&dir).join(format!(".old-{name}"));
            remove_any(&aside);
            if let Err(e) = fs::rename(&dir, &aside) {
                let _ = fs::remove_dir_all(&tmp);
                return Err(io_err(&dir, "move aside", e));
            }
            Some(aside)
        } else {
            None
        };
        if let Err(e) = fs::rename(&tmp, &dir) {
            if let Some(o) = &old {
                let _ = fs::rename(o, &dir);
            }
            let _ = fs::remove_dir_all(&tmp);
            return Err(io_err(&dir, "move into place", e));
        }
        if let Some(o) = old {
            remove_any(&o);
        }
        Ok(())
    }
}

fn remove_any(p: &Path) {
    if p.is_dir() {
        let _ = fs::remove_dir_all(p);
    } else {
        let _ = fs::remove_file(p);
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

/// Writes a folder of public files (a hand-off that leaves the workspace) in one step,
/// replacing `dir` if it exists. Every file is created with its mode in a hidden sibling
/// folder (folders 0755; a name may hold `/`), the file system is synced once, and the
/// folder is renamed over `dir` (an existing one moved aside, then removed). On failure
/// `dir` is left as it was.
pub fn replace_public_dir(dir: &Path, files: &[NewFile<'_>]) -> Result<(), WsError> {
    let staged = stage_tmp(dir, files, false, PUBLIC_DIR)?;
    if let Some(tmp) = &staged.tmp {
        sync_fs(tmp)?;
    }
    staged.replace()?;
    sync_dir(&parent(dir))
}

/// Writes `files` into a hidden sibling folder of `dir` (created, like any subfolder, with
/// `dir_mode`), each file created with its mode; `sync_each` fsyncs every file as it is
/// written.
fn stage_tmp(
    dir: &Path,
    files: &[NewFile<'_>],
    sync_each: bool,
    dir_mode: u32,
) -> Result<Staged, WsError> {
    let parent_dir = parent(dir);
    make_dir(&parent_dir, dir_mode)?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(dir_mode))
        .tempdir_in(&parent_dir)
        .map_err(|e| io_err(&parent_dir, "create a temporary folder in", e))?;
    for f in files {
        let rel = Path::new(f.name);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain name");
            return Err(io_err(rel, "create", e));
        }
        let p = tmp.path().join(rel);
        if let Some(sub) = p.parent().filter(|s| *s != tmp.path()) {
            make_dir(sub, dir_mode)?;
        }
        create_file(&p, f, sync_each)?;
    }
    Ok(Staged {
        tmp: Some(tmp.keep()),
        dir: dir.to_path_buf(),
    })
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
        let rel = Path::new(f.name);
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a plain name");
            return Err(io_err(rel, "create", e));
        }
        let p = tmp.join(rel);
        if let Some(sub) = p.parent().filter(|s| *s != tmp.as_path()) {
            make_dir(sub, 0o700)?;
        }
        create_file(&p, f, sync_each)?;
        crate::fault::hit(crate::fault::Fault::StageFile);
    }
    Ok(staged)
}

/// Creates the new file `p` with `f`'s mode (set at open) and bytes; `sync` fsyncs it.
fn create_file(p: &Path, f: &NewFile<'_>, sync: bool) -> Result<(), WsError> {
    let mut h = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(f.mode)
        .open(p)
        .map_err(|e| io_err(p, "create", e))?;
    h.write_all(f.bytes)
        .and_then(|_| if sync { h.sync_all() } else { Ok(()) })
        .map_err(|e| io_err(p, "write", e))
}

/// Fsyncs every file inside `dir` (and its subfolders), then `dir` itself: makes a
/// folder found staged by an earlier run durable before it is renamed into place.
pub fn sync_tree(dir: &Path) -> Result<(), WsError> {
    let rd = fs::read_dir(dir).map_err(|e| io_err(dir, "list", e))?;
    for e in rd.flatten() {
        let ft = e.file_type();
        if ft.as_ref().is_ok_and(|t| t.is_dir()) {
            sync_tree(&e.path())?;
        } else if ft.map(|t| t.is_file()).unwrap_or(false) {
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

/// Reads a regular file without following a symbolic link in its last component
/// (`O_NOFOLLOW`): a link is [`WsError::Symlink`], a FIFO or device [`WsError::NotAFile`]
/// (opened with `O_NONBLOCK`, so a FIFO cannot hang the run). Nothing of the file's
/// content is ever part of an error.
pub fn read_nofollow(path: &Path) -> Result<Vec<u8>, WsError> {
    use std::io::Read;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => WsError::Symlink(path.to_path_buf()),
            _ => io_err(path, "read", e),
        })?;
    let md = f.metadata().map_err(|e| io_err(path, "read", e))?;
    if !md.is_file() {
        return Err(WsError::NotAFile(path.to_path_buf()));
    }
    let mut buf = Vec::with_capacity(md.len() as usize);
    f.read_to_end(&mut buf)
        .map_err(|e| io_err(path, "read", e))?;
    Ok(buf)
}

/// Refuses `path` when it, or a folder between `root` and it, is a symbolic link. Parts
/// that do not exist yet are fine (they will be created as plain folders); the parts
/// from `/` to `root` are the operator's choice and not looked at. A path outside `root`
/// is not looked at either.
pub fn refuse_symlinks(root: &Path, path: &Path) -> Result<(), WsError> {
    let Ok(rel) = path.strip_prefix(root) else {
        return Ok(());
    };
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(md) if md.file_type().is_symlink() => return Err(WsError::Symlink(cur)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&cur, "look at", e)),
        }
    }
    Ok(())
}

/// Reads a file of the workspace at `root`: no symbolic link on the way from `root` to
/// it or as the file itself ([`refuse_symlinks`], [`read_nofollow`]). A tenant profile
/// that links to /etc/shadow or to another tenant's key is refused before a byte of it
/// is read.
pub fn read_inside(root: &Path, path: &Path) -> Result<Vec<u8>, WsError> {
    refuse_symlinks(root, path)?;
    read_nofollow(path)
}

impl super::Workspace {
    /// Reads a file of this workspace: see [`read_inside`].
    pub fn read(&self, path: &Path) -> Result<Vec<u8>, WsError> {
        read_inside(self.root(), path)
    }

    /// Refuses to write at `path` when a folder on the way to it inside the workspace is
    /// a symbolic link: a key written through `pki/<env>/<tenant>` linked elsewhere
    /// would land outside the workspace.
    pub fn check_no_symlink(&self, path: &Path) -> Result<(), WsError> {
        refuse_symlinks(self.root(), path)
    }
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
    fn public_dir_replaces_whole_with_subfolders() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out/handoff");
        let file = |name, bytes| NewFile {
            name,
            bytes,
            mode: PUBLIC,
        };
        replace_public_dir(&out, &[file("a.txt", b"1"), file("sub/b.txt", b"2")]).unwrap();
        assert_eq!(fs::read(out.join("sub/b.txt")).unwrap(), b"2");
        for p in [&out, &out.join("sub"), &d.path().join("out")] {
            assert_eq!(fs::metadata(p).unwrap().mode() & 0o777, 0o755, "{p:?}");
        }
        assert_eq!(
            fs::metadata(out.join("a.txt")).unwrap().mode() & 0o777,
            0o644
        );
        // a second write replaces the folder: nothing of the first is left
        replace_public_dir(&out, &[file("c.txt", b"3")]).unwrap();
        assert!(!out.join("a.txt").exists() && !out.join("sub").exists());
        assert_eq!(fs::read(out.join("c.txt")).unwrap(), b"3");
        // a name that climbs out is refused, and the folder stays as it was
        assert!(replace_public_dir(&out, &[file("../x", b"4")]).is_err());
        assert!(!d.path().join("out/x").exists());
        assert_eq!(fs::read(out.join("c.txt")).unwrap(), b"3");
        let hidden: Vec<_> = fs::read_dir(d.path().join("out"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }

    #[test]
    fn reads_refuse_links_and_special_files() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ws");
        let outside = d.path().join("secret");
        fs::write(&outside, "root:$6$hash:19000:0:99999:7:::\n").unwrap();
        fs::create_dir_all(root.join("profiles/tenants")).unwrap();
        fs::write(root.join("profiles/tenants/ok.yaml"), "a: 1\n").unwrap();
        assert_eq!(
            read_inside(&root, &root.join("profiles/tenants/ok.yaml")).unwrap(),
            b"a: 1\n"
        );
        // the file itself a link
        let link = root.join("profiles/tenants/evil.yaml");
        symlink(&outside, &link).unwrap();
        let e = read_inside(&root, &link).unwrap_err();
        assert!(matches!(&e, WsError::Symlink(p) if p == &link), "{e}");
        assert!(!e.to_string().contains("root:"), "{e}");
        // O_NOFOLLOW alone refuses it too (no check of the folders)
        assert!(matches!(read_nofollow(&link), Err(WsError::Symlink(_))));
        // a folder on the way a link
        fs::create_dir_all(d.path().join("elsewhere")).unwrap();
        fs::write(d.path().join("elsewhere/x.yaml"), "b: 2\n").unwrap();
        symlink(
            d.path().join("elsewhere"),
            root.join("profiles/environments"),
        )
        .unwrap();
        let via = root.join("profiles/environments/x.yaml");
        assert!(
            matches!(read_inside(&root, &via), Err(WsError::Symlink(p)) if p == root.join("profiles/environments"))
        );
        // a FIFO is refused without blocking
        let fifo = root.join("profiles/tenants/fifo.yaml");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_inside(&root, &fifo),
            Err(WsError::NotAFile(_))
        ));
        // parts that do not exist yet are fine for a write
        assert!(refuse_symlinks(&root, &root.join("pki/prod/acme/client")).is_ok());
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
