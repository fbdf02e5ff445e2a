//! `gateway-test`: an acceptance suite for a customer's mTLS gateway. It presents a set
//! of client certificates, one per case, to a live endpoint and judges each answer: the
//! tenant's current certificate must be accepted, every other one refused.
//!
//! The certificates our CAs sign for it (expired, not yet valid, revoked, serverAuth
//! only, another environment's) are test fixtures: issued through [`issue::issue`] with
//! `fixture: true`, so each is journaled, audited and listed, never becomes current, and
//! is revoked or left to expire; a later run reuses those still fit for their case. The
//! certificates no CA of ours signs (a self-signed impostor, a leaf from an untrusted CA
//! that borrows our CA's name) live in memory only. `net::probe` makes each exchange.

use std::path::Path;
use std::time::Duration;

use openssl::x509::X509;
use serde::Serialize;
use time::OffsetDateTime;

use super::ca::CaSigner;
use super::issue::{self, IssueReport};
use super::{OpError, Result};
use crate::net::probe::{self as netprobe, Exchange, Identity};
use crate::pki::cert::{self, CaRequest, Signer};
use crate::pki::keys::{KeyAlgorithm, PrivateKey};
use crate::pki::{Kind, PkiError, text};
use crate::profile::{LeafFlags, Profiles};
use crate::workspace::Workspace;
use crate::workspace::fsutil::{self, PUBLIC};
use crate::workspace::inventory::{Filter, LeafRecord, Status};

/// The origin recorded in meta.json and the audit log for the fixtures of a run.
pub const ORIGIN: &str = "gateway-test";

/// How long the fixtures that are valid now live: long enough to install a CRL on the
/// gateway between `--prepare` and the run, short enough to be gone by tomorrow.
pub const FIXTURE_LIFE: time::Duration = time::Duration::days(1);
/// A not-yet-valid fixture starts this far ahead, so that later runs can reuse it.
pub const NOT_YET_VALID_IN: time::Duration = time::Duration::days(1);
/// A fixture is reused only with at least this much left of the state its case needs.
const REUSE_MARGIN: time::Duration = time::Duration::minutes(10);

/// One case of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Case {
    Current,
    NoCertificate,
    Expired,
    NotYetValid,
    Revoked,
    OtherEnvironment,
    OtherTenant,
    Impostor,
    UntrustedCa,
    ServerAuthOnly,
}

impl Case {
    pub const ALL: [Case; 10] = [
        Case::Current,
        Case::NoCertificate,
        Case::Expired,
        Case::NotYetValid,
        Case::Revoked,
        Case::OtherEnvironment,
        Case::OtherTenant,
        Case::Impostor,
        Case::UntrustedCa,
        Case::ServerAuthOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Case::Current => "current",
            Case::NoCertificate => "no-certificate",
            Case::Expired => "expired",
            Case::NotYetValid => "not-yet-valid",
            Case::Revoked => "revoked",
            Case::OtherEnvironment => "other-environment",
            Case::OtherTenant => "other-tenant",
            Case::Impostor => "impostor",
            Case::UntrustedCa => "untrusted-ca",
            Case::ServerAuthOnly => "server-auth-only",
        }
    }

    /// What the certificate of this case is, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Case::Current => "the tenant's current certificate",
            Case::NoCertificate => "no client certificate at all",
            Case::Expired => "a certificate of our CA that expired an hour ago",
            Case::NotYetValid => "a certificate of our CA valid only from tomorrow",
            Case::Revoked => "a certificate of our CA that the CRL lists as revoked",
            Case::OtherEnvironment => "a certificate of another environment's CA",
            Case::OtherTenant => "another tenant's certificate",
            Case::Impostor => "a self-signed certificate with the tenant's subject and SANs",
            Case::UntrustedCa => "a certificate from a foreign CA whose name equals our CA's",
            Case::ServerAuthOnly => "a certificate of our CA for servers only (EKU serverAuth)",
        }
    }

    pub fn expected(self) -> Outcome {
        match self {
            Case::Current => Outcome::Accepted,
            _ => Outcome::Refused,
        }
    }

    /// Whether the case needs a certificate our CA of `env` signs.
    pub fn needs_signer(self) -> bool {
        matches!(
            self,
            Case::Expired | Case::NotYetValid | Case::Revoked | Case::ServerAuthOnly
        )
    }
}

impl std::str::FromStr for Case {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Case, String> {
        Case::ALL
            .into_iter()
            .find(|c| c.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Case::ALL.iter().map(|c| c.name()).collect();
                format!("unknown case '{s}': the cases are {}", names.join(", "))
            })
    }
}

/// What the gateway did with a case's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It answered the request at the HTTP level (any status but a certificate refusal).
    Accepted,
    /// It failed the handshake, closed the connection, or answered with a refusal of the
    /// certificate (400 "SSL certificate error", 403, 495, 496).
    Refused,
    /// It could not be reached: nothing to judge.
    Unreachable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Refused => "refused",
            Outcome::Unreachable => "unreachable",
        }
    }
}

