//! `renew`: reissue every certificate due within its window; idempotent.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use super::ca::CaPassArgs;
use super::{Ctx, Exit, render_error, say};
use crate::ops::issue_all;
use crate::ops::lifecycle::{self, RenewAction, RenewItem, RenewReport};
use crate::profile::Dur;
use crate::report::{self, table};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "The previous certificate stays valid until its own notAfter and is marked superseded. A second run right after does nothing."
)]
pub struct Args {
    /// Only this tenant's certificates
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this environment's certificates
    #[arg(long)]
    pub env: Option<String>,
    /// Renew what expires within this window (default: each profile's renew_before)
    #[arg(long, value_name = "DUR")]
    pub within: Option<Dur>,
    /// Keep the current private key instead of generating a new one
    #[arg(long)]
    pub reuse_key: bool,
    /// Renew every selected certificate now, due or not
    #[arg(long, conflicts_with = "within")]
    pub force: bool,
    /// Issue the successor staged, not active, for a gateway that pins the certificate
    /// (as handoff.pinning: true does); mtlsctl activate switches to it
    #[arg(long)]
    pub stage: bool,
    /// Show what would be renewed; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("renew")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    if let Some(t) = &a.tenant {
        profiles.tenant(t)?;
    }
    let _lock = if a.dry_run {
        None
    } else {
        Some(ctx.lock_for_write(&ws)?)
    };
    let now = time::OffsetDateTime::now_utc();
    let mut plan = lifecycle::plan_renewals(
        &ws,
        &profiles,
        a.tenant.as_deref(),
        a.env.as_deref(),
        a.within,
        a.force,
        a.stage,
        now,
    )?;
    let retire = std::mem::take(&mut plan.retire);
    let mut items: Vec<RenewItem> = Vec::new();
    if a.dry_run {
        for mut d in plan.due {
            d.item.action = RenewAction::WouldRenew;
            items.push(d.item);
        }
    } else {
        // one signer per CA with work; a CA that cannot sign fails its items only
        type Loaded = std::result::Result<crate::ops::ca::OwnedSigner, String>;
        let mut signers: BTreeMap<issue_all::SignerKey, Loaded> = BTreeMap::new();
        for mut d in plan.due {
            let res = match issue_all::key_of(&profiles, &d.resolved) {
                Err(e) => Err(render_error(&anyhow!(e))),
                Ok(k) => {
                    let loaded = signers.entry(k.clone()).or_insert_with(|| {
                        a.pass
                            .for_env(ctx, &ws, &k.env)
                            .and_then(|p| {
                                crate::ops::ca::ensure_issuing(
                                    &ws,
                                    &profiles,
                                    &k.env,
                                    k.tenant.as_deref(),
                                    k.kind,
                                    p.as_ref(),
                                    now,
                                )?;
                                let ca = crate::ops::ca::open_for(
                                    &ws,
                                    &profiles,
                                    &k.env,
                                    k.tenant.as_deref(),
                                    k.kind,
                                )?;
                                Ok(ca.unlock(&ws, &profiles, p.as_ref())?.into_owned())
                            })
                            .map_err(|e| render_error(&e))
                    });
                    match loaded {
                        Ok(s) => lifecycle::renew_one(&ws, &d, &s.with(), a.reuse_key, now)
                            .map_err(|e| render_error(&anyhow!(e))),
                        Err(e) => Err(e.clone()),
                    }
                }
            };
            match res {
                Ok(rep) => {
                    for w in &rep.warnings {
                        ctx.warn(w);
                    }
                    d.item.action = RenewAction::Renewed;
                    d.item.certificate = Some(rep);
                }
                Err(e) => {
                    d.item.action = RenewAction::Failed;
                    d.item.reason = Some(e);
                }
            }
            items.push(d.item);
        }
    }
    // certificates of an external CA: renewing is a new request to send to that CA
    for mut i in plan.requests {
        if a.dry_run {
            items.push(i);
            continue;
        }
        match crate::ops::csr::csr(&ws, &profiles, &i.tenant, &i.env, Some(i.kind), false, now) {
            Ok(c) => {
                i.action = RenewAction::Requested;
                i.reason = Some(format!(
                    "issued by the external CA of {}: send the new request {} to that CA",
                    i.tenant,
                    c.csr.display()
                ));
                i.request = Some(c.csr);
            }
            Err(crate::ops::OpError::RequestPending { dir, .. }) => {
                let csr = dir.join(crate::ops::csr::PENDING_CSR);
                i.action = RenewAction::Requested;
                i.reason = Some(format!(
                    "issued by the external CA of {}: a request is already pending; send {} to that CA",
                    i.tenant,
                    csr.display()
                ));
                i.request = Some(csr);
            }
            Err(e) => {
                i.action = RenewAction::Failed;
                i.reason = Some(render_error(&anyhow!(e)));
            }
        }
        items.push(i);
    }
    items.extend(plan.settled);
    items.sort_by(|x, y| (&x.tenant, &x.env, x.kind).cmp(&(&y.tenant, &y.env, y.kind)));
    // superseded certificates whose overlap after activate is over: revoked now
    let mut retired = Vec::new();
    for (rec, overlap) in retire {
        let mut item = lifecycle::RetiredItem {
            tenant: rec.meta.tenant.clone(),
            env: rec.meta.env.clone(),
            kind: rec.meta.kind,
            serial: rec.meta.serial.clone(),
            superseded_by: rec.meta.superseded_by.clone(),
            superseded_at: rec.meta.superseded_at.unwrap_or(now),
            overlap: overlap.to_string(),
            action: if a.dry_run { "would-revoke" } else { "revoked" },
            reason: None,
        };
        if !a.dry_run {
            let res = a.pass.for_env(ctx, &ws, &rec.meta.env).and_then(|p| {
                Ok(lifecycle::revoke(
                    &ws,
                    &profiles,
                    p.as_ref(),
                    &rec,
                    "superseded",
                    now,
                )?)
            });
            if let Err(e) = res {
                item.action = "failed";
                item.reason = Some(render_error(&e));
            }
        }
        retired.push(item);
    }
    let rep = RenewReport::new(a.dry_run, a.reuse_key, a.force, items).with_retired(retired);
    for r in &rep.retired {
        match r.action {
            "failed" => ctx.error(format!(
                "{}/{}: revoking the superseded {} after its overlap failed: {}",
                r.tenant,
                r.env,
                r.serial,
                r.reason.as_deref().unwrap_or("")
            )),
            act => ctx.warn(format!(
                "{}/{}: {} the superseded {} (reason superseded): {} since its successor was activated",
                r.tenant,
                r.env,
                if act == "revoked" { "revoked" } else { "would revoke" },
                r.serial,
                r.overlap
            )),
        }
    }
    for i in &rep.items {
        match i.action {
            RenewAction::Failed => ctx.error(format!(
                "{}/{} {}: {}",
                i.tenant,
                i.env,
                i.kind,
                i.reason.as_deref().unwrap_or("failed")
            )),
            RenewAction::Skipped => ctx.warn(format!(
                "{}/{} {} is due but not renewed: {}",
                i.tenant,
                i.env,
                i.kind,
                i.reason.as_deref().unwrap_or("")
            )),
            _ => {}
        }
    }
    ctx.emit(&rep, |_| {
        print_human(ctx, &rep)?;
        Ok(())
    })?;
    Ok(
        if rep.failed > 0 || rep.retired.iter().any(|r| r.action == "failed") {
            Exit::Error
        } else {
            Exit::Ok
        },
    )
}

