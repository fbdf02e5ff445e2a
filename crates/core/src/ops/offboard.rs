//! `tenant remove`: off-boarding a tenant that leaves. Its certificates are revoked
//! (each through `lifecycle::revoke`, which re-signs the CRL of the CA that issued it),
//! then its folders and profile are moved under `archive/`, journaled so that a run
//! killed half-way is completed by the next one.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::profile::Profiles;
use crate::workspace::Workspace;
use crate::workspace::fsutil::{self, PUBLIC};
use crate::workspace::inventory::{Filter, PFX, PFX_PASS, Status};
use crate::workspace::journal::{Intent, OffboardStep};
use crate::workspace::{WsError, io_err};

/// Where archived tenants go: `archive/tenants/<tenant>/<time>/`.
pub const ARCHIVE_DIR: &str = "archive";

/// What a removal does (or, dry, would do).
#[derive(Debug, Serialize)]
pub struct RemovePlan {
    pub tenant: String,
    pub envs: Vec<String>,
    pub reason: String,
    /// Certificates to revoke: every one of the tenant in `envs` not yet revoked or
    /// expired (current, superseded or staged: each is still valid).
    pub revoke: Vec<PlannedRevocation>,
    /// The archive folder.
    pub archive: PathBuf,
    /// `archived` (the whole tenant goes) or `edited` (only `envs`, removed from its
    /// profile's environments).
    pub profile: &'static str,
    #[serde(skip)]
    whole: bool,
}

#[derive(Debug, Serialize)]
pub struct PlannedRevocation {
    pub env: String,
    pub kind: crate::pki::Kind,
    pub serial: String,
    /// active, superseded (as it was).
    pub status: Status,
}

#[derive(Debug, Serialize)]
pub struct RemoveReport {
    pub dry_run: bool,
    #[serde(flatten)]
    pub plan: RemovePlan,
    /// The CRLs re-signed (one per revocation's CA and env, the last number each).
    pub crls: Vec<super::lifecycle::CrlReport>,
    pub next: Vec<String>,
}

/// Works out what removing `tenant` (from `env`, or from all its environments) does.
pub fn plan(
    ws: &Workspace,
    profiles: &Profiles,
    tenant: &str,
    env: Option<&str>,
    reason: &str,
    now: OffsetDateTime,
) -> Result<RemovePlan> {
    if !profiles.tenant_names().iter().any(|t| t == tenant) {
        return Err(OpError::Msg(format!(
            "tenant '{}' has no profile ({}): nothing to remove; `mtlsctl list --all` shows the tenants with certificates",
            crate::pki::text::sanitize(tenant),
            ws.tenant_profile(tenant).display()
        )));
    }
    let (_, t) = profiles.tenant(tenant)?;
    let listed = t.listed_envs();
    let envs: Vec<String> = match env {
        Some(e) => {
            profiles.check_env(e)?;
            if !listed.contains(&e) && !ws.root().join("pki").join(e).join(tenant).exists() {
                return Err(OpError::Msg(format!(
                    "tenant '{tenant}' is not in environment '{e}' (its environments: {}): nothing to remove; drop --env to remove the tenant",
                    listed.join(", ")
                )));
            }
            vec![e.to_string()]
        }
        None => {
            let mut v: Vec<String> = profiles.env_names();
            v.retain(|e| {
                listed.contains(&e.as_str()) || ws.root().join("pki").join(e).join(tenant).exists()
            });
            v
        }
    };
    let whole = match env {
        None => true,
        Some(e) => listed.iter().all(|l| *l == e),
    };
    let mut revoke = Vec::new();
    for e in &envs {
        for r in ws.leaves(&Filter {
            tenant: Some(tenant),
            env: Some(e),
            kind: None,
        })? {
            if r.meta.status != Status::Revoked && r.meta.not_after > now {
                revoke.push(PlannedRevocation {
                    env: e.clone(),
                    kind: r.meta.kind,
                    serial: r.meta.serial.clone(),
                    status: r.meta.status,
                });
            }
        }
    }
    let stamp = now
        .format(&time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| now.unix_timestamp().to_string());
    let archive = PathBuf::from(ARCHIVE_DIR)
        .join("tenants")
        .join(tenant)
        .join(stamp);
    Ok(RemovePlan {
        tenant: tenant.to_string(),
        envs,
        reason: reason.to_string(),
        revoke,
        archive,
        profile: if whole { "archived" } else { "edited" },
        whole,
    })
}

