//! Expiry reports: what runs out when, across the workspace, folders of certificates we
//! did not issue, and live endpoints. Every source becomes a list of [`Finding`]s, one
//! per certificate or CRL, each with a status; [`Outcome::of`] turns them into the
//! verdict the exit code reports.
//!
//! Folders are streamed: a walker feeds file paths to a few reader threads, each reading
//! one file at a time into a buffer it reuses, so memory holds the findings (a few
//! hundred bytes each), never the files.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::Result;
use crate::net::tls;
pub use crate::net::tls::Target;
use crate::pki::inspect::{self, Brief, CrlInfo, brief};
use crate::profile::{Dur, Profiles};
use crate::workspace::hierarchy::{CaRole, CaStatus};
use crate::workspace::inventory::{Filter, LeafRecord, Status as LeafStatus};
use crate::workspace::{Workspace, absolute};

/// The renewal window of certificates nobody gave a profile to.
pub const FOREIGN_WITHIN_DAYS: i64 = 30;
/// The renewal window of a workspace CA certificate: replacing a CA means every gateway
/// must trust the new one first, which takes longer than swapping a leaf.
pub const CA_WITHIN_DAYS: i64 = 90;
/// The default `--critical`.
pub const CRITICAL_DAYS: i64 = 7;
/// File names a folder walk reads (lowercase, without the dot); other files are skipped.
pub const EXTENSIONS: &[&str] = &["pem", "crt", "cer", "cert", "der", "crl"];

/// What a finding says about its certificate or CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Due,
    Critical,
    Expired,
    Revoked,
    StaleCrl,
    Unreadable,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Ok,
        Status::Due,
        Status::Critical,
        Status::Expired,
        Status::Revoked,
        Status::StaleCrl,
        Status::Unreadable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Due => "due",
            Status::Critical => "critical",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
            Status::StaleCrl => "stale-crl",
            Status::Unreadable => "unreadable",
        }
    }

    /// Needs action now: exit code 4.
    pub fn is_urgent(self) -> bool {
        matches!(
            self,
            Status::Critical | Status::Expired | Status::Revoked | Status::StaleCrl
        )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One certificate or CRL, or one source that could not be read.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Absolute file path, or HOST:PORT[/SNI] for a live endpoint.
    pub source: String,
    /// client | server (workspace leaves), leaf | ca (any certificate), crl.
    pub kind: &'static str,
    pub tenant: Option<String>,
    pub env: Option<String>,
    /// The certificate's subject; for a CRL, its issuer.
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// The certificate's serial in lowercase hex; for a CRL, its CRL number in hex.
    pub serial: Option<String>,
    /// notAfter; for a CRL, nextUpdate.
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    pub days_left: Option<i64>,
    pub seconds_left: Option<i64>,
    pub status: Status,
    /// The renewal window applied, in seconds.
    pub within_seconds: Option<i64>,
    /// The critical window applied, in seconds.
    pub critical_seconds: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why the source could not be read (status unreadable), or why a CRL whose
    /// nextUpdate has not passed is stale (stale-crl: older than the last one signed).
    pub error: Option<String>,
    /// Why it is due before its window: `ca-rotation` (its CA was replaced), or for a CA
    /// the day issuing with it starts to fail and the command that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a workspace leaf, the stable path `pki/<env>/<tenant>/<kind>/current` (its
    /// folder) when that link designates it; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

impl Finding {
    fn unreadable(source: String, error: String) -> Finding {
        Finding {
            source,
            kind: "unknown",
            tenant: None,
            env: None,
            subject: None,
            issuer: None,
            serial: None,
            not_after: None,
            days_left: None,
            seconds_left: None,
            status: Status::Unreadable,
            within_seconds: None,
            critical_seconds: None,
            revoked_at: None,
            error: Some(error),
            reason: None,
            current: None,
        }
    }

    pub fn is_crl(&self) -> bool {
        self.kind == "crl"
    }
}

/// The thresholds the operator asked for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `--within`: overrides every default renewal window.
    pub within: Option<Dur>,
    /// `--critical`.
    pub critical: Dur,
    /// Per endpoint, for connecting and for the handshake.
    pub timeout: std::time::Duration,
    /// Reader threads for folders.
    pub jobs: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            within: None,
            critical: Dur::days(CRITICAL_DAYS),
            timeout: std::time::Duration::from_secs(10),
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        }
    }
}

