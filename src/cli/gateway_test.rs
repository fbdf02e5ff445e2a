//! `gateway-test`: the acceptance suite for a customer's mTLS gateway. Presents a set of
//! client certificates, one per case, and judges each answer; a table (or JSON, or JUnit
//! XML for CI) and plain words for every case that does not behave.

use std::path::PathBuf;

use anyhow::{Context, Result};
use secrecy::ExposeSecret;

use super::ca::CaPassArgs;
use super::{Ctx, Exit, Out, UsageError, say, secrets};
use crate::ops::gateway_test::{self as gt, Case, Report};
use crate::profile::Dur;
use crate::report::{sanitize, table};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Cases: current (expected accepted); no-certificate, expired, not-yet-valid, revoked, other-environment, other-tenant, impostor, untrusted-ca, server-auth-only (each expected refused).\n\nThe certificates our CAs sign for the suite are test fixtures (list shows them; never current, never renewed), reused by later runs while they still serve their case. The revoked case re-signs the environment's CRL: the gateway must have it installed; --prepare makes the fixtures and the CRL without probing, to install it first.\n\nExit codes: 0 every case behaved (or did not apply); 1 a case did not behave, the gateway could not be reached, or an error; 2 usage error."
)]
pub struct Args {
    /// The gateway endpoint, e.g. https://api.customer.example/health
    pub url: String,
    /// Tenant whose certificates to present
    #[arg(long)]
    pub tenant: String,
    /// Environment of the tenant (its CA signs the test certificates)
    #[arg(long)]
    pub env: String,
    /// Server name to send (SNI) and check the gateway's certificate against
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// CA certificate(s) to verify the gateway's certificate with (default: system roots)
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// File whose first line is user:password, sent as HTTP Basic authorization
    #[arg(long, value_name = "FILE")]
    pub basic_auth_file: Option<PathBuf>,
    /// Only these cases, comma-separated (default: all)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub cases: Vec<Case>,
    /// Also write the result as JUnit XML to FILE, for CI
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Make (or find) the test certificates and re-sign the CRL, then stop: install the
    /// CRL on the gateway, then run without --prepare
    #[arg(long, conflicts_with = "junit")]
    pub prepare: bool,
    /// Connect and read timeout of each case
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub timeout: Dur,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("gateway-test")?;
    let mut headers = Vec::new();
    if let Some(f) = &a.basic_auth_file {
        let s = secrets::read_secret_file(f)?;
        if !s.expose_secret().contains(':') {
            return Err(UsageError(format!(
                "--basic-auth-file {} must hold user:password on its first line",
                f.display()
            ))
            .into());
        }
        headers.push(crate::ops::probe::basic_auth(s.expose_secret()));
    }
    if !a.url.starts_with("https://") {
        return Err(UsageError(format!(
            "'{}' is not an https:// URL: give the gateway's endpoint, e.g. https://api.customer.example/health",
            a.url
        ))
        .into());
    }
    let mut cases: Vec<Case> = Vec::new();
    for c in if a.cases.is_empty() {
        Case::ALL.to_vec()
    } else {
        a.cases.clone()
    } {
        if !cases.contains(&c) {
            cases.push(c);
        }
    }
    let ca = match &a.ca {
        Some(p) => Some(crate::ops::probe::load_certs(p).with_context(|| "--ca")?),
        None => None,
    };
    let timeout = std::time::Duration::try_from(a.timeout.to_time())
        .unwrap_or(std::time::Duration::from_secs(10))
        .max(std::time::Duration::from_millis(100));
    let req = gt::Request {
        url: &a.url,
        tenant: &a.tenant,
        env: &a.env,
        sni: a.sni.as_deref(),
        ca: ca.as_deref(),
        headers: &headers,
        timeout,
        cases: &cases,
        cases_named: !a.cases.is_empty(),
    };

    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    profiles.check_env(&a.env)?;
    // the tenant must be one of the environment's
    profiles.resolve_kind(&a.tenant, &a.env, None)?;
    let now = time::OffsetDateTime::now_utc();
    let (planned, crl) = {
        let _lock = ctx.lock_for_write(&ws)?;
        let own_ca = crate::ops::ca::open_for(
            &ws,
            &profiles,
            &a.env,
            Some(&a.tenant),
            crate::pki::Kind::Client,
        )?;
        let fixtures_ok = profiles.fixture_policy(&a.env)?.allowed;
        let needs = fixtures_ok && cases.iter().any(|c| c.needs_signer());
        let pass = if needs {
            a.pass.for_env(ctx, &ws, &a.env)?
        } else {
            None
        };
        let own = if needs {
            Some(own_ca.unlock(&ws, &profiles, pass.as_ref())?)
        } else {
            None
        };
        let other_ca = if cases.contains(&Case::OtherEnvironment) {
            gt::other_env(&ws, &profiles, &a.env)
                .and_then(|e| crate::ops::ca::open(&ws, &profiles, &e).map_err(|e| e.to_string()))
        } else {
            Err("not asked".into())
        };
        let other = match &other_ca {
            Ok(oc) => a
                .pass
                .for_env(ctx, &ws, &oc.env)
                .and_then(|p| Ok(oc.unlock(&ws, &profiles, p.as_ref())?))
                .map_err(|e| {
                    format!(
                        "cannot unlock the '{}' CA to sign its certificate: {}",
                        oc.env,
                        super::render_error(&e)
                    )
                }),
            Err(e) => Err(e.clone()),
        };
        let signers = gt::Signers {
            own: own.as_ref(),
            passphrase: pass.as_ref(),
            other: other.as_ref().map_err(|e| e.clone()),
        };
        gt::prepare(&ws, &profiles, &req, &signers, now)?
    };
    let rep = if a.prepare {
        gt::prepared_report(&req, planned, crl, now)
    } else {
        gt::run(&req, planned, crl, now)?
    };
    if let Some(j) = &a.junit {
        gt::write_junit(j, &rep).with_context(|| format!("--junit {}", j.display()))?;
    }
    if !rep.ok {
        ctx.out.unquiet();
    }
    ctx.emit(&rep, |out| Ok(render(ctx, out, &rep)?))?;
    Ok(if rep.ok { Exit::Ok } else { Exit::Error })
}

