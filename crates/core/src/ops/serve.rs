//! `serve`: the local mTLS test gateway. This side signs the gateway's server
//! certificate with the environment CA in memory when it starts (kind server, SAN for the
//! listen address), records the signing in the audit log, and points the gateway at the
//! environment's CA chain and CRL; `net::serve` listens, checks and answers. The
//! certificate is never stored: it lives as long as the process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use openssl::x509::X509;
use time::OffsetDateTime;

pub use crate::net::serve::{Attempt, Config, ServerIdentity, Upstream};
use crate::ops::{OpError, Result};
use crate::pki::cert::{self, LeafRequest, Sans, Signer};
use crate::pki::dn::Subject;
use crate::pki::keys::{KeyAlgorithm, PrivateKey};
use crate::pki::{Kind, PkiError, fingerprint, serial};
use crate::workspace::Workspace;
use crate::workspace::audit::Event;

/// How long the test gateway's own certificate is valid.
pub const SERVER_CERT_VALIDITY: time::Duration = time::Duration::days(7);

/// How the gateway is to run, as the command line says.
pub struct Settings {
    /// The environment whose CA and CRL client certificates are checked against.
    pub env: String,
    pub listen: SocketAddr,
    /// Extra DNS names for the server certificate, besides the listen address.
    pub dns: Vec<String>,
    pub upstream: Option<Upstream>,
    /// Per-connection read/write timeout.
    pub timeout: Duration,
}

/// The test gateway, bound to its address and ready to serve.
pub struct Gateway {
    pub config: Config,
    listener: TcpListener,
}

/// Signs the gateway's server certificate (an audit line), gathers the environment's CA
/// chain and CRL, and binds the listening socket, so that a bad CRL or a busy port fails
/// before the first client arrives.
pub fn start(
    ws: &Workspace,
    clients: &super::ca::EnvCa,
    server: &super::ca::CaSigner<'_>,
    s: Settings,
    now: OffsetDateTime,
) -> Result<Gateway> {
    let identity = server_identity(ws, &s.env, &server.signer, &s.listen, &s.dns, now)?;
    // the server's chain, then every CA a client certificate may chain to (a CA that
    // issues server certificates only cannot vouch for a client: its EKU says so)
    let mut ca: Vec<X509> = server.ca.chain().to_vec();
    for der in &clients.trust {
        let x = X509::from_der(der).map_err(PkiError::from)?;
        let have = ca
            .iter()
            .any(|c| c.to_der().map(|d| &d == der).unwrap_or(false));
        if !have {
            ca.push(x);
        }
    }
    let crl = clients
        .signing
        .as_ref()
        .map(|l| ws.crl(l))
        .unwrap_or_else(|| clients.crls[0].clone());
    let config = Config {
        crl,
        env: s.env,
        listen: s.listen,
        ca,
        identity,
        upstream: s.upstream,
        timeout: s.timeout,
    };
    let listener = crate::net::serve::bind(&config)?;
    Ok(Gateway { config, listener })
}

impl Gateway {
    /// The address it listens on (the port the system chose for `:0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `stop` turns true, reporting every attempt through `log`.
    pub fn run(&self, stop: &AtomicBool, log: &(dyn Fn(&Attempt) + Sync)) -> Result<()> {
        Ok(crate::net::serve::run(
            &self.config,
            &self.listener,
            stop,
            log,
        )?)
    }
}

/// Signs a short-lived server certificate for `listen` (plus `dns` names) with the env
/// CA, and records it in the audit log. Nothing is written besides the audit line.
fn server_identity(
    ws: &Workspace,
    env: &str,
    signer: &Signer,
    listen: &SocketAddr,
    dns: &[String],
    now: OffsetDateTime,
) -> Result<ServerIdentity> {
    let mut sans = Sans {
        dns: dns.to_vec(),
        ..Sans::default()
    };
    let ip = listen.ip();
    if ip.is_unspecified() {
        sans.ip.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if !sans.dns.iter().any(|d| d == "localhost") {
            sans.dns.push("localhost".into());
        }
    } else {
        sans.ip.push(ip);
    }
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let req = LeafRequest {
        kind: Kind::Server,
        both_ekus: false,
        subject: Subject::parse(&format!("CN=mtlsctl serve {env},O=mtlsctl test gateway"))
            .map_err(OpError::Msg)?,
        sans: sans.clone(),
        validity: SERVER_CERT_VALIDITY,
        clip_to_ca: true,
    };
    let built = cert::sign_leaf(&req, &key.to_rcgen()?, false, signer, now)?;
    let x = X509::from_der(&built.der).map_err(PkiError::from)?;
    let serial = serial::to_hex(&built.serial);
    let sha = fingerprint::hex(&fingerprint::sha256(&built.der));
    let mut ev = Event::new("serve-cert");
    ev.env = Some(env);
    ev.kind = Some("server");
    ev.serial = Some(&serial);
    ev.sha256 = Some(&sha);
    ev.detail = Some("in-memory server certificate of `mtlsctl serve`, not stored".into());
    ws.audit(&ev)?;
    let mut names: Vec<String> = sans.dns.iter().map(|d| format!("DNS:{d}")).collect();
    names.extend(sans.ip.iter().map(|i| format!("IP:{i}")));
    Ok(ServerIdentity {
        cert: x,
        key: key.pkey().clone(),
        serial,
        not_after: built.not_after,
        sans: names,
    })
}