/// Status of a certificate with `left` until its notAfter.
pub fn classify_cert(
    left: Duration,
    within: Duration,
    critical: Duration,
    revoked: bool,
) -> Status {
    if left <= Duration::ZERO {
        Status::Expired
    } else if revoked {
        Status::Revoked
    } else if left < critical {
        Status::Critical
    } else if left < within {
        Status::Due
    } else {
        Status::Ok
    }
}

/// The windows applied to a CRL: the certificate windows, each capped at a fraction of
/// the CRL's own lifetime (a third for due, a tenth for critical), so a 7-day CRL that
/// cron re-signs daily is never reported while a forgotten one is, well before gateways
/// start refusing every client.
pub fn crl_windows(
    lifetime: Duration,
    within: Duration,
    critical: Duration,
) -> (Duration, Duration) {
    if lifetime <= Duration::ZERO {
        return (within, critical);
    }
    (within.min(lifetime / 3), critical.min(lifetime / 10))
}

/// Status of a CRL with `left` until its nextUpdate.
pub fn classify_crl(left: Duration, within: Duration, critical: Duration) -> Status {
    if left <= Duration::ZERO {
        Status::StaleCrl
    } else if left < critical {
        Status::Critical
    } else if left < within {
        Status::Due
    } else {
        Status::Ok
    }
}

/// Who a certificate belongs to, when known.
#[derive(Clone, Debug, Default)]
struct Owner {
    kind: Option<&'static str>,
    tenant: Option<String>,
    env: Option<String>,
}

fn cert_finding(
    source: String,
    owner: Owner,
    info: &Brief,
    within: Duration,
    critical: Duration,
    revoked_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Finding {
    let left = info.not_after - now;
    let kind = owner.kind.unwrap_or(if info.is_ca { "ca" } else { "leaf" });
    Finding {
        source,
        kind,
        tenant: owner.tenant,
        env: owner.env,
        subject: Some(info.subject.clone()),
        issuer: Some(info.issuer.clone()),
        serial: Some(info.serial.clone()),
        not_after: Some(info.not_after),
        days_left: Some(crate::pki::text::days_left(info.not_after, now)),
        seconds_left: Some(left.whole_seconds()),
        status: classify_cert(left, within, critical, revoked_at.is_some()),
        within_seconds: Some(within.whole_seconds()),
        critical_seconds: Some(critical.whole_seconds()),
        revoked_at,
        error: None,
        reason: None,
        current: None,
    }
}

fn crl_finding(
    source: String,
    env: Option<String>,
    info: &CrlInfo,
    within: Duration,
    critical: Duration,
    now: OffsetDateTime,
) -> Finding {
    let mut f = Finding {
        source,
        kind: "crl",
        tenant: None,
        env,
        subject: Some(info.issuer.clone()),
        issuer: Some(info.issuer.clone()),
        serial: info.crl_number.clone(),
        not_after: info.next_update,
        days_left: None,
        seconds_left: None,
        status: Status::Ok,
        within_seconds: None,
        critical_seconds: None,
        revoked_at: None,
        error: None,
        reason: None,
        current: None,
    };
    if let Some(next) = info.next_update {
        let (w, c) = crl_windows(next - info.this_update, within, critical);
        let left = next - now;
        f.days_left = Some(crate::pki::text::days_left(next, now));
        f.seconds_left = Some(left.whole_seconds());
        f.within_seconds = Some(w.whole_seconds());
        f.critical_seconds = Some(c.whole_seconds());
        f.status = classify_crl(left, w, c);
    }
    f
}

/// What a scan found, and anything the operator should know about how it looked.
#[derive(Debug, Default)]
pub struct Scan {
    pub findings: Vec<Finding>,
    pub warnings: Vec<String>,
}

/// The verdict over all findings. Precedence, highest first: urgent (4), unreadable (1),
/// due (3), ok (0). Something known to need action now outranks a source we could not
/// read; a source we could not read outranks "due", because what we could not see may
/// be worse than what we could.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Due,
    Unreadable,
    Urgent,
}

impl Outcome {
    pub fn of(findings: &[Finding]) -> Outcome {
        let has = |p: &dyn Fn(Status) -> bool| findings.iter().any(|f| p(f.status));
        if has(&Status::is_urgent) {
            Outcome::Urgent
        } else if has(&|s| s == Status::Unreadable) {
            Outcome::Unreadable
        } else if has(&|s| s == Status::Due) {
            Outcome::Due
        } else {
            Outcome::Ok
        }
    }
}

/// Counts per status, every status present.
pub fn counts(findings: &[Finding]) -> BTreeMap<Status, usize> {
    let mut m: BTreeMap<Status, usize> = Status::ALL.iter().map(|s| (*s, 0)).collect();
    for f in findings {
        *m.entry(f.status).or_default() += 1;
    }
    m
}

