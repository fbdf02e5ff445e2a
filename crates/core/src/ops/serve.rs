//! `serve`: the local mTLS test gateway. This side signs the gateway's server
//! certificate with the environment CA in memory when it starts (kind server, SAN for the
//! listen address), records the signing in the audit log, and points the gateway at the
//! environment's CA chain and CRL; `net::serve` listens, checks and answers. The
//! certificate is never stored: it lives as long as the process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openssl::x509::X509;
use time::OffsetDateTime;

pub use crate::net::serve::{
    Attempt, ClientAuth, Config, Log, MAX_BODY, ServerIdentity, Stop, Upstream,
};
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
    /// Deadline for each handshake and for each whole request.
    pub timeout: Duration,
    pub client_auth: ClientAuth,
    /// Path prefixes answered 403 without a client certificate (with `Optional`).
    pub require_cert_on: Vec<String>,
    /// More trust anchors for client certificates (a customer's CA), PEM files.
    pub client_ca: Vec<PathBuf>,
    /// Trust only `client_ca`, not the environment's CA.
    pub client_ca_only: bool,
    pub allow_subjects: Vec<String>,
    /// SHA-256 fingerprints, in hex with or without colons.
    pub allow_fingerprints: Vec<String>,
    pub max_connections: usize,
    pub max_body: usize,
    /// Ask the OCSP responder a client certificate names before answering.
    pub ocsp: bool,
}

/// The test gateway, bound to its address and ready to serve.
pub struct Gateway {
    pub config: Arc<Config>,
    listener: TcpListener,
}

/// Where the gateway's server certificate comes from.
pub enum ServerCert<'a> {
    /// Signed in memory with the environment's CA when the gateway starts.
    Signed(&'a super::ca::CaSigner<'a>),
    /// One of ours from files (`--cert`, a full chain is fine, and its unencrypted `--key`).
    Files { cert: PathBuf, key: PathBuf },
}

/// Makes the gateway's server identity (signs one in memory, an audit line, or loads
/// `--cert/--key`), gathers the trust anchors and the environment's CRL, and binds the
/// listening socket, so that a bad CRL or a busy port fails before the first client
/// arrives.
pub fn start(
    ws: &Workspace,
    ca: &super::ca::EnvCa,
    server: ServerCert<'_>,
    s: Settings,
    now: OffsetDateTime,
) -> Result<Gateway> {
    let identity = match server {
        ServerCert::Files { cert, key } => file_server_identity(&cert, &key)?,
        ServerCert::Signed(signer) => {
            let mut id = server_identity(ws, &s.env, &signer.signer, &s.listen, &s.dns, now)?;
            // a certificate of the server-issuing CA travels with that CA's chain
            id.chain = signer.ca.chain().to_vec();
            id
        }
    };
    let mut client_ca = Vec::new();
    for p in &s.client_ca {
        let certs = super::probe::load_certs(p).map_err(|e| OpError::ServeFile {
            flag: "--client-ca",
            path: p.clone(),
            source: Box::new(e),
        })?;
        for c in certs {
            let der = c.to_der().map_err(PkiError::from)?;
            let info = crate::pki::inspect::cert_info(&der).map_err(|e| OpError::input(p, e))?;
            if !info.is_ca {
                return Err(OpError::ClientCaNotCa {
                    path: p.clone(),
                    subject: info.subject,
                });
            }
            client_ca.push(c);
        }
    }
    let allow_fingerprints = s
        .allow_fingerprints
        .iter()
        .map(|f| normalize_fingerprint(f))
        .collect::<Result<Vec<_>>>()?;
    // every CA a client certificate may chain to, and the CRL of the one that signs
    // the environment's client certificates
    let trust = ca
        .trust
        .iter()
        .map(|d| X509::from_der(d).map_err(PkiError::from))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let crl = ca
        .signing
        .as_ref()
        .map(|l| ws.crl(l))
        .unwrap_or_else(|| ca.crls[0].clone());
    let other_crls = ca.crls.iter().filter(|c| **c != crl).cloned().collect();
    let config = Config {
        crl,
        other_crls,
        env: s.env,
        listen: s.listen,
        ca: trust,
        trust_env_ca: !s.client_ca_only,
        client_ca,
        identity,
        upstream: s.upstream,
        timeout: s.timeout,
        client_auth: s.client_auth,
        require_cert_on: s.require_cert_on,
        allow_subjects: s.allow_subjects,
        allow_fingerprints,
        max_connections: s.max_connections,
        max_body: s.max_body,
        ocsp: s.ocsp,
    };
    let listener = crate::net::serve::bind(&config)?;
    Ok(Gateway {
        config: Arc::new(config),
        listener,
    })
}

/// A SHA-256 fingerprint as 64 lower-case hex digits, from hex with or without colons
/// (and an optional `sha256:` prefix, as Tyk writes certificate IDs).
pub fn normalize_fingerprint(f: &str) -> Result<String> {
    let t = f.trim();
    let t = t
        .strip_prefix("sha256:")
        .or_else(|| t.strip_prefix("SHA256:"))
        .unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(OpError::BadFingerprint {
            value: f.to_string(),
        });
    }
    Ok(hex.to_ascii_lowercase())
}

/// The server certificate and key of `--cert/--key` (e.g. one `issue --kind server` made).
fn file_server_identity(cert: &std::path::Path, key: &std::path::Path) -> Result<ServerIdentity> {
    let id = super::probe::file_identity(cert, key, None).map_err(|e| match e {
        OpError::ProbeKeyPassphraseNeeded { path } => OpError::ServeKeyEncrypted { path },
        o @ OpError::KeyNotOfCert { .. } => OpError::ServeFile {
            flag: "--key",
            path: key.to_path_buf(),
            source: Box::new(o),
        },
        o => OpError::ServeFile {
            flag: "--cert/--key",
            path: cert.to_path_buf(),
            source: Box::new(o),
        },
    })?;
    let der = id.cert.to_der().map_err(PkiError::from)?;
    let b = crate::pki::inspect::cert_info(&der).map_err(|e| OpError::input(cert, e))?;
    let mut sans: Vec<String> = b.san.dns.iter().map(|d| format!("DNS:{d}")).collect();
    sans.extend(b.san.ip.iter().map(|i| format!("IP:{i}")));
    Ok(ServerIdentity {
        cert: id.cert,
        chain: id.chain,
        key: id.key,
        serial: b.serial,
        not_after: b.not_after,
        sans,
    })
}

impl Gateway {
    /// The address it listens on (the port the system chose for `:0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `stop` is triggered, reporting every attempt through `log`.
    pub fn run(&self, stop: &Stop, log: Log) -> Result<()> {
        Ok(crate::net::serve::run(
            self.config.clone(),
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
        chain: Vec::new(),
        key: key.pkey().clone(),
        serial,
        not_after: built.not_after,
        sans: names,
    })
}
