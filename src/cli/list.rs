//! `list`: the inventory of issued certificates.

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;

use super::{Ctx, Exit, Out, say};
use crate::pki::Kind;
use crate::report::{self, sanitize, table};
use crate::workspace::inventory::{Filter, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long)]
    pub env: Option<String>,
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<Kind>,
    /// Also list superseded and revoked certificates
    #[arg(long, short = 'a')]
    pub all: bool,
}

#[derive(Serialize)]
pub struct Row {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub serial: String,
    pub subject: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub days_left: i64,
    /// valid, due, expired, superseded or revoked.
    pub status: &'static str,
    /// A test fixture (`issue --fixture`, `gateway-test`): never the current certificate.
    pub fixture: bool,
    pub path: std::path::PathBuf,
    /// `pki/<env>/<tenant>/<kind>/current` when that stable link designates this
    /// certificate (the active one), else null.
    pub current: Option<std::path::PathBuf>,
    /// When this certificate was last handed off (`export` to its tenant/env), from the
    /// audit trail; null: never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub handed_off_at: Option<OffsetDateTime>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("list")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    if let Some(e) = &a.env {
        profiles.check_env(e)?;
    }
    for r in profiles.rejected_tenants() {
        ctx.warn(r.to_string());
    }
    for w in crate::ops::doctor::ca_warnings(&ws, &profiles, a.env.as_deref()) {
        ctx.warn(w);
    }
    let now = OffsetDateTime::now_utc();
    let inv = ws.inventory(&Filter {
        tenant: a.tenant.as_deref(),
        env: a.env.as_deref(),
        kind: a.kind,
    });
    // a folder that cannot be read is named and the rest still listed; exit 1 says so
    for p in &inv.problems {
        ctx.error(p.to_string());
    }
    let code = if inv.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Error
    };
    let rows = rows_of(ctx, &ws, &profiles, inv.leaves, a.all, now);
    ctx.emit(&rows, |out| table_of(ctx, out, &rows, code))?;
    Ok(code)
}

/// The table form of `list`.
fn table_of(ctx: &Ctx, out: &Out, rows: &[Row], code: Exit) -> Result<()> {
    if rows.is_empty() && code.is_ok() {
        ctx.note("No certificates issued yet (mtlsctl issue --tenant T --env E).")?;
        return Ok(());
    }
    let mut t = table::new(
        &[
            "tenant",
            "env",
            "kind",
            "serial",
            "subject",
            "not after",
            "days left",
            "status",
            "current",
            "handed off",
        ],
        ctx.stdout_tty,
    );
    for r in rows {
        // every column but kind and dates comes from a meta.json: escaped
        t.add_row(vec![
            sanitize(&r.tenant),
            sanitize(&r.env),
            r.kind.to_string(),
            sanitize(&r.serial),
            sanitize(&r.subject),
            report::date(r.not_after),
            r.days_left.to_string(),
            if r.fixture {
                format!("{} (fixture)", r.status)
            } else {
                r.status.to_string()
            },
            if r.current.is_some() { "yes" } else { "" }.to_string(),
            match r.handed_off_at {
                Some(t) => report::date(t),
                None if r.status == "superseded" || r.status == "revoked" => String::new(),
                None => "no".into(),
            },
        ]);
    }
    say!(out, "{t}");
    if rows.iter().any(|r| r.current.is_some()) {
        ctx.note(
            "current: the certificate at pki/<env>/<tenant>/<kind>/current, the stable path a platform points to once (docs/lifecycle.md).",
        )?;
    }
    Ok(())
}

/// One row per record (only active and staged ones unless `all`), judged valid / due / expired by
/// its profile's renewal window.
fn rows_of(
    ctx: &Ctx,
    ws: &crate::workspace::Workspace,
    profiles: &crate::profile::Profiles,
    recs: Vec<crate::workspace::inventory::LeafRecord>,
    all: bool,
    now: OffsetDateTime,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut windows = std::collections::HashMap::new();
    let handed = handoffs(ctx, ws);
    for r in recs {
        if !all && !matches!(r.meta.status, Status::Active | Status::Staged) {
            continue;
        }
        // one profile resolution per tenant/env; a broken profile is named, not fatal
        let key = (r.meta.tenant.clone(), r.meta.env.clone());
        let renew_before = *windows.entry(key).or_insert_with(|| {
            match profiles.resolve(
                &r.meta.tenant,
                &r.meta.env,
                &crate::profile::LeafFlags::default(),
            ) {
                Ok(p) => p.renew_before.value.to_time(),
                Err(e) => {
                    ctx.warn(format!(
                        "{}/{}: {e}; judging 'due' with 30d",
                        r.meta.tenant, r.meta.env
                    ));
                    time::Duration::days(30)
                }
            }
        });
        let status = match r.meta.status {
            Status::Revoked => "revoked",
            Status::Superseded => "superseded",
            Status::Staged => "staged",
            Status::Active if r.meta.not_after <= now => "expired",
            Status::Active if r.meta.not_after - r.meta.fit_window(renew_before) <= now => "due",
            Status::Active => "valid",
        };
        rows.push(Row {
            tenant: r.meta.tenant.clone(),
            env: r.meta.env.clone(),
            kind: r.meta.kind,
            serial: r.meta.serial.clone(),
            subject: r.meta.subject.clone(),
            not_after: r.meta.not_after,
            days_left: report::days_left(r.meta.not_after, now),
            status,
            fixture: r.meta.fixture,
            path: r.dir.clone(),
            current: current_of(ws, &r),
            handed_off_at: handed
                .get(&(
                    r.meta.env.clone(),
                    r.meta.tenant.clone(),
                    r.meta.serial.clone(),
                ))
                .copied(),
        });
    }
    rows
}

/// The stable path of `r` when its `current` link designates it.
fn current_of(
    ws: &crate::workspace::Workspace,
    r: &crate::workspace::inventory::LeafRecord,
) -> Option<std::path::PathBuf> {
    let m = &r.meta;
    match ws.current_serial(&m.env, &m.tenant, m.kind) {
        Ok(Some(s)) if s == m.serial => Some(ws.current_path(&m.env, &m.tenant, m.kind)),
        _ => None,
    }
}

/// (env, tenant, serial) -> the time of the last hand-off (`export`) that carried it.
fn handoffs(
    ctx: &Ctx,
    ws: &crate::workspace::Workspace,
) -> std::collections::HashMap<(String, String, String), OffsetDateTime> {
    let q = crate::ops::audit::Query {
        op: Some(crate::ops::export::AUDIT_OP),
        ..Default::default()
    };
    let mut m = std::collections::HashMap::new();
    match crate::ops::audit::list(ws, &q) {
        Ok(l) => {
            for r in l.records {
                if let (Some(e), Some(t), Some(s)) = (r.env, r.tenant, r.serial) {
                    m.insert((e, t, s), r.time);
                }
            }
        }
        Err(e) => ctx.warn(format!("{e}; `handed off` is not known")),
    }
    m
}
