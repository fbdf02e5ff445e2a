//! The file-tree checks of `doctor`: staging leftovers, symbolic links that lead out of
//! the workspace, names that are not valid, leaves whose folder is not where their
//! meta.json says.

use std::fs;
use std::path::{Path, PathBuf};

use super::Problem;
use crate::pki::Kind;
use crate::profile::Profiles;
use crate::workspace::inventory::LeafRecord;
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

/// Symbolic links whose target lies outside the workspace, or nowhere.
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
        let target = fs::read_link(p)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        match fs::canonicalize(p) {
            Ok(real) if real.starts_with(&real_root) => {}
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

/// What a folder name under pki/ should be at `depth` (1 env, 2 tenant, 3 kind, 4 leaf).
fn name_problem(p: &Path, depth: usize, profiles: &Profiles) -> Option<Problem> {
    let n = name(p);
    let bad = |what: &str, msg: String| {
        Some(Problem::error("name", None, p.to_path_buf()).says(
            format!("'{n}' is not a valid {what} folder name: {msg}"),
            "rename or remove the folder; mtlsctl never makes such a name",
        ))
    };
    match depth {
        1 => match check_name("environment", &n) {
            Err(m) => bad("environment", m),
            Ok(()) if !profiles.envs.contains_key(&n) => {
                Some(Problem::warning("name", None, p.to_path_buf()).says(
                    format!(
                        "'{n}' is not an environment of mtlsctl.yaml, so no command looks at it"
                    ),
                    format!(
                        "add it back with `mtlsctl env add {n}`, or move the folder out of pki/"
                    ),
                ))
            }
            Ok(()) => None,
        },
        2 if n == "ca" => None,
        2 => check_name("tenant", &n)
            .err()
            .and_then(|m| bad("tenant", m)),
        3 => n.parse::<Kind>().err().and_then(|m| bad("kind", m)),
        4 if n == "pending" => None,
        4 if n.len() <= 40
            && !n.is_empty()
            && n.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) =>
        {
            None
        }
        4 => bad(
            "serial",
            "a certificate's folder is its serial in lowercase hex".into(),
        ),
        _ => None,
    }
}

/// Names of tenant profiles and of the folders under pki/.
fn names(ws: &Workspace, profiles: &Profiles, only: Option<&str>) -> Vec<Problem> {
    let mut out = Vec::new();
    for t in profiles.tenant_names() {
        if let Err(m) = check_name("tenant", t) {
            out.push(
                Problem::error("name", None, ws.tenant_profile(t))
                    .says(m, "rename the profile file to a valid tenant name"),
            );
        }
    }
    let (root, base) = match only {
        Some(_) => (pki_root(ws, only), 2),
        None => (pki_root(ws, None), 1),
    };
    walk(&root, base, &mut |p, t, depth| {
        if !t.is_dir() || name(p).starts_with('.') {
            return false;
        }
        // the CA's own folder holds files only
        if depth == 2 && name(p) == "ca" {
            return false;
        }
        match name_problem(p, depth, profiles) {
            Some(prob) => {
                out.push(prob);
                false
            }
            None => depth < 4,
        }
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

/// Leaves whose folder is not where their meta.json says it should be.
pub(super) fn placement_problems(leaves: &[LeafRecord], env: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    for rec in leaves {
        let m = &rec.meta;
        let want = format!("{}/{}/{}/{}", m.env, m.tenant, m.kind, m.serial);
        let parts: Vec<String> = rec.dir.ancestors().take(4).map(name).collect();
        let found = format!("{}/{}/{}/{}", parts[3], parts[2], parts[1], parts[0]);
        if want != found || m.env != env {
            out.push(
                Problem::error("name", Some(env), rec.dir.join("meta.json"))
                    .says(
                        "the certificate's folder is not where its meta.json says it belongs (it was moved or copied)",
                        format!("move it back to pki/{want}/, or remove it if it is a stray copy"),
                    )
                    .saw(format!("pki/{want}"), format!("pki/{found}")),
            );
        }
    }
    out
}
