//! `verify`: validate a certificate chain and explain any failure in words.

pub mod explain;
mod json;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use self::explain::{explain, openssl_line};
use self::json::OutcomeJson;
use super::{Ctx, Exit, Out, UsageError, say};
use crate::ops::verify::{self as opv, FileRequest, TenantReport};
use crate::pki::Kind;
use crate::pki::verify::{Finding, Outcome, Purpose};
use crate::profile::Dur;
use crate::report::{self, sanitize};

const AFTER: &str = "\
Exit codes: 0 the chain is valid; 1 it is not (the reasons are printed, with what to do);
2 usage error. With --crl, every certificate of the path must be covered by a current CRL
of its issuer (as gateways with CRL checking require): give one --crl per CA.
Reason codes are listed in docs/verify.md.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER)]
pub struct Args {
    /// Certificate to verify: PEM or DER, the leaf optionally followed by its intermediates
    #[arg(value_name = "CERT", conflicts_with_all = ["tenant", "env"])]
    pub cert: Option<PathBuf>,
    /// Trusted CA certificate(s) (PEM bundle or DER; repeat for more files)
    #[arg(long, value_name = "FILE")]
    pub ca: Vec<PathBuf>,
    /// Intermediate CA certificates that may complete the path (not trusted; repeatable)
    #[arg(long, value_name = "FILE")]
    pub untrusted: Vec<PathBuf>,
    /// What the leaf must be good for: client, server or any (default: any; with
    /// --tenant: the certificate's kind)
    #[arg(long, value_name = "PURPOSE")]
    pub purpose: Option<Purpose>,
    /// DNS name the certificate must hold (subjectAltName; the CN is never used)
    #[arg(long, value_name = "NAME", conflicts_with = "ip")]
    pub hostname: Option<String>,
    /// IP address the certificate must hold
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<IpAddr>,
    /// Verify as of this time (RFC 3339, e.g. 2027-01-31T12:00:00Z) instead of now
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// CRL file(s) (PEM or DER); enables revocation checking for the whole chain
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Warn when a certificate expires within this window (default 30d; with --tenant:
    /// the profile's renew_before)
    #[arg(long, value_name = "DUR")]
    pub renew_before: Option<Dur>,
    /// Most intermediate CAs allowed between the leaf and the trusted CA (a gateway's
    /// verify depth, e.g. nginx `ssl_verify_depth` minus one)
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u32>,
    /// Verify this tenant's current certificate in the workspace (with --env)
    #[arg(long, requires = "env")]
    pub tenant: Option<String>,
    /// Environment of --tenant: its CA, its current CRL and the profile's expectations
    #[arg(long, requires = "tenant")]
    pub env: Option<String>,
    /// With --tenant: which certificate (default: the profile's kind)
    #[arg(long, value_parser = crate::cli::kind_parser(), requires = "tenant")]
    pub kind: Option<Kind>,
}

fn parse_at(s: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        UsageError(format!(
            "--at '{s}' is not an RFC 3339 time: write it like 2027-01-31T12:00:00Z"
        ))
        .into()
    })
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("verify")?;
    let at = a.at.as_deref().map(parse_at).transpose()?;
    match (&a.tenant, &a.env) {
        (Some(t), Some(e)) => run_tenant(ctx, &a, t, e, at),
        _ => run_files(ctx, a, at),
    }
}

/// `verify --tenant T --env E`: the current certificate against the workspace and profile.
fn run_tenant(
    ctx: &Ctx,
    a: &Args,
    tenant: &str,
    env: &str,
    at: Option<OffsetDateTime>,
) -> Result<Exit> {
    let tenant_only = !a.ca.is_empty()
        || !a.untrusted.is_empty()
        || !a.crl.is_empty()
        || a.hostname.is_some()
        || a.ip.is_some()
        || a.purpose.is_some()
        || a.renew_before.is_some()
        || a.max_depth.is_some();
    if tenant_only {
        return Err(UsageError(
            "with --tenant/--env the CA, CRL, purpose and names come from the workspace and profile: drop --ca, --untrusted, --crl, --purpose, --hostname, --ip and --renew-before, or verify a file instead".into(),
        )
        .into());
    }
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let rep = opv::tenant(&ws, &profiles, tenant, env, a.kind, at)?;
    if !rep.outcome.valid {
        ctx.out.unquiet();
    }
    ctx.emit(&TenantJson::of(&rep), |out| {
        say!(
            out,
            "{} {} certificate of {} in {} (serial {})",
            verdict(&rep.outcome),
            rep.kind,
            rep.tenant,
            rep.env,
            rep.serial
        );
        render(ctx, &rep.outcome)
    })?;
    Ok(code(&rep.outcome))
}