fn render(ctx: &Ctx, out: &Out, r: &Report) -> std::io::Result<()> {
    say!(
        out,
        "gateway-test {} as {}/{}{}",
        sanitize(&r.url),
        sanitize(&r.tenant),
        sanitize(&r.env),
        if r.prepared_only {
            " (--prepare: nothing probed)"
        } else {
            ""
        }
    );
    let mut t = table::new(&["case", "expected", "observed", "verdict"], ctx.stdout_tty);
    for c in &r.cases {
        let observed = match (&c.observed, &c.reason) {
            (Some(o), _) => sanitize(o),
            (None, Some(why)) => sanitize(why),
            (None, None) => "-".into(),
        };
        t.add_row(vec![
            c.case.name().to_string(),
            c.expected.as_str().to_string(),
            observed,
            c.verdict.as_str().to_string(),
        ]);
    }
    say!(out, "{t}");
    let bad: Vec<_> = r.cases.iter().filter(|c| !c.verdict.is_ok()).collect();
    if !bad.is_empty() {
        say!(out, "what does not behave:");
        for c in bad {
            say!(
                out,
                "  - {}: {}",
                c.case.name(),
                sanitize(c.advice.as_deref().unwrap_or("-"))
            );
        }
    }
    for n in &r.notes {
        say!(out, "note: {}", sanitize(n));
    }
    say!(
        out,
        "result: {} ({} passed, {} failed, {} not applicable, {} skipped, {} errors)",
        match (r.prepared_only, r.ok) {
            (true, _) => "PREPARED",
            (false, true) => "OK",
            (false, false) => "FAILED",
        },
        r.passed,
        r.failed,
        r.not_applicable,
        r.skipped,
        r.errors
    );
    Ok(())
}