fn print_human(ctx: &Ctx, rep: &RenewReport) -> Result<()> {
    if !ctx.global.quiet && !rep.items.is_empty() {
        let mut t = table::new(
            &[
                "tenant/env",
                "kind",
                "action",
                "serial",
                "not after",
                "due from",
                "new serial",
                "new not after",
            ],
            ctx.stdout_tty,
        );
        for i in &rep.items {
            let action = match i.action {
                RenewAction::Renewed if i.staged => "renewed (staged)",
                RenewAction::Renewed => "renewed",
                RenewAction::WouldRenew => "would renew",
                RenewAction::NotDue => "not due",
                RenewAction::Skipped => "skipped",
                RenewAction::Requested => "new request",
                RenewAction::WouldRequest => "would request",
                RenewAction::Failed => "FAILED",
            };
            let (ns, na) = match &i.certificate {
                Some(c) => (c.serial.clone(), report::date(c.not_after)),
                None => ("-".into(), "-".into()),
            };
            t.add_row(vec![
                format!("{}/{}", i.tenant, i.env),
                i.kind.to_string(),
                action.to_string(),
                i.serial.clone(),
                report::date(i.not_after),
                report::date(i.renew_after),
                ns,
                na,
            ]);
        }
        say!(ctx.out, "{t}");
    }
    let head = if rep.dry_run {
        format!(
            "{} would be renewed (dry run, nothing changed)",
            rep.would_renew
        )
    } else {
        format!("{} renewed", rep.renewed)
    };
    say!(
        ctx.out,
        "{head}, {} not due, {} skipped, {} failed",
        rep.not_due,
        rep.skipped,
        rep.failed
    );
    super::revoke::print_next(ctx, &rep.next)
}
