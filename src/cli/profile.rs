//! `profile show`: the effective settings and where each came from.

use anyhow::Result;
use serde::Serialize;

use super::{Ctx, Exit, say};
use crate::pki::Kind;
use crate::profile::{LeafFlags, Resolved, ResolvedCa};
use crate::report::{sanitize, table};

#[derive(Debug, clap::Subcommand)]
pub enum ProfileCmd {
    /// Print the effective settings of a tenant's certificate in an environment
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub env: String,
    /// Show the settings for this kind instead of the profile's
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<Kind>,
}

#[derive(Serialize)]
struct Shown<'a> {
    tenant: &'a str,
    env: &'a str,
    leaf: &'a Resolved,
    ca: &'a ResolvedCa,
}

pub fn run(ctx: &Ctx, c: ProfileCmd) -> Result<Exit> {
    ctx.only_table_json("profile show")?;
    let ProfileCmd::Show(a) = c;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let flags = LeafFlags {
        kind: a.kind,
        ..LeafFlags::default()
    };
    let r = profiles.resolve(&a.tenant, &a.env, &flags)?;
    let ca = profiles.resolve_ca(&a.env)?;
    ctx.emit(
        &Shown {
            tenant: &a.tenant,
            env: &a.env,
            leaf: &r,
            ca: &ca,
        },
        |out| {
            let mut t = table::new(&["setting", "value", "from"], ctx.stdout_tty);
            for (k, v, s) in r.rows().into_iter().chain(ca.rows()) {
                t.add_row(vec![k.to_string(), sanitize(&v), s]);
            }
            say!(
                out,
                "Tenant {} in {} (org {})",
                a.tenant,
                a.env,
                sanitize(&r.org)
            );
            say!(out, "{t}");
            Ok(())
        },
    )?;
    Ok(Exit::Ok)
}
