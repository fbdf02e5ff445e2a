//! `activate`: the staged successor of a tenant's certificate becomes the active one
//! (staged rollover for gateways that pin the certificate, docs/lifecycle.md). The
//! previous certificate is superseded; `renew` revokes it once the tenant's
//! `handoff.overlap` has passed since this moment.

use serde::Serialize;
use time::OffsetDateTime;

use super::{OpError, Result};
use crate::pki::Kind;
use crate::pki::cert::whole_seconds;
use crate::profile::Profiles;
use crate::workspace::Workspace;
use crate::workspace::journal::{ActivationStep, Intent};

/// The audit detail of a probe that passed / failed.
pub const PROBE_PASS: &str = "pass";
pub const PROBE_FAIL: &str = "fail";

/// What `activate` reports.
#[derive(Debug, Serialize)]
pub struct ActivateReport {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    /// The certificate now active (was staged).
    pub serial: String,
    /// The certificate it superseded, if one was active.
    pub superseded: Option<String>,
    /// The last `probe --staged` of it: "pass", "fail" or "none".
    pub last_probe: String,
    /// --force was needed and given.
    pub forced: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub activated_at: OffsetDateTime,
    /// When `renew` revokes the superseded one: activation plus `handoff.overlap`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoke_old_after: Option<OffsetDateTime>,
    pub next: Vec<String>,
}

/// The result of the last `probe` audit line for `serial`: Some(true) passed,
/// Some(false) failed, None when it was never probed.
pub fn last_probe(ws: &Workspace, env: &str, serial: &str) -> Result<Option<bool>> {
    let mut last = None;
    for r in ws.audit_records()?.into_iter().flatten() {
        if r.op == "probe" && r.env.as_deref() == Some(env) && r.serial.as_deref() == Some(serial) {
            last = Some(
                r.detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with(PROBE_PASS)),
            );
        }
    }
    Ok(last)
}

/// Makes the staged successor of tenant/env (client) active. Refuses, unless `force`,
/// when its last probe did not pass or there was none. The caller holds the lock.
pub fn activate(
    ws: &Workspace,
    profiles: &Profiles,
    tenant: &str,
    env: &str,
    force: bool,
    now: OffsetDateTime,
) -> Result<ActivateReport> {
    profiles.check_env(env)?;
    profiles.tenant(tenant)?;
    let kind = Kind::Client;
    ws.audit_preflight()?;
    let staged = ws.staged_leaf(tenant, env, kind)?.ok_or_else(|| {
        OpError::Msg(format!(
            "{tenant}/{env} has no staged certificate: stage one with mtlsctl renew --tenant {tenant} --env {env} --stage (or handoff.pinning: true in its profile)"
        ))
    })?;
    let serial = staged.meta.serial.clone();
    let probe = last_probe(ws, env, &serial)?;
    let last = match probe {
        Some(true) => "pass",
        Some(false) => "fail",
        None => "none",
    };
    if probe != Some(true) && !force {
        let why = match probe {
            Some(false) => "its last probe failed",
            _ => "it was never probed",
        };
        return Err(OpError::Msg(format!(
            "not activating the staged certificate {serial} of {tenant}/{env}: {why}; check the gateway accepts it with mtlsctl probe --tenant {tenant} --env {env} --staged --url URL, or pass --force"
        )));
    }
    let now = whole_seconds(now);
    let previous = ws.current_leaf(tenant, env, kind)?.map(|r| r.meta.serial);
    let mut intent = Intent::new("activate", now);
    let detail = Some(match &previous {
        Some(p) => format!("supersedes {p}, last probe {last}"),
        None => format!("last probe {last}"),
    });
    let audit = intent.audit_step("activate", detail);
    let step = ActivationStep {
        tenant: tenant.to_string(),
        env: env.to_string(),
        kind,
        serial: serial.clone(),
        supersedes: previous.clone(),
        at: now,
        audit,
    };
    intent.activation = Some(step.clone());
    let journal = ws.begin(&intent)?;
    step.apply(ws)?;
    super::issue::audit(ws, &[step.event()], true)?;
    journal.done();
    let overlap = profiles.handoff(tenant).unwrap_or_default().overlap;
    let revoke_old_after = previous.as_ref().map(|_| now + overlap.to_time());
    let mut next = vec![format!(
        "reload the platform that reads pki/{env}/{tenant}/{kind}/current/ (it now holds {serial}), or mtlsctl deliver --tenant {tenant} --env {env} --format FORMAT --out PATH"
    )];
    if let (Some(p), Some(at)) = (&previous, revoke_old_after) {
        next.push(format!(
            "remove the old pin ({p}) from the gateway after {}; mtlsctl renew revokes it then (handoff.overlap {overlap})",
            crate::pki::text::rfc3339(at)
        ));
    }
    Ok(ActivateReport {
        tenant: tenant.to_string(),
        env: env.to_string(),
        kind,
        serial,
        superseded: previous,
        last_probe: last.to_string(),
        forced: probe != Some(true),
        activated_at: now,
        revoke_old_after,
        next,
    })
}
