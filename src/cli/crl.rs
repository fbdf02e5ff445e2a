//! `crl`: re-sign an environment's CRL (run it from cron well before nextUpdate).

use std::path::PathBuf;

use anyhow::Result;

use super::ca::CaPassArgs;
use super::{Ctx, Exit, say};
use crate::ops::lifecycle;
use crate::report;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Re-signs the CRL of every CA of the environment (its root, issuing CAs, tenants' own CAs; an offline root's only with --root-key). Writes each CA's crl.pem atomically (and a copy to --out): v2, CRL number one above the highest signed, every revocation with its reason (those state.json lacks are restored from the certificates' meta.json files), nextUpdate from the profile's ca.crl_validity. `mtlsctl expiry` reports a CRL due when a third of its lifetime is left."
)]
pub struct Args {
    /// Environment whose CA signs the CRL
    #[arg(long)]
    pub env: String,
    /// Also write the CRL (PEM) to this file
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The root key file, to re-sign an offline root's CRL too (`ca init --root-key-out`)
    #[arg(long, value_name = "FILE")]
    pub root_key: Option<PathBuf>,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("crl")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let pass = a.pass.for_env(ctx, &ws, &a.env)?;
    let run = lifecycle::crl_env(
        &ws,
        &profiles,
        &a.env,
        pass.as_ref(),
        a.root_key.as_deref(),
        a.out.as_deref(),
        time::OffsetDateTime::now_utc(),
    )?;
    for s in &run.skipped {
        ctx.warn(format!("{}: not re-signed: {}", s.ca, s.reason));
    }
    let rep = &run.primary;
    ctx.emit(&run, |out| {
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
        Ok(())
    })?;
    Ok(Exit::Ok)
}