/// The verdict on one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The case does not apply to this workspace (the reason says why).
    NotApplicable,
    /// The case applies but could not be run (the reason says what to give).
    Skipped,
    /// The gateway could not be reached for this case.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotApplicable => "n/a",
            Verdict::Skipped => "skipped",
            Verdict::Error => "error",
        }
    }

    /// Whether the case behaved (or had nothing to show).
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Verdict::Pass | Verdict::NotApplicable | Verdict::Skipped
        )
    }
}

/// The result of one case.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub case: Case,
    pub description: &'static str,
    pub expected: Outcome,
    /// What the gateway did; absent when the case did not run.
    pub outcome: Option<Outcome>,
    /// The answer in a few words: the TLS alert, or the HTTP status.
    pub observed: Option<String>,
    pub verdict: Verdict,
    /// The certificate presented (none for no-certificate).
    pub certificate: Option<netprobe::CertBrief>,
    /// Whether that certificate is a workspace fixture, and whether this run made it.
    pub fixture: bool,
    pub fixture_reused: bool,
    /// Why a case was not applicable or skipped.
    pub reason: Option<String>,
    /// For a failure: what it means and what to change, in plain words.
    pub advice: Option<String>,
}

/// The CRL re-signed for the revoked case.
#[derive(Clone, Debug, Serialize)]
pub struct CrlNote {
    pub path: std::path::PathBuf,
    pub crl_number: u64,
    /// The revoked fixture it lists.
    pub serial: String,
    /// Whether this run re-signed it (false: an earlier run did, the fixture is reused).
    pub resigned_now: bool,
}

/// What `gateway-test` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub url: String,
    pub tenant: String,
    pub env: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// True when every case passed, or did not apply.
    pub ok: bool,
    /// Only the fixtures were prepared (`--prepare`): no case was run.
    pub prepared_only: bool,
    pub passed: usize,
    pub failed: usize,
    pub not_applicable: usize,
    pub skipped: usize,
    pub errors: usize,
    pub cases: Vec<CaseResult>,
    /// The CRL the gateway must have installed for the revoked case to mean anything.
    pub crl: Option<CrlNote>,
    /// Things worth knowing that are no case's verdict.
    pub notes: Vec<String>,
}

/// Everything a run needs.
pub struct Request<'a> {
    pub url: &'a str,
    pub tenant: &'a str,
    pub env: &'a str,
    pub sni: Option<&'a str>,
    /// Trust anchors for the gateway's own certificate (None: the system roots).
    pub ca: Option<&'a [X509]>,
    pub headers: &'a [(String, String)],
    pub timeout: Duration,
    pub cases: &'a [Case],
    /// Whether the cases were named (--cases): then a case the environment forbids is an
    /// error, not a skipped case.
    pub cases_named: bool,
}

/// The environment whose CA signs the other-environment case, when there is one: the
/// first other environment with a CA of ours (not external) that allows fixtures.
/// `Err` says why no such environment serves.
pub fn other_env(
    ws: &Workspace,
    profiles: &Profiles,
    env: &str,
) -> std::result::Result<String, String> {
    let mut why = Vec::new();
    for e in profiles.env_names() {
        if e == env {
            continue;
        }
        if !super::ca::exists(ws, &e) {
            why.push(format!("'{e}' has no CA"));
            continue;
        }
        match profiles.resolve_ca(&e) {
            Ok(c) if c.external.value => {
                why.push(format!("'{e}' has an external CA"));
                continue;
            }
            Err(err) => {
                why.push(format!("'{e}': {err}"));
                continue;
            }
            Ok(_) => {}
        }
        match profiles.fixture_policy(&e) {
            Ok(p) if !p.allowed => {
                why.push(format!("'{e}' forbids fixtures ({})", p.because));
                continue;
            }
            Err(err) => {
                why.push(format!("'{e}': {err}"));
                continue;
            }
            Ok(_) => return Ok(e),
        }
    }
    Err(if why.is_empty() {
        "no other environment has a CA".into()
    } else {
        format!("no other environment can sign one ({})", why.join("; "))
    })
}

/// Whether the CA scope of `env` isolates tenants (one CA per tenant and environment).
/// Today every environment has one CA that all its tenants share, so another tenant's
/// certificate is as good as this tenant's at the TLS layer and the case does not apply;
/// when profiles gain `ca.scope: tenant`, this is the one place to say so.
pub fn tenants_isolated(profiles: &Profiles, env: &str) -> bool {
    profiles
        .resolve_ca(env)
        .is_ok_and(|c| c.scope.value == crate::profile::CaScope::Tenant)
}

