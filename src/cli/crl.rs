//! `crl`: re-sign an environment's CRLs (from cron or a systemd timer with `--if-due`),
//! and `crl publish`: copy them under stable names for a web server.

use std::path::PathBuf;

use anyhow::Result;

use super::ca::CaPassArgs;
use super::{Ctx, Exit, say};
use crate::ops::lifecycle::{self, IfDue};
use crate::profile::Dur;
use crate::report;

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Re-signs the CRL of every CA of the environment (its root, issuing CAs, tenants' own CAs; an offline root's only with --root-key). Writes each CA's crl.pem atomically (and a copy to --out): v2, CRL number one above the highest signed, every revocation with its reason (those state.json lacks are restored from the certificates' meta.json files), nextUpdate from the profile's ca.crl_validity. A certificate that has expired leaves the CRL once a CRL signed after its notAfter has listed it (RFC 5280 5.1.2.6).\n\nWith --if-due only the CRLs inside their re-sign window are signed: nextUpdate closer than --before (default a third of the CRL's lifetime; `mtlsctl expiry` reports a CRL due within that third, or within --within when shorter), or a CRL that is missing, not signed by its CA, behind the last number signed or lacking a recorded revocation. Nothing to do is success (exit 0): run it from cron or a systemd timer, e.g. hourly.\n\n`mtlsctl crl publish --env E --out DIR` copies every current CRL (DER and PEM) and CA certificate (DER) to DIR/<env>/<ca serial>.crl, .crl.pem and .crt for a web server or an object store (docs/revocation.md)."
)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Option<Sub>,
    /// Environment whose CAs sign the CRLs
    #[arg(long, required = true)]
    pub env: Option<String>,
    /// Also write the CRL (PEM) to this file
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Re-sign only the CRLs inside their re-sign window (exit 0 when none is)
    #[arg(long)]
    pub if_due: bool,
    /// With --if-due: re-sign a CRL whose nextUpdate is closer than this (default: a
    /// third of its lifetime)
    #[arg(long, value_name = "DUR", requires = "if_due")]
    pub before: Option<Dur>,
    /// The root key file, to re-sign an offline root's CRL too (`ca init --root-key-out`)
    #[arg(long, value_name = "FILE")]
    pub root_key: Option<PathBuf>,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Copy every current CRL and CA certificate under stable names for a web server
    Publish(PublishArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Writes, for each CA of the environment (tenants' own CAs and retired CAs until they expire included), DIR/<env>/<serial>.crl (the CRL, DER: what a CRL distribution point serves), <serial>.crl.pem and <serial>.crt (the CA certificate, DER: what caIssuers serves), <serial> being the CA's serial in lowercase hex, the {ca} of ca.crl_url and ca.issuer_url. The names stay the same from one CRL to the next; each file is replaced atomically. Each CRL is checked against its CA first. Needs no passphrase and changes nothing in the workspace: run it after `mtlsctl crl --if-due`."
)]
pub struct PublishArgs {
    /// Environment whose CRLs to publish
    #[arg(long)]
    pub env: String,
    /// Folder to write into (DIR/<env>/ is created)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    if let Some(Sub::Publish(p)) = a.cmd {
        return publish(ctx, p);
    }
    ctx.only_table_json("crl")?;
    let env = a.env.expect("clap requires --env without a subcommand");
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let if_due = a.if_due.then(|| IfDue {
        before: a.before.map(|d| d.to_time()),
    });
    let now = time::OffsetDateTime::now_utc();
    // with --if-due the passphrase is asked for only when a CRL has to be signed
    let pass = match if_due {
        Some(rule) if !lifecycle::crl_due_any(&ws, &env, rule, now)? => None,
        _ => a.pass.for_env(ctx, &ws, &env)?,
    };
    let run = lifecycle::crl_env(
        &ws,
        &profiles,
        &env,
        pass.as_ref(),
        a.root_key.as_deref(),
        a.out.as_deref(),
        if_due,
        now,
    )?;
    for s in &run.skipped {
        ctx.warn(format!("{}: not re-signed: {}", s.ca, s.reason));
    }
    ctx.emit(&run, |out| {
        let Some(rep) = &run.primary else {
            ctx.note(format!(
                "No CRL of {env} is due: {} left as they are.",
                run.fresh.len()
            ))?;
            for f in &run.fresh {
                say!(
                    out,
                    "  fresh:       {} (next update {}, due from {})",
                    f.path.display(),
                    report::rfc3339(f.next_update),
                    report::rfc3339(f.due_at)
                );
            }
            return Ok(());
        };
        ctx.note(format!("Signed the {} CRL.", rep.env))?;
        if !rep.restored.is_empty() {
            say!(
                out,
                "  restored:    {} revocation(s) that state.json lacked, from the certificates' meta.json files and the previous CRL: {}",
                rep.restored.len(),
                rep.restored.join(", ")
            );
        }
        say!(out, "  number:      {}", rep.crl_number);
        say!(out, "  revoked:     {}", rep.revoked);
        if rep.expired_left_out > 0 {
            say!(
                out,
                "  left out:    {} expired certificate(s), listed by the previous CRL",
                rep.expired_left_out
            );
        }
        say!(out, "  next update: {}", report::rfc3339(rep.next_update));
        say!(out, "  file:        {}", rep.path.display());
        if let Some(c) = &rep.copy {
            say!(out, "  copy:        {}", c.display());
        }
        for o in run.crls.iter().filter(|c| c.ca != rep.ca) {
            say!(
                out,
                "  also:        {} (number {}, next update {})",
                o.path.display(),
                o.crl_number,
                report::rfc3339(o.next_update)
            );
        }
        for f in &run.fresh {
            say!(
                out,
                "  fresh:       {} (next update {}, due from {})",
                f.path.display(),
                report::rfc3339(f.next_update),
                report::rfc3339(f.due_at)
            );
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn publish(ctx: &Ctx, a: PublishArgs) -> Result<Exit> {
    ctx.only_table_json("crl publish")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let rep = lifecycle::publish(
        &ws,
        &profiles,
        &a.env,
        &a.out,
        time::OffsetDateTime::now_utc(),
    )?;
    for s in &rep.skipped {
        ctx.warn(format!("{}: {}", s.ca, s.reason));
    }
    ctx.emit(&rep, |out| {
        ctx.note(format!(
            "Published {} CRL(s) of {} in {}.",
            rep.published.len(),
            rep.env,
            rep.dir.display()
        ))?;
        for p in &rep.published {
            say!(
                out,
                "  {}  {}  number {}, next update {}",
                p.serial,
                p.ca,
                p.crl_number.as_deref().unwrap_or("-"),
                p.next_update
                    .map(report::rfc3339)
                    .unwrap_or_else(|| "-".into())
            );
        }
        Ok(())
    })?;
    Ok(Exit::Ok)
}