/// Sorts by urgency of time: unreadable sources first, then least time left first.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let ka = (
            a.status != Status::Unreadable,
            a.seconds_left.unwrap_or(i64::MAX),
        );
        let kb = (
            b.status != Status::Unreadable,
            b.seconds_left.unwrap_or(i64::MAX),
        );
        ka.cmp(&kb)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.serial.cmp(&b.serial))
    });
}

// ---------------------------------------------------------------------------------------
// the workspace

/// Every current leaf, every CA certificate and every CRL of the workspace.
pub fn scan_workspace(
    ws: &Workspace,
    profiles: &Profiles,
    opts: &Options,
    now: OffsetDateTime,
) -> Result<Scan> {
    let mut scan = Scan::default();
    for env in profiles.env_names() {
        ca_findings(ws, profiles, opts, &env, now, &mut scan);
        leaf_findings(ws, profiles, opts, &env, now, &mut scan);
    }
    Ok(scan)
}

/// Every CA certificate and CRL of `env`'s sets (its own and each tenant's). A CA that
/// signs leaves is due when its remaining life is shorter than the longest validity a
/// tenant's profile asks of it (issuing would fail, or clip, from that day); a retired
/// CA is not reported, its CRL still is while the CA lives.
fn ca_findings(
    ws: &Workspace,
    profiles: &Profiles,
    opts: &Options,
    env: &str,
    now: OffsetDateTime,
    scan: &mut Scan,
) {
    let critical = opts.critical.to_time();
    let bases = super::ca::set_bases(ws, env);
    let longest = longest_validity(profiles, env);
    for base in &bases {
        let set = match super::ca::read_set_unchecked(ws, base) {
            Ok(s) => s,
            Err(e) => {
                scan.findings.push(Finding::unreadable(
                    path_string(&ws.hierarchy_path(base)),
                    e.to_string(),
                ));
                continue;
            }
        };
        let signing: Vec<_> = [crate::pki::Kind::Client, crate::pki::Kind::Server]
            .into_iter()
            .filter_map(|k| set.signing(k).map(|v| v.loc.clone()))
            .collect();
        for c in &set.cas {
            let cross = c.entry.role == CaRole::Cross;
            let retired = c.entry.status == CaStatus::Retired;
            let ca_path = ws.ca_cert(&c.loc);
            let owner = Owner {
                kind: Some("ca"),
                tenant: base.tenant.clone(),
                env: Some(env.to_string()),
            };
            if !retired {
                let within = opts
                    .within
                    .map_or(Duration::days(CA_WITHIN_DAYS), Dur::to_time);
                match ws_read(ws, &ca_path).and_then(|d| certs_of(&d)) {
                    Ok(infos) => {
                        for i in infos.iter().take(1) {
                            let mut f = cert_finding(
                                path_string(&ca_path),
                                owner.clone(),
                                i,
                                within,
                                critical,
                                None,
                                now,
                            );
                            if signing.contains(&c.loc)
                                && let Some(l) = longest
                            {
                                let fails = i.not_after - l;
                                if fails <= now + within && f.status == Status::Ok {
                                    f.status = Status::Due;
                                }
                                if fails <= now + within {
                                    let tf = base
                                        .tenant
                                        .as_ref()
                                        .map(|t| format!(" --tenant {t}"))
                                        .unwrap_or_default();
                                    let tier = if set.hierarchy.two_tier() {
                                        "issuing"
                                    } else {
                                        "root"
                                    };
                                    f.reason = Some(format!(
                                        "its remaining life is shorter than the longest validity it issues ({}): from {} a new certificate would outlive it; rotate it with `mtlsctl ca rotate --env {env}{tf} --tier {tier}`",
                                        Dur::from_secs(l.whole_seconds()),
                                        crate::pki::text::rfc3339(fails)
                                    ));
                                }
                            }
                            scan.findings.push(f);
                        }
                    }
                    Err(e) => scan
                        .findings
                        .push(Finding::unreadable(path_string(&ca_path), e)),
                }
                if !cross {
                    scan.warnings.extend(super::doctor::ca_warning(ws, &c.loc));
                }
            }
            if cross || c.entry.not_after <= now {
                continue;
            }
            let crl_path = ws.crl(&c.loc);
            if !crl_path.is_file() {
                scan.warnings.push(format!(
                    "the {} CA has no CRL ({}): run `mtlsctl crl --env {env}`",
                    c.loc,
                    crl_path.display()
                ));
                continue;
            }
            let within = opts
                .within
                .map_or(Duration::days(FOREIGN_WITHIN_DAYS), Dur::to_time);
            match ws_read(ws, &crl_path).and_then(|d| crl_of(&d)) {
                Ok(info) => {
                    let mut f = crl_finding(
                        path_string(&crl_path),
                        Some(env.to_string()),
                        &info,
                        within,
                        critical,
                        now,
                    );
                    f.tenant = base.tenant.clone();
                    // older than the last one signed: gateways would get back revoked clients
                    if let Some(why) = super::doctor::stale_crl(ws, &c.loc) {
                        f.status = Status::StaleCrl;
                        f.error = Some(why.clone());
                        scan.warnings.push(why);
                    }
                    if c.entry.offline && f.status != Status::Ok {
                        f.reason = Some(format!(
                            "the root key is offline: re-sign this CRL with `mtlsctl crl --env {env} --root-key FILE`"
                        ));
                    }
                    scan.findings.push(f)
                }
                Err(e) => scan
                    .findings
                    .push(Finding::unreadable(path_string(&crl_path), e)),
            }
        }
    }
}

