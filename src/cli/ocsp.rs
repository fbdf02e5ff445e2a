//! `ocsp serve`: the OCSP responder (and CRL and CA certificate server) for the CAs of
//! one or every environment.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use super::ca::CaPassArgs;
use super::{Ctx, Exit};
use crate::ops::ocsp::{self, ServeOptions, Service};
use crate::profile::Dur;

#[derive(Debug, clap::Subcommand)]
pub enum OcspCmd {
    /// Answer OCSP requests for every CA of an environment from the workspace's records
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "An RFC 6960 OCSP responder over HTTP, POST and GET (RFC 5019), for every CA of the environment (tenants' own CAs and retired CAs included; an offline root is not served). Answers good for a serial the CA issued, revoked (time and reason) for one its state.json lists, unknown otherwise; a revocation counts from the next request, with no restart. Nonces are echoed; thisUpdate is now, nextUpdate now plus the profile's ca.ocsp_validity (default 1h). Garbage gets malformedRequest, a CA it does not serve unauthorized.\n\nEach CA answers through a delegated responder certificate (EKU OCSPSigning, id-pkix-ocsp-nocheck, valid 2 days, renewed by the responder a third before its end), signed at start with the CA key and kept in memory only: the CA passphrase is needed, and every signing writes an audit line. The same port serves each CA's current CRL (DER) at the path of its ca.crl_url and its certificate at the path of ca.issuer_url, re-read from disk for every request.\n\nOne JSON line per request on stdout (docs/json.md). At most --workers connections are served at once, the rest queue (then get 503); each request must arrive within --timeout. SIGINT or SIGTERM stops it after the requests in flight. docs/revocation.md has a systemd unit and a container example."
)]
pub struct ServeArgs {
    /// Environment whose CAs to answer for
    #[arg(
        long,
        required_unless_present = "all_envs",
        conflicts_with = "all_envs"
    )]
    pub env: Option<String>,
    /// Answer for the CAs of every environment of mtlsctl.yaml
    #[arg(long)]
    pub all_envs: bool,
    /// Address to listen on (plain HTTP: OCSP responses and CRLs are signed)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Connections served at once
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub workers: usize,
    /// How long a request may take to arrive (and a kept-alive connection may idle)
    #[arg(long, value_name = "DUR", default_value = "5s")]
    pub timeout: Dur,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

pub fn run(ctx: &Ctx, c: OcspCmd) -> Result<Exit> {
    match c {
        OcspCmd::Serve(a) => serve(ctx, a),
    }
}

fn serve(ctx: &Ctx, a: ServeArgs) -> Result<Exit> {
    ctx.only_table_json("ocsp serve")?;
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let envs: Vec<String> = match &a.env {
        Some(e) => vec![e.clone()],
        None => profiles.env_names(),
    };
    let mut passes = std::collections::HashMap::new();
    for e in &envs {
        passes.insert(e.clone(), a.pass.for_env(ctx, &ws, e)?);
    }
    let listener = ocsp::bind(a.listen)?;
    let now = time::OffsetDateTime::now_utc();
    let svc = Service::open(
        &ws,
        &profiles,
        &envs,
        &|e| passes.get(e).cloned().flatten(),
        now,
    )?;
    drop(passes);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let addr = listener.local_addr().unwrap_or(a.listen);
    if !ctx.global.quiet {
        eprintln!(
            "mtlsctl ocsp serve: http://{addr}/ answers OCSP for {} CA(s) of {}",
            svc.served().len(),
            envs.join(", ")
        );
        for s in svc.served() {
            eprintln!(
                "  {} ({}): responder {} until {}{}{}",
                s.ca,
                s.subject,
                s.responder_serial,
                crate::report::rfc3339(s.responder_not_after),
                s.crl_path
                    .as_deref()
                    .map(|p| format!(", CRL at {p}"))
                    .unwrap_or_default(),
                s.cert_path
                    .as_deref()
                    .map(|p| format!(", certificate at {p}"))
                    .unwrap_or_default()
            );
        }
        eprintln!("  one JSON line per request on stdout; Ctrl-C stops");
    }
    let timeout = std::time::Duration::try_from(a.timeout.to_time())
        .unwrap_or(std::time::Duration::from_secs(5))
        .max(std::time::Duration::from_millis(100));
    let opts = ServeOptions {
        workers: a.workers.clamp(1, 1024),
        timeout,
    };
    let log = |l: &ocsp::LogLine| {
        if let Ok(line) = serde_json::to_string(l) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    ocsp::run(&svc, &listener, &opts, &stop, &log);
    if !ctx.global.quiet {
        eprintln!("mtlsctl ocsp serve: stopped");
    }
    Ok(Exit::Ok)
}
