//! `doctor`: whether the workspace agrees with itself, and the checks other operations
//! run before they trust what they read back (DESIGN.md section 7, integrity).
//!
//! Each check needs no passphrase: the CA certificate is compared with the public-key
//! hash recorded when the CA was made (`ca.json`, see [`crate::workspace::ca_record`]),
//! leaves and the CRL are checked against the CA certificate's public key, and the
//! revocations of the meta.json files, state.json and the CRL are compared. Each
//! problem says what is wrong, where, what was expected and found, and how to fix it;
//! `--repair` fixes what needs no passphrase and says what does.

mod tree;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::ca::{CaSet, EnvCa};
use super::{OpError, Result};
use crate::pki::inspect::{self, CrlInfo};
use crate::pki::{fingerprint, integrity};
use crate::profile::Profiles;
use crate::workspace::ca_record::{CaRecord, FORMAT};
use crate::workspace::hierarchy::CaRole;
use crate::workspace::inventory::{CaState, Filter, LeafRecord, Revocation, Status};
use crate::workspace::{CaLoc, Workspace, WsError};

// ---------------------------------------------------------------------------------------
// problems and the report

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something is wrong: exit code 1 while it remains.
    Error,
    /// Worth knowing, not wrong (a CA not yet recorded, say).
    Warning,
}

/// One thing found wrong, with where, what was expected and found, and how to fix it.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// Which check found it: ca-record, leaf-chain, revocations, crl, crl-issuer,
    /// crl-number, staging, symlink, name, unreadable.
    pub check: &'static str,
    pub severity: Severity,
    pub env: Option<String>,
    pub path: PathBuf,
    pub problem: String,
    pub expected: Option<String>,
    pub found: Option<String>,
    pub fix: String,
    /// `doctor --repair` fixes it.
    pub repairable: bool,
    /// The fix signs with the CA, so it needs the CA passphrase.
    pub needs_passphrase: bool,
}

impl Problem {
    fn new(check: &'static str, severity: Severity, env: Option<&str>, path: PathBuf) -> Self {
        Problem {
            check,
            severity,
            env: env.map(str::to_string),
            path,
            problem: String::new(),
            expected: None,
            found: None,
            fix: String::new(),
            repairable: false,
            needs_passphrase: false,
        }
    }

    fn error(check: &'static str, env: Option<&str>, path: PathBuf) -> Self {
        Self::new(check, Severity::Error, env, path)
    }

    fn warning(check: &'static str, env: Option<&str>, path: PathBuf) -> Self {
        Self::new(check, Severity::Warning, env, path)
    }

    fn says(mut self, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        self.problem = problem.into();
        self.fix = fix.into();
        self
    }

    fn saw(mut self, expected: impl Into<String>, found: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self.found = Some(found.into());
        self
    }

    fn repairable(mut self) -> Self {
        self.repairable = true;
        self
    }

    fn signing(mut self) -> Self {
        self.needs_passphrase = true;
        self
    }

    fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)?;
        if let (Some(e), Some(x)) = (&self.expected, &self.found) {
            write!(f, " (expected {e}, found {x})")?;
        }
        write!(f, "; {}", self.fix)
    }
}

/// What `--repair` did.
#[derive(Clone, Debug, Serialize)]
pub struct Repaired {
    pub env: Option<String>,
    pub path: PathBuf,
    pub action: String,
}

/// What `doctor` reports.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub workspace: PathBuf,
    /// The environments checked.
    pub envs: Vec<String>,
    pub repair: bool,
    /// No error remains (warnings may).
    pub healthy: bool,
    pub errors: usize,
    pub warnings: usize,
    /// How many current certificates were checked against their CA.
    pub leaves_checked: usize,
    /// What `--repair` fixed (empty without it).
    pub repaired: Vec<Repaired>,
    /// What remains wrong, errors first.
    pub problems: Vec<Problem>,
}

/// What to check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Only this environment (and only its folder of the file tree).
    pub env: Option<&'a str>,
    /// Fix what needs no passphrase.
    pub repair: bool,
}

// ---------------------------------------------------------------------------------------
// the CA record (ca.json)

fn sha256_hex(der: &[u8]) -> String {
    fingerprint::hex(&fingerprint::sha256(der))
}

fn new_record(ca: &CaLoc, cert_der: &[u8], by: &str, crl_number: u64) -> Result<CaRecord> {
    let env = ca.env.as_str();
    Ok(CaRecord {
        format: FORMAT,
        env: env.to_string(),
        spki_sha256: integrity::spki_sha256(cert_der)?,
        cert_sha256: sha256_hex(cert_der),
        recorded_at: crate::pki::cert::whole_seconds(OffsetDateTime::now_utc()),
        recorded_by: by.to_string(),
        crl_number,
    })
}

