//! `init`, `tenant add`, `env add`: workspace and profile files from templates/.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{Ctx, Exit, UsageError, secrets};
use crate::ops::setup;
use crate::workspace::{Workspace, check_name};

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
    /// Off-board a tenant: revoke its certificates, re-sign the CRLs, archive it
    Remove(TenantRemoveArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Revokes every certificate of the tenant (in --env E only, with it) that is not revoked or expired yet, each CRL re-signed, then moves pki/ENV/TENANT/ and the profile (or, with --env, that environment from its list) under archive/tenants/TENANT/TIME/, without the private keys. At a terminal it only shows what it would do unless --yes is given; elsewhere it runs. A later `tenant add` starts clean."
)]
pub struct TenantRemoveArgs {
    /// Tenant name
    pub name: String,
    /// Remove it from this environment only (default: from all, and its profile)
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    /// Why its certificates are revoked (RFC 5280 reason code)
    #[arg(long, default_value = "cessation-of-operation", value_parser = clap::builder::PossibleValuesParser::new(crate::pki::crl::REASONS.iter().map(|(n, _)| *n)))]
    pub reason: String,
    /// Show what would be revoked and archived, change nothing
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Do it without the dry run a terminal gets first
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub pass: super::ca::CaPassArgs,
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
    let made = setup::create(&ws, &org, &envs, &a.tenants)?;
    ctx.emit(&made, |_| {
        ctx.note(format!("Created workspace {}", ws.root().display()))?;
        for p in &made.created {
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
        Ok(())
    })?;
    Ok(Exit::Ok)
}

pub fn run_tenant(ctx: &Ctx, c: TenantCmd) -> Result<Exit> {
    let a = match c {
        TenantCmd::Add(a) => a,
        TenantCmd::Remove(r) => return run_tenant_remove(ctx, r),
    };
    ctx.only_table_json("tenant add")?;
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
    let org = a.org.clone().unwrap_or_else(|| a.name.clone());
    let p = setup::add_tenant(&ws, &a.name, &org, &envs)?;
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

fn run_tenant_remove(ctx: &Ctx, a: TenantRemoveArgs) -> Result<Exit> {
    use crate::ops::offboard;
    ctx.only_table_json("tenant remove")?;
    usage(check_name("tenant", &a.name))?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let now = time::OffsetDateTime::now_utc();
    // at a terminal the first run is a dry run, unless --yes
    let dry = a.dry_run || (!a.yes && secrets::interactive(ctx.global.no_input));
    let rep = if dry {
        offboard::dry(offboard::plan(
            &ws,
            &profiles,
            &a.name,
            a.env.as_deref(),
            &a.reason,
            now,
        )?)
    } else {
        let _lock = ctx.lock_for_write(&ws)?;
        let plan = offboard::plan(&ws, &profiles, &a.name, a.env.as_deref(), &a.reason, now)?;
        let mut pass_for = |env: &str| {
            a.pass
                .for_env(ctx, &ws, env)
                .map_err(|e| crate::ops::OpError::Msg(super::render_error(&e)))
        };
        offboard::remove(&ws, &profiles, plan, &mut pass_for, now)?
    };
    ctx.emit(&rep, |out| {
        let p = &rep.plan;
        ctx.note(format!(
            "{} tenant {} ({}):",
            if rep.dry_run {
                "Would remove"
            } else {
                "Removed"
            },
            crate::report::sanitize(&p.tenant),
            p.envs.join(", ")
        ))?;
        for r in &p.revoke {
            super::say!(
                out,
                "  revoke{} {}/{} {} ({}), reason {}",
                if rep.dry_run { "" } else { "d" },
                r.env,
                r.kind,
                r.serial,
                r.status.as_str(),
                p.reason
            );
        }
        for c in &rep.crls {
            super::say!(
                out,
                "  crl      {} (number {})",
                c.path.display(),
                c.crl_number
            );
        }
        super::say!(
            out,
            "  archive  {} (profile {})",
            ws.root().join(&p.archive).display(),
            p.profile
        );
        super::revoke::print_next(ctx, &rep.next)?;
        Ok(())
    })?;
    Ok(Exit::Ok)
}

pub fn run_env(ctx: &Ctx, c: EnvCmd) -> Result<Exit> {
    ctx.only_table_json("env add")?;
    let EnvCmd::Add(a) = c;
    usage(check_name("environment", &a.name))?;
    let ws = ctx.workspace()?;
    let _lock = ctx.lock_for_write(&ws)?;
    let profiles = ctx.profiles(&ws)?;
    let p = setup::add_env(&ws, &profiles, &a.name)?;
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
