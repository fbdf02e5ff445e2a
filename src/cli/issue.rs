//! `issue`: one tenant's certificate, or every missing one with --all.

use std::net::IpAddr;

use anyhow::Result;
use serde::Serialize;

use super::ca::CaPassArgs;
use super::{Ctx, Exit, Out, UsageError, render_error, say};
use crate::ops::issue::{self, IssueReport};
use crate::ops::issue_all;
use crate::pki::Kind;
use crate::pki::keys::KeyAlgorithm;
use crate::pki::pkcs12::PfxCompat;
use crate::profile::{Dur, LeafFlags};
use crate::report::{self, sanitize};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tenant whose certificate to issue
    #[arg(long, required_unless_present = "all")]
    pub tenant: Option<String>,
    /// Environment (with --all: only this one)
    #[arg(long, required_unless_present = "all")]
    pub env: Option<String>,
    /// Issue for every tenant x environment that lacks a valid certificate
    #[arg(long, conflicts_with = "tenant")]
    pub all: bool,
    /// Client or server certificate (default: the profile's kind)
    #[arg(long, value_parser = crate::cli::kind_parser())]
    pub kind: Option<Kind>,
    /// DNS subject alternative name (repeat; replaces the profile's list)
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// IP subject alternative name (repeat; replaces the profile's list)
    #[arg(long = "ip", value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
    /// Validity, e.g. 90d, 1y (default: the profile's)
    #[arg(long, value_name = "DUR")]
    pub validity: Option<Dur>,
    /// Renew when less than this is left (default: the profile's renew_before, or a
    /// third of the validity when that is not shorter)
    #[arg(long, value_name = "DUR")]
    pub renew_before: Option<Dur>,
    /// Key algorithm: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096
    #[arg(long, value_name = "ALG")]
    pub key: Option<KeyAlgorithm>,
    /// Who must open the PFX: modern (= openssl3), legacy (= windows2016, java8, macos)
    /// or pbmac1 (default: the profile's pfx.compat)
    #[arg(long, value_name = "TARGET", value_parser = crate::cli::pfx_target_parser())]
    pub pfx_target: Option<PfxCompat>,
    /// Same as --pfx-target legacy (3DES, SHA-1 MAC) for IIS 2016 / Java 8
    #[arg(long, conflicts_with = "pfx_target")]
    pub legacy: bool,
    /// notBefore: RFC 3339 or relative to now (-1h, +10m, -2d); default now minus 5m
    #[arg(
        long,
        value_name = "TIME",
        allow_hyphen_values = true,
        conflicts_with = "all"
    )]
    pub not_before: Option<String>,
    /// notAfter: RFC 3339 or relative to now (+10m, -1h); default --not-before plus the
    /// validity. A time in the past needs --fixture
    #[arg(
        long,
        value_name = "TIME",
        allow_hyphen_values = true,
        conflicts_with = "all"
    )]
    pub not_after: Option<String>,
    /// Issue a test fixture: recorded, never the tenant's current certificate, never
    /// renewed (refused where the environment's profile forbids fixtures)
    #[arg(long, conflicts_with = "all")]
    pub fixture: bool,
    /// Issue a new certificate even if a valid one exists
    #[arg(long)]
    pub force: bool,
    /// Worker threads for --all (default: one per core)
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

impl Args {
    /// The flags, with --not-before/--not-after read as absolute times.
    fn flags_at(&self, now: time::OffsetDateTime) -> Result<LeafFlags> {
        let when = |flag: &str, v: &Option<String>| -> Result<Option<time::OffsetDateTime>> {
            v.as_deref()
                .map(|s| issue::parse_when(flag, s, now).map_err(|m| UsageError(m).into()))
                .transpose()
        };
        let mut f = self.flags();
        f.not_before = when("--not-before", &self.not_before)?;
        f.not_after = when("--not-after", &self.not_after)?;
        f.fixture = self.fixture;
        if f.not_before.is_some() && self.validity.is_some() && f.not_after.is_some() {
            return Err(UsageError(
                "--validity cannot go with both --not-before and --not-after: the bounds already give the life".into(),
            )
            .into());
        }
        Ok(f)
    }