/// Writes `env`'s record of its CA certificate (`by`: "ca-init", "signer", "doctor").
pub fn record_ca(ws: &Workspace, ca: &CaLoc, cert_der: &[u8], by: &str, crl: u64) -> Result<()> {
    Ok(ws.save_ca_record(ca, &new_record(ca, cert_der, by, crl)?)?)
}

/// After the CA key was loaded and matched `cert_der`: records the CA when the
/// workspace predates ca.json, or confirms a record `doctor --repair` took on trust.
pub fn record_on_unlock(ws: &Workspace, ca: &CaLoc, cert_der: &[u8]) -> Result<()> {
    match ws.load_ca_record(ca)? {
        Some(mut r) if r.recorded_by == "doctor" => {
            if r.spki_sha256 == integrity::spki_sha256(cert_der)? {
                r.recorded_by = "signer".into();
                ws.save_ca_record(ca, &r)?;
            }
            Ok(())
        }
        Some(_) => Ok(()),
        None => {
            let state = ws.load_ca_state(ca).unwrap_or_default();
            let n = state.crl_number.max(disk_crl_number(ws, ca).unwrap_or(0));
            record_ca(ws, ca, cert_der, "signer", n)
        }
    }
}

/// What is wrong with `env`'s CA certificate `cert_der` against its record, if anything.
fn ca_record_problem(ws: &Workspace, ca: &CaLoc, cert_der: &[u8]) -> Option<Problem> {
    let env = ca.env.as_str();
    let rec_path = ws.ca_record_path(ca);
    let rec = match ws.load_ca_record(ca) {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Some(Problem::warning("ca-record", Some(env), rec_path).says(
                "not yet recorded: the public-key hash of the CA certificate is kept from the first run that loads the CA key",
                format!("`mtlsctl doctor --repair` records it now; any command that signs with this CA (`mtlsctl crl --env {env}`) records it too"),
            ).repairable());
        }
        Err(e) => {
            return Some(Problem::error("ca-record", Some(env), rec_path).says(
                format!("cannot be read ({e})"),
                "restore ca.json from backup, or let `mtlsctl doctor --repair` record the CA certificate again (it does so only when every current certificate and the CRL verify with it)",
            ).repairable());
        }
    };
    let cert_path = ws.ca_cert(ca);
    let spki = match integrity::spki_sha256(cert_der) {
        Ok(s) => s,
        Err(e) => {
            return Some(Problem::error("ca-record", Some(env), cert_path).says(
                format!("the CA certificate cannot be read ({e})"),
                "restore ca.crt from backup, then run `mtlsctl doctor`",
            ));
        }
    };
    if spki != rec.spki_sha256 {
        let subject = inspect::cert_info(cert_der)
            .map(|i| i.subject)
            .unwrap_or_default();
        return Some(Problem::error("ca-record", Some(env), cert_path).says(
            format!("the CA certificate does not carry the key of the {env} CA recorded in ca.json: it was replaced"),
            format!("restore {}/ca.crt (and crl.pem) from backup, then run `mtlsctl doctor`; until then nothing is issued, signed, served or exported with it", ca.rel().display()),
        ).saw(
            format!("public key SHA-256 {}", rec.spki_sha256),
            format!("public key SHA-256 {spki} of {subject}"),
        ));
    }
    if sha256_hex(cert_der) != rec.cert_sha256 {
        return Some(Problem::warning("ca-record", Some(env), cert_path).says(
            "the CA certificate changed since it was recorded, keeping the recorded key (a re-issued CA certificate)",
            "if you re-issued it, `mtlsctl doctor --repair` records the new certificate; otherwise restore ca.crt from backup",
        ).saw(
            format!("certificate SHA-256 {}", rec.cert_sha256),
            format!("certificate SHA-256 {}", sha256_hex(cert_der)),
        ).repairable());
    }
    None
}

/// Refuses a CA certificate whose public key is not the one recorded for `env` (or
/// whose record cannot be read). [`super::ca::open`] calls it, so every command that
/// uses an environment's CA refuses a substituted ca.crt. Not yet recorded is no error.
pub fn check_ca_cert(ws: &Workspace, ca: &CaLoc, cert_der: &[u8]) -> Result<()> {
    match ca_record_problem(ws, ca, cert_der) {
        Some(p) if p.is_error() => Err(OpError::Integrity(Box::new(p))),
        _ => Ok(()),
    }
}

/// The error about `env`'s CA certificate, as a line for a warning, when there is one
/// (`ca show`, `list`, `expiry`).
pub fn ca_warning(ws: &Workspace, ca: &CaLoc) -> Option<String> {
    let der = ca_der(ws, ca)?;
    ca_record_problem(ws, ca, &der)
        .filter(Problem::is_error)
        .map(|p| p.to_string())
}