/// The signers a run may use: the environment's own, and another environment's for the
/// other-environment case (or why there is none).
pub struct Signers<'a> {
    pub own: Option<&'a CaSigner<'a>>,
    /// The passphrase of the environment's CA keys (a revocation loads the key of the
    /// CA that signed the certificate).
    pub passphrase: Option<&'a secrecy::SecretString>,
    pub other: std::result::Result<&'a CaSigner<'a>, String>,
}

/// A case ready to run: what to present, or why it does not run.
pub struct Planned {
    pub case: Case,
    pub identity: Option<Identity>,
    pub fixture: bool,
    pub fixture_reused: bool,
    /// (verdict, reason) for a case that does not run.
    pub not_run: Option<(Verdict, String)>,
}

impl Planned {
    fn with(case: Case, identity: Identity) -> Planned {
        Planned {
            case,
            identity: Some(identity),
            fixture: false,
            fixture_reused: false,
            not_run: None,
        }
    }

    fn not_run(case: Case, verdict: Verdict, reason: impl Into<String>) -> Planned {
        Planned {
            case,
            identity: None,
            fixture: false,
            fixture_reused: false,
            not_run: Some((verdict, reason.into())),
        }
    }
}

/// Makes (or finds again) the certificate of every case in `req.cases`. The caller
/// holds the workspace lock: fixtures are written here, each through the journal and
/// the audit log. Returns the cases in order and the CRL the revoked case relies on.
pub fn prepare(
    ws: &Workspace,
    profiles: &Profiles,
    req: &Request<'_>,
    signers: &Signers<'_>,
    now: OffsetDateTime,
) -> Result<(Vec<Planned>, Option<CrlNote>)> {
    let (tenant, env) = (req.tenant, req.env);
    let fixtures = profiles.fixture_policy(env)?;
    let fixtures_needed = req.cases.iter().any(|c| c.needs_signer());
    if fixtures_needed && !fixtures.allowed && req.cases_named {
        profiles.check_fixtures_allowed(env)?;
    }
    let existing: Vec<LeafRecord> = ws
        .leaves(&Filter {
            tenant: Some(tenant),
            env: Some(env),
            kind: None,
        })?
        .into_iter()
        .filter(|r| r.meta.fixture)
        .collect();
    let mut crl = None;
    let mut out = Vec::new();
    for &case in req.cases {
        let p = match case {
            Case::Current => Planned::with(case, current_identity(ws, tenant, env)?),
            Case::NoCertificate => Planned {
                case,
                identity: None,
                fixture: false,
                fixture_reused: false,
                not_run: None,
            },
            Case::Expired | Case::NotYetValid | Case::ServerAuthOnly | Case::Revoked => {
                if !fixtures.allowed {
                    out.push(Planned::not_run(
                        case,
                        Verdict::Skipped,
                        format!(
                            "the environment forbids test fixtures ({})",
                            fixtures.because
                        ),
                    ));
                    continue;
                }
                let Some(own) = signers.own else {
                    out.push(Planned::not_run(
                        case,
                        Verdict::Skipped,
                        "the environment's CA key was not unlocked",
                    ));
                    continue;
                };
                let (rec, reused) = own_fixture(ws, profiles, req, own, case, &existing, now)?;
                if case == Case::Revoked {
                    crl = Some(revoke_fixture(
                        ws,
                        profiles,
                        own,
                        signers.passphrase,
                        &rec,
                        reused,
                        now,
                    )?);
                }
                fixture_planned(ws, case, &rec, reused)?
            }
            Case::OtherEnvironment => match &signers.other {
                Err(why) => Planned::not_run(case, Verdict::NotApplicable, why.clone()),
                Ok(other) => {
                    let theirs: Vec<LeafRecord> = ws
                        .leaves(&Filter {
                            tenant: Some(tenant),
                            env: Some(&other.ca.env),
                            kind: Some(Kind::Client),
                        })?
                        .into_iter()
                        .filter(|r| r.meta.fixture)
                        .collect();
                    let (rec, reused) = own_fixture(ws, profiles, req, other, case, &theirs, now)?;
                    fixture_planned(ws, case, &rec, reused)?
                }
            },
            Case::OtherTenant => other_tenant(ws, profiles, req)?,
            Case::Impostor => Planned::with(case, impostor(profiles, req, now)?),
            Case::UntrustedCa => Planned::with(case, untrusted_ca(profiles, req, now)?),
        };
        out.push(p);
    }
    Ok((out, crl))
}

/// The tenant's current client certificate, or an error that says to issue one.
fn current_identity(ws: &Workspace, tenant: &str, env: &str) -> Result<Identity> {
    super::probe::tenant_identity(ws, tenant, env).map_err(|e| match e {
        OpError::NoCurrentCert {
            tenant, env, kind, ..
        } => OpError::NoCurrentCert {
            tenant,
            env,
            kind,
            need: super::CertNeed::GatewayTest,
        },
        o => o,
    })
}