/// The longest validity any tenant's profile asks of `env` (None: no tenant lists it).
fn longest_validity(profiles: &Profiles, env: &str) -> Option<Duration> {
    profiles
        .tenant_names()
        .iter()
        .filter_map(|t| profiles.resolve_kind(t, env, None).ok())
        .map(|r| r.validity.value.to_time())
        .max()
}

/// The current leaves of `env`; a folder that cannot be read (a corrupt meta.json, a
/// symbolic link) is an unreadable finding of its own, and the others are still judged.
fn leaf_findings(
    ws: &Workspace,
    profiles: &Profiles,
    opts: &Options,
    env: &str,
    now: OffsetDateTime,
    scan: &mut Scan,
) {
    let inv = ws.inventory(&Filter {
        env: Some(env),
        ..Filter::default()
    });
    for p in &inv.problems {
        scan.findings
            .push(Finding::unreadable(path_string(&p.path), p.to_string()));
    }
    let index = super::ca::CaIndex::load(ws, &[env.to_string()]);
    for rec in current_leaves(inv.leaves) {
        let within = match opts.within {
            Some(w) => w.to_time(),
            None => match renew_before(profiles, &rec) {
                Ok(d) => d,
                Err(e) => {
                    scan.warnings.push(format!(
                        "{}/{env}: {e}; using a {FOREIGN_WITHIN_DAYS}-day window",
                        rec.meta.tenant
                    ));
                    Duration::days(FOREIGN_WITHIN_DAYS)
                }
            },
        };
        let mut f = leaf_finding(&rec, within, opts.critical.to_time(), now);
        let m = &rec.meta;
        if matches!(ws.current_serial(&m.env, &m.tenant, m.kind), Ok(Some(s)) if s == m.serial) {
            f.current = Some(path_string(&ws.current_path(&m.env, &m.tenant, m.kind)));
        }
        if let Some(st) = index.rotated_away(&rec.meta) {
            if f.status == Status::Ok {
                f.status = Status::Due;
            }
            f.reason = Some(format!(
                "ca-rotation: the CA that signed it is {}; `mtlsctl renew --env {env}` reissues it from the new one",
                st.as_str()
            ));
        }
        if m.origin == "import"
            && matches!(f.status, Status::Due | Status::Critical | Status::Expired)
            && f.reason.is_none()
        {
            // its renewal is a new request to the tenant's own CA, as `renew` makes it
            f.reason = Some(format!(
                "external-ca: issued by the external CA of {}; `mtlsctl renew --tenant {} --env {env}` makes a new request to send to it, then `mtlsctl import`",
                m.tenant, m.tenant
            ));
        }
        scan.findings.push(f);
    }
}

fn leaf_finding(
    rec: &LeafRecord,
    within: Duration,
    critical: Duration,
    now: OffsetDateTime,
) -> Finding {
    let path = rec.cert_path();
    let owner = Owner {
        kind: Some(rec.meta.kind.as_str()),
        tenant: Some(rec.meta.tenant.clone()),
        env: Some(rec.meta.env.clone()),
    };
    let revoked_at = (rec.meta.status == LeafStatus::Revoked)
        .then(|| rec.meta.revoked_at.unwrap_or(rec.meta.issued_at));
    let read = crate::workspace::fsutil::read_nofollow(&path).map_err(|e| e.to_string());
    match read.and_then(|d| certs_of(&d)) {
        Ok(infos) => cert_finding(
            path_string(&path),
            owner,
            &infos[0],
            within,
            critical,
            revoked_at,
            now,
        ),
        Err(e) => {
            let mut f = Finding::unreadable(path_string(&path), e);
            f.kind = rec.meta.kind.as_str();
            f.tenant = Some(rec.meta.tenant.clone());
            f.env = Some(rec.meta.env.clone());
            f.serial = Some(rec.meta.serial.clone());
            f
        }
    }
}

