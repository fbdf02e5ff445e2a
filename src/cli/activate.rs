//! `activate`: the staged successor becomes the tenant's current certificate.

use anyhow::Result;

use super::{Ctx, Exit, say};
use crate::ops::activate;
use crate::report::sanitize;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Refuses unless --force when the last `probe --staged` of the staged certificate did not pass or none was made. The old certificate is superseded; `renew` revokes it once the profile's handoff.overlap (default 14d) has passed."
)]
pub struct Args {
    /// The tenant whose staged certificate becomes current
    #[arg(long)]
    pub tenant: String,
    /// Its environment
    #[arg(long)]
    pub env: String,
    /// Activate even though the staged certificate was not probed, or its probe failed
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("activate")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    let now = time::OffsetDateTime::now_utc();
    let rep = activate::activate(&ws, &profiles, &a.tenant, &a.env, a.force, now)?;
    if rep.forced {
        ctx.warn(format!(
            "activated {} with --force: its last probe was {}",
            rep.serial, rep.last_probe
        ));
    }
    ctx.emit(&rep, |out| {
        say!(
            out,
            "Activated {} for {}/{} {}{}",
            rep.serial,
            sanitize(&rep.tenant),
            sanitize(&rep.env),
            rep.kind,
            rep.superseded
                .as_ref()
                .map(|s| format!(" ({s} superseded)"))
                .unwrap_or_default()
        );
        Ok(())
    })?;
    super::revoke::print_next(ctx, &rep.next)?;
    Ok(Exit::Ok)
}