fn fixture_planned(ws: &Workspace, case: Case, rec: &LeafRecord, reused: bool) -> Result<Planned> {
    let mut id = super::probe::file_identity(&rec.cert_path(), &rec.key_path(), None)?;
    if rec.chain_path().is_file() {
        id.chain = super::probe::load_certs(&rec.chain_path())?;
    }
    id.source = format!(
        "test fixture {} ({})",
        rec.meta.serial,
        ws.relative(&rec.dir)
    );
    Ok(Planned {
        case,
        identity: Some(id),
        fixture: true,
        fixture_reused: reused,
        not_run: None,
    })
}

/// The bounds and kind of the fixture of `case`.
fn fixture_shape(case: Case, now: OffsetDateTime) -> (Kind, OffsetDateTime, OffsetDateTime) {
    let now = cert::whole_seconds(now);
    match case {
        Case::Expired => (
            Kind::Client,
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        ),
        Case::NotYetValid => (
            Kind::Client,
            now + NOT_YET_VALID_IN,
            now + NOT_YET_VALID_IN + time::Duration::minutes(1),
        ),
        Case::ServerAuthOnly => (Kind::Server, now - cert::CLOCK_SKEW, now + FIXTURE_LIFE),
        _ => (Kind::Client, now - cert::CLOCK_SKEW, now + FIXTURE_LIFE),
    }
}

/// Whether the stored fixture `rec` (with its certificate's notBefore) still serves
/// `case` at `now`.
fn serves(case: Case, rec: &LeafRecord, not_before: OffsetDateTime, now: OffsetDateTime) -> bool {
    let m = &rec.meta;
    if !rec.key_path().is_file() {
        return false;
    }
    let valid_now = not_before <= now && now + REUSE_MARGIN < m.not_after;
    match case {
        Case::Expired => m.kind == Kind::Client && m.status == Status::Active && m.not_after <= now,
        Case::NotYetValid => {
            m.kind == Kind::Client && m.status == Status::Active && not_before > now + REUSE_MARGIN
        }
        Case::Revoked => m.kind == Kind::Client && m.status == Status::Revoked && valid_now,
        Case::ServerAuthOnly => m.kind == Kind::Server && m.status == Status::Active && valid_now,
        Case::OtherEnvironment => m.kind == Kind::Client && m.status == Status::Active && valid_now,
        _ => false,
    }
}

/// A fixture of `case` signed by `signer`'s CA: one stored earlier that still serves, or a
/// new one issued now (journaled and audited as `gateway-test`). Returns it and whether it
/// was reused.
fn own_fixture(
    ws: &Workspace,
    profiles: &Profiles,
    req: &Request<'_>,
    signer: &CaSigner<'_>,
    case: Case,
    existing: &[LeafRecord],
    now: OffsetDateTime,
) -> Result<(LeafRecord, bool)> {
    for rec in existing.iter().rev() {
        if rec.meta.env != signer.ca.env {
            continue;
        }
        let Ok(rep) = issue::report_of(rec, "unchanged") else {
            continue;
        };
        if serves(case, rec, rep.not_before, now) {
            return Ok((rec.clone(), true));
        }
    }
    let (kind, not_before, not_after) = fixture_shape(case, now);
    // the tenant's subject and SANs, as in its own environment; a server certificate
    // needs a DNS name, which a client profile may lack
    // another environment's fixture takes the tenant's settings here, and that
    // environment's permission (checked below)
    let mut flags = LeafFlags {
        kind: Some(kind),
        not_before: Some(not_before),
        not_after: Some(not_after),
        fixture: signer.ca.env == req.env,
        ..LeafFlags::default()
    };
    let mut r = profiles.resolve(req.tenant, req.env, &flags);
    if kind == Kind::Server
        && let Ok(res) = &r
        && res.san_dns.value.is_empty()
        && res.san_ip.value.is_empty()
    {
        flags.dns = vec![format!("{}.gateway-test.invalid", req.tenant)];
        r = profiles.resolve(req.tenant, req.env, &flags);
    }
    let mut r = r?;
    if signer.ca.env != req.env {
        // signed by the other environment's CA, stored under that environment
        profiles.check_fixtures_allowed(&signer.ca.env)?;
        r.env = signer.ca.env.clone();
        r.fixture = true;
    }
    let rep: IssueReport = issue::issue(ws, &r, &signer.with(), now, ORIGIN, None)?;
    let rec = ws
        .leaf_by_serial(&r.env, &rep.serial)?
        .ok_or_else(|| OpError::NoSuchSerial {
            env: r.env.clone(),
            serial: rep.serial.clone(),
        })?;
    Ok((rec, false))
}