/// `verify CERT --ca FILE ...`: any chain, with the files given.
fn run_files(ctx: &Ctx, a: Args, at: Option<OffsetDateTime>) -> Result<Exit> {
    let Some(cert) = a.cert else {
        return Err(UsageError(
            "give the certificate to verify (CERT --ca FILE), or --tenant T --env E for a workspace certificate".into(),
        )
        .into());
    };
    if a.ca.is_empty() {
        return Err(UsageError(
            "--ca FILE is required: the CA certificate(s) the verifier trusts (a gateway's trusted client CA bundle, say)".into(),
        )
        .into());
    }
    let req = FileRequest {
        cert,
        ca: a.ca,
        untrusted: a.untrusted,
        crls: a.crl,
        hostname: a.hostname,
        ip: a.ip,
        at,
        renew_before: a.renew_before.map(|d| d.to_time()),
        max_depth: a.max_depth,
    };
    let outcome = opv::files(&req, a.purpose.unwrap_or(Purpose::Any))?;
    if !outcome.valid {
        ctx.out.unquiet();
    }
    let abs = |ps: &[PathBuf]| -> Vec<PathBuf> {
        ps.iter().map(|p| crate::workspace::absolute(p)).collect()
    };
    let rep = FileReport {
        cert: crate::workspace::absolute(&req.cert),
        ca: abs(&req.ca),
        untrusted: abs(&req.untrusted),
        crl: abs(&req.crls),
        outcome: OutcomeJson::of(&outcome),
    };
    ctx.emit(&rep, |out| {
        say!(out, "{} {}", verdict(&outcome), req.cert.display());
        render(ctx, &outcome)
    })?;
    Ok(code(&outcome))
}

fn verdict(o: &Outcome) -> &'static str {
    if o.valid { "VALID:" } else { "INVALID:" }
}

/// `verify CERT -o json`: the files, then the outcome's fields.
#[derive(serde::Serialize)]
struct FileReport<'a> {
    cert: PathBuf,
    ca: Vec<PathBuf>,
    untrusted: Vec<PathBuf>,
    crl: Vec<PathBuf>,
    #[serde(flatten)]
    outcome: OutcomeJson<'a>,
}

/// `verify --tenant T --env E -o json`: which certificate, then the outcome's fields.
#[derive(serde::Serialize)]
struct TenantJson<'a> {
    tenant: &'a str,
    env: &'a str,
    kind: Kind,
    serial: &'a str,
    cert: &'a Path,
    ca: &'a [PathBuf],
    crl: &'a [PathBuf],
    #[serde(flatten)]
    outcome: OutcomeJson<'a>,
}

impl<'a> TenantJson<'a> {
    fn of(r: &'a TenantReport) -> Self {
        TenantJson {
            tenant: &r.tenant,
            env: &r.env,
            kind: r.kind,
            serial: &r.serial,
            cert: &r.cert,
            ca: &r.ca,
            crl: &r.crl,
            outcome: OutcomeJson::of(&r.outcome),
        }
    }
}

fn code(o: &Outcome) -> Exit {
    if o.valid { Exit::Ok } else { Exit::Error }
}

fn render(ctx: &Ctx, o: &Outcome) -> Result<()> {
    let mut checks = vec![format!("purpose {}", o.purpose.as_str())];
    if let Some(h) = &o.hostname {
        checks.push(format!("hostname {}", sanitize(h)));
    }
    if let Some(ip) = o.ip {
        checks.push(format!("ip {ip}"));
    }
    checks.push(format!("at {}", report::rfc3339(o.at)));
    checks.push(if o.crl_checked {
        "CRLs checked".into()
    } else {
        "no CRL check".into()
    });
    say!(ctx.out, "checks: {}", checks.join(", "));
    let mut t = report::table::new(
        &["depth", "role", "subject", "not after", "key", "status"],
        ctx.stdout_tty,
    );
    for p in &o.path {
        let status: Vec<&str> = p.findings.iter().map(|f| f.code.as_str()).collect();
        t.add_row(vec![
            p.depth.to_string(),
            if p.trusted {
                format!("{} (trusted)", p.role)
            } else {
                p.role.to_string()
            },
            sanitize(&p.cert.subject),
            report::date(p.cert.not_after),
            p.cert.key.algorithm.clone(),
            if status.is_empty() {
                "ok".into()
            } else {
                status.join(", ")
            },
        ]);
    }
    say!(ctx.out, "{t}");
    for p in &o.path {
        let r = &p.cert.revocation;
        let mut parts = Vec::new();
        if let Some(u) = &r.crl {
            parts.push(format!("CRL {}", sanitize(u)));
        }
        if let Some(u) = &r.ocsp {
            parts.push(format!("OCSP {}", sanitize(u)));
        }
        if let Some(u) = &r.issuer {
            parts.push(format!("caIssuers {}", sanitize(u)));
        }
        if !parts.is_empty() {
            say!(
                ctx.out,
                "revocation at depth {}: {}",
                p.depth,
                parts.join(", ")
            );
        }
    }
    let errors: Vec<&Finding> = o.errors().collect();
    let warnings: Vec<&Finding> = o.warnings().collect();
    for f in &errors {
        print_finding(&ctx.out, "error", f)?;
    }
    for f in &warnings {
        print_finding(&ctx.out, "warning", f)?;
    }
    Ok(())
}

fn print_finding(out: &Out, label: &str, f: &Finding) -> std::io::Result<()> {
    let at = match f.cert.as_ref() {
        Some(c) => format!(" at depth {} ({})", c.depth, sanitize(&c.subject)),
        None => String::new(),
    };
    let e = explain(f);
    say!(out, "{label} [{}]{at}:\n  {}", f.code, sanitize(&e.message));
    say!(out, "  fix: {}", sanitize(&e.fix));
    if let Some(o) = openssl_line(f) {
        say!(out, "  openssl: {o}");
    }
    Ok(())
}