/// Carries out `p`: revokes each certificate (the passphrase of each env from
/// `pass_for`), then archives under a journal. The caller holds the lock.
pub fn remove(
    ws: &Workspace,
    profiles: &Profiles,
    p: RemovePlan,
    pass_for: &mut dyn FnMut(&str) -> Result<Option<secrecy::SecretString>>,
    now: OffsetDateTime,
) -> Result<RemoveReport> {
    let mut crls: std::collections::BTreeMap<PathBuf, super::lifecycle::CrlReport> =
        Default::default();
    let mut passes: std::collections::HashMap<String, Option<secrecy::SecretString>> =
        Default::default();
    for r in &p.revoke {
        let Some(rec) = ws.leaf_by_serial(&r.env, &r.serial)? else {
            continue;
        };
        if rec.meta.status == Status::Revoked {
            continue; // with another that shared its key, say
        }
        if !passes.contains_key(&r.env) {
            passes.insert(r.env.clone(), pass_for(&r.env)?);
        }
        let rep =
            super::lifecycle::revoke(ws, profiles, passes[&r.env].as_ref(), &rec, &p.reason, now)?;
        if let Some(c) = rep.crl {
            crls.insert(c.path.clone(), c);
        }
    }
    let mut intent = Intent::new("tenant-remove", now);
    let audit = intent.audit_step(
        "tenant-remove",
        Some(format!(
            "reason {}, {} certificate(s) revoked, {} archived in {}",
            p.reason,
            p.revoke.len(),
            p.envs.join(", "),
            p.archive.display()
        )),
    );
    let step = OffboardStep {
        tenant: p.tenant.clone(),
        envs: p.envs.clone(),
        archive: p.archive.clone(),
        whole: p.whole,
        audit,
    };
    intent.offboard = Some(step.clone());
    let journal = ws.begin(&intent)?;
    crate::fault::hit(crate::fault::Fault::AfterJournal);
    complete(ws, &step)?;
    journal.done();
    let next = vec![
        format!(
            "hand the re-signed CRL to the gateways of {}: mtlsctl crl shows it, `mtlsctl export` of any remaining tenant carries it",
            p.envs.join(", ")
        ),
        format!(
            "remove {}'s mapping or pins from those gateways; its files are kept in {}",
            p.tenant,
            p.archive.display()
        ),
    ];
    Ok(RemoveReport {
        dry_run: false,
        plan: p,
        crls: crls.into_values().collect(),
        next,
    })
}

/// A dry run's report.
pub fn dry(p: RemovePlan) -> RemoveReport {
    let next = vec![format!(
        "run it again with --yes to revoke {} certificate(s) and archive {}",
        p.revoke.len(),
        p.tenant
    )];
    RemoveReport {
        dry_run: true,
        plan: p,
        crls: Vec::new(),
        next,
    }
}

/// Moves the tenant's folders and profile into the archive, drops the private keys
/// there, and writes the audit line: each part skipped when done already, so recovery
/// repeats it safely. True when anything was left to do.
pub fn complete(ws: &Workspace, s: &OffboardStep) -> std::result::Result<bool, WsError> {
    let root = ws.root();
    let archive = root.join(&s.archive);
    let mut changed = false;
    for env in &s.envs {
        let from = root.join("pki").join(env).join(&s.tenant);
        let to = archive.join("pki").join(env).join(&s.tenant);
        changed |= move_once(ws, &from, &to)?;
        if to.is_dir() {
            changed |= drop_secrets(&to)?;
        }
    }
    let prof = ws.tenant_profile(&s.tenant);
    let prof_to = archive
        .join("profiles/tenants")
        .join(format!("{}.yaml", s.tenant));
    if s.whole {
        changed |= move_once(ws, &prof, &prof_to)?;
    } else if prof.is_file() {
        let text = fsutil::read_inside(root, &prof)?;
        if !prof_to.exists() {
            make_dirs(prof_to.parent().unwrap_or(root))?;
            fsutil::write_new(&prof_to, &text, PUBLIC)?;
            changed = true;
        }
        let t = String::from_utf8_lossy(&text).into_owned();
        let mut edited = t.clone();
        for env in &s.envs {
            edited = remove_from_env_list(&edited, env).ok_or_else(|| WsError::Corrupt {
                path: prof.clone(),
                reason: format!(
                    "its environments list is not one line `environments: [..]` or a block of `- name` lines; remove '{env}' from it by hand"
                ),
            })?;
        }
        if edited != t {
            fsutil::write_atomic(&prof, edited.as_bytes(), PUBLIC)?;
            changed = true;
        }
    }
    if !ws.audit_has(&s.audit.op_id)? {
        let mut ev = s.audit.event();
        ev.tenant = Some(&s.tenant);
        if let [one] = s.envs.as_slice() {
            ev.env = Some(one);
        }
        crate::ops::issue::audit(ws, &[ev], true).map_err(|e| match e {
            OpError::Workspace(w) => w,
            other => WsError::Corrupt {
                path: ws.root().join("audit.log"),
                reason: other.to_string(),
            },
        })?;
        changed = true;
    }
    Ok(changed)
}