/// Revokes the revoked case's fixture (re-signing the CRL) unless it is revoked already.
fn revoke_fixture(
    ws: &Workspace,
    profiles: &Profiles,
    own: &CaSigner<'_>,
    passphrase: Option<&secrecy::SecretString>,
    rec: &LeafRecord,
    reused: bool,
    now: OffsetDateTime,
) -> Result<CrlNote> {
    if reused && rec.meta.status == Status::Revoked {
        // listed by the CRL on disk (a run killed between recording the revocation and
        // signing the CRL leaves one that does not: sign it now)
        let listed = super::doctor::disk_crl(ws, &own.loc)
            .is_some_and(|(_, info)| info.revoked.iter().any(|r| r.serial == rec.meta.serial));
        if listed {
            let number = ws.load_ca_state(&own.loc)?.crl_number;
            return Ok(CrlNote {
                path: ws.crl(&own.loc),
                crl_number: number,
                serial: rec.meta.serial.clone(),
                resigned_now: false,
            });
        }
        let validity = super::ca::crl_validity_for(
            &own.ca.settings,
            &own.ca.set,
            own.ca
                .set
                .by_loc(&own.loc)
                .expect("the signing CA is in its set"),
        );
        let crl = super::lifecycle::crl(ws, &own.loc, validity, &own.signer, None, now)?;
        return Ok(CrlNote {
            path: crl.path,
            crl_number: crl.crl_number,
            serial: rec.meta.serial.clone(),
            resigned_now: true,
        });
    }
    let rep =
        super::lifecycle::revoke(ws, profiles, passphrase, rec, "cessation-of-operation", now)?;
    let crl = rep.crl.expect("revoke signs a CRL");
    Ok(CrlNote {
        path: crl.path,
        crl_number: crl.crl_number,
        serial: rec.meta.serial.clone(),
        resigned_now: true,
    })
}

/// Another tenant's current certificate, where tenants do not share the CA.
fn other_tenant(ws: &Workspace, profiles: &Profiles, req: &Request<'_>) -> Result<Planned> {
    let case = Case::OtherTenant;
    if !tenants_isolated(profiles, req.env) {
        return Ok(Planned::not_run(
            case,
            Verdict::NotApplicable,
            "tenants share the environment's CA",
        ));
    }
    for t in profiles.tenant_names() {
        if t == req.tenant {
            continue;
        }
        if let Ok(id) = super::probe::tenant_identity(ws, t, req.env) {
            return Ok(Planned::with(case, id));
        }
    }
    Ok(Planned::not_run(
        case,
        Verdict::Skipped,
        format!("no other tenant has a current certificate in '{}'", req.env),
    ))
}

/// A throwaway key: the same algorithm as the tenant's, so that only the signer differs.
fn throwaway_key(alg: KeyAlgorithm) -> Result<PrivateKey> {
    Ok(PrivateKey::generate(alg)?)
}

fn identity(der: &[u8], key: &PrivateKey, chain: Vec<X509>, source: &str) -> Result<Identity> {
    Ok(Identity {
        cert: X509::from_der(der).map_err(PkiError::from)?,
        chain,
        key: key.pkey().clone(),
        source: source.to_string(),
    })
}

/// A self-signed certificate with the tenant's exact subject and SANs, in memory only.
fn impostor(profiles: &Profiles, req: &Request<'_>, now: OffsetDateTime) -> Result<Identity> {
    let r = profiles.resolve_kind(req.tenant, req.env, Some(Kind::Client))?;
    let mut lr = r.leaf_request();
    lr.validity = time::Duration::hours(1);
    let key = throwaway_key(r.key.value)?;
    let b = cert::self_signed_leaf(&lr, &key, now)?;
    identity(&b.der, &key, Vec::new(), "self-signed impostor (in memory)")
}

/// A leaf for the tenant's subject from a throwaway CA named exactly like ours, both in
/// memory only; the foreign CA travels as the chain.
fn untrusted_ca(profiles: &Profiles, req: &Request<'_>, now: OffsetDateTime) -> Result<Identity> {
    let ca_settings = profiles.resolve_ca(req.env)?;
    let real = ca_settings.ca_request();
    let ca_key = throwaway_key(ca_settings.key.value)?;
    let fake = cert::self_signed_ca(
        &CaRequest {
            subject: real.subject,
            validity: time::Duration::days(2),
            path_length: 0,
        },
        &ca_key,
        now,
    )?;
    let signer = Signer::new(&fake.der, &ca_key)?;
    let r = profiles.resolve_kind(req.tenant, req.env, Some(Kind::Client))?;
    let mut lr = r.leaf_request();
    lr.validity = time::Duration::hours(1);
    lr.clip_to_ca = true;
    let key = throwaway_key(r.key.value)?;
    let b = cert::sign_leaf(
        &lr,
        &key.to_rcgen()?,
        key.algorithm().is_rsa(),
        &signer,
        now,
    )?;
    let chain = vec![X509::from_der(&fake.der).map_err(PkiError::from)?];
    identity(
        &b.der,
        &key,
        chain,
        "leaf of an untrusted CA named like ours (in memory)",
    )
}

