//! Renewal, revocation and CRLs. Each operation is split in two: a plan that reads the
//! workspace and needs no secret (so `--dry-run` and no-ops never ask for the CA
//! passphrase), and an apply step that signs and writes. The caller holds the
//! workspace lock across both.

use std::path::PathBuf;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::issue::{self, IssueReport};
use super::{CertNeed, OpError, Result};
use crate::fault::{self, Fault};
use crate::pki::cert::{Signer, whole_seconds};
use crate::pki::keys::PrivateKey;
use crate::pki::{Kind, crl, inspect, serial};
use crate::profile::{Dur, LeafFlags, Profiles, Resolved};
use crate::workspace::fsutil::{self, PUBLIC};
use crate::workspace::hierarchy::{CaRole, CaStatus};
use crate::workspace::inventory::{CaState, Filter, LeafRecord, Revocation, Status};
use crate::workspace::journal::{CrlStep, Intent, RevocationStep};
use crate::workspace::{CaLoc, Workspace};

// ---------------------------------------------------------------------------------------
// renew

/// What renewal does, or would do, with one current certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RenewAction {
    /// Reissued (a new certificate is in `certificate`).
    Renewed,
    /// Due, and would be reissued without --dry-run.
    WouldRenew,
    /// Not due yet.
    NotDue,
    /// Due, but mtlsctl cannot reissue it (see `reason`).
    Skipped,
    /// Due, and issued by an external CA: a new request (`csr`) was made for it, to send
    /// to that CA (see `reason` and `request`).
    Requested,
    /// Due, issued by an external CA: a new request would be made without --dry-run.
    WouldRequest,
    /// Due, and reissuing it failed (see `reason`).
    Failed,
}

/// One line of the renewal report.
#[derive(Debug, Serialize)]
pub struct RenewItem {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    /// The current certificate's serial.
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// From when it is due: notAfter minus the window.
    #[serde(with = "time::serde::rfc3339")]
    pub renew_after: OffsetDateTime,
    /// The window: --within, or the profile's renew_before.
    pub within: String,
    pub action: RenewAction,
    pub reason: Option<String>,
    /// The new certificate, when renewed.
    pub certificate: Option<IssueReport>,
    /// The successor is (or would be) issued staged, not active: the tenant's gateway
    /// pins the certificate (`handoff.pinning`, or `renew --stage`).
    pub staged: bool,
    /// Which hand-off applies: "ca-trust" (the gateway trusts our CA: nothing to
    /// stage) or "pinning" (staged rollover: export both pins, probe, activate).
    pub handoff: &'static str,
    /// The new request to send to the external CA (action `requested`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<std::path::PathBuf>,
}

/// A superseded certificate revoked by `renew` once the overlap after `activate` is
/// over.
#[derive(Debug, Serialize)]
pub struct RetiredItem {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub serial: String,
    /// The serial that replaced it.
    pub superseded_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub superseded_at: OffsetDateTime,
    /// The tenant's `handoff.overlap`.
    pub overlap: String,
    /// "revoked", or "failed" (see `reason`).
    pub action: &'static str,
    pub reason: Option<String>,
}

/// The whole renewal report.
#[derive(Debug, Serialize)]
pub struct RenewReport {
    pub dry_run: bool,
    pub reuse_key: bool,
    /// --force: every selected certificate renewed, due or not.
    pub force: bool,
    pub items: Vec<RenewItem>,
    pub renewed: usize,
    pub would_renew: usize,
    pub not_due: usize,
    pub skipped: usize,
    /// New requests made for certificates of an external CA.
    pub requested: usize,
    pub failed: usize,
    /// Superseded certificates revoked (reason superseded) because the overlap after
    /// their successor's activation is over.
    pub retired: Vec<RetiredItem>,
    /// What the operator does next, in one or two sentences.
    pub next: Vec<String>,
}

impl RenewReport {
    /// Adds the superseded certificates revoked after their overlap, and says so.
    pub fn with_retired(mut self, retired: Vec<RetiredItem>) -> Self {
        let done: Vec<&RetiredItem> = retired.iter().filter(|r| r.action == "revoked").collect();
        if !done.is_empty() {
            let what = done
                .iter()
                .map(|r| format!("{} of {}/{}", r.serial, r.tenant, r.env))
                .collect::<Vec<_>>()
                .join(", ");
            self.next.insert(
                0,
                format!(
                    "revoked {what} (superseded, overlap over): remove its pin from the gateway and hand off the CRL: mtlsctl export --tenant T --env E --force"
                ),
            );
            self.next.retain(|n| !n.starts_with("nothing:"));
        }
        self.retired = retired;
        self
    }
    pub fn new(dry_run: bool, reuse_key: bool, force: bool, items: Vec<RenewItem>) -> Self {
        let n = |a: RenewAction| items.iter().filter(|i| i.action == a).count();
        RenewReport {
            dry_run,
            reuse_key,
            force,
            renewed: n(RenewAction::Renewed),
            would_renew: n(RenewAction::WouldRenew),
            not_due: n(RenewAction::NotDue),
            skipped: n(RenewAction::Skipped),
            requested: n(RenewAction::Requested),
            failed: n(RenewAction::Failed),
            retired: Vec::new(),
            next: renew_next(&items),
            items,
        }
    }
}

