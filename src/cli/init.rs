//! `init`, `tenant add`, `env add`: workspace and profile files from templates/.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::{Ctx, Exit, UsageError, secrets};
use crate::profile::templates;
use crate::workspace::fsutil::{self, PUBLIC};
use crate::workspace::{CONFIG_FILE, Workspace, check_name};

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Folder to create the workspace in (default: the current folder)
    pub dir: Option<PathBuf>,
    /// Your organisation's name, used as {org} in subjects
    #[arg(long)]
    pub org: Option<String>,
    /// An environment, each with its own CA (repeat; default: nonprod and prod)
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// A tenant profile to create (repeat)
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum TenantCmd {
    /// Add a tenant profile from the template
    Add(TenantAddArgs),
}

#[derive(Debug, clap::Args)]
pub struct TenantAddArgs {
    /// Tenant name (letters, digits, '-', '_', '.')
    pub name: String,
    /// The tenant's organisation, {tenant_org} in subjects (default: the name)
    #[arg(long)]
    pub org: Option<String>,
    /// Environments the tenant has certificates in (repeat; default: all)
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum EnvCmd {
    /// Add an environment profile and list it in mtlsctl.yaml
    Add(EnvAddArgs),
}

#[derive(Debug, clap::Args)]
pub struct EnvAddArgs {
    /// Environment name (letters, digits, '-', '_', '.')
    pub name: String,
}

#[derive(Serialize)]
struct Created {
    workspace: PathBuf,
    created: Vec<PathBuf>,
}

fn usage(r: Result<(), String>) -> Result<()> {
    r.map_err(|m| UsageError(m).into())
}

pub fn run_init(ctx: &Ctx, a: InitArgs) -> Result<Exit> {
    ctx.only_table_json("init")?;
    let dir = a
        .dir
        .clone()
        .or_else(|| ctx.global.workspace.clone())
        .unwrap_or_else(|| PathBuf::from("."));
    let ws = Workspace::at_new(&dir);
    if ws.config_file().exists() {
        bail!(
            "{} is already a workspace ({} exists); add to it with `mtlsctl tenant add` and `mtlsctl env add`",
            ws.root().display(),
            CONFIG_FILE
        );
    }
    let org = match a.org {
        Some(o) => o,
        None if secrets::interactive(ctx.global.no_input) => dialoguer::Input::<String>::new()
            .with_prompt("Organisation name ({org} in subjects)")
            .interact_text()
            .context("could not read the organisation name")?,
        None => {
            return Err(UsageError(
                "--org is required when no one is at a terminal: mtlsctl init DIR --org \"Example Corp\"".into(),
            )
            .into());
        }
    };
    if org.trim().is_empty() {
        return Err(UsageError("--org is empty".into()).into());
    }
    let envs = if a.envs.is_empty() {
        vec!["nonprod".to_string(), "prod".to_string()]
    } else {
        a.envs.clone()
    };
    for (i, e) in envs.iter().enumerate() {
        usage(check_name("environment", e))?;
        if envs[..i].contains(e) {
            return Err(UsageError(format!("--env {e} is given twice")).into());
        }
    }
    for t in &a.tenants {
        usage(check_name("tenant", t))?;
    }
    fsutil::private_dir(ws.root())?;
    let mut created = Vec::new();
    for e in &envs {
        let p = ws.env_profile(e);
        fsutil::write_new(&p, templates::environment(e).as_bytes(), PUBLIC)?;
        created.push(p);
    }
    fsutil::private_dir(&ws.tenants_dir())?;
    for t in &a.tenants {
        let p = ws.tenant_profile(t);
        fsutil::write_new(&p, templates::tenant(t, t, &envs).as_bytes(), PUBLIC)?;
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
        templates::config(&org, &envs).as_bytes(),
        PUBLIC,
    )?;
    created.insert(0, ws.config_file());
    // prove the files we wrote load
    crate::profile::Profiles::load(&ws)?;
    if ctx.json() {
        ctx.out.json(&Created {
            workspace: ws.root().to_path_buf(),
            created,
        })?;
    } else {
        ctx.note(format!("Created workspace {}", ws.root().display()))?;
        for p in &created {
            ctx.note(format!(
                "  {}",
                p.strip_prefix(ws.root()).unwrap_or(p).display()
            ))?;
        }
        ctx.note(format!(
            "Next: mtlsctl -C {} ca init --env {}",
            ws.root().display(),
            envs[0]
        ))?;
    }
    Ok(Exit::Ok)
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

pub fn run_tenant(ctx: &Ctx, c: TenantCmd) -> Result<Exit> {
    ctx.only_table_json("tenant add")?;
    let TenantCmd::Add(a) = c;
    usage(check_name("tenant", &a.name))?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let envs = if a.envs.is_empty() {
        profiles.env_names()
    } else {
        for e in &a.envs {
            profiles.check_env(e)?;
        }
        a.envs.clone()
    };
    let p = ws.tenant_profile(&a.name);
    let org = a.org.clone().unwrap_or_else(|| a.name.clone());
    fsutil::write_new(
        &p,
        templates::tenant(&a.name, &org, &envs).as_bytes(),
        PUBLIC,
    )
    .map_err(|e| match e {
        crate::workspace::WsError::Exists(_) => anyhow::anyhow!(
            "tenant '{}' already exists ({}); edit that file to change it",
            a.name,
            p.display()
        ),
        other => other.into(),
    })?;
    ctx.emit(
        &serde_json::json!({"tenant": a.name, "profile": p, "environments": envs}),
        |_| {
            ctx.note(format!(
                "Added tenant {} ({}), environments: {}",
                a.name,
                p.display(),
                envs.join(", ")
            ))?;
            Ok(())
        },
    )?;
    Ok(Exit::Ok)
}

pub fn run_env(ctx: &Ctx, c: EnvCmd) -> Result<Exit> {
    ctx.only_table_json("env add")?;
    let EnvCmd::Add(a) = c;
    usage(check_name("environment", &a.name))?;
    let ws = ctx.workspace()?;
    let _lock = ws.lock()?;
    let profiles = ctx.profiles(&ws)?;
    if profiles.envs.contains_key(&a.name) {
        bail!("environment '{}' already exists", a.name);
    }
    let cfg_path = ws.config_file();
    let text = String::from_utf8(fsutil::read(&cfg_path)?)?;
    let new_text = add_to_env_list(&text, &a.name).ok_or_else(|| {
        anyhow::anyhow!(
            "could not find the `environments:` list in {}: add '{}' to it by hand, then run this again",
            cfg_path.display(),
            a.name
        )
    })?;
    let p = ws.env_profile(&a.name);
    if !p.exists() {
        fsutil::write_new(&p, templates::environment(&a.name).as_bytes(), PUBLIC)?;
    }
    fsutil::write_atomic(&cfg_path, new_text.as_bytes(), PUBLIC)?;
    ctx.profiles(&ws)?;
    ctx.emit(&serde_json::json!({"env": a.name, "profile": p}), |_| {
        ctx.note(format!(
            "Added environment {} ({}); create its CA with `mtlsctl ca init --env {}`",
            a.name,
            p.display(),
            a.name
        ))?;
        Ok(())
    })?;
    Ok(Exit::Ok)
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
