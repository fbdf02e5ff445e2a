//! `ca init`, `ca show`, `ca list`, `ca rotate` and `ca retire`.

use std::path::PathBuf;

use anyhow::Result;

use super::secrets::{self, SecretSpec};
use super::{Ctx, Exit, Out, UsageError, say};
use crate::ops;
use crate::ops::ca::{CaItem, RotateRequest, Tier};
use crate::report::{self, sanitize, table};

#[derive(Debug, clap::Subcommand)]
pub enum CaCmd {
    /// Create an environment's CAs from its profile: a root and an issuing CA below it (no-op if they exist)
    Init(InitArgs),
    /// Show environment CAs
    Show(ShowArgs),
    /// List every CA: roots, issuing CAs and cross-certificates, with role, status and validity
    List(ListArgs),
    /// Replace an issuing CA or the root, with an overlap in which old and new are both trusted
    Rotate(RotateArgs),
    /// Take a replaced CA out of the trust bundles once nothing current chains to it
    Retire(RetireArgs),
}

/// How to get the CA key's passphrase; shared by every command that signs.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct CaPassArgs {
    /// File whose first line is the CA key passphrase (else MTLSCTL_CA_PASSPHRASE_<ENV>, then
    /// MTLSCTL_CA_PASSPHRASE)
    #[arg(long, value_name = "FILE")]
    pub ca_passphrase_file: Option<PathBuf>,
}

impl CaPassArgs {
    /// The passphrase of `env`'s CA key: the file flag, MTLSCTL_CA_PASSPHRASE_<ENV>,
    /// MTLSCTL_CA_PASSPHRASE, a prompt naming the environment (asked twice when `confirm`).
    pub fn get(&self, ctx: &Ctx, env: &str, confirm: bool) -> Result<secrecy::SecretString> {
        let what = format!("CA key passphrase for {env}");
        let per_env = ops::ca::passphrase_var(env);
        secrets::get(
            &SecretSpec {
                what: &what,
                file: self.ca_passphrase_file.as_deref(),
                file_flag: "--ca-passphrase-file",
                env_vars: &[&per_env, "MTLSCTL_CA_PASSPHRASE"],
                confirm,
            },
            ctx.global.no_input,
        )
    }