/// What follows a renewal: the platform reloads its `current` path; a gateway that
/// trusts our CA needs nothing, one that pins the certificate needs the new pin.
fn renew_next(items: &[RenewItem]) -> Vec<String> {
    let of =
        |a: RenewAction| -> Vec<&RenewItem> { items.iter().filter(|i| i.action == a).collect() };
    let names = |v: &[&RenewItem]| {
        v.iter()
            .map(|i| format!("{}/{}", i.tenant, i.env))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut next = Vec::new();
    let staged: Vec<&RenewItem> = items
        .iter()
        .filter(|i| i.staged && i.action == RenewAction::Renewed)
        .collect();
    for i in &staged {
        next.push(format!(
            "staged for a pinning gateway: mtlsctl export --tenant {t} --env {e} --force (both pins), then mtlsctl probe --tenant {t} --env {e} --staged --url URL, then mtlsctl activate --tenant {t} --env {e}",
            t = i.tenant,
            e = i.env
        ));
    }
    let renewed: Vec<&RenewItem> = of(RenewAction::Renewed)
        .into_iter()
        .filter(|i| !i.staged)
        .collect();
    if let [one] = renewed.as_slice() {
        next.push(format!(
            "reload the platform that reads pki/{}/{}/{}/current/ (or deliver again); gateways that trust our CA need nothing, one that pins the certificate (IIS mapping, Tyk ID, Envoy hash, nginx fingerprint) needs staging: set handoff.pinning: true in its profile, or renew --stage; now: mtlsctl export --tenant {} --env {} --force",
            one.env, one.tenant, one.kind, one.tenant, one.env
        ));
    } else if !renewed.is_empty() {
        next.push(format!(
            "reload the platforms that read the current/ path of {}; gateways that trust our CA need nothing, those that pin the certificate (IIS mapping, Tyk ID, Envoy hash, nginx fingerprint) need: mtlsctl export --tenant T --env E --force for each",
            names(&renewed)
        ));
    }
    for r in of(RenewAction::Requested) {
        next.push(format!(
            "send {} to the external CA of {}, then bring the certificate back with `mtlsctl import --tenant {} --env {} --kind {} --cert FILE --chain FILE`",
            r.request
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the new request".into()),
            r.tenant,
            r.tenant,
            r.env,
            r.kind
        ));
    }
    let asked = of(RenewAction::WouldRequest);
    if !asked.is_empty() {
        next.push(format!(
            "run it again without --dry-run to make a new request for the external CA of {}",
            names(&asked)
        ));
    }
    let would = of(RenewAction::WouldRenew);
    if !would.is_empty() {
        next.push(format!(
            "run it again without --dry-run to renew {} ({})",
            would.len(),
            names(&would)
        ));
    }
    let stuck: Vec<&RenewItem> = items
        .iter()
        .filter(|i| matches!(i.action, RenewAction::Skipped | RenewAction::Failed))
        .collect();
    if !stuck.is_empty() {
        next.push(format!(
            "{} certificate(s) need a step of their own ({}): see the reason of each",
            stuck.len(),
            names(&stuck)
        ));
    }
    if next.is_empty() {
        next.push("nothing: no certificate was due".into());
    }
    next
}

/// A certificate found due, with what is needed to reissue it.
pub struct Due {
    pub item: RenewItem,
    pub record: LeafRecord,
    pub resolved: Resolved,
}

/// Renewal plan: items not due (or not renewable), and the due ones to reissue.
pub struct RenewPlan {
    pub settled: Vec<RenewItem>,
    pub due: Vec<Due>,
    /// Superseded certificates whose overlap after `activate` is over: `renew` revokes
    /// them (reason superseded).
    pub retire: Vec<(LeafRecord, Dur)>,
    /// Due certificates of an external CA (`import`): renewing them is a new request.
    pub requests: Vec<RenewItem>,
}

impl RenewPlan {
    /// Environments whose CA must sign.
    pub fn envs(&self) -> Vec<String> {
        let mut v: Vec<String> = self.due.iter().map(|d| d.item.env.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Finds every current (active) certificate of the workspace, optionally of one tenant
/// and/or env, and decides which are due within `within` (default: each one's profile
/// renew_before). With `force`, every one is due (--force: renew now, due or not).
/// With `stage` (or a tenant's `handoff.pinning`) each successor is issued staged.
#[allow(clippy::too_many_arguments)]
pub fn plan_renewals(
    ws: &Workspace,
    profiles: &Profiles,
    tenant: Option<&str>,
    env: Option<&str>,
    within: Option<Dur>,
    force: bool,
    stage: bool,
    now: OffsetDateTime,
) -> Result<RenewPlan> {
    if let Some(e) = env {
        profiles.check_env(e)?;
    }
    let leaves = ws.leaves(&Filter {
        tenant,
        env,
        kind: None,
    })?;
    let envs = match env {
        Some(e) => vec![e.to_string()],
        None => profiles.env_names(),
    };
    let index = super::ca::CaIndex::load(ws, &envs);
    let mut retire = Vec::new();
    for r in &leaves {
        if r.meta.status != Status::Superseded || r.meta.fixture {
            continue;
        }
        let Some(at) = r.meta.superseded_at else {
            continue;
        };
        let overlap = profiles.handoff(&r.meta.tenant).unwrap_or_default().overlap;
        if at + overlap.to_time() <= now && r.meta.not_after > now {
            retire.push((r.clone(), overlap));
        }
    }
    let staged_of: Vec<LeafRecord> = leaves
        .iter()
        .filter(|r| r.meta.status == Status::Staged && !r.meta.fixture)
        .cloned()
        .collect();
    let current: Vec<LeafRecord> = super::expiry::current_leaves(leaves)
        .into_iter()
        .filter(|r| r.meta.status == Status::Active)
        .collect();
    let mut plan = RenewPlan {
        requests: Vec::new(),
        settled: Vec::new(),
        due: Vec::new(),
        retire,
    };
    for rec in current {
        let pinning = stage
            || profiles
                .handoff(&rec.meta.tenant)
                .map(|h| h.pinning)
                .unwrap_or(false);
        let resolved = profiles.resolve_kind(&rec.meta.tenant, &rec.meta.env, Some(rec.meta.kind));
        let (window, window_text) = match (within, &resolved) {
            (Some(w), _) => (w.to_time(), w.to_string()),
            (None, Ok(r)) => {
                let w = rec.meta.fit_window(r.renew_before.value.to_time());
                (
                    w,
                    crate::profile::Dur::from_secs(w.whole_seconds()).to_string(),
                )
            }
            (None, Err(_)) => (
                Duration::days(super::expiry::FOREIGN_WITHIN_DAYS),
                format!("{}d", super::expiry::FOREIGN_WITHIN_DAYS),
            ),
        };
        let mut item = RenewItem {
            tenant: rec.meta.tenant.clone(),
            env: rec.meta.env.clone(),
            kind: rec.meta.kind,
            serial: rec.meta.serial.clone(),
            not_after: rec.meta.not_after,
            renew_after: rec.meta.not_after - window,
            within: window_text,
            action: RenewAction::NotDue,
            reason: None,
            certificate: None,
            staged: pinning,
            handoff: if pinning { "pinning" } else { "ca-trust" },
            request: None,
        };
        let rotated = index.rotated_away(&rec.meta);
        if let Some(st) = rotated {
            item.reason = Some(format!(
                "ca-rotation: the CA that signed it ({}) is {}; a new certificate comes from its successor",
                super::ca::issuer_of(&rec.meta),
                st.as_str()
            ));
        }
        if !force && now < item.renew_after && rotated.is_none() {
            plan.settled.push(item);
            continue;
        }
        if let Some(s) = staged_of.iter().find(|s| {
            s.meta.tenant == rec.meta.tenant
                && s.meta.env == rec.meta.env
                && s.meta.kind == rec.meta.kind
        }) {
            item.action = RenewAction::Skipped;
            item.reason = Some(format!(
                "its successor {} is staged already: probe it (mtlsctl probe --tenant {t} --env {e} --staged --url URL) and run mtlsctl activate --tenant {t} --env {e}",
                s.meta.serial,
                t = rec.meta.tenant,
                e = rec.meta.env
            ));
            plan.settled.push(item);
            continue;
        }
        if rec.meta.origin == "import" {
            item.action = RenewAction::WouldRequest;
            item.reason = Some(format!(
                "issued by the external CA of {}: a new request is made, to send to that CA",
                rec.meta.tenant
            ));
            plan.requests.push(item);
            continue;
        }
        if let Some(reason) = not_renewable(&rec) {
            item.action = RenewAction::Skipped;
            item.reason = Some(reason);
            plan.settled.push(item);
            continue;
        }
        let resolved = match resolved {
            Ok(r) => r,
            Err(e) => {
                item.action = RenewAction::Failed;
                item.reason = Some(e.to_string());
                plan.settled.push(item);
                continue;
            }
        };
        if !force && rotated.is_none() && window >= resolved.validity.value.to_time() {
            item.action = RenewAction::Failed;
            item.reason = Some(format!(
                "the window {} is not shorter than the validity {} of a new certificate, so it would be due again at once: use a smaller --within",
                item.within, resolved.validity.value
            ));
            plan.settled.push(item);
            continue;
        }
        let mut resolved = keep_sans(profiles, &rec, resolved);
        resolved.staged = pinning;
        plan.due.push(Due {
            item,
            record: rec,
            resolved,
        });
    }
    Ok(plan)
}

/// Why mtlsctl cannot reissue `rec` itself, if it cannot.
fn not_renewable(rec: &LeafRecord) -> Option<String> {
    match rec.meta.origin.as_str() {
        "sign" => Some(
            "signed from a partner's CSR, so mtlsctl holds no key for it: ask the partner for a new CSR and run `mtlsctl sign`"
                .to_string(),
        ),
        _ => None,
    }
}

/// A server certificate issued with --dns/--ip while its profile names no DNS or IP SAN
/// keeps its names on renewal (the profile would otherwise give none).
fn keep_sans(profiles: &Profiles, rec: &LeafRecord, r: Resolved) -> Resolved {
    if !r.san_dns.value.is_empty() || !r.san_ip.value.is_empty() {
        return r;
    }
    let Ok(pem) = fsutil::read_nofollow(&rec.cert_path()) else {
        return r;
    };
    let Some(info) = inspect::certificates(&pem)
        .ok()
        .and_then(|d| d.into_iter().next())
        .and_then(|d| inspect::cert_info(&d).ok())
    else {
        return r;
    };
    if info.san.dns.is_empty() && info.san.ip.is_empty() {
        return r;
    }
    let flags = LeafFlags {
        kind: Some(rec.meta.kind),
        dns: info.san.dns.clone(),
        ip: info.san.ip.iter().filter_map(|s| s.parse().ok()).collect(),
        ..LeafFlags::default()
    };
    profiles
        .resolve(&rec.meta.tenant, &rec.meta.env, &flags)
        .unwrap_or(r)
}

/// Reissues one due certificate: a new key (or the current one with `reuse_key`), the
/// profile's settings, origin "renew". `issue::store` marks the previous certificate
/// superseded (it stays valid until its own notAfter) and writes the audit line.
pub fn renew_one(
    ws: &Workspace,
    due: &Due,
    with: &issue::SignWith<'_>,
    reuse_key: bool,
    now: OffsetDateTime,
) -> Result<IssueReport> {
    let from = Some(due.record.meta.serial.clone());
    if reuse_key {
        let kp = due.record.key_path();
        if !kp.is_file() {
            return Err(OpError::ReuseKeyMissing { path: kp });
        }
        let pem = zeroize::Zeroizing::new(fsutil::read_nofollow(&kp)?);
        let key = PrivateKey::from_pem_or_der(&pem, None).map_err(|reason| {
            OpError::ReuseKeyUnreadable {
                path: kp.clone(),
                reason,
            }
        })?;
        issue::issue_with_key(ws, &due.resolved, with, now, "renew", from, &key)
    } else {
        issue::issue(ws, &due.resolved, with, now, "renew", from)
    }
}

// ---------------------------------------------------------------------------------------
// CRL

/// What `crl` (and `revoke`) report about the CRL just signed.
#[derive(Debug, Serialize, Clone)]
pub struct CrlReport {
    pub env: String,
    /// The CA that signed it (`<env>[/<tenant>]:ca[/<folder>]`).
    pub ca: String,
    pub crl_number: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub this_update: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// How many serials it lists.
    pub revoked: usize,
    /// Revoked certificates it leaves out because they expired before the previous CRL
    /// was signed, which listed them (RFC 5280 5.1.2.6); state.json keeps them.
    pub expired_left_out: usize,
    pub path: PathBuf,
    /// The extra copy written with --out.
    pub copy: Option<PathBuf>,
    /// Serials whose revocation state.json had lost (or never got) and that were
    /// restored from the certificates' meta.json files or the previous CRL.
    pub restored: Vec<String>,
}

/// The number the next CRL of the CA `ca` carries: one above the highest recorded
/// anywhere (state.json, ca.json, the CRL on disk). Under the lock it is known before
/// signing, so a journal can name it.
fn next_crl_number(ws: &Workspace, ca: &CaLoc, state: &CaState) -> Result<u64> {
    super::doctor::crl_floor(ws, ca, state)
        .checked_add(1)
        .ok_or(OpError::CrlNumberExhausted)
}

/// Re-signs the CRL of the CA `ca` from its state: the next CRL number (above the ones
/// recorded in state.json and ca.json and the one on disk), every revocation with its
/// reason, nextUpdate `validity` from now. Revocations that state.json lacks but a
/// meta.json file or the previous CRL records are restored first, so no CRL forgets
/// one. The state is saved before the CRL is written, so a crash between the two never
/// reuses a number. The file is replaced atomically.
pub fn resign_crl(
    ws: &Workspace,
    ca: &CaLoc,
    validity: Duration,
    signer: &Signer,
    out: Option<&std::path::Path>,
    now: OffsetDateTime,
) -> Result<CrlReport> {
    let mut state = ws.load_ca_state(ca)?;
    let restored = super::doctor::restore_revocations(ws, ca, Some(&signer.cert_der), &mut state)?;
    let number = next_crl_number(ws, ca, &state)?;
    let dropped = expired_out(ws.read_crl(ca).as_ref(), &state.revocations);
    let entries: Vec<crl::Entry<'_>> = state
        .revocations
        .iter()
        .filter(|r| !dropped.contains(r.serial.as_str()))
        .map(|r| crl::Entry {
            serial_hex: &r.serial,
            revoked_at: r.revoked_at,
            reason: &r.reason,
        })
        .collect();
    let (pem, next_update) = crl::sign(signer, number, &entries, validity, now)?;
    fault::hit(Fault::AfterSign);
    let revoked = entries.len();
    state.crl_number = number;
    ws.save_ca_state(ca, &state)?;
    fault::hit(Fault::AfterRecord);
    super::doctor::note_crl_number(ws, ca, &signer.cert_der, number)?;
    fsutil::write_atomic(&ws.crl(ca), pem.as_bytes(), PUBLIC)?;
    fault::hit(Fault::AfterCrl);
    if let Some(o) = out {
        fsutil::write_atomic(o, pem.as_bytes(), PUBLIC)?;
    }
    Ok(CrlReport {
        env: ca.env.clone(),
        ca: ca.to_string(),
        crl_number: number,
        this_update: whole_seconds(now) - crate::pki::cert::CLOCK_SKEW,
        next_update,
        revoked,
        expired_left_out: dropped.len(),
        path: ws.crl(ca),
        copy: out.map(crate::workspace::absolute),
        restored,
    })
}

/// The revocations the next CRL leaves out: certificates that had expired and been
/// revoked when the CRL on disk (`previous`) was signed (notAfter and revocation time
/// both before its thisUpdate), so that CRL, or one before it signed after they expired,
/// listed them: RFC 5280 5.1.2.6 permits dropping an entry once it has appeared on one
/// CRL issued beyond the certificate's validity. A certificate revoked after it expired
/// is still listed once. state.json keeps every record; only the list stops growing.
pub(crate) fn expired_out<'a>(
    previous: Option<&crate::pki::inspect::CrlInfo>,
    revocations: &'a [Revocation],
) -> std::collections::HashSet<&'a str> {
    let Some(prev) = previous else {
        return Default::default();
    };
    revocations
        .iter()
        .filter(|r| r.not_after.is_some_and(|t| t < prev.this_update))
        .filter(|r| r.revoked_at < prev.this_update)
        .map(|r| r.serial.as_str())
        .collect()
}

/// The detail of a `crl` audit line.
fn crl_detail(ca: &CaLoc, number: u64, revoked: usize, next_update: OffsetDateTime) -> String {
    let of = if ca.sub.is_none() && ca.tenant.is_none() {
        String::new()
    } else {
        format!("{ca}: ")
    };
    format!(
        "{of}crl_number {number}, {revoked} revoked, next_update {}",
        crate::pki::text::rfc3339(next_update)
    )
}

/// Re-signs the CRL of one CA and writes the audit line, under a journal that names the
/// CRL number before it is signed.
pub fn crl(
    ws: &Workspace,
    ca: &CaLoc,
    validity: Duration,
    signer: &Signer,
    out: Option<&std::path::Path>,
    now: OffsetDateTime,
) -> Result<CrlReport> {
    ws.audit_preflight()?;
    let state = ws.load_ca_state(ca)?;
    let number = next_crl_number(ws, ca, &state)?;
    let next_update = whole_seconds(now) + validity;
    let mut intent = Intent::new("crl", now);
    let detail = crl_detail(ca, number, state.revocations.len(), next_update);
    let audit = intent.audit_step("crl", Some(detail));
    intent.crls.push(CrlStep {
        env: ca.env.clone(),
        crl_number: number,
        audit: Some(audit),
        ca: Some(ca.clone()),
    });
    let journal = ws.begin(&intent)?;
    let rep = resign_crl(ws, ca, validity, signer, out, now)?;
    let step = intent.crls[0].audit.as_ref().expect("journaled above");
    let mut ev = step.event();
    ev.env = Some(&ca.env);
    ev.tenant = ca.tenant.as_deref();
    ev.detail = Some(crl_detail(ca, rep.crl_number, rep.revoked, rep.next_update));
    issue::audit(ws, &[ev], true)?;
    journal.done();
    Ok(rep)
}

/// [`crl`] for the CA `ca`, its key loaded with `passphrase` (from the workspace).
pub fn crl_of(
    ws: &Workspace,
    profiles: &Profiles,
    ca: &CaLoc,
    passphrase: Option<&secrecy::SecretString>,
    now: OffsetDateTime,
) -> Result<CrlReport> {
    let set = super::ca::read_set(ws, &ca.set())?;
    let view = set.by_loc(ca).ok_or_else(|| OpError::CaHierarchy {
        path: ws.hierarchy_path(ca),
        reason: format!("does not list the CA {ca}"),
    })?;
    let settings = profiles.resolve_ca_for(&ca.env, ca.tenant.as_deref())?;
    let validity = super::ca::crl_validity_for(&settings, &set, view);
    let signer = super::ca::load_signer(ws, ca, passphrase, None)?;
    crl(ws, ca, validity, &signer, None, now)
}

/// A CA whose CRL `crl` could not re-sign, and why.
#[derive(Debug, Serialize, Clone)]
pub struct CrlSkipped {
    pub ca: String,
    pub reason: String,
}

/// What `crl --env E` reports: the CRL of the CA that signs the env's client
/// certificates at the top level (the fields older versions had), every CRL signed in
/// `crls`, and the CAs left out in `skipped`.
#[derive(Debug, Serialize)]
pub struct CrlRun {
    /// Absent with `--if-due` when no CRL had to be signed.
    #[serde(flatten)]
    pub primary: Option<CrlReport>,
    pub crls: Vec<CrlReport>,
    pub skipped: Vec<CrlSkipped>,
    /// With `--if-due`: the CRLs left as they were, still outside their re-sign window.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fresh: Vec<CrlFresh>,
}

/// A CRL that `crl --if-due` left alone.
#[derive(Debug, Serialize, Clone)]
pub struct CrlFresh {
    pub ca: String,
    pub path: PathBuf,
    pub crl_number: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// When it enters its re-sign window (nextUpdate minus the window).
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
}

/// When `crl --if-due` re-signs: `before` ahead of nextUpdate, or (None) a third of the
/// CRL's own lifetime, the window `expiry` reports it due in.
#[derive(Clone, Copy, Debug, Default)]
pub struct IfDue {
    pub before: Option<Duration>,
}

/// Whether the CRL of `c` must be re-signed now under `rule`: it is missing or not
/// signed by its CA, it lacks a revocation the state records, its number is behind the
/// last one signed, or its nextUpdate is inside the window. Returns None when it is
/// fresh, with what it looks like.
fn crl_needed(
    ws: &Workspace,
    c: &super::ca::CaView,
    rule: IfDue,
    now: OffsetDateTime,
) -> Result<Option<CrlFresh>> {
    let path = ws.crl(&c.loc);
    let Ok(data) = std::fs::read(&path) else {
        return Ok(None);
    };
    let Some(der) = crate::pki::inspect::blocks(&data)
        .ok()
        .and_then(|b| b.into_iter().next())
        .map(|b| b.der)
    else {
        return Ok(None);
    };
    let Ok(info) = crate::pki::inspect::crl_info(&der) else {
        return Ok(None);
    };
    if !crate::pki::integrity::crl_signed_by(&der, &c.der).unwrap_or(false) {
        return Ok(None);
    }
    let Some(next) = info.next_update else {
        return Ok(None);
    };
    let state = ws.load_ca_state(&c.loc)?;
    let listed: std::collections::HashSet<&str> =
        info.revoked.iter().map(|r| r.serial.as_str()).collect();
    let gone = expired_out(Some(&info), &state.revocations);
    let complete = state
        .revocations
        .iter()
        .all(|r| listed.contains(r.serial.as_str()) || gone.contains(r.serial.as_str()));
    let number: Option<u64> = info
        .crl_number
        .as_deref()
        .and_then(|n| u64::from_str_radix(n, 16).ok());
    let current = number.is_some_and(|n| n >= state.crl_number);
    let window = rule.before.unwrap_or((next - info.this_update) / 3);
    let due_at = next - window;
    if !complete || !current || now >= due_at {
        return Ok(None);
    }
    Ok(Some(CrlFresh {
        ca: c.loc.to_string(),
        path,
        crl_number: info.crl_number.clone(),
        next_update: next,
        due_at,
    }))
}

/// Re-signs the CRL of every CA of `env` (its own set and each tenant's) that still has
/// certificates to vouch for: every root and issuing CA that has not expired, retired
/// ones too. An offline root's needs `root_key` (its set's key file); without it, it is
/// skipped and said so. `out` gets a copy of the primary CRL. With `if_due`, a CRL
/// outside its re-sign window is left as it is and listed in `fresh`.
#[allow(clippy::too_many_arguments)]
pub fn crl_env(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    passphrase: Option<&secrecy::SecretString>,
    root_key: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
    if_due: Option<IfDue>,
    now: OffsetDateTime,
) -> Result<CrlRun> {
    profiles.check_env(env)?;
    let bases = super::ca::set_bases(ws, env);
    if bases.is_empty() {
        super::ca::ca_cert_der(ws, profiles, env)?;
    }
    let primary_loc = super::ca::open(ws, profiles, env)
        .ok()
        .and_then(|c| c.signing.clone());
    let mut crls = Vec::new();
    let mut skipped = Vec::new();
    let mut fresh = Vec::new();
    for base in bases {
        let set = super::ca::read_set(ws, &base)?;
        let settings = profiles.resolve_ca_for(env, base.tenant.as_deref())?;
        for c in set.cas.iter().filter(|c| c.entry.role != CaRole::Cross) {
            if c.entry.not_after <= now {
                skipped.push(CrlSkipped {
                    ca: c.loc.to_string(),
                    reason: "expired: the certificates it issued have expired with it".into(),
                });
                continue;
            }
            if let Some(rule) = if_due
                && let Some(f) = crl_needed(ws, c, rule, now)?
            {
                fresh.push(f);
                continue;
            }
            let key = if c.entry.offline {
                match root_key {
                    Some(k) if c.entry.status == CaStatus::Active || c.entry.dir.is_empty() => {
                        Some(k)
                    }
                    _ => {
                        skipped.push(CrlSkipped {
                            ca: c.loc.to_string(),
                            reason: format!(
                                "the root key is kept offline: re-sign its CRL with `mtlsctl crl --env {env} --root-key FILE` before {}",
                                crate::pki::text::rfc3339(
                                    ws.read_crl(&c.loc)
                                        .and_then(|i| i.next_update)
                                        .unwrap_or(c.entry.not_after)
                                )
                            ),
                        });
                        continue;
                    }
                }
            } else {
                None
            };
            let signer = super::ca::load_signer(ws, &c.loc, passphrase, key)?;
            let validity = super::ca::crl_validity_for(&settings, &set, c);
            let copy = if primary_loc.as_ref() == Some(&c.loc) {
                out
            } else {
                None
            };
            crls.push(crl(ws, &c.loc, validity, &signer, copy, now)?);
        }
    }
    let primary = primary_loc
        .and_then(|p| crls.iter().find(|r| r.ca == p.to_string()).cloned())
        .or_else(|| crls.first().cloned());
    if primary.is_none() && if_due.is_some() && !fresh.is_empty() {
        return Ok(CrlRun {
            primary,
            crls,
            skipped,
            fresh,
        });
    }
    let primary = primary.ok_or_else(|| {
        OpError::Msg(format!(
            "no CRL of {env} could be signed: {}",
            skipped
                .iter()
                .map(|s| format!("{}: {}", s.ca, s.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    Ok(CrlRun {
        primary: Some(primary),
        crls,
        skipped,
        fresh,
    })
}

/// Whether `crl --if-due` has anything to sign in `env` (so a passphrase is needed).
pub fn crl_due_any(ws: &Workspace, env: &str, rule: IfDue, now: OffsetDateTime) -> Result<bool> {
    for base in super::ca::set_bases(ws, env) {
        let set = super::ca::read_set(ws, &base)?;
        for c in set.cas.iter().filter(|c| c.entry.role != CaRole::Cross) {
            if c.entry.not_after > now && crl_needed(ws, c, rule, now)?.is_none() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// What `crl publish` wrote for one CA.
#[derive(Debug, Serialize, Clone)]
pub struct Published {
    pub ca: String,
    /// The CA's serial, lowercase hex: the stable part of each name ({ca} in URLs).
    pub serial: String,
    pub crl_number: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_update: Option<OffsetDateTime>,
    /// `<serial>.crl`: the CRL, DER (what a CRL distribution point serves).
    pub crl_der: PathBuf,
    /// `<serial>.crl.pem`: the same CRL, PEM.
    pub crl_pem: PathBuf,
    /// `<serial>.crt`: the CA certificate, DER (what caIssuers serves).
    pub cert_der: PathBuf,
}

/// What `crl publish` reports.
#[derive(Debug, Serialize)]
pub struct PublishReport {
    pub env: String,
    pub dir: PathBuf,
    pub published: Vec<Published>,
    /// CAs left out, and why (expired, or their CRL past nextUpdate or unreadable).
    pub skipped: Vec<CrlSkipped>,
}

/// Copies the current CRL of every CA of `env` (its own set and each tenant's, retired
/// CAs until they expire) into `dir/<env>/` under names that do not change from one CRL
/// to the next: `<serial>.crl` (DER), `<serial>.crl.pem` and the CA certificate as
/// `<serial>.crt` (DER), for a web server or an object store behind `ca.crl_url` and
/// `ca.issuer_url`. Each CRL is checked against its CA's certificate first; one past its
/// nextUpdate is still published, with a warning in `skipped` saying to re-sign it.
/// Needs no passphrase and writes nothing in the workspace.
pub fn publish(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
    dir: &std::path::Path,
    now: OffsetDateTime,
) -> Result<PublishReport> {
    profiles.check_env(env)?;
    let bases = super::ca::set_bases(ws, env);
    if bases.is_empty() {
        super::ca::ca_cert_der(ws, profiles, env)?;
    }
    let out_dir = crate::workspace::absolute(&dir.join(env));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| crate::workspace::io_err(&out_dir, "create", e))?;
    let mut published = Vec::new();
    let mut skipped = Vec::new();
    for base in bases {
        let set = super::ca::read_set(ws, &base)?;
        for c in set.cas.iter().filter(|c| c.entry.role != CaRole::Cross) {
            if c.entry.not_after <= now {
                skipped.push(CrlSkipped {
                    ca: c.loc.to_string(),
                    reason: "expired: the certificates it issued have expired with it".into(),
                });
                continue;
            }
            let path = ws.crl(&c.loc);
            let pem = ws.read(&path)?;
            let der = crate::pki::inspect::blocks(&pem)
                .ok()
                .and_then(|b| b.into_iter().next())
                .map(|b| b.der)
                .filter(|d| crate::pki::integrity::crl_signed_by(d, &c.der).unwrap_or(false))
                .ok_or_else(|| OpError::CrlNotSigned {
                    path: path.clone(),
                    subject: crate::pki::inspect::cert_info(&c.der)
                        .map(|i| i.subject)
                        .unwrap_or_default(),
                    env: env.to_string(),
                })?;
            let info = crate::pki::inspect::crl_info(&der)?;
            if info.next_update.is_some_and(|n| n <= now) {
                skipped.push(CrlSkipped {
                    ca: c.loc.to_string(),
                    reason: format!(
                        "published, but its nextUpdate has passed: re-sign it with `mtlsctl crl --env {env}` and publish again"
                    ),
                });
            }
            let serial = c.entry.serial.to_ascii_lowercase();
            let p = Published {
                ca: c.loc.to_string(),
                crl_number: info.crl_number.clone(),
                next_update: info.next_update,
                crl_der: out_dir.join(format!("{serial}.crl")),
                crl_pem: out_dir.join(format!("{serial}.crl.pem")),
                cert_der: out_dir.join(format!("{serial}.crt")),
                serial,
            };
            fsutil::write_atomic(&p.crl_der, &der, PUBLIC)?;
            fsutil::write_atomic(&p.crl_pem, &pem, PUBLIC)?;
            fsutil::write_atomic(&p.cert_der, &c.der, PUBLIC)?;
            published.push(p);
        }
    }
    Ok(PublishReport {
        env: env.to_string(),
        dir: out_dir,
        published,
        skipped,
    })
}

// ---------------------------------------------------------------------------------------
// revoke

/// What `revoke` reports.
#[derive(Debug, Serialize)]
pub struct RevokeReport {
    pub tenant: String,
    pub env: String,
    pub kind: Kind,
    pub serial: String,
    pub subject: String,
    /// "revoked", or "unchanged" when it already was.
    pub action: &'static str,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    /// The CRL signed for this revocation (absent when nothing changed).
    pub crl: Option<CrlReport>,
    /// With key-compromise: the other certificates of the same tenant/env/kind that carry
    /// the same key (renewals with --reuse-key), revoked with it.
    pub also_revoked: Vec<AlsoRevoked>,
    /// The tenant/env/kind's active certificate after the revocation, if one is left.
    pub replacement: Option<String>,
    /// What the operator does next, in one or two sentences.
    pub next: Vec<String>,
}

impl RevokeReport {
    /// Fills [`RevokeReport::next`]: the re-signed CRL goes to every gateway that checks
    /// it, and a tenant left without a certificate needs a new one.
    pub fn with_next(mut self) -> Self {
        let mut next = Vec::new();
        if self.crl.is_some() {
            next.push(format!(
                "hand the re-signed CRL to every gateway that checks the {} CRL: mtlsctl export --tenant {} --env {} --force (crl.pem)",
                self.env, self.tenant, self.env
            ));
        }
        match &self.replacement {
            Some(s) if self.action == "revoked" => {
                next.push(format!("the current certificate {s} is not affected"))
            }
            None if self.tenant != crate::workspace::SIGNED_TENANT => next.push(format!(
                "mtlsctl issue --tenant {} --env {} --kind {} makes a replacement",
                self.tenant, self.env, self.kind
            )),
            _ => {}
        }
        if next.is_empty() {
            next.push("nothing: it was revoked already and its CRL lists it".into());
        }
        self.next = next;
        self
    }
}

/// A certificate revoked because it shares the compromised key.
#[derive(Debug, Serialize)]
pub struct AlsoRevoked {
    pub serial: String,
    /// Its status before: active or superseded.
    pub status: Status,
    pub subject: String,
}

/// How `revoke` names its certificate.
#[derive(Debug, Default, Clone)]
pub struct RevokeTarget<'a> {
    pub env: &'a str,
    pub tenant: Option<&'a str>,
    pub kind: Option<Kind>,
    pub serial: Option<&'a str>,
}

/// Finds the certificate to revoke: by serial (in `env`, and of `tenant` when given), or
/// the current certificate of tenant/env (of `kind` when the tenant has both).
pub fn find_target(
    ws: &Workspace,
    profiles: &Profiles,
    t: &RevokeTarget<'_>,
) -> Result<LeafRecord> {
    profiles.check_env(t.env)?;
    let env = t.env;
    if let Some(s) = t.serial {
        let want = serial::normalize_hex(s)?;
        let rec = ws
            .leaf_by_serial(env, &want)?
            .ok_or_else(|| OpError::NoSuchSerial {
                env: env.to_string(),
                serial: want.clone(),
            })?;
        if let Some(tn) = t.tenant
            && rec.meta.tenant != tn
        {
            return Err(OpError::SerialOfOtherTenant {
                serial: want,
                tenant: rec.meta.tenant,
                asked: tn.to_string(),
            });
        }
        if let Some(k) = t.kind
            && rec.meta.kind != k
        {
            return Err(OpError::SerialOfOtherKind {
                serial: want,
                kind: rec.meta.kind,
                asked: k,
            });
        }
        return Ok(rec);
    }
    let tenant = t.tenant.ok_or(OpError::NoTargetNamed)?;
    let leaves = ws.leaves(&Filter {
        tenant: Some(tenant),
        env: Some(env),
        kind: t.kind,
    })?;
    let current: Vec<LeafRecord> = super::expiry::current_leaves(leaves);
    match current.len() {
        0 => Err(OpError::NoCurrentCert {
            tenant: tenant.to_string(),
            env: env.to_string(),
            kind: t.kind,
            need: CertNeed::Revoke,
        }),
        1 => Ok(current.into_iter().next().expect("one")),
        _ => Err(OpError::KindAmbiguous {
            tenant: tenant.to_string(),
            env: env.to_string(),
        }),
    }
}

/// When and why `rec` was revoked, if its metadata says it was. (A revocation the CA
/// state records but the metadata does not, from an interrupted run, is completed by
/// [`revoke`].)
pub fn already_revoked(rec: &LeafRecord) -> Option<(OffsetDateTime, String)> {
    (rec.meta.status == Status::Revoked).then(|| {
        (
            rec.meta.revoked_at.unwrap_or(rec.meta.issued_at),
            rec.meta
                .revocation_reason
                .clone()
                .unwrap_or_else(|| "unspecified".into()),
        )
    })
}

/// The report for a certificate that was already revoked: nothing changes.
pub fn unchanged(rec: &LeafRecord, at: OffsetDateTime, reason: String) -> RevokeReport {
    RevokeReport {
        tenant: rec.meta.tenant.clone(),
        env: rec.meta.env.clone(),
        kind: rec.meta.kind,
        serial: rec.meta.serial.clone(),
        subject: rec.meta.subject.clone(),
        action: "unchanged",
        reason,
        revoked_at: at,
        crl: None,
        also_revoked: Vec::new(),
        replacement: None,
        next: Vec::new(),
    }
    .with_next()
}

/// The detail of a `revoke` audit line.
fn revoke_detail(reason: &str, crl_number: u64) -> String {
    format!("reason {reason}, crl_number {crl_number}")
}

/// The other certificates of `rec`'s tenant/env/kind, not yet revoked, whose
/// certificate carries the same public key as `rec`'s (renewals with --reuse-key).
pub fn sharing_key(ws: &Workspace, rec: &LeafRecord) -> Result<Vec<LeafRecord>> {
    let spki = |r: &LeafRecord| -> Result<String> {
        let path = r.cert_path();
        let pem = ws.read(&path)?;
        inspect::certificates(&pem)
            .and_then(|d| crate::pki::integrity::spki_sha256(&d[0]))
            .map_err(|reason| OpError::KeyCompare { path, reason })
    };
    let key = spki(rec)?;
    let mut out = Vec::new();
    for r in ws.leaves(&Filter {
        tenant: Some(&rec.meta.tenant),
        env: Some(&rec.meta.env),
        kind: Some(rec.meta.kind),
    })? {
        if r.meta.serial != rec.meta.serial && r.meta.status != Status::Revoked && spki(&r)? == key
        {
            out.push(r);
        }
    }
    Ok(out)
}

/// Adds `rec`'s revocation to `state` unless it is there; returns when and why it was
/// revoked (the recorded time and reason when it already was, in the state or in its
/// meta.json).
fn record_revocation(
    state: &mut crate::workspace::inventory::CaState,
    rec: &LeafRecord,
    reason: &str,
    now: OffsetDateTime,
) -> (OffsetDateTime, String) {
    if let Some(r) = state
        .revocations
        .iter()
        .find(|r| r.serial == rec.meta.serial)
    {
        return (r.revoked_at, r.reason.clone());
    }
    let (at, why) = already_revoked(rec).unwrap_or((now, reason.to_string()));
    state.revocations.push(Revocation {
        serial: rec.meta.serial.clone(),
        revoked_at: at,
        reason: why.clone(),
        tenant: Some(rec.meta.tenant.clone()),
        not_after: Some(rec.meta.not_after),
    });
    (at, why)
}

/// Revokes `rec`: records it in the CA state, re-signs the CRL, marks the leaf revoked,
/// appends an audit line. With key-compromise, every other certificate of the same
/// tenant/env/kind that carries the same key is revoked with it, in the same CRL. When
/// the CA state already lists a certificate (a run interrupted after saving the state),
/// it is marked and the CRL re-signed without a second entry.
pub fn revoke(
    ws: &Workspace,
    profiles: &Profiles,
    passphrase: Option<&secrecy::SecretString>,
    rec: &LeafRecord,
    reason: &str,
    now: OffsetDateTime,
) -> Result<RevokeReport> {
    ws.audit_preflight()?;
    crl::parse_reason(reason)?;
    let env = &rec.meta.env;
    let now = whole_seconds(now);
    let mut targets = vec![rec.clone()];
    if reason == "key-compromise" {
        targets.extend(sharing_key(ws, rec)?);
    }
    // each certificate is listed by the CA that signed it (after a rotation, renewals
    // sharing a key may have different ones); every one of those CAs must unlock first
    let mut cas: Vec<(CaLoc, Signer, Duration)> = Vec::new();
    for t in &targets {
        let loc = super::ca::issuer_of(&t.meta);
        if cas.iter().any(|(l, _, _)| *l == loc) {
            continue;
        }
        let set = super::ca::read_set(ws, &loc.set())?;
        let Some(view) = set.by_loc(&loc) else {
            return Err(OpError::CaHierarchy {
                path: t.dir.join("meta.json"),
                reason: format!(
                    "names the CA {loc}, which {env} does not have: restore meta.json from backup"
                ),
            });
        };
        let settings = profiles.resolve_ca_for(env, loc.tenant.as_deref())?;
        let validity = super::ca::crl_validity_for(&settings, &set, view);
        let signer = super::ca::load_signer(ws, &loc, passphrase, None)?;
        cas.push((loc, signer, validity));
    }
    let mut numbers = Vec::new();
    let mut when: Vec<(OffsetDateTime, String)> = Vec::new();
    for (loc, _, _) in &cas {
        numbers.push(next_crl_number(ws, loc, &ws.load_ca_state(loc)?)?);
    }
    for t in &targets {
        let loc = super::ca::issuer_of(&t.meta);
        let mut state = ws.load_ca_state(&loc)?;
        when.push(record_revocation(&mut state, t, reason, now));
    }
    let mut intent = Intent::new("revoke", now);
    for (i, (t, (at, why))) in targets.iter().zip(&when).enumerate() {
        let shares = if i == 0 {
            String::new()
        } else {
            format!(" (shares the key of {})", rec.meta.serial)
        };
        let loc = super::ca::issuer_of(&t.meta);
        let k = cas
            .iter()
            .position(|(l, _, _)| *l == loc)
            .expect("loaded above");
        let detail = format!("{}{shares}", revoke_detail(why, numbers[k]));
        let audit = intent.audit_step("revoke", Some(detail));
        intent.revocations.push(RevocationStep {
            env: env.clone(),
            tenant: t.meta.tenant.clone(),
            kind: t.meta.kind,
            serial: t.meta.serial.clone(),
            reason: why.clone(),
            revoked_at: *at,
            audit,
            ca: t.meta.ca.clone(),
        });
    }
    for ((loc, _, _), n) in cas.iter().zip(&numbers) {
        intent.crls.push(CrlStep {
            env: env.clone(),
            crl_number: *n,
            audit: None,
            ca: Some(loc.clone()),
        });
    }
    let journal = ws.begin(&intent)?;
    for step in &intent.revocations {
        step.record(ws)?;
    }
    fault::hit(Fault::AfterRecord);
    let mut crl_reps = Vec::new();
    for (loc, signer, validity) in &cas {
        crl_reps.push(resign_crl(ws, loc, *validity, signer, None, now)?);
    }
    let crl_rep = crl_reps.remove(0);
    let mut events = Vec::new();
    for (step, t) in intent.revocations.iter().zip(&targets) {
        if step.mark(ws)? {
            events.push(step.event(Some(&t.meta.sha256)));
        }
        if step.tenant != crate::ops::csr::SIGNED_TENANT {
            ws.refresh_current(&step.env, &step.tenant, step.kind)?;
        }
    }
    fault::hit(Fault::AfterMeta);
    issue::audit(ws, &events, true)?;
    journal.done();
    let replacement = ws
        .current_leaf(&rec.meta.tenant, env, rec.meta.kind)?
        .map(|r| r.meta.serial);
    let (at, reason) = when[0].clone();
    Ok(RevokeReport {
        tenant: rec.meta.tenant.clone(),
        env: env.clone(),
        kind: rec.meta.kind,
        serial: rec.meta.serial.clone(),
        subject: rec.meta.subject.clone(),
        action: if already_revoked(rec).is_some() {
            "unchanged"
        } else {
            "revoked"
        },
        reason,
        revoked_at: at,
        crl: Some(crl_rep),
        also_revoked: targets[1..]
            .iter()
            .map(|t| AlsoRevoked {
                serial: t.meta.serial.clone(),
                status: t.meta.status,
                subject: t.meta.subject.clone(),
            })
            .collect(),
        replacement,
        next: Vec::new(),
    }
    .with_next())
}
