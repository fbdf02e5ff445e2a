//! `revoke`: record a revocation and re-sign the environment's CRL.

use anyhow::Result;
use clap::builder::PossibleValuesParser;

use super::ca::CaPassArgs;
use super::{Ctx, Exit, say};
use crate::ops::lifecycle::{self, RevokeReport, RevokeTarget};
use crate::pki::Kind;
use crate::pki::crl::REASONS;
use crate::report::{self, sanitize};

fn reasons() -> PossibleValuesParser {
    PossibleValuesParser::new(REASONS.iter().map(|(n, _)| *n))
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Name the certificate with --tenant T --env E (its current certificate), or --env E --serial HEX (any certificate of that environment). Revoking a revoked certificate changes nothing. Hand the new CRL (pki/ENV/ca/crl.pem) to every gateway that trusts the CA."
)]
pub struct Args {
    /// Tenant whose current certificate to revoke
    #[arg(long, required_unless_present = "serial")]
    pub tenant: Option<String>,
    /// Environment
    #[arg(long)]
    pub env: String,
    /// Serial of the certificate (hex, colons allowed)
    #[arg(long, value_name = "HEX")]
    pub serial: Option<String>,
    /// Client or server, when the tenant has both
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<Kind>,
    /// Why (RFC 5280 reason code)
    #[arg(long, default_value = "unspecified", value_parser = reasons())]
    pub reason: String,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("revoke")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let _lock = ctx.lock_for_write(&ws)?;
    if crate::ops::ca::set_bases(&ws, &a.env).is_empty() {
        // no CA at all: say how to make one
        crate::ops::ca::open(&ws, &profiles, &a.env)?;
    }
    let rec = lifecycle::find_target(
        &ws,
        &profiles,
        &RevokeTarget {
            env: &a.env,
            tenant: a.tenant.as_deref(),
            kind: a.kind,
            serial: a.serial.as_deref(),
        },
    )?;
    // with key-compromise, a revoked certificate may still share its key with others
    let others_share_key =
        a.reason == "key-compromise" && !lifecycle::sharing_key(&ws, &rec)?.is_empty();
    if let Some((at, reason)) = lifecycle::already_revoked(&rec)
        && !others_share_key
    {
        let mut rep = lifecycle::unchanged(&rec, at, reason);
        let issuer = crate::ops::ca::issuer_of(&rec.meta);
        if !ws.crl_lists(&issuer, &rec.meta.serial) {
            // recorded by a run that was stopped before it signed the CRL
            let pass = a.pass.for_env(ctx, &ws, &a.env)?;
            let now = time::OffsetDateTime::now_utc();
            let c = lifecycle::crl_of(&ws, &profiles, &issuer, pass.as_ref(), now)?;
            rep.crl = Some(c);
            rep = rep.with_next();
        }
        ctx.emit(&rep, |_| {
            ctx.note(format!(
                "{}/{} {} certificate {} was already revoked on {} ({}); {}",
                rep.tenant,
                rep.env,
                rep.kind,
                rep.serial,
                report::rfc3339(rep.revoked_at),
                rep.reason,
                match &rep.crl {
                    Some(c) => format!(
                        "its CRL did not list it yet and is re-signed (number {}).",
                        c.crl_number
                    ),
                    None => "nothing changed.".into(),
                }
            ))?;
            print_next(ctx, &rep.next)?;
            Ok(())
        })?;
        return Ok(Exit::Ok);
    }
    let pass = a.pass.for_env(ctx, &ws, &a.env)?;
    let rep = lifecycle::revoke(
        &ws,
        &profiles,
        pass.as_ref(),
        &rec,
        &a.reason,
        time::OffsetDateTime::now_utc(),
    )?;
    ctx.emit(&rep, |_| {
        print_report(ctx, &rep)?;
        Ok(())
    })?;
    Ok(Exit::Ok)
}

fn print_report(ctx: &Ctx, r: &RevokeReport) -> Result<()> {
    if r.action == "revoked" {
        ctx.note(format!(
            "Revoked the {}/{} {} certificate.",
            r.tenant, r.env, r.kind
        ))?;
    } else {
        ctx.note(format!(
            "The {}/{} {} certificate {} was already revoked; the others that share its key are revoked now.",
            r.tenant, r.env, r.kind, r.serial
        ))?;
    }
    say!(ctx.out, "  subject:   {}", sanitize(&r.subject));
    say!(ctx.out, "  serial:    {}", r.serial);
    say!(ctx.out, "  reason:    {}", r.reason);
    say!(ctx.out, "  at:        {}", report::rfc3339(r.revoked_at));
    if let Some(c) = &r.crl {
        say!(
            ctx.out,
            "  crl:       {} (number {}, next update {})",
            c.path.display(),
            c.crl_number,
            report::rfc3339(c.next_update)
        );
    }
    for o in &r.also_revoked {
        say!(
            ctx.out,
            "  also:      {} ({}, same key)",
            o.serial,
            o.status.as_str()
        );
    }
    if let Some(c) = r.crl.as_ref().filter(|c| !c.restored.is_empty()) {
        say!(
            ctx.out,
            "  restored:  {} revocation(s) that state.json lacked: {}",
            c.restored.len(),
            c.restored.join(", ")
        );
    }
    print_next(ctx, &r.next)
}

/// The `next` lines of a lifecycle report, as the table output ends.
pub fn print_next(ctx: &Ctx, next: &[String]) -> Result<()> {
    for n in next {
        ctx.note(format!("next: {}", sanitize(n)))?;
    }
    Ok(())
}