    /// The passphrase if the CA keys of `env` are encrypted.
    pub fn for_env(
        &self,
        ctx: &Ctx,
        ws: &crate::workspace::Workspace,
        env: &str,
    ) -> Result<Option<secrecy::SecretString>> {
        if ops::ca::env_key_is_encrypted(ws, env)? {
            Ok(Some(self.get(ctx, env, false)?))
        } else {
            Ok(None)
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Two tiers by default (profile ca.tiers: 2): a root (ca.root.validity, 20y, pathLen 1) and an issuing CA for client certificates signed by it (ca.issuing.validity, 5y, pathLen 0, EKU clientAuth). Leaves are signed by the issuing CA; a server-issuing CA is made with `ca rotate --tier issuing --kind server`. ca.tiers: 1 makes a single root that signs leaves itself. With --root-key-out, the root key is written once into that folder (removable media, a vault) and never kept in the workspace; what needs it later takes --root-key FILE."
)]
pub struct InitArgs {
    /// The environment whose CA to create
    #[arg(long)]
    pub env: String,
    /// The tenant whose own CA to create (its profile sets ca.scope: tenant for this environment)
    #[arg(long)]
    pub tenant: Option<String>,
    /// Write the root key into this folder and keep it out of the workspace (an offline root)
    #[arg(long, value_name = "DIR")]
    pub root_key_out: Option<PathBuf>,
    #[command(flatten)]
    pub pass: CaPassArgs,
    /// Store the CA key unencrypted (only for throwaway test workspaces)
    #[arg(long, conflicts_with = "ca_passphrase_file")]
    pub no_passphrase: bool,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Only this environment (default: all)
    #[arg(long)]
    pub env: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this environment (default: all)
    #[arg(long)]
    pub env: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TierArg {
    Issuing,
    Root,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "--tier issuing (default) makes a new issuing CA under the active root; in a one-tier environment that is the move to two tiers, and current certificates stay valid. --tier root makes a new root, certifies its key with the old root (a cross-certificate, carried in chain.pem during the overlap so gateways that hold only the old root accept new certificates) and new issuing CAs below it. From then on issue and renew sign with the new CA, every current certificate of the old one is due (reason ca-rotation), and every export's trust bundle holds old and new CAs and their CRLs until `ca retire`."
)]
pub struct RotateArgs {
    #[arg(long)]
    pub env: String,
    /// The tenant whose own CA to rotate (ca.scope: tenant)
    #[arg(long)]
    pub tenant: Option<String>,
    /// What to replace
    #[arg(long, value_enum, default_value = "issuing")]
    pub tier: TierArg,
    /// Only the issuing CA of this kind (default: every kind the environment issues)
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<crate::pki::Kind>,
    /// The root key file, when the root is kept offline (`ca init --root-key-out`)
    #[arg(long, value_name = "FILE")]
    pub root_key: Option<PathBuf>,
    /// Where the new root's key goes when the root is kept offline (--tier root)
    #[arg(long, value_name = "DIR")]
    pub root_key_out: Option<PathBuf>,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

#[derive(Debug, clap::Args)]
pub struct RetireArgs {
    #[arg(long)]
    pub env: String,
    /// The tenant whose own CA it is (ca.scope: tenant)
    #[arg(long)]
    pub tenant: Option<String>,
    /// Serial of the CA to retire (see `mtlsctl ca list`)
    #[arg(long, value_name = "HEX")]
    pub serial: String,
}

pub fn run(ctx: &Ctx, c: CaCmd) -> Result<Exit> {
    ctx.only_table_json("ca")?;
    match c {
        CaCmd::Init(a) => init(ctx, a),
        CaCmd::Show(a) => show(ctx, a),
        CaCmd::List(a) => list(ctx, a),
        CaCmd::Rotate(a) => rotate(ctx, a),
        CaCmd::Retire(a) => retire(ctx, a),
    }
}

fn init(ctx: &Ctx, a: InitArgs) -> Result<Exit> {
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let ca = profiles.resolve_ca_for(&a.env, a.tenant.as_deref())?;
    if let Some(t) = &a.tenant
        && ca.tenant.is_none()
    {
        return Err(UsageError(format!(
            "--tenant {t}: tenant '{t}' shares the {} CA (ca.scope is env); set `ca: {{scope: tenant}}` under overrides.{} in its profile, or under ca: in the environment's, to give it its own",
            a.env, a.env
        ))
        .into());
    }
    let _lock = ctx.lock_for_write(&ws)?;
    let base = crate::workspace::CaLoc::base(&a.env, ca.tenant.as_deref());
    let whose = match &ca.tenant {
        Some(t) => format!("{t}'s {}", a.env),
        None => a.env.clone(),
    };
    if ws.ca_cert(&base).is_file() {
        let rep = ops::ca::report(&ws, &profiles, &a.env, ca.tenant.as_deref(), false)?;
        ctx.emit(&rep, |out| {
            ctx.note(format!("The {whose} CA exists already; nothing changed."))?;
            print_one(out, &rep)?;
            Ok(())
        })?;
        return Ok(Exit::Ok);
    }
    let pass = if a.no_passphrase {
        None
    } else {
        Some(a.pass.get(ctx, &a.env, true).map_err(|e| {
            match e.downcast::<UsageError>() {
                Ok(u) => UsageError(format!(
                    "{u} (or --no-passphrase for a throwaway workspace)"
                ))
                .into(),
                Err(e) => e,
            }
        })?)
    };
    let rep = ops::ca::init(
        &ws,
        &profiles,
        &ca,
        pass.as_ref(),
        a.root_key_out.as_deref(),
        time::OffsetDateTime::now_utc(),
    )?;
    if let Some(p) = &rep.moved_aside {
        ctx.warn(format!(
            "the {} CA folder had no ca.crt (an interrupted `ca init` of an older version): moved aside to {}, nothing deleted",
            a.env,
            p.display()
        ));
    }
    ctx.emit(&rep, |out| {
        ctx.note(format!("Created the {whose} CA."))?;
        print_one(out, &rep)?;
        if let Some(k) = &rep.root_key_out {
            say!(
                out,
                "  root key:  {} (offline: move it to removable media or a vault; `--root-key` takes it back when the root must sign)",
                k.display()
            );
        }
        if pass.is_none() {
            ctx.warn("the CA key is stored unencrypted (--no-passphrase)");
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn print_one(out: &Out, r: &ops::ca::CaReport) -> std::io::Result<()> {
    say!(out, "  subject:   {}", sanitize(&r.cert.subject));
    say!(out, "  serial:    {}", r.cert.serial);
    say!(out, "  key:       {}", r.cert.key.algorithm);
    say!(out, "  not after: {}", report::rfc3339(r.cert.not_after));
    say!(out, "  sha256:    {}", r.cert.fingerprints.sha256);
    say!(out, "  cert:      {}", r.files.cert.display());
    let root_offline = r.cas.iter().any(|c| c.offline && c.id == r.cas[0].id);
    if root_offline {
        say!(out, "  key file:  kept offline");
    } else {
        say!(
            out,
            "  key file:  {} ({})",
            r.files.key.display(),
            if r.key_encrypted {
                "encrypted"
            } else {
                "NOT encrypted"
            }
        );
    }
    say!(out, "  tiers:     {}", r.tiers);
    for c in r.cas.iter().filter(|c| c.role != ops::ca::CaRole::Root) {
        say!(
            out,
            "  {}: {} ({}, serial {}, until {})",
            role_word(c),
            sanitize(&c.subject),
            c.status.as_str(),
            c.serial,
            report::date(c.not_after)
        );
    }
    Ok(())
}

fn role_word(c: &CaItem) -> String {
    match (c.role, c.kind) {
        (ops::ca::CaRole::Issuing, Some(k)) => format!("issuing ({k})"),
        (r, _) => r.as_str().to_string(),
    }
}

fn show(ctx: &Ctx, a: ShowArgs) -> Result<Exit> {
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let envs = match &a.env {
        Some(e) => {
            profiles.check_env(e)?;
            vec![e.clone()]
        }
        None => profiles.env_names(),
    };
    let mut reps = Vec::new();
    let mut missing = Vec::new();
    for e in &envs {
        if ops::ca::exists(&ws, e) {
            for w in ops::doctor::ca_warnings(&ws, &profiles, Some(e)) {
                ctx.warn(w);
            }
            reps.push(ops::ca::report(&ws, &profiles, e, None, false)?);
        } else if a.env.is_some() {
            // a named env must have one
            ops::ca::ca_cert_der(&ws, &profiles, e)?;
        } else {
            missing.push(e.clone());
        }
    }
    ctx.emit(&reps, |out| {
        let now = time::OffsetDateTime::now_utc();
        let mut t = table::new(
            &[
                "env",
                "subject",
                "key",
                "tiers",
                "not after",
                "days left",
                "key file",
            ],
            ctx.stdout_tty,
        );
        for r in &reps {
            t.add_row(vec![
                r.env.clone(),
                sanitize(&r.cert.subject),
                r.cert.key.algorithm.clone(),
                r.tiers.to_string(),
                report::date(r.cert.not_after),
                report::days_left(r.cert.not_after, now).to_string(),
                if r.cas.first().is_some_and(|c| c.offline) {
                    "offline".into()
                } else if r.key_encrypted {
                    "encrypted".into()
                } else {
                    "unencrypted".into()
                },
            ]);
        }
        say!(out, "{t}");
        for m in missing {
            ctx.note(format!("{m}: no CA yet (mtlsctl ca init --env {m})"))?;
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn list(ctx: &Ctx, a: ListArgs) -> Result<Exit> {
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let items = ops::ca::list(&ws, &profiles, a.env.as_deref())?;
    for w in ops::doctor::ca_warnings(&ws, &profiles, a.env.as_deref()) {
        ctx.warn(w);
    }
    ctx.emit(&items, |out| {
        let now = time::OffsetDateTime::now_utc();
        let mut t = table::new(
            &[
                "env",
                "scope",
                "role",
                "status",
                "subject",
                "serial",
                "not after",
                "days left",
                "sha256",
            ],
            ctx.stdout_tty,
        );
        for c in &items {
            t.add_row(vec![
                c.env.clone(),
                match &c.tenant {
                    Some(t) => format!("tenant {}", sanitize(t)),
                    None => "env".into(),
                },
                role_word(c),
                c.status.as_str().to_string(),
                sanitize(&c.subject),
                c.serial.clone(),
                report::date(c.not_after),
                report::days_left(c.not_after, now).to_string(),
                c.sha256.chars().take(16).collect::<String>() + "…",
            ]);
        }
        say!(out, "{t}");
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn rotate(ctx: &Ctx, a: RotateArgs) -> Result<Exit> {
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let pass = a.pass.for_env(ctx, &ws, &a.env)?;
    let rep = ops::ca::rotate(
        &ws,
        &profiles,
        &a.env,
        a.tenant.as_deref(),
        &RotateRequest {
            tier: match a.tier {
                TierArg::Issuing => Tier::Issuing,
                TierArg::Root => Tier::Root,
            },
            kind: a.kind,
            passphrase: pass.as_ref(),
            root_key: a.root_key.as_deref(),
            root_key_out: a.root_key_out.as_deref(),
        },
        time::OffsetDateTime::now_utc(),
    )?;
    ctx.emit(&rep, |out| {
        ctx.note(format!(
            "Rotated the {} {} tier.",
            a.env,
            match rep.tier {
                Tier::Issuing => "issuing",
                Tier::Root => "root",
            }
        ))?;
        for c in &rep.created {
            say!(
                out,
                "  new {}: {} (serial {}, until {})",
                role_word(c),
                sanitize(&c.subject),
                c.serial,
                report::date(c.not_after)
            );
        }
        for c in &rep.retiring {
            say!(
                out,
                "  retiring {}: {} (serial {})",
                role_word(c),
                sanitize(&c.subject),
                c.serial
            );
        }
        if let Some(k) = &rep.root_key_out {
            say!(out, "  new root key: {} (keep it offline)", k.display());
        }
        for n in &rep.next {
            say!(out, "next: {n}");
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn retire(ctx: &Ctx, a: RetireArgs) -> Result<Exit> {
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let rep = ops::ca::retire(
        &ws,
        &profiles,
        &a.env,
        a.tenant.as_deref(),
        &a.serial,
        time::OffsetDateTime::now_utc(),
    )?;
    ctx.emit(&rep, |out| {
        if rep.changed {
            ctx.note(format!("Retired CA {} of {}.", a.serial, a.env))?;
        } else {
            ctx.note(format!(
                "CA {} of {} was retired already; nothing changed.",
                a.serial, a.env
            ))?;
        }
        for c in &rep.retired {
            say!(
                out,
                "  retired {}: {} (serial {})",
                role_word(c),
                sanitize(&c.subject),
                c.serial
            );
        }
        for n in &rep.next {
            say!(out, "next: {n}");
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}