    fn flags(&self) -> LeafFlags {
        LeafFlags {
            kind: self.kind,
            key: self.key,
            validity: self.validity,
            renew_before: self.renew_before,
            dns: self.dns.clone(),
            ip: self.ip.clone(),
            pfx_compat: self.pfx_target.or(self.legacy.then_some(PfxCompat::Legacy)),
            ..LeafFlags::default()
        }
    }
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("issue")?;
    if a.all {
        return run_all(ctx, a);
    }
    let (tenant, env) = (a.tenant.clone().unwrap(), a.env.clone().unwrap());
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let now = time::OffsetDateTime::now_utc();
    let r = profiles.resolve(&tenant, &env, &a.flags_at(now)?)?;
    let _lock = ctx.lock_for_write(&ws)?;
    // the CA of the tenant's leaves of this kind (checked before anything is decided)
    crate::ops::ca::open_for(&ws, &profiles, &env, Some(&tenant), r.kind.value)?;
    // a fixture replaces nothing, so there is nothing to keep
    if !a.force
        && !a.fixture
        && let Some(rec) = issue::current_valid(
            &ws,
            &tenant,
            &env,
            r.kind.value,
            r.renew_before.value.to_time(),
            now,
        )?
    {
        let mut rep = issue::report_of(&rec, "unchanged")?;
        rep.next = rep.next_steps();
        ctx.emit(&rep, |out| {
            ctx.note(format!(
                    "{tenant}/{env} already has a valid {} certificate, not due for renewal until {} (renew_before {}); nothing changed. Use --force for a new one.",
                    r.kind.value,
                    report::date(rep.not_after - r.renew_before.value.to_time()),
                    r.renew_before.value
                ))?;
            print_report(out, &rep)?;
            super::revoke::print_next(ctx, &rep.next)?;
            Ok(())
        })?;
        return Ok(Exit::Ok);
    }
    let pass = a.pass.for_env(ctx, &ws, &env)?;
    if let Some(made) = crate::ops::ca::ensure_issuing(
        &ws,
        &profiles,
        &env,
        Some(&tenant),
        r.kind.value,
        pass.as_ref(),
        now,
    )? {
        for c in &made.created {
            ctx.warn(format!(
                "made the {env} issuing CA for {} certificates: {} (serial {}); hand its trust bundle to the gateways that check {} certificates",
                r.kind.value, c.subject, c.serial, r.kind.value
            ));
        }
    }
    let ca = crate::ops::ca::open_for(&ws, &profiles, &env, Some(&tenant), r.kind.value)?;
    let unlocked = ca.unlock(&ws, &profiles, pass.as_ref())?;
    let mut rep = issue::issue(&ws, &r, &unlocked.with(), now, "issue", None)?;
    rep.next = rep.next_steps();
    for w in &rep.warnings {
        ctx.warn(w);
    }
    ctx.emit(&rep, |out| {
        ctx.note(format!(
            "Issued a {}{} certificate for {tenant}/{env}.",
            if r.fixture { "test fixture " } else { "" },
            r.kind.value
        ))?;
        print_report(out, &rep)?;
        super::revoke::print_next(ctx, &rep.next)?;
        Ok(())
    })?;
    Ok(Exit::Ok)
}

pub fn print_report(out: &Out, r: &IssueReport) -> std::io::Result<()> {
    say!(out, "  subject:   {}", sanitize(&r.subject));
    say!(out, "  serial:    {}", r.serial);
    say!(
        out,
        "  valid:     {} .. {}",
        report::rfc3339(r.not_before),
        report::rfc3339(r.not_after)
    );
    say!(out, "  sha256:    {}", r.sha256);
    say!(out, "  cert:      {}", r.files.cert.display());
    if let Some(k) = &r.files.key {
        say!(out, "  key:       {}", k.display());
    }
    say!(out, "  chain:     {}", r.files.chain.display());
    if let Some(p) = &r.files.pfx {
        say!(out, "  pfx:       {}", p.display());
    }
    if let Some(p) = &r.files.pfx_password {
        say!(out, "  password:  {} (mode 0600)", p.display());
    }
    Ok(())
}