/// The renewal window of a workspace leaf: its profile's renew_before, fitted to the
/// leaf's life.
pub fn renew_before(profiles: &Profiles, rec: &LeafRecord) -> Result<Duration> {
    let r = profiles.resolve_kind(&rec.meta.tenant, &rec.meta.env, Some(rec.meta.kind))?;
    Ok(rec.meta.fit_window(r.renew_before.value.to_time()))
}

/// Per tenant/env/kind, the newest leaf that has not been superseded: the active one,
/// or a revoked one that nothing has replaced yet.
pub fn current_leaves(leaves: Vec<LeafRecord>) -> Vec<LeafRecord> {
    let mut by: BTreeMap<(String, String, String), LeafRecord> = BTreeMap::new();
    for r in leaves {
        // a test fixture is never a tenant's current certificate, nor is a staged
        // successor until `activate`
        if matches!(r.meta.status, LeafStatus::Superseded | LeafStatus::Staged) || r.meta.fixture {
            continue;
        }
        let k = (
            r.meta.tenant.clone(),
            r.meta.env.clone(),
            r.meta.kind.as_str().to_string(),
        );
        match by.get(&k) {
            Some(cur) if cur.meta.issued_at > r.meta.issued_at => {}
            Some(cur)
                if cur.meta.issued_at == r.meta.issued_at
                    && cur.meta.status == LeafStatus::Active =>
            {
                // same second: an active one wins over a revoked one
            }
            _ => {
                by.insert(k, r);
            }
        }
    }
    by.into_values().collect()
}

/// A file of the workspace, never through a symbolic link.
fn ws_read(ws: &Workspace, path: &Path) -> std::result::Result<Vec<u8>, String> {
    ws.read(path).map_err(|e| e.to_string())
}

fn certs_of(data: &[u8]) -> std::result::Result<Vec<Brief>, String> {
    let ders = inspect::certificates(data).map_err(|e| e.to_string())?;
    ders.iter().map(|d| brief(d)).collect()
}

