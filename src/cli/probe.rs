//! `probe`: handshake with a live mTLS endpoint using a client certificate, make one
//! HTTP request, and say in plain words what works and what does not.

use std::path::PathBuf;

use anyhow::{Context, Result};
use secrecy::ExposeSecret;

use super::secrets;
use super::{Ctx, Exit, Out, UsageError, say};
use crate::ops::probe::{self, Identity, ProbeReport};
use crate::profile::Dur;
use crate::report::sanitize;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the whole path works (handshake, server verified, our certificate accepted, HTTP 2xx/3xx); 1 it does not, and the diagnosis says why (or an error); 2 usage error."
)]
pub struct Args {
    /// The endpoint, e.g. https://api.customer.example/health
    pub url: String,
    /// Present this tenant's current client certificate (with --env)
    #[arg(long, requires = "env", conflicts_with_all = ["cert", "pfx"])]
    pub tenant: Option<String>,
    /// Environment of --tenant
    #[arg(long, requires = "tenant")]
    pub env: Option<String>,
    /// Present the tenant's staged successor instead (see renew --stage); the result is
    /// recorded in the audit log for activate
    #[arg(long, requires = "tenant")]
    pub staged: bool,
    /// Present this certificate (PEM or DER; a full chain file is fine), with --key
    #[arg(long, value_name = "FILE", requires = "key", conflicts_with = "pfx")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// File whose first line is the passphrase of --key, if encrypted (also MTLSCTL_KEY_PASSPHRASE)
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// Present the certificate, key and chain of this PFX
    #[arg(long, value_name = "FILE")]
    pub pfx: Option<PathBuf>,
    /// File whose first line is the PFX password (also MTLSCTL_PFX_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// CA certificate(s) to verify the server with (default: the system roots)
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Server name to send (SNI) and check the server certificate against
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Extra request header "Name: value" (repeat). Prefer --basic-auth-file for secrets
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// File whose first line is user:password, sent as HTTP Basic authorization
    #[arg(long, value_name = "FILE")]
    pub basic_auth_file: Option<PathBuf>,
    /// Deadline for the whole exchange: connect, handshake, request and answer
    #[arg(long, value_name = "DUR", default_value = "10s")]
    pub timeout: Dur,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<Exit> {
    ctx.only_table_json("probe")?;
    let mut headers = Vec::new();
    for h in &a.headers {
        let Some((k, v)) = h.split_once(':') else {
            return Err(UsageError(format!(
                "--header '{h}' has no ':': write it as 'Name: value'"
            ))
            .into());
        };
        let k = k.trim();
        if k.is_empty()
            || k.contains(|c: char| c.is_whitespace() || c.is_control())
            || v.contains(['\r', '\n'])
        {
            return Err(UsageError(format!("--header '{h}' is not a valid header")).into());
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    if let Some(f) = &a.basic_auth_file {
        let s = secrets::read_secret_file(f)?;
        if !s.expose_secret().contains(':') {
            return Err(UsageError(format!(
                "{} must hold user:password on its first line",
                f.display()
            ))
            .into());
        }
        headers.push(probe::basic_auth(s.expose_secret()));
    }
    let ws = if a.tenant.is_some() {
        Some(ctx.workspace()?)
    } else {
        // optional: only to say whether our certificate is revoked or superseded
        ctx.workspace().ok()
    };
    let mut staged_serial: Option<String> = None;
    let identity: Option<Identity> = if let (Some(t), Some(e)) = (&a.tenant, &a.env) {
        let ws = ws.as_ref().expect("workspace opened above");
        let profiles = ctx.profiles(ws)?;
        profiles.check_env(e)?;
        if a.staged {
            let (id, serial) = probe::staged_identity(ws, t, e)?;
            staged_serial = Some(serial);
            Some(id)
        } else {
            Some(probe::tenant_identity(ws, t, e)?)
        }
    } else if let (Some(c), Some(k)) = (&a.cert, &a.key) {
        let pass =
            secrets::key_passphrase(k, a.key_passphrase_file.as_deref(), ctx.global.no_input)?;
        Some(probe::file_identity(c, k, pass.as_ref())?)
    } else if let Some(p) = &a.pfx {
        let pw = secrets::pfx_password(a.password_file.as_deref(), false, ctx.global.no_input)?;
        Some(probe::pfx_identity(p, &pw)?)
    } else {
        None
    };
    let ca = match &a.ca {
        Some(p) => Some(probe::load_certs(p).with_context(|| "--ca")?),
        None => None,
    };
    let timeout = std::time::Duration::try_from(a.timeout.to_time())
        .unwrap_or(std::time::Duration::from_secs(10))
        .max(std::time::Duration::from_millis(100));
    let req = probe::Request {
        url: &a.url,
        identity: identity.as_ref(),
        ca: ca.as_deref(),
        sni: a.sni.as_deref(),
        headers: &headers,
        timeout,
    };
    let rep = probe::probe(ws.as_ref(), &req)?;
    if let (Some(serial), Some(ws), Some(t), Some(e)) = (&staged_serial, &ws, &a.tenant, &a.env) {
        let _lock = ctx.lock_for_write(ws)?;
        probe::audit_probe(ws, t, e, serial, rep.ok, &a.url)
            .with_context(|| "recording the probe of the staged certificate in audit.log")?;
    }
    if !rep.ok {
        ctx.out.unquiet();
    }
    ctx.emit(&rep, |out| Ok(render(out, &rep)?))?;
    Ok(if rep.ok { Exit::Ok } else { Exit::Error })
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn render(out: &Out, r: &ProbeReport) -> std::io::Result<()> {
    let x = &r.exchange;
    say!(out, "probe {}", sanitize(&x.url));
    say!(
        out,
        "  address:           {}{}",
        x.address.as_deref().unwrap_or("-"),
        x.sni
            .as_ref()
            .map(|s| format!(" (SNI {})", sanitize(s)))
            .unwrap_or_default()
    );
    if x.connected {
        say!(
            out,
            "  TLS:               {} {}",
            x.tls_version.as_deref().unwrap_or("-"),
            x.cipher.as_deref().unwrap_or("")
        );
    }
    for (i, c) in x.server_chain.iter().enumerate() {
        say!(
            out,
            "  server chain [{i}]:  {} (issuer {})",
            sanitize(&c.subject),
            sanitize(&c.issuer)
        );
    }
    if x.handshake || !x.server_chain.is_empty() {
        match &x.server_verify_error {
            None if x.server_verified => {
                say!(out, "  server verified:   yes, against {}", x.server_trust)
            }
            e => say!(
                out,
                "  server verified:   NO, against {}: {}",
                x.server_trust,
                e.as_deref().unwrap_or("-")
            ),
        }
    }
    if x.connected {
        say!(out, "  client cert asked: {}", yes(x.client_cert_requested));
        for n in &x.acceptable_ca_names {
            say!(out, "  acceptable CA:     {}", sanitize(n));
        }
    }
    match &x.client_certificate {
        Some(c) => {
            say!(
                out,
                "  our certificate:   {} (serial {}, issuer {})",
                sanitize(&c.subject),
                c.serial,
                sanitize(&c.issuer)
            );
            if let Some(b) = x.client_chains_to_acceptable_ca {
                say!(out, "  chains to an acceptable CA: {}", yes(b));
            }
        }
        None => say!(out, "  our certificate:   none sent"),
    }
    for n in &r.local_notes {
        say!(out, "  note:              {}", sanitize(n));
    }
    say!(
        out,
        "  accepted:          {}",
        match x.client_cert_accepted {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "unknown",
        }
    );
    if let Some(s) = x.http_status {
        say!(
            out,
            "  HTTP:              {s} {}",
            sanitize(x.http_reason.as_deref().unwrap_or(""))
        );
    }
    if let Some(e) = &x.error {
        say!(out, "  error:             {}", sanitize(e));
    }
    say!(out, "diagnosis:");
    for d in &r.diagnosis {
        say!(out, "  - {}", sanitize(d));
    }
    say!(out, "result: {}", if r.ok { "OK" } else { "FAILED" });
    Ok(())
}