/// [`ca_warning`] for every CA of `env`, or of every environment of the workspace.
pub fn ca_warnings(ws: &Workspace, profiles: &Profiles, env: Option<&str>) -> Vec<String> {
    let envs = env.map_or_else(|| profiles.env_names(), |e| vec![e.to_string()]);
    let mut out = Vec::new();
    for e in &envs {
        for base in super::ca::set_bases(ws, e) {
            match super::ca::read_set_unchecked(ws, &base) {
                Ok(set) => out.extend(
                    set.cas
                        .iter()
                        .filter(|c| c.entry.role != CaRole::Cross)
                        .filter_map(|c| ca_warning(ws, &c.loc)),
                ),
                Err(err) => out.push(err.to_string()),
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// CRL numbers

/// The CRL on disk: its DER and what it says, if it can be read.
pub(crate) fn disk_crl(ws: &Workspace, ca: &CaLoc) -> Option<(Vec<u8>, CrlInfo)> {
    let data = ws.read(&ws.crl(ca)).ok()?;
    let block = inspect::blocks(&data)
        .ok()?
        .into_iter()
        .find(|b| b.label == "X509 CRL" || b.label == "DER")?;
    let info = inspect::crl_info(&block.der).ok()?;
    Some((block.der, info))
}

fn number_of(info: &CrlInfo) -> Option<u64> {
    u64::from_str_radix(info.crl_number.as_deref()?, 16).ok()
}

fn disk_crl_number(ws: &Workspace, ca: &CaLoc) -> Option<u64> {
    disk_crl(ws, ca).and_then(|(_, i)| number_of(&i))
}

/// The highest CRL number recorded as signed: the larger of state.json's and ca.json's.
pub fn highest_crl_number(ws: &Workspace, ca: &CaLoc) -> u64 {
    let env = ca.env.as_str();
    let state = ws.load_ca_state(ca).map(|s| s.crl_number).unwrap_or(0);
    let record = ws
        .load_ca_record(env)
        .ok()
        .flatten()
        .map_or(0, |r| r.crl_number);
    state.max(record)
}

/// The number a new CRL of `env` must exceed: the largest of `state`'s, ca.json's and
/// the CRL on disk's, so that losing any one of those files never makes it go back.
/// (An unreadable ca.json counts as none: [`super::ca::open`] refuses it before any
/// signing.)
pub fn crl_floor(ws: &Workspace, ca: &CaLoc, state: &CaState) -> u64 {
    let env = ca.env.as_str();
    let record = ws
        .load_ca_record(env)
        .ok()
        .flatten()
        .map_or(0, |r| r.crl_number);
    state
        .crl_number
        .max(record)
        .max(disk_crl_number(ws, ca).unwrap_or(0))
}

/// After signing CRL `number` with the CA certificate `cert_der`: keeps the number in
/// ca.json too (recording the CA there when it was not yet).
pub fn note_crl_number(ws: &Workspace, ca: &CaLoc, cert_der: &[u8], number: u64) -> Result<()> {
    match ws.load_ca_record(ca)? {
        Some(r) if r.crl_number >= number => Ok(()),
        Some(mut r) => {
            r.crl_number = number;
            Ok(ws.save_ca_record(ca, &r)?)
        }
        None => record_ca(ws, ca, cert_der, "signer", number),
    }
}

/// Why `env`'s CRL on disk is stale by its number (an older CRL put back, or a run
/// interrupted before writing the one it numbered), if it is.
pub fn stale_crl(ws: &Workspace, ca: &CaLoc) -> Option<String> {
    stale_crl_error(ws, ca).map(|e| e.to_string())
}

/// [`stale_crl`], as the error that refuses the CRL.
fn stale_crl_error(ws: &Workspace, ca: &CaLoc) -> Option<OpError> {
    let env = ca.env.as_str();
    let (_, info) = disk_crl(ws, ca)?;
    let number = number_of(&info)?;
    let highest = highest_crl_number(ws, ca);
    (number < highest).then(|| OpError::StaleCrl {
        path: ws.crl(ca),
        number,
        highest,
        env: env.to_string(),
    })
}

/// Refuses `env`'s CRL when it is stale by its number (`serve`, and `export` before it
/// hands the CRL to a gateway).
pub fn check_crl(ws: &Workspace, ca: &CaLoc) -> Result<()> {
    match stale_crl_error(ws, ca) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The checks a hand-off depends on, for `export` to call once it has found the
/// tenant's current leaf: the leaf chains to the environment's CA, and the CRL is not
/// older than the last one signed. (The CA certificate itself is checked by
/// [`super::ca::open`].)
pub fn check_handoff(ws: &Workspace, ca: &EnvCa, leaf: &LeafRecord) -> Result<()> {
    let issuer = issuer_der(ws, leaf, &ca.set);
    if let Some(p) = issuer.and_then(|i| leaf_chain_problem(ws, leaf, &ca.env, &i)) {
        return Err(OpError::Integrity(Box::new(p)));
    }
    for l in &ca.trust_locs {
        check_crl(ws, l)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// revocations

/// Our name of a reason as x509-parser prints it (`KeyCompromise`).
fn reason_name(shown: Option<&str>) -> &'static str {
    match shown {
        Some("KeyCompromise") => "key-compromise",
        Some("CACompromise") => "ca-compromise",
        Some("AffiliationChanged") => "affiliation-changed",
        Some("Superseded") => "superseded",
        Some("CessationOfOperation") => "cessation-of-operation",
        _ => "unspecified",
    }
}

/// A leaf's revocation as its meta.json records it.
fn meta_revocation(rec: &LeafRecord) -> Option<Revocation> {
    (rec.meta.status == Status::Revoked).then(|| {
        let reason = rec
            .meta
            .revocation_reason
            .clone()
            .filter(|r| crate::pki::crl::parse_reason(r).is_ok())
            .unwrap_or_else(|| "unspecified".into());
        Revocation {
            serial: rec.meta.serial.clone(),
            revoked_at: rec.meta.revoked_at.unwrap_or(rec.meta.issued_at),
            reason,
            tenant: Some(rec.meta.tenant.clone()),
            not_after: Some(rec.meta.not_after),
        }
    })
}

/// Adds to `state` every revocation it lacks that a leaf's meta.json records, or that
/// the CRL on disk lists when the trusted CA certificate `ca_der` signed it. Returns the
/// serials added. Run before signing a CRL, so that a lost or older state.json never
/// makes a CRL forget one.
pub fn restore_revocations(
    ws: &Workspace,
    ca: &CaLoc,
    ca_der: Option<&[u8]>,
    state: &mut CaState,
) -> Result<Vec<String>> {
    let env = ca.env.as_str();
    let leaves = ws.leaves(&Filter {
        env: Some(env),
        tenant: ca.tenant.as_deref(),
        ..Filter::default()
    })?;
    let mut found: Vec<Revocation> = leaves
        .iter()
        .filter(|l| &super::ca::issuer_of(&l.meta) == ca)
        .filter_map(meta_revocation)
        .collect();
    if let (Some(ca), Some((der, info))) = (ca_der, disk_crl(ws, ca))
        && integrity::crl_signed_by(&der, ca).unwrap_or(false)
    {
        found.extend(info.revoked.iter().map(|r| Revocation {
            serial: r.serial.clone(),
            revoked_at: r.revoked_at,
            reason: reason_name(r.reason.as_deref()).to_string(),
            tenant: None,
            not_after: None,
        }));
    }
    let mut added = Vec::new();
    // an index, so that a CRL of 10,000 entries is not compared with each record
    let mut at: std::collections::HashMap<String, usize> = state
        .revocations
        .iter()
        .enumerate()
        .map(|(i, r)| (r.serial.clone(), i))
        .collect();
    for r in found {
        match at.get(&r.serial) {
            // a record from before notAfter was kept learns it from the meta.json
            Some(&i) => {
                if state.revocations[i].not_after.is_none() {
                    state.revocations[i].not_after = r.not_after;
                }
            }
            None => {
                added.push(r.serial.clone());
                at.insert(r.serial.clone(), state.revocations.len());
                state.revocations.push(r);
            }
        }
    }
    Ok(added)
}

/// state.json against the meta.json files, and the highest CRL numbers of state.json
/// and ca.json against each other.
fn state_problems(ws: &Workspace, ca: &CaLoc, leaves: &[LeafRecord]) -> (Vec<Problem>, CaState) {
    let env = ca.env.as_str();
    let path = ws.ca_state(ca);
    let repair = "`mtlsctl doctor --repair` rebuilds it from the certificates' meta.json files, the CRL and ca.json";
    let mut out = Vec::new();
    if !path.exists() {
        out.push(
            Problem::error("revocations", Some(env), path.clone())
                .says(
                    "is missing: the CA's revocations and CRL number are not on disk",
                    repair,
                )
                .repairable(),
        );
    }
    let state = match ws.load_ca_state(ca) {
        Ok(s) => s,
        Err(e) => {
            out.push(Problem::error("revocations", Some(env), path).says(
                format!("cannot be read ({e})"),
                "restore it from backup, or move it aside and run `mtlsctl doctor --repair`",
            ));
            return (out, CaState::default());
        }
    };
    for rec in leaves.iter().filter(|r| r.meta.status == Status::Revoked) {
        if !state
            .revocations
            .iter()
            .any(|s| s.serial == rec.meta.serial)
        {
            out.push(
                Problem::error("revocations", Some(env), path.clone())
                    .says(
                        format!(
                            "lacks the revocation of {} that {} records",
                            rec.meta.serial,
                            rec.dir.join("meta.json").display()
                        ),
                        repair,
                    )
                    .saw(format!("serial {} listed", rec.meta.serial), "not listed")
                    .repairable(),
            );
        }
    }
    if let Ok(Some(r)) = ws.load_ca_record(ca)
        && path.exists()
        && r.crl_number != state.crl_number
    {
        out.push(Problem::warning("crl-number", Some(env), path)
            .says("state.json and ca.json keep different highest CRL numbers (one of them was restored from an older copy)", "`mtlsctl doctor --repair` raises both to the higher; the next CRL is numbered above it either way")
            .saw(format!("{} in both", r.crl_number.max(state.crl_number)), format!("state.json {}, ca.json {}", state.crl_number, r.crl_number))
            .repairable());
    }
    (out, state)
}

/// The CRL on disk against the CA certificate, the recorded revocations and the highest
/// number signed.
fn crl_problems(
    ws: &Workspace,
    ca: &CaLoc,
    ca_der: &[u8],
    revoked: &BTreeSet<String>,
) -> Vec<Problem> {
    let env = ca.env.as_str();
    let path = ws.crl(ca);
    let resign = format!("re-sign it with `mtlsctl crl --env {env}`");
    let Some((der, info)) = disk_crl(ws, ca) else {
        let what = if path.exists() {
            "cannot be read as a CRL"
        } else {
            "is missing"
        };
        return vec![
            Problem::error("crl", Some(env), path)
                .says(what, resign)
                .signing(),
        ];
    };
    if !integrity::crl_signed_by(&der, ca_der).unwrap_or(false) {
        return vec![
            Problem::error("crl-issuer", Some(env), path)
                .says(
                    "is not signed by the environment's CA certificate",
                    format!("restore it from backup, or {resign}"),
                )
                .saw(
                    format!(
                        "issuer {}",
                        inspect::cert_info(ca_der)
                            .map(|i| i.subject)
                            .unwrap_or_default()
                    ),
                    format!("issuer {}", info.issuer),
                )
                .signing(),
        ];
    }
    let mut out = Vec::new();
    let listed: BTreeSet<&str> = info.revoked.iter().map(|r| r.serial.as_str()).collect();
    for s in revoked.iter().filter(|s| !listed.contains(s.as_str())) {
        out.push(
            Problem::error("crl", Some(env), path.clone())
                .says(
                    format!("does not list the revoked serial {s}: gateways still accept it"),
                    resign.clone(),
                )
                .saw(format!("serial {s} listed"), "not listed")
                .signing(),
        );
    }
    let high = highest_crl_number(ws, ca);
    if let Some(n) = number_of(&info)
        && n < high
    {
        out.push(
            Problem::error("crl", Some(env), path)
                .says(
                    "is stale: an older CRL than the last one signed was put back",
                    resign,
                )
                .saw(
                    format!("CRL number {high} or above"),
                    format!("CRL number {n}"),
                )
                .signing(),
        );
    }
    out
}

// ---------------------------------------------------------------------------------------
// leaves

/// The certificate that should have signed `leaf`: the CA of `set` its meta.json names
/// (the env's first root for older leaves), or for a certificate imported from an
/// external CA the first certificate of its own chain.
fn issuer_der(ws: &Workspace, leaf: &LeafRecord, set: &CaSet) -> Option<Vec<u8>> {
    if leaf.meta.origin == "import" {
        let pem = ws.read(&leaf.chain_path()).ok()?;
        return inspect::certificates(&pem).ok()?.into_iter().next();
    }
    let loc = super::ca::issuer_of(&leaf.meta);
    set.by_loc(&loc).map(|v| v.der.clone())
}

/// What is wrong with `leaf` against the certificate `ca_der` that should have signed it.
fn leaf_chain_problem(
    ws: &Workspace,
    leaf: &LeafRecord,
    env: &str,
    ca_der: &[u8],
) -> Option<Problem> {
    let path = leaf.cert_path();
    let der = match ws
        .read(&path)
        .map_err(|e| e.to_string())
        .and_then(|p| inspect::certificates(&p).map_err(|e| e.to_string()))
    {
        Ok(d) => d.into_iter().next()?,
        Err(e) => {
            return Some(Problem::error("unreadable", Some(env), path).says(
                format!("cannot be read ({e})"),
                "restore the certificate's folder from backup",
            ));
        }
    };
    if integrity::issued_by(&der, ca_der).unwrap_or(false) {
        return None;
    }
    let issuer = inspect::cert_info(&der)
        .map(|i| i.issuer)
        .unwrap_or_default();
    let ca = inspect::cert_info(ca_der)
        .map(|i| i.subject)
        .unwrap_or_default();
    let spki = integrity::spki_sha256(ca_der).unwrap_or_default();
    let found = if issuer == ca {
        format!("issuer {issuer} by name, but a signature that key does not verify")
    } else {
        format!("issuer {issuer}")
    };
    Some(Problem::error("leaf-chain", Some(env), path)
        .says(
            "is not signed by the CA certificate it names as its issuer",
            format!("if ca.crt was replaced, restore it from backup; otherwise this certificate is not the {env} CA's: reissue it with `mtlsctl issue --tenant {} --env {env} --force`", leaf.meta.tenant),
        )
        .saw(format!("a signature by {ca} (public key SHA-256 {spki})"), found))
}

/// Every current leaf of `env` against the certificate that should have signed it.
fn leaf_problems(
    ws: &Workspace,
    leaves: &[LeafRecord],
    env: &str,
    sets: &[CaSet],
) -> (Vec<Problem>, usize) {
    let current = super::expiry::current_leaves(leaves.to_vec());
    let mut out = Vec::new();
    let mut checked = 0;
    for leaf in &current {
        let loc = super::ca::issuer_of(&leaf.meta);
        let set = sets.iter().find(|s| s.base == loc.set());
        let issuer = match set {
            Some(s) => issuer_der(ws, leaf, s),
            None if leaf.meta.origin == "import" => {
                let pem = ws.read(&leaf.chain_path()).ok();
                pem.and_then(|p| inspect::certificates(&p).ok())
                    .and_then(|c| c.into_iter().next())
            }
            None => None,
        };
        let Some(issuer) = issuer else {
            if leaf.meta.origin != "import" && set.is_some() {
                out.push(Problem::error("leaf-chain", Some(env), leaf.dir.join("meta.json")).says(
                    format!("names the CA {loc} as its issuer, which the environment's CAs do not include"),
                    "restore meta.json (or the CA folder) from backup",
                ));
            }
            continue;
        };
        checked += 1;
        out.extend(leaf_chain_problem(ws, leaf, env, &issuer));
    }
    (out, checked)
}

// ---------------------------------------------------------------------------------------
// running the checks

/// The CA certificate in the folder `ca` as DER, if it has one that can be read.
fn ca_der(ws: &Workspace, ca: &CaLoc) -> Option<Vec<u8>> {
    let pem = ws.read(&ws.ca_cert(ca)).ok()?;
    inspect::certificates(&pem).ok()?.into_iter().next()
}

/// The readable leaves of `env`, and a problem for each folder that could not be read
/// (a corrupt or misplaced meta.json, a folder that is no tenant's). A symbolic link is
/// left to the file-tree check, which says where it leads.
fn env_leaves(ws: &Workspace, env: &str) -> (Vec<LeafRecord>, Vec<Problem>) {
    let inv = ws.inventory(&Filter {
        env: Some(env),
        ..Filter::default()
    });
    let problems = inv
        .problems
        .iter()
        .filter(|p| !matches!(p.error, WsError::Symlink(_)))
        .map(|p| {
            Problem::error("unreadable", Some(env), p.path.clone()).says(
                p.to_string(),
                "restore the folder from backup, or move it out of pki/ if it is not mtlsctl's; the other certificates are still checked",
            )
        })
        .collect();
    (inv.leaves, problems)
}

/// A set's hierarchy against its certificates: each the one recorded, each signed by
/// the issuer it names.
fn hierarchy_problems(ws: &Workspace, set: &CaSet) -> Vec<Problem> {
    let env = set.base.env.as_str();
    let mut out = Vec::new();
    for c in &set.cas {
        if set.recorded && sha256_hex(&c.der) != c.entry.sha256 {
            out.push(
                Problem::error("ca-hierarchy", Some(env), ws.ca_cert(&c.loc))
                    .says(
                        "is not the certificate hierarchy.json records for this CA: it was replaced",
                        "restore it from backup, then run `mtlsctl doctor`",
                    )
                    .saw(
                        format!("certificate SHA-256 {}", c.entry.sha256),
                        format!("certificate SHA-256 {}", sha256_hex(&c.der)),
                    ),
            );
        }
        if let Some(p) = c.entry.parent.as_deref().and_then(|p| set.view(p))
            && !integrity::issued_by(&c.der, &p.der).unwrap_or(false)
        {
            out.push(
                Problem::error("ca-hierarchy", Some(env), ws.ca_cert(&c.loc)).says(
                    format!("is not signed by its issuer {}", p.loc),
                    "restore the CA folder from backup",
                ),
            );
        }
    }
    out
}

/// Every check of one environment; returns the problems and how many leaves were checked.
fn check_env(ws: &Workspace, env: &str) -> (Vec<Problem>, usize) {
    let (leaves, mut out) = env_leaves(ws, env);
    let mut sets = Vec::new();
    for base in super::ca::set_bases(ws, env) {
        match super::ca::read_set_unchecked(ws, &base) {
            Ok(s) => sets.push(s),
            Err(e) => out.push(
                Problem::error("ca-hierarchy", Some(env), ws.hierarchy_path(&base))
                    .says(e.to_string(), "restore the CA folder from backup"),
            ),
        }
    }
    let (leaf_probs, checked) = leaf_problems(ws, &leaves, env, &sets);
    out.extend(leaf_probs);
    if !super::ca::exists(ws, env)
        && leaves
            .iter()
            .any(|l| l.meta.origin != "import" && l.meta.ca.is_none())
    {
        out.push(Problem::error("ca-record", Some(env), ws.ca_cert(env)).says(
            "is missing (or unreadable) while certificates it issued remain",
            format!("restore pki/{env}/ca/ca.crt from backup; without it nothing of this environment can be checked or exported"),
        ));
    }
    for set in &sets {
        out.extend(hierarchy_problems(ws, set));
        for c in set.cas.iter().filter(|c| c.entry.role != CaRole::Cross) {
            let mine: Vec<LeafRecord> = leaves
                .iter()
                .filter(|l| super::ca::issuer_of(&l.meta) == c.loc)
                .cloned()
                .collect();
            out.extend(ca_record_problem(ws, &c.loc, &c.der));
            let (state_probs, state) = state_problems(ws, &c.loc, &mine);
            out.extend(state_probs);
            let mut all = state.revocations.clone();
            all.extend(mine.iter().filter_map(meta_revocation));
            // an expired certificate's entry leaves the CRL once a CRL signed after its
            // notAfter listed it (RFC 5280 5.1.2.6): not a missing revocation
            let gone = super::lifecycle::expired_out(ws.read_crl(&c.loc).as_ref(), &all);
            let revoked: BTreeSet<String> = all
                .iter()
                .map(|r| r.serial.clone())
                .filter(|s| !gone.contains(s.as_str()))
                .collect();
            out.extend(crl_problems(ws, &c.loc, &c.der, &revoked));
        }
    }
    (out, checked)
}

/// Every check, for the environments `envs` (and the file tree they live in).
fn check_all(
    ws: &Workspace,
    profiles: &Profiles,
    envs: &[String],
    only: Option<&str>,
) -> (Vec<Problem>, usize) {
    let mut out = Vec::new();
    let mut checked = 0;
    for env in envs {
        let (p, n) = check_env(ws, env);
        out.extend(p);
        checked += n;
    }
    out.extend(tree::tree_problems(ws, profiles, only));
    out.sort_by(|a, b| {
        (!a.is_error(), &a.env, a.check, &a.path).cmp(&(!b.is_error(), &b.env, b.check, &b.path))
    });
    (out, checked)
}

/// Checks the workspace (one environment with `opts.env`); with `opts.repair`, fixes
/// what needs no passphrase first and reports what remains. The caller holds the lock.
pub fn run(ws: &Workspace, profiles: &Profiles, opts: &Options<'_>) -> Result<DoctorReport> {
    let envs = match opts.env {
        Some(e) => {
            profiles.check_env(e)?;
            vec![e.to_string()]
        }
        None => profiles.env_names(),
    };
    let (mut problems, mut checked) = check_all(ws, profiles, &envs, opts.env);
    let mut repaired = Vec::new();
    if opts.repair && problems.iter().any(|p| p.repairable) {
        // a repair that could not be recorded is not made
        ws.audit_preflight()?;
        for env in &envs {
            let mut done = Vec::new();
            for base in super::ca::set_bases(ws, env) {
                let Ok(set) = super::ca::read_set_unchecked(ws, &base) else {
                    continue;
                };
                for c in set.cas.iter().filter(|c| c.entry.role != CaRole::Cross) {
                    done.extend(repair_ca(ws, &c.loc, &problems)?);
                }
            }
            audit_repairs(ws, env, &done)?;
            repaired.extend(done);
        }
        (problems, checked) = check_all(ws, profiles, &envs, opts.env);
    }
    let errors = problems.iter().filter(|p| p.is_error()).count();
    Ok(DoctorReport {
        workspace: ws.root().to_path_buf(),
        envs,
        repair: opts.repair,
        healthy: errors == 0,
        errors,
        warnings: problems.len() - errors,
        leaves_checked: checked,
        repaired,
        problems,
    })
}

// ---------------------------------------------------------------------------------------
// repair

/// Fixes what needs no passphrase for the CA `ca`: records a missing (or unreadable)
/// ca.json when nothing says the CA certificate is not the environment's own, records a
/// re-issued CA certificate of the recorded key, rebuilds state.json's revocations and
/// raises the highest CRL number in both files to the higher.
fn repair_ca(ws: &Workspace, ca: &CaLoc, problems: &[Problem]) -> Result<Vec<Repaired>> {
    let env = ca.env.as_str();
    let Some(der) = ca_der(ws, ca) else {
        return Ok(Vec::new());
    };
    let mut done = Vec::new();
    // a CA certificate that does not sign the environment's certificates or CRL is not
    // recorded on trust
    let doubtful = problems.iter().any(|p| {
        p.env.as_deref() == Some(env)
            && (p.check == "leaf-chain" || p.check == "crl-issuer" || p.check == "ca-hierarchy")
    });
    let rec_path = ws.ca_record_path(ca);
    let spki = integrity::spki_sha256(&der)?;
    let trusted = match ws.load_ca_record(ca) {
        Ok(Some(mut r)) if r.spki_sha256 == spki => {
            if r.cert_sha256 != sha256_hex(&der) {
                r.cert_sha256 = sha256_hex(&der);
                ws.save_ca_record(ca, &r)?;
                done.push(repaired(
                    env,
                    &rec_path,
                    "recorded the re-issued CA certificate",
                ));
            }
            true
        }
        // a substituted CA certificate: nothing of it is trusted, nothing is repaired
        Ok(Some(_)) => return Ok(done),
        Ok(None) | Err(_) if !doubtful => {
            let _ = std::fs::remove_file(&rec_path);
            let state = ws.load_ca_state(ca).unwrap_or_default();
            record_ca(ws, ca, &der, "doctor", crl_floor(ws, ca, &state))?;
            done.push(repaired(
                env,
                &rec_path,
                "recorded the CA certificate's public-key hash",
            ));
            true
        }
        Ok(None) | Err(_) => false,
    };
    done.extend(repair_state(ws, ca, trusted.then_some(der.as_slice()))?);
    Ok(done)
}

/// One audit line for what `--repair` changed in `env`, if anything.
fn audit_repairs(ws: &Workspace, env: &str, done: &[Repaired]) -> Result<()> {
    if done.is_empty() {
        return Ok(());
    }
    let mut ev = crate::workspace::audit::Event::new("doctor-repair");
    ev.env = Some(env);
    let actions: Vec<String> = done
        .iter()
        .map(|r| format!("{}: {}", name_in_ca_dir(&r.path), r.action))
        .collect();
    ev.detail = Some(actions.join("; "));
    Ok(ws.audit(&ev)?)
}

fn name_in_ca_dir(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn repaired(env: &str, path: &Path, action: impl Into<String>) -> Repaired {
    Repaired {
        env: Some(env.to_string()),
        path: path.to_path_buf(),
        action: action.into(),
    }
}

/// Rebuilds state.json's revocations from the meta.json files and, when the CA
/// certificate `der` is trusted, the CRL it signed; and makes state.json and ca.json
/// keep the same highest CRL number.
fn repair_state(ws: &Workspace, ca: &CaLoc, der: Option<&[u8]>) -> Result<Vec<Repaired>> {
    let env = ca.env.as_str();
    let path = ws.ca_state(ca);
    let Ok(mut state) = ws.load_ca_state(ca) else {
        return Ok(Vec::new()); // unreadable: the operator decides
    };
    let existed = path.exists();
    let added = restore_revocations(ws, ca, der, &mut state)?;
    let floor = crl_floor(ws, ca, &state);
    let mut done = Vec::new();
    if !existed || !added.is_empty() || state.crl_number != floor {
        state.crl_number = floor;
        ws.save_ca_state(ca, &state)?;
        let what = if existed { "updated" } else { "rebuilt" };
        done.push(repaired(env, &path, format!(
            "{what}: {} revocation(s) restored from meta.json files and the CRL{}, highest CRL number {floor}",
            added.len(),
            if added.is_empty() { String::new() } else { format!(" ({})", added.join(", ")) }
        )));
    }
    if let Ok(Some(mut r)) = ws.load_ca_record(ca)
        && r.crl_number < floor
    {
        r.crl_number = floor;
        ws.save_ca_record(ca, &r)?;
        done.push(repaired(
            env,
            &ws.ca_record_path(ca),
            format!("highest CRL number raised to {floor}"),
        ));
    }
    Ok(done)
}
