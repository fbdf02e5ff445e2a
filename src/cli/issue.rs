//! `issue`: one tenant's certificate, or every missing one with --all.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow};
use serde::Serialize;

use super::ca::CaPassArgs;
use super::{Ctx, Exit, Out, UsageError, render_error, say};
use crate::ops::issue::{self, IssueReport};
use crate::pki::Kind;
use crate::pki::keys::KeyAlgorithm;
use crate::pki::pkcs12::PfxCompat;
use crate::profile::{Dur, LeafFlags, Resolved};
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
    fn flags(&self) -> LeafFlags {
        LeafFlags {
            kind: self.kind,
            key: self.key,
            validity: self.validity,
            renew_before: self.renew_before,
            dns: self.dns.clone(),
            ip: self.ip.clone(),
            pfx_compat: self.pfx_target.or(self.legacy.then_some(PfxCompat::Legacy)),
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
    let r = profiles.resolve(&tenant, &env, &a.flags())?;
    let _lock = ctx.lock_for_write(&ws)?;
    let ca = crate::ops::ca::open(&ws, &profiles, &env)?;
    let now = time::OffsetDateTime::now_utc();
    if !a.force
        && let Some(rec) = issue::current_valid(
            &ws,
            &tenant,
            &env,
            r.kind.value,
            r.renew_before.value.to_time(),
            now,
        )?
    {
        let rep = issue::report_of(&rec, "unchanged")?;
        ctx.emit(&rep, |out| {
            ctx.note(format!(
                    "{tenant}/{env} already has a valid {} certificate, not due for renewal until {} (renew_before {}); nothing changed. Use --force for a new one.",
                    r.kind.value,
                    report::date(rep.not_after - r.renew_before.value.to_time()),
                    r.renew_before.value
                ))?;
            print_report(out, &rep)?;
            Ok(())
        })?;
        return Ok(Exit::Ok);
    }
    let pass = a.pass.for_env(ctx, &ws, &env)?;
    let unlocked = ca.unlock(&ws, &profiles, pass.as_ref())?;
    let rep = issue::issue(&ws, &r, &unlocked.signer, ca.chain(), now, "issue", None)?;
    for w in &rep.warnings {
        ctx.warn(w);
    }
    ctx.emit(&rep, |out| {
        ctx.note(format!(
            "Issued a {} certificate for {tenant}/{env}.",
            r.kind.value
        ))?;
        print_report(out, &rep)?;
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
const BATCH: usize = 32;

#[derive(Serialize)]
struct Failure {
    tenant: String,
    env: String,
    error: String,
}

#[derive(Serialize)]
struct AllReport {
    issued: Vec<IssueReport>,
    unchanged: usize,
    failed: Vec<Failure>,
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
    let flags = a.flags();
    let _lock = ctx.lock_for_write(&ws)?;
    let now = time::OffsetDateTime::now_utc();
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // plan: every tenant x env lacking a valid certificate. Reading and resolving a
    // thousand profiles is a tenth of a second, so it runs on every core too; the first
    // error in tenant order is the one reported, as it would be in a plain loop.
    let plan_tenant = |t: &str| -> Result<(Vec<Resolved>, usize)> {
        let (path, tf) = profiles.tenant(t)?;
        let mut todo = Vec::new();
        let mut unchanged = 0usize;
        for e in &tf.environments.value {
            if a.env.as_ref().is_some_and(|x| x != &e.value) {
                continue;
            }
            let r = profiles.resolve_parsed(t, &path, &tf, &e.value, &flags)?;
            let valid = issue::current_valid(
                &ws,
                t,
                &e.value,
                r.kind.value,
                r.renew_before.value.to_time(),
                now,
            )?;
            if valid.is_some() && !a.force {
                unchanged += 1;
            } else {
                todo.push(r);
            }
        }
        Ok((todo, unchanged))
    };
    let names = profiles.tenant_names();
    let per = names.len().div_ceil(jobs).max(1);
    let planned: Vec<Result<(Vec<Resolved>, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(per)
            .map(|part| s.spawn(|| part.iter().map(|t| plan_tenant(t)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("planning thread"))
            .collect()
    });
    let mut todo: Vec<Resolved> = Vec::new();
    let mut unchanged = 0usize;
    for p in planned {
        let (t, u) = p?;
        todo.extend(t);
        unchanged += u;
    }
    // one signer per environment that has work
    let mut envs: Vec<String> = todo.iter().map(|r| r.env.clone()).collect();
    envs.sort();
    envs.dedup();
    let mut signers = std::collections::BTreeMap::new();
    for e in &envs {
        let ca = crate::ops::ca::open(&ws, &profiles, e)?;
        let pass = a.pass.for_env(ctx, &ws, e)?;
        let s = ca.unlock(&ws, &profiles, pass.as_ref())?.signer;
        signers.insert(e.clone(), (s, ca.chain().to_vec()));
    }
    let bar = if ctx.json() || ctx.global.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(todo.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({eta})")
                .expect("template"),
        );
        b
    };
    // Workers take chunks of the plan; each chunk is written with one durability
    // barrier (see ops::issue::issue_batch) rather than an fsync per file.
    let chunk = (todo.len() / jobs / 4).clamp(1, BATCH);
    let next = AtomicUsize::new(0);
    let issued = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(todo.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(chunk, Ordering::Relaxed);
                    if i >= todo.len() {
                        break;
                    }
                    let part = &todo[i..(i + chunk).min(todo.len())];
                    let items: Vec<issue::BatchItem<'_>> = part
                        .iter()
                        .map(|r| {
                            let (signer, chain) = &signers[&r.env];
                            issue::BatchItem {
                                resolved: r,
                                signer,
                                chain,
                            }
                        })
                        .collect();
                    let results = issue::issue_batch(&ws, &items, now, "issue");
                    for (r, res) in part.iter().zip(results) {
                        match res {
                            Ok(rep) => issued.lock().unwrap().push(rep),
                            Err(e) => failed.lock().unwrap().push(Failure {
                                tenant: r.tenant.clone(),
                                env: r.env.clone(),
                                error: render_error(&anyhow!(e)),
                            }),
                        }
                    }
                    bar.inc(part.len() as u64);
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut issued = issued.into_inner().unwrap();
    issued.sort_by(|x, y| (&x.tenant, &x.env).cmp(&(&y.tenant, &y.env)));
    let failed = failed.into_inner().unwrap();
    for f in &failed {
        eprintln!("error: {}/{}: {}", f.tenant, f.env, f.error);
    }
    let code = if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Error
    };
    if ctx.json() {
        ctx.emit_json(&AllReport {
            issued,
            unchanged,
            failed,
        })?;
    } else {
        for r in &issued {
            say!(
                ctx.out,
                "issued  {}/{} {} {}",
                r.tenant,
                r.env,
                r.kind,
                r.serial
            );
        }
        say!(
            ctx.out,
            "{} issued, {} unchanged, {} failed",
            issued.len(),
            unchanged,
            failed.len()
        );
    }
    Ok(code)
}