/// Most certificates `issue --all` writes behind one durability barrier.
#[derive(Serialize)]
struct AllReport {
    issued: Vec<IssueReport>,
    unchanged: usize,
    failed: Vec<Failure>,
    /// What the operator does next.
    next: Vec<String>,
}

/// A certificate `issue --all` could not issue, its error in words.
#[derive(Serialize)]
struct Failure {
    tenant: String,
    env: String,
    error: String,
}

fn run_all(ctx: &Ctx, a: Args) -> Result<Exit> {
    if !a.dns.is_empty() || !a.ip.is_empty() {
        return Err(UsageError(
            "--dns and --ip name one certificate; they cannot go with --all".into(),
        )
        .into());
    }
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    if let Some(e) = &a.env {
        profiles.check_env(e)?;
    }
    // a file such as profiles/tenants/ca.yaml is no tenant: skipped, and said so
    for r in profiles.rejected_tenants() {
        ctx.warn(format!("{r}; skipped"));
    }
    let flags = a.flags();
    let _lock = ctx.lock_for_write(&ws)?;
    let now = time::OffsetDateTime::now_utc();
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let req = issue_all::Request {
        env: a.env.as_deref(),
        flags: &flags,
        force: a.force,
        jobs,
    };
    let mut plan = issue_all::plan(&ws, &profiles, &req, now)?;
    let unreadable = std::mem::take(&mut plan.failed);
    let mut signers = issue_all::Signers::default();
    for k in plan.signer_keys(&profiles)? {
        let pass = a.pass.for_env(ctx, &ws, &k.env)?;
        crate::ops::ca::ensure_issuing(
            &ws,
            &profiles,
            &k.env,
            k.tenant.as_deref(),
            k.kind,
            pass.as_ref(),
            now,
        )?;
        let ca = crate::ops::ca::open_for(&ws, &profiles, &k.env, k.tenant.as_deref(), k.kind)?;
        let unlocked = ca.unlock(&ws, &profiles, pass.as_ref())?;
        signers.add(k, unlocked);
    }
    let bar = if ctx.json() || ctx.global.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(plan.todo.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({eta})")
                .expect("template"),
        );
        b
    };
    let (issued, failed) = plan.issue(&ws, &signers, jobs, now, &|n| bar.inc(n as u64));
    bar.finish_and_clear();
    let failed: Vec<Failure> = unreadable
        .into_iter()
        .chain(failed)
        .map(|f| Failure {
            error: render_error(&anyhow::Error::new(f.error)),
            tenant: f.tenant,
            env: f.env,
        })
        .collect();
    for f in &failed {
        ctx.error(format!("{}/{}: {}", f.tenant, f.env, f.error));
    }
    let code = if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Error
    };
    let mut next = Vec::new();
    if !issued.is_empty() {
        next.push(format!(
            "hand off each new certificate ({}): mtlsctl export --tenant T --env E --format FORMAT --out DIR",
            issued
                .iter()
                .map(|r| format!("{}/{}", r.tenant, r.env))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !failed.is_empty() {
        next.push(format!(
            "fix what each failure says, then run mtlsctl issue --all again ({} failed)",
            failed.len()
        ));
    }
    if next.is_empty() {
        next.push("nothing: every tenant has a valid certificate".into());
    }
    let rep = AllReport {
        issued,
        unchanged: plan.unchanged,
        failed,
        next,
    };
    ctx.emit(&rep, |out| {
        for r in &rep.issued {
            say!(
                out,
                "issued  {}/{} {} {}",
                sanitize(&r.tenant),
                sanitize(&r.env),
                r.kind,
                r.serial
            );
        }
        say!(
            out,
            "{} issued, {} unchanged, {} failed",
            rep.issued.len(),
            rep.unchanged,
            rep.failed.len()
        );
        super::revoke::print_next(ctx, &rep.next)?;
        Ok(())
    })?;
    Ok(code)
}