fn crl_of(data: &[u8]) -> std::result::Result<CrlInfo, String> {
    let blocks = inspect::blocks(data).map_err(|e| e.to_string())?;
    let b = blocks
        .iter()
        .find(|b| b.label == "X509 CRL" || b.label == "DER")
        .ok_or_else(|| "no CRL in this file".to_string())?;
    inspect::crl_info(&b.der).map_err(|e| e.to_string())
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

// ---------------------------------------------------------------------------------------
// files and folders

/// What one reader thread found.
#[derive(Default)]
struct Partial {
    findings: Vec<Finding>,
    /// (CRL issuer, serial) -> revocation time, from every CRL read.
    revoked: HashMap<(String, String), OffsetDateTime>,
}

/// Certificates and CRLs in `paths`: files of any name, and folders walked recursively
/// for files named *.pem, *.crt, *.cer, *.cert, *.der or *.crl (hidden entries skipped;
/// symbolic links followed, each folder read once). A certificate that a CRL found in
/// the same scan lists is reported revoked.
pub fn scan_paths(paths: &[PathBuf], opts: &Options, now: OffsetDateTime) -> Scan {
    let (tx, rx) = sync_channel::<Vec<(PathBuf, bool)>>(16);
    let rx = Arc::new(Mutex::new(rx));
    let mut walk_findings = Vec::new();
    let parts: Vec<Partial> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.jobs.max(1))
            .map(|_| {
                let rx = Arc::clone(&rx);
                s.spawn(move || reader(&rx, opts, now))
            })
            .collect();
        let mut seen_dirs = HashSet::new();
        let mut tx = Batcher {
            tx,
            batch: Vec::with_capacity(BATCH),
        };
        for p in paths {
            let p = absolute(p);
            match fs::metadata(&p) {
                Ok(m) if m.is_dir() => walk(&p, &mut tx, &mut seen_dirs, &mut walk_findings),
                Ok(_) => {
                    tx.push(p, true);
                }
                Err(e) => walk_findings.push(Finding::unreadable(
                    path_string(&p),
                    format!("cannot read: {}", io_reason(&e)),
                )),
            }
        }
        tx.finish();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut revoked = HashMap::new();
    let total = walk_findings.len() + parts.iter().map(|p| p.findings.len()).sum::<usize>();
    let mut findings = Vec::with_capacity(total);
    findings.extend(walk_findings);
    for p in parts {
        revoked.extend(p.revoked);
        findings.extend(p.findings);
    }
    if !revoked.is_empty() {
        let critical = opts.critical.to_time();
        for f in &mut findings {
            if f.is_crl() || f.status == Status::Unreadable {
                continue;
            }
            let (Some(issuer), Some(serial)) = (&f.issuer, &f.serial) else {
                continue;
            };
            if let Some(at) = revoked.get(&(issuer.clone(), serial.clone())) {
                f.revoked_at = Some(*at);
                let left = Duration::seconds(f.seconds_left.unwrap_or(0));
                let within = Duration::seconds(f.within_seconds.unwrap_or(0));
                f.status = classify_cert(left, within, critical, true);
            }
        }
    }
    Scan {
        findings,
        warnings: Vec::new(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

fn wanted(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

/// Paths handed to the readers in batches, so threads wake once per batch, not per file.
const BATCH: usize = 64;

struct Batcher {
    tx: std::sync::mpsc::SyncSender<Vec<(PathBuf, bool)>>,
    batch: Vec<(PathBuf, bool)>,
}

impl Batcher {
    /// Queues a path; false when the readers are gone.
    fn push(&mut self, p: PathBuf, explicit: bool) -> bool {
        self.batch.push((p, explicit));
        if self.batch.len() < BATCH {
            return true;
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.tx.send(full).is_ok()
    }

    fn finish(self) {
        if !self.batch.is_empty() {
            let _ = self.tx.send(self.batch);
        }
    }
}

fn walk(dir: &Path, tx: &mut Batcher, seen: &mut HashSet<(u64, u64)>, out: &mut Vec<Finding>) {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(dir) {
        Ok(m) => {
            if !seen.insert((m.dev(), m.ino())) {
                return;
            }
        }
        Err(e) => {
            out.push(Finding::unreadable(path_string(dir), io_reason(&e)));
            return;
        }
    }
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            out.push(Finding::unreadable(
                path_string(dir),
                format!("cannot list folder: {}", io_reason(&e)),
            ));
            return;
        }
    };
    let mut entries: Vec<(PathBuf, String, fs::FileType)> = Vec::new();
    for ent in rd {
        let Ok(ent) = ent else { continue };
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(ft) = ent.file_type() else { continue };
        entries.push((ent.path(), name, ft));
    }
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    for (path, name, ft) in entries {
        let (is_dir, is_file) = if ft.is_symlink() {
            match fs::metadata(&path) {
                Ok(m) => (m.is_dir(), m.is_file()),
                Err(_) => continue, // a dangling link watches nothing
            }
        } else {
            (ft.is_dir(), ft.is_file())
        };
        if is_dir {
            walk(&path, tx, seen, out);
        } else if is_file && wanted(&name) && !tx.push(path, false) {
            return;
        }
    }
}

fn reader(
    rx: &Mutex<Receiver<Vec<(PathBuf, bool)>>>,
    opts: &Options,
    now: OffsetDateTime,
) -> Partial {
    let mut part = Partial::default();
    let mut buf = Vec::new();
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => break,
        };
        let Ok(batch) = next else { break };
        for (path, explicit) in batch {
            read_one(&path, explicit, &mut buf, opts, now, &mut part);
        }
    }
    part
}

fn read_one(
    path: &Path,
    explicit: bool,
    buf: &mut Vec<u8>,
    opts: &Options,
    now: OffsetDateTime,
    part: &mut Partial,
) {
    let read = if explicit {
        // named on the command line: may be a pipe, read it to its end
        buf.clear();
        fs::File::open(path).and_then(|mut f| f.read_to_end(buf))
    } else {
        read_regular(path, buf)
    };
    let source = path_string(path);
    match read {
        Ok(n) => scan_bytes(source, &buf[..n], explicit, opts, now, part),
        Err(e) => part.findings.push(Finding::unreadable(
            source,
            format!("cannot read: {}", io_reason(&e)),
        )),
    }
}

/// Reads a regular file met in a walk into `buf` (kept between files), returning its
/// length: open, one read, close. A read on a regular file returns less than asked only
/// at its end, so a short read needs no second read to find the end (nor a stat for the
/// size); a file larger than the buffer grows it.
fn read_regular(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    const START: usize = 64 * 1024;
    if buf.len() < START {
        buf.resize(START, 0);
    }
    let mut f = fs::File::open(path)?;
    let mut len = 0;
    loop {
        let n = match f.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n;
        if n == 0 || len < buf.len() {
            return Ok(len);
        }
        let grow = buf.len();
        buf.resize(buf.len() + grow, 0);
    }
}

/// Findings from one file's bytes. A file named on the command line must hold a
/// certificate or a CRL; a file met in a folder walk that holds neither (a key, say) is
/// skipped.
fn scan_bytes(
    source: String,
    data: &[u8],
    explicit: bool,
    opts: &Options,
    now: OffsetDateTime,
    part: &mut Partial,
) {
    let within = opts
        .within
        .map_or(Duration::days(FOREIGN_WITHIN_DAYS), Dur::to_time);
    let critical = opts.critical.to_time();
    if data.is_empty() {
        part.findings
            .push(Finding::unreadable(source, "the file is empty".into()));
        return;
    }
    let blocks = match inspect::blocks(data) {
        Ok(b) => b,
        Err(e) => {
            part.findings
                .push(Finding::unreadable(source, e.to_string()));
            return;
        }
    };
    let mut found = 0usize;
    for (i, b) in blocks.iter().enumerate() {
        let at = || {
            if blocks.len() > 1 {
                format!("block {}: ", i + 1)
            } else {
                String::new()
            }
        };
        match b.label.as_str() {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                found += 1;
                match brief(&b.der) {
                    Ok(info) => part.findings.push(cert_finding(
                        source.clone(),
                        Owner::default(),
                        &info,
                        within,
                        critical,
                        None,
                        now,
                    )),
                    Err(e) => part
                        .findings
                        .push(Finding::unreadable(source.clone(), format!("{}{e}", at()))),
                }
            }
            "X509 CRL" => {
                found += 1;
                match inspect::crl_info(&b.der) {
                    Ok(info) => add_crl(source.clone(), &info, within, critical, now, part),
                    Err(e) => part
                        .findings
                        .push(Finding::unreadable(source.clone(), format!("{}{e}", at()))),
                }
            }
            "DER" => {
                found += 1;
                if let Ok(info) = brief(&b.der) {
                    part.findings.push(cert_finding(
                        source.clone(),
                        Owner::default(),
                        &info,
                        within,
                        critical,
                        None,
                        now,
                    ));
                } else if let Ok(info) = inspect::crl_info(&b.der) {
                    add_crl(source.clone(), &info, within, critical, now, part);
                } else {
                    part.findings.push(Finding::unreadable(
                        source.clone(),
                        "neither a certificate nor a CRL (PEM or DER)".into(),
                    ));
                }
            }
            _ => {}
        }
    }
    if found == 0 && explicit {
        part.findings.push(Finding::unreadable(
            source,
            "no certificate or CRL in this file".into(),
        ));
    }
}