fn make_dirs(d: &Path) -> std::result::Result<(), WsError> {
    std::fs::create_dir_all(d).map_err(|e| io_err(d, "create", e))
}

/// Renames `from` to `to` unless that happened already; refuses when both exist.
fn move_once(ws: &Workspace, from: &Path, to: &Path) -> std::result::Result<bool, WsError> {
    let there = std::fs::symlink_metadata(from).is_ok();
    if !there {
        return Ok(false);
    }
    ws.check_no_symlink(from)?;
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(WsError::Exists(to.to_path_buf()));
    }
    let parent = to.parent().unwrap_or(ws.root());
    make_dirs(parent)?;
    std::fs::rename(from, to).map_err(|e| io_err(from, "move to the archive", e))?;
    fsutil::sync_dir(parent)?;
    fsutil::sync_dir(from.parent().unwrap_or(ws.root()))?;
    crate::fault::hit(crate::fault::Fault::AfterPlace);
    Ok(true)
}

/// Removes the private keys, PFX files, pending requests and `current` links from an
/// archived tenant folder: its certificates are revoked, and an archive keeps no secret.
fn drop_secrets(tenant_dir: &Path) -> std::result::Result<bool, WsError> {
    let mut changed = false;
    let list = |d: &Path| -> Vec<std::fs::DirEntry> {
        std::fs::read_dir(d)
            .map(|rd| rd.flatten().collect())
            .unwrap_or_default()
    };
    for kind in list(tenant_dir) {
        if !kind.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        for e in list(&kind.path()) {
            let p = e.path();
            let Ok(t) = e.file_type() else { continue };
            if t.is_symlink() {
                fsutil::remove_synced(&p)?;
                changed = true;
            } else if t.is_dir() && e.file_name() == "pending" {
                fsutil::destroy_dir(&p, &[crate::workspace::inventory::KEY])?;
                changed = true;
            } else if t.is_dir() {
                for f in [crate::workspace::inventory::KEY, PFX, PFX_PASS] {
                    if p.join(f).exists() {
                        fsutil::remove_synced(&p.join(f))?;
                        changed = true;
                    }
                }
            }
        }
    }
    Ok(changed)
}

/// `text` with `name` taken out of its `environments:` list (flow `[a, b]` on one line,
/// or a block of `- a` lines); the text as it is when `name` is not there; None when the
/// list has another shape.
pub fn remove_from_env_list(text: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = lines.iter().position(|l| l.starts_with("environments:"))?;
    let line = lines[idx];
    let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let rest = line["environments:".len()..].trim_start();
    if rest.starts_with('[') {
        let open = line.find('[')?;
        let close = line.find(']')?;
        let kept: Vec<&str> = line[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty() && *e != name && e.trim_matches(['"', '\'']) != name)
            .collect();
        out[idx] = format!(
            "{}[{}]{}",
            &line[..open],
            kept.join(", "),
            &line[close + 1..]
        );
    } else if rest.is_empty() || rest.starts_with('#') {
        let mut i = idx + 1;
        while i < out.len() {
            let t = out[i].trim_start().to_string();
            if let Some(v) = t.strip_prefix("- ") {
                let v = v.split('#').next().unwrap_or("").trim();
                if v == name || v.trim_matches(['"', '\'']) == name {
                    out.remove(i);
                    continue;
                }
            } else if !(t.is_empty() || t.starts_with('#')) {
                break;
            }
            i += 1;
        }
    } else {
        return None;
    }
    let mut s = out.join("\n");
    if text.ends_with('\n') {
        s.push('\n');
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::remove_from_env_list as rm;

    #[test]
    fn takes_an_env_out_of_either_list_shape() {
        assert_eq!(
            rm("a: 1\nenvironments: [nonprod, prod]  # x\nb: 2\n", "prod").unwrap(),
            "a: 1\nenvironments: [nonprod]  # x\nb: 2\n"
        );
        assert_eq!(
            rm(
                "environments:\n  - nonprod\n  - prod\nclient: {}\n",
                "nonprod"
            )
            .unwrap(),
            "environments:\n  - prod\nclient: {}\n"
        );
        assert_eq!(
            rm("environments: [prod]\n", "qa").unwrap(),
            "environments: [prod]\n"
        );
        assert!(rm("environments: prod\n", "prod").is_none());
    }
}
