//! The file-tree checks of `doctor`: staging leftovers, symbolic links that lead out of
//! the workspace (or sit where mtlsctl refuses them), names that are not valid.

use std::fs;
use std::path::{Path, PathBuf};

use super::Problem;
use crate::profile::Profiles;
use crate::workspace::{Workspace, check_name};

/// Calls `visit` for every entry under `dir` (not following symbolic links), with its
/// depth below `dir` (1 for `dir`'s own entries); descends into a folder when `visit`
/// returns true.
fn walk(dir: &Path, depth: usize, visit: &mut dyn FnMut(&Path, &fs::FileType, usize) -> bool) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(t) = e.file_type() else {
            continue;
        };
        let p = e.path();
        if visit(&p, &t, depth) && t.is_dir() {
            walk(&p, depth + 1, visit);
        }
    }
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The folder the checks of the file tree cover: pki/ENV with --env, else pki/.
fn pki_root(ws: &Workspace, only: Option<&str>) -> PathBuf {
    match only {
        Some(e) => ws.root().join("pki").join(e),
        None => ws.root().join("pki"),
    }
}

/// Hidden `.tmp-*` and `.stage-*` entries under pki/: what an interrupted run left.
fn staging(root: &Path) -> Vec<Problem> {
    let mut out = Vec::new();
    walk(root, 1, &mut |p, _, _| {
        let n = name(p);
        if n.starts_with(".tmp-") || n.starts_with(".stage-") {
            out.push(Problem::error("staging", None, p.to_path_buf()).says(
                "a staging leftover of an interrupted run (nothing reads it, and it may hold a private key)",
                format!("once no mtlsctl run is in progress, remove it: rm -r '{}'", p.display()),
            ));
            return false;
        }
        true
    });
    out
}

/// Symbolic links whose target lies outside the workspace, or nowhere, and any link
/// under pki/ or profiles/, which mtlsctl refuses to follow; the one exception is a
/// well-formed `current` link (workspace::current).
fn symlinks(ws_root: &Path, root: &Path) -> Vec<Problem> {
    let real_root = fs::canonicalize(ws_root).unwrap_or_else(|_| ws_root.to_path_buf());
    let mut out = Vec::new();
    walk(root, 1, &mut |p, t, depth| {
        if depth == 1 && name(p) == ".git" {
            return false;
        }
        if !t.is_symlink() {
            return true;
        }
        // the stable `current` link of a kind folder: made by mtlsctl, checked here
        // (a relative link to a serial folder beside it) and never followed
        if crate::workspace::current::is_valid_current(p) {
            return false;
        }
        let target = fs::read_link(p)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        let read_by_us =
            p.starts_with(ws_root.join("pki")) || p.starts_with(ws_root.join("profiles"));
        match fs::canonicalize(p) {
            Ok(real) if real.starts_with(&real_root) && !read_by_us => {}
            Ok(real) if real.starts_with(&real_root) => out.push(
                Problem::error("symlink", None, p.to_path_buf())
                    .says(
                        "a symbolic link where mtlsctl reads its own files: it refuses to read or write through it, even to a place inside the workspace",
                        format!("replace the link with the file or folder itself: rm '{}' and copy the target there", p.display()),
                    )
                    .saw("a plain file or folder", format!("a link to {}", real.display())),
            ),
            Ok(real) => out.push(
                Problem::error("symlink", None, p.to_path_buf())
                    .says(
                        "a symbolic link that leads out of the workspace: what mtlsctl reads or writes through it is not in the workspace",
                        format!("replace the link with the file itself, or remove it: rm '{}'", p.display()),
                    )
                    .saw(format!("a path inside {}", real_root.display()), real.display().to_string()),
            ),
            Err(_) => out.push(
                Problem::warning("symlink", None, p.to_path_buf())
                    .says("a symbolic link that leads nowhere", format!("remove it: rm '{}'", p.display()))
                    .saw("an existing target", target),
            ),
        }
        false
    });
    out
}

/// Tenant profiles the profiles do not use (a name mtlsctl never makes), and folders
/// under pki/ that are no environment of mtlsctl.yaml. (Folders below an environment's
/// are the inventory's: see `env_leaves`.)
fn names(ws: &Workspace, profiles: &Profiles, only: Option<&str>) -> Vec<Problem> {
    let mut out: Vec<Problem> = profiles
        .rejected_tenants()
        .iter()
        .map(|r| {
            Problem::error("name", None, r.path.clone()).says(
                r.reason.clone(),
                "rename the profile file to a valid tenant name, or move it out of profiles/tenants/",
            )
        })
        .collect();
    if only.is_some() {
        return out;
    }
    walk(&ws.root().join("pki"), 1, &mut |p, t, _| {
        let n = name(p);
        if !t.is_dir() || n.starts_with('.') {
            return false;
        }
        match check_name("environment", &n) {
            Err(m) => out.push(Problem::error("name", None, p.to_path_buf()).says(
                format!("a folder under pki/ that is no environment's: {m}"),
                "rename or remove the folder; mtlsctl never makes such a name",
            )),
            Ok(()) if !profiles.envs.contains_key(&n) => {
                out.push(Problem::warning("name", None, p.to_path_buf()).says(
                    format!(
                        "'{n}' is not an environment of mtlsctl.yaml, so no command looks at it"
                    ),
                    format!(
                        "add it back with `mtlsctl env add {n}`, or move the folder out of pki/"
                    ),
                ))
            }
            Ok(()) => {}
        }
        false
    });
    out
}

/// The checks of the file tree: of pki/ENV with `only`, else of the whole workspace
/// (symbolic links) and pki/ (staging leftovers, names).
pub(super) fn tree_problems(
    ws: &Workspace,
    profiles: &Profiles,
    only: Option<&str>,
) -> Vec<Problem> {
    let pki = pki_root(ws, only);
    let mut out = staging(&pki);
    let link_root = if only.is_some() {
        pki
    } else {
        ws.root().to_path_buf()
    };
    out.extend(symlinks(ws.root(), &link_root));
    out.extend(names(ws, profiles, only));
    out
}