/// Runs every planned case against the gateway and judges it.
pub fn run(
    req: &Request<'_>,
    planned: Vec<Planned>,
    crl: Option<CrlNote>,
    now: OffsetDateTime,
) -> Result<Report> {
    let mut cases = Vec::new();
    let mut notes = Vec::new();
    let mut server_checked = false;
    for p in planned {
        let certificate = p.identity.as_ref().and_then(|i| netprobe::brief(&i.cert));
        let mut res = CaseResult {
            case: p.case,
            description: p.case.describe(),
            expected: p.case.expected(),
            outcome: None,
            observed: None,
            verdict: Verdict::Skipped,
            certificate,
            fixture: p.fixture,
            fixture_reused: p.fixture_reused,
            reason: None,
            advice: None,
        };
        if let Some((v, why)) = p.not_run {
            res.verdict = v;
            res.reason = Some(why);
            cases.push(res);
            continue;
        }
        let x = netprobe::exchange(&netprobe::Request {
            url: req.url,
            identity: p.identity.as_ref(),
            ca: req.ca,
            sni: req.sni,
            headers: req.headers,
            timeout: req.timeout,
        })?;
        if !server_checked && x.handshake {
            server_checked = true;
            if !x.server_verified {
                notes.push(format!(
                    "the gateway's own certificate did not verify against {}: {} (the cases are judged all the same)",
                    x.server_trust,
                    x.server_verify_error.as_deref().unwrap_or("unknown error")
                ));
            }
        }
        let (outcome, observed) = judge(&x);
        res.outcome = Some(outcome);
        res.observed = Some(observed);
        res.verdict = match outcome {
            Outcome::Unreachable => Verdict::Error,
            o if o == res.expected => Verdict::Pass,
            _ => Verdict::Fail,
        };
        if res.verdict != Verdict::Pass {
            res.advice = Some(advice(p.case, &res, &x, req, crl.as_ref()));
        } else if p.case == Case::Current
            && let Some(s) = x.http_status
            && s >= 400
        {
            notes.push(format!(
                "the current certificate was accepted but the request got HTTP {s}: the TLS layer works; {}",
                if s == 401 {
                    "the backend asks for credentials (--basic-auth-file)"
                } else {
                    "check the URL's path and the backend"
                }
            ));
        }
        cases.push(res);
    }
    if let Some(c) = &crl {
        notes.push(format!(
            "the revoked case holds only if the gateway has installed the CRL {} (number {}{}) and checks it",
            c.path.display(),
            c.crl_number,
            if c.resigned_now {
                ", re-signed by this run: a gateway that loads CRLs at start needs it installed and a reload"
            } else {
                ""
            }
        ));
    }
    Ok(summarise(req, cases, crl, notes, now, false))
}

/// The report of `cases`.
pub fn summarise(
    req: &Request<'_>,
    cases: Vec<CaseResult>,
    crl: Option<CrlNote>,
    notes: Vec<String>,
    now: OffsetDateTime,
    prepared_only: bool,
) -> Report {
    let count = |v: Verdict| cases.iter().filter(|c| c.verdict == v).count();
    Report {
        url: req.url.to_string(),
        tenant: req.tenant.to_string(),
        env: req.env.to_string(),
        started_at: cert::whole_seconds(now),
        ok: cases.iter().all(|c| c.verdict.is_ok()),
        prepared_only,
        passed: count(Verdict::Pass),
        failed: count(Verdict::Fail),
        not_applicable: count(Verdict::NotApplicable),
        skipped: count(Verdict::Skipped),
        errors: count(Verdict::Error),
        cases,
        crl,
        notes,
    }
}

/// The report of a `--prepare` run: the fixtures made or found, nothing probed.
pub fn prepared_report(
    req: &Request<'_>,
    planned: Vec<Planned>,
    crl: Option<CrlNote>,
    now: OffsetDateTime,
) -> Report {
    let cases = planned
        .into_iter()
        .map(|p| CaseResult {
            case: p.case,
            description: p.case.describe(),
            expected: p.case.expected(),
            outcome: None,
            observed: None,
            verdict: p.not_run.as_ref().map_or(Verdict::Skipped, |(v, _)| *v),
            certificate: p.identity.as_ref().and_then(|i| netprobe::brief(&i.cert)),
            fixture: p.fixture,
            fixture_reused: p.fixture_reused,
            reason: Some(
                p.not_run
                    .map(|(_, why)| why)
                    .unwrap_or_else(|| "prepared; not run (--prepare)".into()),
            ),
            advice: None,
        })
        .collect();
    let mut notes = Vec::new();
    if let Some(c) = &crl {
        notes.push(format!(
            "install the CRL {} (number {}) on the gateway and turn on CRL checking before the run",
            c.path.display(),
            c.crl_number
        ));
    }
    summarise(req, cases, crl, notes, now, true)
}

