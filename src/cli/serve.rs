//! `serve`: a local mTLS test gateway for rehearsals and CI. Each attempt is printed on
//! stdout as one JSON line; the banner goes to stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::ca::CaPassArgs;
use super::{Ctx, Exit, UsageError};
use crate::ops::serve::{self, ClientAuth, ServerCert, Settings, Stop, Upstream};
use crate::profile::Dur;
use crate::report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientAuthArg {
    /// No client certificate, no connection (nginx `ssl_verify_client on`)
    Require,
    /// Checked when sent; HTTP decides (Express Gateway, Tyk): see --require-cert-on
    Optional,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each attempt is one JSON line on stdout: result accepted (certificate verified), refused (at TLS), forbidden (403: no certificate on a --require-cert-on path, or not on an allow-list) or error (400 for a malformed or ambiguous request, 408, 413, 502, 503). SIGINT or SIGTERM stops it within a second."
)]
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
    /// Deadline for each TLS handshake, and again for each whole request; also the upstream timeout
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub timeout: Dur,
    /// Whether the TLS handshake demands a client certificate
    #[arg(long, value_enum, value_name = "MODE", default_value = "require")]
    pub client_auth: ClientAuthArg,
    /// With --client-auth optional: answer 403 without a client certificate under this path prefix (repeat)
    #[arg(long, value_name = "PATH_PREFIX")]
    pub require_cert_on: Vec<String>,
    /// Also trust client certificates from this CA file (PEM, e.g. a customer's CA), besides the environment's CA; no CRL is checked for it (repeat)
    #[arg(long, value_name = "FILE")]
    pub client_ca: Vec<PathBuf>,
    /// Trust only --client-ca, instead of the environment's CA and CRL
    #[arg(long, requires = "client_ca")]
    pub client_ca_only: bool,
    /// Present this server certificate (PEM; a full chain file is fine), e.g. from `issue --kind server`, instead of one signed at start; with --key, no CA passphrase needed
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The unencrypted private key of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Allow only client certificates with this subject DN (repeat; 403 otherwise), e.g. 'CN=acme-prod-client,OU=acme,O=Example Platform'
    #[arg(long, value_name = "DN")]
    pub allow_subject: Vec<String>,
    /// Allow only client certificates with this SHA-256 fingerprint (repeat; 403 otherwise)
    #[arg(long, value_name = "SHA256")]
    pub allow_fingerprint: Vec<String>,
    /// Most connections held at once; more wait in the listen backlog
    #[arg(long, value_name = "N", default_value_t = 512)]
    pub max_connections: usize,
    /// Largest request body accepted (413 above it), in bytes
    #[arg(long, value_name = "BYTES", default_value_t = serve::MAX_BODY)]
    pub max_body: usize,
    /// Ask the OCSP responder a client certificate names (profile ca.ocsp_url) and refuse
    /// it (403) unless the answer is good, as nginx's ssl_ocsp on does
    #[arg(long, value_enum, default_value = "on")]
    pub ocsp: OcspArg,
    #[command(flatten)]
    pub pass: CaPassArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OcspArg {
    On,
    Off,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("serve")?;
    let upstream = match &a.upstream {
        Some(u) => Some(Upstream::parse(u).map_err(|e| UsageError(e.to_string()))?),
        None => None,
    };
    if !a.require_cert_on.is_empty() && a.client_auth != ClientAuthArg::Optional {
        return Err(UsageError(
            "--require-cert-on needs --client-auth optional (with require, every path needs a certificate)".into(),
        )
        .into());
    }
    if let Some(p) = a.require_cert_on.iter().find(|p| !p.starts_with('/')) {
        return Err(UsageError(format!(
            "--require-cert-on '{p}' must be a path starting with '/', e.g. /private"
        ))
        .into());
    }
    if a.max_connections == 0 {
        return Err(UsageError("--max-connections must be at least 1".into()).into());
    }
    for f in &a.allow_fingerprint {
        serve::normalize_fingerprint(f)?;
    }
    let ws = ctx.workspace()?;
    let profiles = ctx.profiles(&ws)?;
    let ca = crate::ops::ca::open(&ws, &profiles, &a.env)?;
    // a CRL older than the last one signed would let revoked clients in
    for l in &ca.trust_locs {
        crate::ops::doctor::check_crl(&ws, l)?;
    }
    let timeout = std::time::Duration::try_from(a.timeout.to_time())
        .unwrap_or(std::time::Duration::from_secs(10))
        .max(std::time::Duration::from_millis(100));
    let stop = Stop::new()?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::low_level::pipe::register(sig, stop.waker()?)
            .context("cannot install the signal handler")?;
    }
    let settings = Settings {
        env: a.env.clone(),
        listen: a.listen,
        dns: a.dns.clone(),
        upstream,
        timeout,
        client_auth: match a.client_auth {
            ClientAuthArg::Require => ClientAuth::Require,
            ClientAuthArg::Optional => ClientAuth::Optional,
        },
        require_cert_on: a.require_cert_on.clone(),
        client_ca: a.client_ca.clone(),
        client_ca_only: a.client_ca_only,
        allow_subjects: a.allow_subject.clone(),
        allow_fingerprints: a.allow_fingerprint.clone(),
        max_connections: a.max_connections,
        max_body: a.max_body,
        ocsp: a.ocsp == OcspArg::On,
    };
    let now = time::OffsetDateTime::now_utc();
    let gateway = if let (Some(cert), Some(key)) = (&a.cert, &a.key) {
        let files = ServerCert::Files {
            cert: cert.clone(),
            key: key.clone(),
        };
        serve::start(&ws, &ca, files, settings, now)?
    } else {
        let pass = a.pass.for_env(ctx, &ws, &a.env)?;
        {
            // the server-issuing CA is made on first use
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
        serve::start(&ws, &ca, ServerCert::Signed(&unlocked), settings, now)?
    };
    let cfg = &gateway.config;
    let addr = gateway.local_addr().unwrap_or(a.listen);
    if !ctx.global.quiet {
        let mut trust = Vec::new();
        if !a.client_ca_only {
            trust.push(format!("the {} CA (CRL {})", a.env, cfg.crl.display()));
        }
        for f in &a.client_ca {
            trust.push(format!("{} (no CRL)", f.display()));
        }
        eprintln!(
            "mtlsctl serve: https://{} {} client certificates from {}",
            addr,
            match a.client_auth {
                ClientAuthArg::Require => "requires",
                ClientAuthArg::Optional => "accepts (optional at TLS)",
            },
            trust.join(" and ")
        );
        if !a.require_cert_on.is_empty() {
            eprintln!(
                "  403 without a certificate under {}",
                a.require_cert_on.join(", ")
            );
        }
        if !a.allow_subject.is_empty() || !a.allow_fingerprint.is_empty() {
            eprintln!(
                "  403 for certificates not on the allow-list ({} subject(s), {} fingerprint(s))",
                a.allow_subject.len(),
                a.allow_fingerprint.len()
            );
        }
        eprintln!(
            "  server certificate {} ({}), valid until {}; {}",
            cfg.identity.serial,
            cfg.identity.sans.join(", "),
            report::rfc3339(cfg.identity.not_after),
            match &a.cert {
                Some(c) => format!("from {}", c.display()),
                None => format!(
                    "clients trust it with --ca {}",
                    ws.ca_cert(&a.env).display()
                ),
            }
        );
        eprintln!(
            "  {}; one JSON line per attempt on stdout; Ctrl-C stops",
            match &a.upstream {
                Some(u) => format!("forwarding to {u}"),
                None => "echoing requests as JSON".into(),
            }
        );
    }
    let log: serve::Log = Arc::new(|at: &serve::Attempt| {
        if let Ok(line) = serde_json::to_string(at) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    });
    gateway.run(&stop, log)?;
    if !ctx.global.quiet {
        eprintln!("mtlsctl serve: stopped");
    }
    Ok(Exit::Ok)
}