fn add_crl(
    source: String,
    info: &CrlInfo,
    within: Duration,
    critical: Duration,
    now: OffsetDateTime,
    part: &mut Partial,
) {
    for r in &info.revoked {
        part.revoked
            .insert((info.issuer.clone(), r.serial.clone()), r.revoked_at);
    }
    part.findings
        .push(crl_finding(source, None, info, within, critical, now));
}

// ---------------------------------------------------------------------------------------
// live endpoints

/// A chain as DER certificates, or why it could not be had.
type Fetched = std::result::Result<Vec<Vec<u8>>, String>;

/// The chain each endpoint serves, fetched in parallel; an endpoint that cannot be
/// reached is one unreadable finding and does not stop the others.
pub fn scan_remote(targets: &[Target], opts: &Options, now: OffsetDateTime) -> Scan {
    let within = opts
        .within
        .map_or(Duration::days(FOREIGN_WITHIN_DAYS), Dur::to_time);
    let critical = opts.critical.to_time();
    let results: Vec<(String, Fetched)> = std::thread::scope(|s| {
        let hs: Vec<_> = targets
            .iter()
            .map(|t| {
                s.spawn(move || {
                    let chain = tls::fetch_chain(t, opts.timeout).map_err(|e| e.to_string());
                    (t.spec.clone(), chain)
                })
            })
            .collect();
        hs.into_iter()
            .zip(targets)
            .map(|(h, t)| {
                h.join().unwrap_or_else(|_| {
                    (t.spec.clone(), Err("the connection thread failed".into()))
                })
            })
            .collect()
    });
    let mut findings = Vec::new();
    for (source, r) in results {
        match r {
            Ok(chain) => {
                for (i, der) in chain.iter().enumerate() {
                    match brief(der) {
                        Ok(info) => findings.push(cert_finding(
                            source.clone(),
                            Owner::default(),
                            &info,
                            within,
                            critical,
                            None,
                            now,
                        )),
                        Err(e) => findings.push(Finding::unreadable(
                            source.clone(),
                            format!("certificate {} of the chain: {e}", i + 1),
                        )),
                    }
                }
            }
            Err(e) => findings.push(Finding::unreadable(source, e)),
        }
    }
    Scan {
        findings,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: i64) -> Duration {
        Duration::days(n)
    }

    #[test]
    fn certificate_statuses() {
        let (w, c) = (d(30), d(7));
        assert_eq!(classify_cert(d(31), w, c, false), Status::Ok);
        assert_eq!(classify_cert(d(29), w, c, false), Status::Due);
        assert_eq!(classify_cert(d(6), w, c, false), Status::Critical);
        assert_eq!(classify_cert(Duration::ZERO, w, c, false), Status::Expired);
        assert_eq!(classify_cert(d(-1), w, c, true), Status::Expired);
        assert_eq!(classify_cert(d(100), w, c, true), Status::Revoked);
        // critical wider than within still wins
        assert_eq!(classify_cert(d(6), d(5), c, false), Status::Critical);
    }

    #[test]
    fn crl_windows_are_capped_by_its_lifetime() {
        let (w, c) = crl_windows(d(7), d(30), d(7));
        assert_eq!(w, d(7) / 3);
        assert_eq!(c, d(7) / 10);
        // a fresh 7-day CRL is fine, one with a day left is due, one with 10h critical
        assert_eq!(classify_crl(d(7) - Duration::minutes(5), w, c), Status::Ok);
        assert_eq!(classify_crl(d(1), w, c), Status::Due);
        assert_eq!(classify_crl(Duration::hours(10), w, c), Status::Critical);
        assert_eq!(classify_crl(Duration::seconds(-1), w, c), Status::StaleCrl);
        // long-lived CRLs keep the operator's windows
        assert_eq!(crl_windows(d(365), d(30), d(7)), (d(30), d(7)));
    }

    fn f(status: Status) -> Finding {
        let mut x = Finding::unreadable("x".into(), String::new());
        x.status = status;
        x
    }

    #[test]
    fn outcome_precedence() {
        assert_eq!(Outcome::of(&[]), Outcome::Ok);
        assert_eq!(Outcome::of(&[f(Status::Ok), f(Status::Due)]), Outcome::Due);
        assert_eq!(
            Outcome::of(&[f(Status::Due), f(Status::Unreadable)]),
            Outcome::Unreadable
        );
        for s in [
            Status::Critical,
            Status::Expired,
            Status::Revoked,
            Status::StaleCrl,
        ] {
            assert_eq!(
                Outcome::of(&[f(Status::Unreadable), f(Status::Due), f(s)]),
                Outcome::Urgent
            );
        }
    }

    #[test]
    fn folder_walk_reads_certificate_names_only() {
        assert!(wanted("tls.crt"));
        assert!(wanted("CA.PEM"));
        assert!(wanted("x.crl"));
        assert!(!wanted("key"));
        assert!(!wanted("meta.json"));
        assert!(!wanted("bundle.pfx"));
    }

    #[test]
    fn garbage_is_unreadable_and_keys_are_skipped_in_walks() {
        let opts = Options::default();
        let now = OffsetDateTime::now_utc();
        let mut p = Partial::default();
        scan_bytes("a".into(), b"not a certificate", false, &opts, now, &mut p);
        assert_eq!(p.findings.len(), 1);
        assert_eq!(p.findings[0].status, Status::Unreadable);
        let key =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let mut p = Partial::default();
        scan_bytes("k".into(), key, false, &opts, now, &mut p);
        assert!(p.findings.is_empty());
        scan_bytes("k".into(), key, true, &opts, now, &mut p);
        assert_eq!(p.findings[0].status, Status::Unreadable);
    }

    #[test]
    fn read_regular_reads_small_and_large_files_whole() {
        let d = tempfile::tempdir().unwrap();
        let mut buf = Vec::new();
        for size in [0usize, 10, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 300_000] {
            let p = d.path().join(format!("f{size}"));
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&p, &data).unwrap();
            let n = read_regular(&p, &mut buf).unwrap();
            assert_eq!(&buf[..n], &data[..], "size {size}");
        }
    }
}