/// The gateway's answer to one case: accepted, refused or unreachable, and what was
/// seen, in a few words.
pub fn judge(x: &Exchange) -> (Outcome, String) {
    let err = x.error.clone().unwrap_or_default();
    if !x.connected {
        return (Outcome::Unreachable, short(&err));
    }
    if !x.handshake {
        let e = err
            .strip_prefix("TLS handshake failed: ")
            .unwrap_or(&err)
            .to_string();
        return (Outcome::Refused, format!("TLS: {}", short(&e)));
    }
    if let Some(status) = x.http_status {
        let reason = x.http_reason.clone().unwrap_or_default();
        let body = x.http_body_excerpt.as_deref().unwrap_or("");
        let cert_refusal = matches!(status, 403 | 495 | 496)
            || (status == 400 && body.to_ascii_lowercase().contains("certificate"));
        let seen = format!("HTTP {status} {}", short(&reason))
            .trim()
            .to_string();
        let seen = match (status, body) {
            (400, b) if b.contains("No required SSL certificate was sent") => {
                format!("{seen} (no required SSL certificate was sent)")
            }
            (400, b) if b.contains("The SSL certificate error") => {
                format!("{seen} (SSL certificate error)")
            }
            _ => seen,
        };
        return (
            if cert_refusal {
                Outcome::Refused
            } else {
                Outcome::Accepted
            },
            seen,
        );
    }
    // TLS 1.3: the refusal shows on the first read, after the handshake
    let e = err
        .strip_prefix("the server ended the connection before answering: ")
        .unwrap_or(&err);
    (Outcome::Refused, format!("TLS: {}", short(e)))
}

fn short(s: &str) -> String {
    let s = text::sanitize(s);
    if s.chars().count() > 120 {
        let mut t: String = s.chars().take(117).collect();
        t.push_str("...");
        t
    } else {
        s
    }
}

/// What a case that did not behave means for the gateway, and what to change.
fn advice(
    case: Case,
    res: &CaseResult,
    x: &Exchange,
    req: &Request<'_>,
    crl: Option<&CrlNote>,
) -> String {
    let (t, e) = (req.tenant, req.env);
    if res.verdict == Verdict::Error {
        return format!(
            "could not reach the gateway: {}; check the URL, the port and that nothing in between drops the connection",
            x.error.as_deref().unwrap_or("no answer")
        );
    }
    let observed = res.observed.as_deref().unwrap_or("-");
    match case {
        Case::Current => format!(
            "your gateway refuses the tenant's current certificate ({observed}): install the {e} CA bundle as its trusted client CA (`mtlsctl export --tenant {t} --env {e}`) with a current CRL (`mtlsctl crl --env {e}`); `mtlsctl probe {} --tenant {t} --env {e}` diagnoses it",
            req.url
        ),
        Case::NoCertificate => format!(
            "your gateway answers without a client certificate ({observed}): require one (ssl_verify_client on in nginx; with `optional`, refuse in the location unless $ssl_client_verify is SUCCESS)"
        ),
        Case::Expired => format!(
            "your gateway accepts expired certificates ({observed}): it must verify the client certificate's validity period (no optional_no_ca, no `ignore expired` setting) and keep its clock right"
        ),
        Case::NotYetValid => format!(
            "your gateway accepts certificates that are not yet valid ({observed}): it must verify the validity period; check its clock too"
        ),
        Case::Revoked => format!(
            "your gateway accepts revoked certificates ({observed}): install crl.pem{} and turn on CRL checking (ssl_crl in nginx), or use OCSP; a gateway that loads CRLs at start needs a reload after each new CRL",
            crl.map(|c| format!(" ({})", c.path.display()))
                .unwrap_or_default()
        ),
        Case::OtherEnvironment => format!(
            "your gateway accepts a certificate of another environment's CA ({observed}): trust only the {e} CA bundle, never another environment's (one CA per environment keeps nonprod certificates out of prod)"
        ),
        Case::OtherTenant => format!(
            "your gateway accepts another tenant's certificate ({observed}): authorise by subject or fingerprint after authentication (an allow-list per route)"
        ),
        Case::Impostor => format!(
            "your gateway accepts a self-signed certificate that copies the tenant's subject and names ({observed}): it must verify the chain up to our CA, never match a subject or SAN alone (no optional_no_ca, no subject-only mapping)"
        ),
        Case::UntrustedCa => format!(
            "your gateway accepts a certificate from a foreign CA that only borrows our CA's name ({observed}): it must check signatures against the CA certificate we handed off, not compare issuer names"
        ),
        Case::ServerAuthOnly => format!(
            "your gateway accepts a certificate issued for servers only, EKU serverAuth ({observed}): it must require the clientAuth extended key usage of client certificates"
        ),
    }
}

