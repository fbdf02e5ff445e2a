//! `ca init` and `ca show`.

use std::path::PathBuf;

use anyhow::Result;

use super::secrets::{self, SecretSpec};
use super::{Ctx, Exit, Out, UsageError, say};
use crate::ops;
use crate::report::{self, sanitize, table};

#[derive(Debug, clap::Subcommand)]
pub enum CaCmd {
    /// Create an environment's private root CA from its profile (no-op if it exists)
    Init(InitArgs),
    /// Show environment CAs
    Show(ShowArgs),
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

    /// The passphrase if the CA key of `env` is encrypted.
    pub fn for_env(
        &self,
        ctx: &Ctx,
        ws: &crate::workspace::Workspace,
        env: &str,
    ) -> Result<Option<secrecy::SecretString>> {
        if ops::ca::key_is_encrypted(ws, env)? {
            Ok(Some(self.get(ctx, env, false)?))
        } else {
            Ok(None)
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The environment whose CA to create
    #[arg(long)]
    pub env: String,
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

pub fn run(ctx: &Ctx, c: CaCmd) -> Result<Exit> {
    ctx.only_table_json("ca")?;
    match c {
        CaCmd::Init(a) => init(ctx, a),
        CaCmd::Show(a) => show(ctx, a),
    }
}

fn init(ctx: &Ctx, a: InitArgs) -> Result<Exit> {
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let ca = profiles.resolve_ca(&a.env)?;
    let _lock = ctx.lock_for_write(&ws)?;
    if ops::ca::exists(&ws, &a.env) {
        let rep = ops::ca::report(&ws, &profiles, &a.env, false)?;
        ctx.emit(&rep, |out| {
            ctx.note(format!("The {} CA exists already; nothing changed.", a.env))?;
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
        ctx.note(format!("Created the {} CA.", a.env))?;
        print_one(out, &rep)?;
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
    Ok(())
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
            if let Some(w) = ops::doctor::ca_warning(&ws, e) {
                ctx.warn(w);
            }
            reps.push(ops::ca::report(&ws, &profiles, e, false)?);
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
                report::date(r.cert.not_after),
                report::days_left(r.cert.not_after, now).to_string(),
                if r.key_encrypted {
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
