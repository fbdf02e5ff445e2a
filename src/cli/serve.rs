//! `serve`: a local mTLS test gateway for rehearsals and CI. Each attempt is printed on
//! stdout as one JSON line; the banner goes to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};

use super::ca::CaPassArgs;
use super::{Ctx, Exit, UsageError};
use crate::ops::serve::{self, Settings, Upstream};
use crate::profile::Dur;
use crate::report;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Environment whose CA and CRL client certificates are checked against
    #[arg(long)]
    pub env: String,
    /// Address to listen on
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Forward accepted requests to this plain-HTTP URL (default: echo them as JSON)
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Extra DNS name for the server certificate (repeat), besides the listen address
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// Per-connection read/write timeout
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub timeout: Dur,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("serve")?;
    let upstream = match &a.upstream {
        Some(u) => Some(Upstream::parse(u).map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let ca = crate::ops::ca::open(&ws, &profiles, &a.env)?;
    // a CRL older than the last one signed would let revoked clients in
    for l in &ca.trust_locs {
        crate::ops::doctor::check_crl(&ws, l)?;
    }
    let pass = a.pass.for_env(ctx, &ws, &a.env)?;
    let now = time::OffsetDateTime::now_utc();
    {
        let _lock = ctx.lock_for_write(&ws)?;
        crate::ops::ca::ensure_issuing(
            &ws,
            &profiles,
            &a.env,
            None,
            crate::pki::Kind::Server,
            pass.as_ref(),
            now,
        )?;
    }
    let server_ca =
        crate::ops::ca::open_for(&ws, &profiles, &a.env, None, crate::pki::Kind::Server)?;
    let unlocked = server_ca.unlock(&ws, &profiles, pass.as_ref())?;
    let timeout = std::time::Duration::try_from(a.timeout.to_time())
        .unwrap_or(std::time::Duration::from_secs(10))
        .max(std::time::Duration::from_millis(100));
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    let settings = Settings {
        env: a.env.clone(),
        listen: a.listen,
        dns: a.dns.clone(),
        upstream,
        timeout,
    };
    let gateway = serve::start(&ws, &ca, &unlocked, settings, now)?;
    drop(unlocked);
    let cfg = &gateway.config;
    let addr = gateway.local_addr().unwrap_or(a.listen);
    if !ctx.global.quiet {
        eprintln!(
            "mtlsctl serve: https://{} requires client certificates from the {} CA, checked against {}",
            addr,
            a.env,
            cfg.crl.display()
        );
        eprintln!(
            "  server certificate {} ({}), valid until {}; clients trust it with --ca {}",
            cfg.identity.serial,
            cfg.identity.sans.join(", "),
            report::rfc3339(cfg.identity.not_after),
            ws.ca_cert(&a.env).display()
        );
        eprintln!(
            "  {}; one JSON line per attempt on stdout; Ctrl-C stops",
            match &a.upstream {
                Some(u) => format!("forwarding to {u}"),
                None => "echoing requests as JSON".into(),
            }
        );
    }
    let log = |at: &serve::Attempt| {
        if let Ok(line) = serde_json::to_string(at) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    gateway.run(&stop, &log)?;
    if !ctx.global.quiet {
        eprintln!("mtlsctl serve: stopped");
    }
    Ok(Exit::Ok)
}