/// The report as JUnit XML: one test suite, a test case per case; a failure per case that
/// did not behave, an error per unreachable one, `skipped` for those that did not run.
pub fn junit(rep: &Report) -> String {
    let esc = |s: &str| {
        text::sanitize(s)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;")
    };
    let class = format!("gateway-test.{}.{}", rep.tenant, rep.env);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"mtlsctl gateway-test\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
        rep.cases.len(),
        rep.failed,
        rep.errors,
        rep.skipped + rep.not_applicable
    ));
    x.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">\n",
        esc(&format!("{} {}/{}", rep.url, rep.tenant, rep.env)),
        rep.cases.len(),
        rep.failed,
        rep.errors,
        rep.skipped + rep.not_applicable,
        text::rfc3339(rep.started_at)
    ));
    for c in &rep.cases {
        x.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\">\n",
            esc(&class),
            c.case.name()
        ));
        let observed = c.observed.as_deref().unwrap_or("-");
        let msg = format!("expected {}, observed {}", c.expected.as_str(), observed);
        match c.verdict {
            Verdict::Pass => {}
            Verdict::Fail => x.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                esc(&msg),
                c.case.name(),
                esc(c.advice.as_deref().unwrap_or(""))
            )),
            Verdict::Error => x.push_str(&format!(
                "      <error message=\"{}\">{}</error>\n",
                esc(&msg),
                esc(c.advice.as_deref().unwrap_or(""))
            )),
            Verdict::NotApplicable | Verdict::Skipped => x.push_str(&format!(
                "      <skipped message=\"{}\"/>\n",
                esc(c.reason.as_deref().unwrap_or(""))
            )),
        }
        x.push_str(&format!(
            "      <system-out>{}</system-out>\n",
            esc(&format!("{}: {msg}", c.description))
        ));
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Writes the JUnit XML of `rep` to `path` atomically.
pub fn write_junit(path: &Path, rep: &Report) -> Result<()> {
    Ok(fsutil::write_atomic(path, junit(rep).as_bytes(), PUBLIC)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_round_trip() {
        for c in Case::ALL {
            assert_eq!(c.name().parse::<Case>().unwrap(), c);
        }
        let e = "revokd".parse::<Case>().unwrap_err();
        assert!(e.contains("revoked") && e.contains("unknown case"), "{e}");
    }

    fn ex(f: impl FnOnce(&mut Exchange)) -> Exchange {
        let mut x = Exchange {
            connected: true,
            handshake: true,
            ..Exchange::default()
        };
        f(&mut x);
        x
    }

    #[test]
    fn answers_are_judged() {
        let (o, s) = judge(&ex(|x| x.http_status = Some(200)));
        assert_eq!((o, s.as_str()), (Outcome::Accepted, "HTTP 200"));
        let (o, s) = judge(&ex(|x| {
            x.http_status = Some(400);
            x.http_reason = Some("Bad Request".into());
            x.http_body_excerpt = Some("<center>The SSL certificate error</center>".into());
        }));
        assert_eq!(o, Outcome::Refused);
        assert!(s.contains("SSL certificate error"), "{s}");
        let (o, _) = judge(&ex(|x| x.http_status = Some(401)));
        assert_eq!(o, Outcome::Accepted);
        let (o, _) = judge(&ex(|x| x.http_status = Some(403)));
        assert_eq!(o, Outcome::Refused);
        let (o, s) = judge(&ex(|x| {
            x.handshake = false;
            x.error = Some("TLS handshake failed: tlsv1 alert unknown ca".into());
        }));
        assert_eq!(
            (o, s.as_str()),
            (Outcome::Refused, "TLS: tlsv1 alert unknown ca")
        );
        let (o, _) = judge(&ex(|x| {
            x.connected = false;
            x.error = Some("cannot connect".into());
        }));
        assert_eq!(o, Outcome::Unreachable);
    }

    #[test]
    fn junit_escapes_and_counts() {
        let req = Request {
            url: "https://gw/<x>",
            tenant: "acme",
            env: "prod",
            sni: None,
            ca: None,
            headers: &[],
            timeout: Duration::from_secs(1),
            cases: &[],
            cases_named: false,
        };
        let mk = |case, verdict| CaseResult {
            case,
            description: "d",
            expected: Outcome::Refused,
            outcome: Some(Outcome::Accepted),
            observed: Some("HTTP 200 \"ok\" & <b>".into()),
            verdict,
            certificate: None,
            fixture: false,
            fixture_reused: false,
            reason: Some("r".into()),
            advice: Some("a & b".into()),
        };
        let rep = summarise(
            &req,
            vec![
                mk(Case::Revoked, Verdict::Fail),
                mk(Case::Current, Verdict::Pass),
                mk(Case::OtherTenant, Verdict::NotApplicable),
            ],
            None,
            Vec::new(),
            OffsetDateTime::now_utc(),
            false,
        );
        let x = junit(&rep);
        assert!(x.contains("tests=\"3\" failures=\"1\""), "{x}");
        assert!(
            x.contains("&amp; &lt;b&gt;") && x.contains("&quot;ok&quot;"),
            "{x}"
        );
        assert!(!rep.ok);
    }
}
