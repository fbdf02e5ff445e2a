//! Creating a workspace and adding tenants and environments: the profile files from the
//! templates, laid out by the workspace. The command line only asks and reports.

use std::path::PathBuf;

use serde::Serialize;

use super::{OpError, Result};
use crate::profile::{Profiles, templates};
use crate::workspace::fsutil::{self, PUBLIC};
use crate::workspace::{CONFIG_FILE, Workspace, WsError};

/// What `init` made.
#[derive(Debug, Serialize)]
pub struct Created {
    pub workspace: PathBuf,
    pub created: Vec<PathBuf>,
}

const GITIGNORE: &str = "\
# Unencrypted leaf keys and PFX passwords stay out of version control.
# CA keys (pki/*/ca/ca.key) are encrypted at rest and may be kept.
pki/*/*/*/*/key.pem
pki/*/*/*/*/bundle.pfx
pki/*/*/*/*/bundle.pfx.pass
pki/*/*/*/pending/
.mtlsctl.lock
";

/// Creates a workspace in `ws`'s folder: mtlsctl.yaml, one profile per environment and
/// tenant, the pki folder and a .gitignore. Names are checked by the caller.
pub fn create(ws: &Workspace, org: &str, envs: &[String], tenants: &[String]) -> Result<Created> {
    if ws.config_file().exists() {
        return Err(OpError::AlreadyWorkspace {
            root: ws.root().to_path_buf(),
            config: CONFIG_FILE,
        });
    }
    fsutil::private_dir(ws.root())?;
    let mut created = Vec::new();
    for e in envs {
        let p = ws.env_profile(e);
        fsutil::write_new(&p, templates::environment(e).as_bytes(), PUBLIC)?;
        created.push(p);
    }
    fsutil::private_dir(&ws.tenants_dir())?;
    for t in tenants {
        let p = ws.tenant_profile(t);
        fsutil::write_new(&p, templates::tenant(t, t, envs).as_bytes(), PUBLIC)?;
        created.push(p);
    }
    fsutil::private_dir(&ws.root().join("pki"))?;
    let gi = ws.root().join(".gitignore");
    if !gi.exists() {
        fsutil::write_new(&gi, GITIGNORE.as_bytes(), PUBLIC)?;
        created.push(gi);
    }
    // the marker last: a half-made workspace is not taken for a whole one
    fsutil::write_new(
        &ws.config_file(),
        templates::config(org, envs).as_bytes(),
        PUBLIC,
    )?;
    created.insert(0, ws.config_file());
    // prove the files we wrote load
    Profiles::load(ws)?;
    Ok(Created {
        workspace: ws.root().to_path_buf(),
        created,
    })
}

/// Writes a new tenant's profile; returns its path.
pub fn add_tenant(ws: &Workspace, name: &str, org: &str, envs: &[String]) -> Result<PathBuf> {
    let p = ws.tenant_profile(name);
    fsutil::write_new(&p, templates::tenant(name, org, envs).as_bytes(), PUBLIC).map_err(|e| {
        match e {
            WsError::Exists(_) => OpError::TenantExists {
                name: name.to_string(),
                profile: p.clone(),
            },
            other => other.into(),
        }
    })?;
    Ok(p)
}

/// Adds an environment to mtlsctl.yaml and writes its profile; returns the profile's
/// path. The caller holds the lock.
pub fn add_env(ws: &Workspace, profiles: &Profiles, name: &str) -> Result<PathBuf> {
    if profiles.envs.contains_key(name) {
        return Err(OpError::EnvExists {
            name: name.to_string(),
        });
    }
    let cfg_path = ws.config_file();
    let text = String::from_utf8(fsutil::read(&cfg_path)?).map_err(|_| OpError::NotUtf8 {
        path: cfg_path.clone(),
    })?;
    let new_text = add_to_env_list(&text, name).ok_or_else(|| OpError::NoEnvList {
        path: cfg_path.clone(),
        env: name.to_string(),
    })?;
    let p = ws.env_profile(name);
    if !p.exists() {
        fsutil::write_new(&p, templates::environment(name).as_bytes(), PUBLIC)?;
    }
    fsutil::write_atomic(&cfg_path, new_text.as_bytes(), PUBLIC)?;
    Profiles::load(ws)?;
    Ok(p)
}

/// Adds `name` to the `environments:` list of mtlsctl.yaml, keeping comments and layout.
/// Handles the flow form `environments: [a, b]` and the block form `- a` lines.
pub fn add_to_env_list(text: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = lines.iter().position(|l| l.starts_with("environments:"))?;
    let line = lines[idx];
    let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let rest = line["environments:".len()..].trim_start();
    if rest.starts_with('[') {
        let close = line.find(']')?;
        let inner = line[line.find('[')? + 1..close].trim();
        let new_inner = if inner.is_empty() {
            name.to_string()
        } else {
            format!("{inner}, {name}")
        };
        out[idx] = format!(
            "{}[{}]{}",
            &line[..line.find('[')?],
            new_inner,
            &line[close + 1..]
        );
    } else if rest.is_empty() || rest.starts_with('#') {
        let mut last = idx;
        let mut indent = "  ".to_string();
        for (i, l) in lines.iter().enumerate().skip(idx + 1) {
            let t = l.trim_start();
            if t.starts_with("- ") {
                last = i;
                indent = l[..l.len() - t.len()].to_string();
            } else if t.is_empty() || t.starts_with('#') {
                continue;
            } else {
                break;
            }
        }
        out.insert(last + 1, format!("{indent}- {name}"));
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
    use super::add_to_env_list;

    #[test]
    fn adds_to_flow_and_block_lists() {
        assert_eq!(
            add_to_env_list("org: x\nenvironments: [a, b]  # c\n", "d").unwrap(),
            "org: x\nenvironments: [a, b, d]  # c\n"
        );
        assert_eq!(
            add_to_env_list("environments:\n  - a\n  - b\nca: {}\n", "d").unwrap(),
            "environments:\n  - a\n  - b\n  - d\nca: {}\n"
        );
        assert!(add_to_env_list("org: x\n", "d").is_none());
    }
}
