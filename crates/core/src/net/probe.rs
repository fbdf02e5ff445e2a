//! `probe`: a real TLS handshake with a client certificate, then one HTTP/1.1 round trip
//! (under TLS 1.3 a server's refusal of the client certificate only shows on the first
//! read), and a diagnosis in plain words.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslContextBuilder, SslMethod, SslRef, SslStream, SslVerifyMode};
use openssl::stack::{Stack, StackRef};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509NameRef, X509PurposeId, X509StoreContext};
use secrecy::SecretString;
use serde::Serialize;
use x509_parser::prelude::FromDer;

use crate::ops::{OpError, Result};
use crate::pki::PkiError;
use crate::pki::inspect::{self, certificates};
use crate::pki::keys::PrivateKey;
use crate::pki::{Kind, pkcs12};
use crate::workspace::{Workspace, fsutil};

// Not bound by the openssl crate: the CA names a server sent in its CertificateRequest
// (client side), and a hook that runs only when the server asks for a certificate.
unsafe extern "C" {
    fn SSL_get_client_CA_list(s: *const openssl_sys::SSL) -> *mut openssl_sys::stack_st_X509_NAME;
    fn SSL_set_cert_cb(
        s: *mut openssl_sys::SSL,
        cb: Option<unsafe extern "C" fn(*mut openssl_sys::SSL, *mut libc::c_void) -> libc::c_int>,
        arg: *mut libc::c_void,
    );
}

unsafe extern "C" fn mark_requested(
    _ssl: *mut openssl_sys::SSL,
    arg: *mut libc::c_void,
) -> libc::c_int {
    if !arg.is_null() {
        // SAFETY: `arg` is the AtomicBool that `probe` keeps alive for the connection.
        unsafe { (*(arg as *const AtomicBool)).store(true, Ordering::SeqCst) };
    }
    1
}

/// The CA names a server asked client certificates to chain to (client side, after the
/// handshake).
pub fn requested_ca_names(ssl: &SslRef) -> Vec<Vec<u8>> {
    // SAFETY: the stack belongs to the SSL object and lives as long as `ssl`; we copy
    // each name out as DER before returning.
    unsafe {
        let p = SSL_get_client_CA_list(ssl.as_ptr());
        if p.is_null() {
            return Vec::new();
        }
        let st: &StackRef<openssl::x509::X509Name> = StackRef::from_ptr(p);
        st.iter().filter_map(|n| n.to_der().ok()).collect()
    }
}

/// RFC 4514 string of a DER-encoded X.509 name.
pub fn name_der_string(der: &[u8]) -> String {
    match x509_parser::x509::X509Name::from_der(der) {
        Ok((_, n)) => crate::pki::dn::rfc4514(&n),
        Err(_) => "(unparsable name)".into(),
    }
}

pub fn name_string(n: &X509NameRef) -> String {
    n.to_der()
        .map(|d| name_der_string(&d))
        .unwrap_or_else(|_| "(unparsable name)".into())
}

/// The client certificate, key and chain to present.
pub struct Identity {
    pub cert: X509,
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    /// Where it came from, for the report.
    pub source: String,
}

impl Identity {
    /// The tenant's current client certificate in the workspace.
    pub fn from_workspace(ws: &Workspace, tenant: &str, env: &str) -> Result<Identity> {
        let rec = ws.current_leaf(tenant, env, Kind::Client)?.ok_or_else(|| {
            OpError::Msg(format!(
                "{tenant}/{env} has no current client certificate: run `mtlsctl issue --tenant {tenant} --env {env}`, or probe with --cert/--key"
            ))
        })?;
        if !rec.key_path().is_file() {
            return Err(OpError::Msg(format!(
                "{} has no key.pem beside it: probe with --cert and --key",
                rec.dir.display()
            )));
        }
        let mut id = Identity::from_files(&rec.cert_path(), &rec.key_path(), None)?;
        if id.chain.is_empty() && rec.chain_path().is_file() {
            id.chain = load_certs(&rec.chain_path())?;
        }
        id.source = format!(
            "{tenant}/{env} current client certificate ({})",
            rec.meta.serial
        );
        Ok(id)
    }

    /// A certificate file (a full chain is fine) and its key.
    pub fn from_files(
        cert: &Path,
        key: &Path,
        passphrase: Option<&SecretString>,
    ) -> Result<Identity> {
        let mut certs = load_certs(cert)?;
        let leaf = certs.remove(0);
        let kb = zeroize::Zeroizing::new(fsutil::read(key)?);
        let k = PrivateKey::from_pem_or_der(&kb, passphrase).map_err(|e| match e {
            PkiError::PassphraseNeeded => OpError::Msg(format!(
                "{} is encrypted: give its passphrase with --key-passphrase-file or MTLSCTL_KEY_PASSPHRASE",
                key.display()
            )),
            o => OpError::Msg(format!("{}: {o}", key.display())),
        })?;
        check_pair(&leaf, k.pkey(), key)?;
        Ok(Identity {
            cert: leaf,
            chain: certs,
            key: k.pkey().clone(),
            source: crate::workspace::absolute(cert).display().to_string(),
        })
    }

    /// A PKCS#12 bundle.
    pub fn from_pfx(path: &Path, password: &SecretString) -> Result<Identity> {
        let der = fsutil::read(path)?;
        let o = pkcs12::open(&der, password).map_err(|e| match e {
            PkiError::PfxPassword => OpError::Msg(format!(
                "cannot open {}: wrong password (--password-file / MTLSCTL_PFX_PASSWORD) or not a PFX",
                path.display()
            )),
            o => o.into(),
        })?;
        let (Some(cert), Some(key)) = (o.cert, o.key) else {
            return Err(OpError::Msg(format!(
                "{} holds no certificate with its key",
                path.display()
            )));
        };
        check_pair(&cert, key.pkey(), path)?;
        Ok(Identity {
            cert,
            chain: o.chain,
            key: key.pkey().clone(),
            source: crate::workspace::absolute(path).display().to_string(),
        })
    }
}

fn check_pair(cert: &X509, key: &PKey<Private>, path: &Path) -> Result<()> {
    let ok = cert.public_key().map(|p| p.public_eq(key)).unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(OpError::Msg(format!(
            "the key {} does not belong to the certificate",
            path.display()
        )))
    }
}

pub fn load_certs(p: &Path) -> Result<Vec<X509>> {
    let data = fsutil::read(p)?;
    let ders = certificates(&data).map_err(|e| OpError::Msg(format!("{}: {e}", p.display())))?;
    ders.iter()
        .map(|d| X509::from_der(d).map_err(|e| PkiError::from(e).into()))
        .collect()
}

/// What the workspace knows about a certificate we present: revoked, superseded or
/// expired. Empty when the certificate is not from this workspace.
pub fn local_notes(ws: &Workspace, cert: &X509, now: time::OffsetDateTime) -> Vec<String> {
    let mut notes = Vec::new();
    let Some(b) = brief(cert) else {
        return notes;
    };
    if b.not_after <= now {
        notes.push(format!(
            "our certificate {} expired on {}",
            b.serial,
            crate::pki::text::rfc3339(b.not_after)
        ));
    }
    let Ok(leaves) = ws.leaves(&crate::workspace::inventory::Filter::default()) else {
        return notes;
    };
    let Some(rec) = leaves.into_iter().find(|r| r.meta.serial == b.serial) else {
        return notes;
    };
    let env = rec.meta.env.clone();
    let in_state = ws
        .load_ca_state(&env)
        .ok()
        .and_then(|st| st.revocations.into_iter().find(|r| r.serial == b.serial));
    if let Some(r) = in_state {
        notes.push(format!(
            "our certificate {} ({}/{}) was revoked on {} ({}) by this workspace's {env} CA",
            b.serial,
            rec.meta.tenant,
            env,
            crate::pki::text::rfc3339(r.revoked_at),
            r.reason
        ));
    } else if rec.meta.status == crate::workspace::inventory::Status::Revoked {
        notes.push(format!(
            "our certificate {} ({}/{}) is marked revoked in this workspace",
            b.serial, rec.meta.tenant, env
        ));
    } else if rec.meta.status == crate::workspace::inventory::Status::Superseded {
        notes.push(format!(
            "our certificate {} ({}/{}) has been superseded by {}",
            b.serial,
            rec.meta.tenant,
            env,
            rec.meta.superseded_by.clone().unwrap_or_default()
        ));
    }
    notes
}

/// A parsed `https://host[:port]/path` URL.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> std::result::Result<Target, String> {
        let rest = url.strip_prefix("https://").ok_or_else(|| {
            format!("'{url}' is not an https:// URL: probe speaks TLS, e.g. https://api.example.com/health")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = split_host_port(authority, 443)
            .ok_or_else(|| format!("'{url}' has no valid host[:port]"))?;
        Ok(Target { host, port, path })
    }
}

/// `host:port`, `[v6]:port` or `host` (with the default port).
pub fn split_host_port(s: &str, default: u16) -> Option<(String, u16)> {
    if s.is_empty() || s.contains('@') {
        return None;
    }
    if let Some(r) = s.strip_prefix('[') {
        let end = r.find(']')?;
        let host = r[..end].to_string();
        let after = &r[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => Some((s.to_string(), default)),
        None => Some((s.to_string(), default)),
    }
}

/// What to probe.
pub struct Request<'a> {
    pub url: &'a str,
    pub identity: Option<&'a Identity>,
    /// Trust anchors for the server's certificate (None: the system roots).
    pub ca: Option<&'a [X509]>,
    pub sni: Option<&'a str>,
    /// Extra request headers, e.g. Authorization.
    pub headers: &'a [(String, String)],
    pub timeout: Duration,
    /// Facts about our certificate known locally, used by the diagnosis.
    pub local_notes: Vec<String>,
}

/// One certificate as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CertBrief {
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: time::OffsetDateTime,
}

fn brief(x: &X509) -> Option<CertBrief> {
    let der = x.to_der().ok()?;
    // the scan's summary: the names, serial and date, without fingerprints
    let i = inspect::brief(&der).ok()?;
    Some(CertBrief {
        subject: i.subject,
        issuer: i.issuer,
        serial: i.serial,
        not_after: i.not_after,
    })
}

/// What a probe found.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    pub url: String,
    pub address: Option<String>,
    pub sni: Option<String>,
    pub connected: bool,
    pub handshake: bool,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
    pub server_chain: Vec<CertBrief>,
    /// Whether the server chain verifies (with the host name) against --ca or the system roots.
    pub server_verified: bool,
    pub server_trust: String,
    pub server_verify_error: Option<String>,
    /// Whether the server sent a CertificateRequest.
    pub client_cert_requested: bool,
    /// The CA names from the CertificateRequest (RFC 4514).
    pub acceptable_ca_names: Vec<String>,
    pub client_certificate: Option<CertBrief>,
    pub client_source: Option<String>,
    /// Whether our certificate or chain names one of the acceptable CAs (None: no names
    /// sent, or no certificate of ours).
    pub client_chains_to_acceptable_ca: Option<bool>,
    /// Whether the server accepted our certificate (None: not known).
    pub client_cert_accepted: Option<bool>,
    pub http_status: Option<u16>,
    pub http_reason: Option<String>,
    /// The start of the response body (at most 512 bytes).
    pub http_body_excerpt: Option<String>,
    /// The TLS or I/O error that ended the exchange, if one did.
    pub error: Option<String>,
    /// Facts about our certificate known locally (e.g. revoked in the workspace).
    pub local_notes: Vec<String>,
    pub ok: bool,
    pub diagnosis: Vec<String>,
}

impl ProbeReport {
    fn new(url: &str) -> Self {
        ProbeReport {
            url: url.to_string(),
            address: None,
            sni: None,
            connected: false,
            handshake: false,
            tls_version: None,
            cipher: None,
            server_chain: Vec::new(),
            server_verified: false,
            server_trust: String::new(),
            server_verify_error: None,
            client_cert_requested: false,
            acceptable_ca_names: Vec::new(),
            client_certificate: None,
            client_source: None,
            client_chains_to_acceptable_ca: None,
            client_cert_accepted: None,
            http_status: None,
            http_reason: None,
            http_body_excerpt: None,
            error: None,
            local_notes: Vec::new(),
            ok: false,
            diagnosis: Vec::new(),
        }
    }
}

fn ssl_err(e: &openssl::ssl::Error) -> String {
    if let Some(s) = e.ssl_error() {
        let parts: Vec<String> = s
            .errors()
            .iter()
            .map(|x| x.reason().unwrap_or("unknown").to_string())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    if let Some(io) = e.io_error() {
        return io.to_string();
    }
    match e.code() {
        openssl::ssl::ErrorCode::ZERO_RETURN => "the server closed the connection".into(),
        openssl::ssl::ErrorCode::SYSCALL => "the connection was closed without a TLS alert".into(),
        _ => e.to_string(),
    }
}

/// Runs the probe. Network failures are findings, not errors: they land in the report.
pub fn probe(req: &Request<'_>) -> Result<ProbeReport> {
    let target = Target::parse(req.url).map_err(OpError::Msg)?;
    let mut rep = ProbeReport::new(req.url);
    rep.local_notes = req.local_notes.clone();
    if let Some(id) = req.identity {
        rep.client_certificate = brief(&id.cert);
        rep.client_source = Some(id.source.clone());
    }
    let host_ip: Option<IpAddr> = target.host.parse().ok();
    let sni = match req.sni {
        Some(s) => Some(s.to_string()),
        None if host_ip.is_none() => Some(target.host.clone()),
        None => None,
    };
    rep.sni = sni.clone();
    rep.server_trust = match req.ca {
        Some(_) => "--ca".into(),
        None => "system roots".into(),
    };

    // TCP
    let addrs: Vec<SocketAddr> = match (target.host.as_str(), target.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            rep.error = Some(format!("cannot resolve {}: {e}", target.host));
            finish(&mut rep);
            return Ok(rep);
        }
    };
    let mut tcp = None;
    let mut last_err = String::from("no address");
    for a in &addrs {
        match TcpStream::connect_timeout(a, req.timeout) {
            Ok(s) => {
                rep.address = Some(a.to_string());
                tcp = Some(s);
                break;
            }
            Err(e) => last_err = format!("{a}: {e}"),
        }
    }
    let Some(tcp) = tcp else {
        rep.error = Some(format!(
            "cannot connect to {}:{}: {last_err}",
            target.host, target.port
        ));
        finish(&mut rep);
        return Ok(rep);
    };
    rep.connected = true;
    let _ = tcp.set_read_timeout(Some(req.timeout));
    let _ = tcp.set_write_timeout(Some(req.timeout));

    // TLS: we verify the server ourselves after the handshake so that a bad server
    // certificate is reported, not just fatal.
    let pki = |e: openssl::error::ErrorStack| OpError::from(PkiError::from(e));
    let mut b = SslContextBuilder::new(SslMethod::tls_client()).map_err(pki)?;
    b.set_verify(SslVerifyMode::NONE);
    if let Some(id) = req.identity {
        b.set_certificate(&id.cert).map_err(pki)?;
        b.set_private_key(&id.key).map_err(pki)?;
        for c in &id.chain {
            b.add_extra_chain_cert(c.clone()).map_err(pki)?;
        }
    }
    let ctx = b.build();
    let requested = Box::new(AtomicBool::new(false));
    let mut ssl = Ssl::new(&ctx).map_err(pki)?;
    if let Some(s) = &sni {
        ssl.set_hostname(s).map_err(pki)?;
    }
    // SAFETY: `requested` outlives `stream` (declared before it, dropped after it).
    unsafe {
        SSL_set_cert_cb(
            ssl.as_ptr(),
            Some(mark_requested),
            &*requested as *const AtomicBool as *mut libc::c_void,
        );
    }
    let mut stream = SslStream::new(ssl, tcp).map_err(pki)?;
    let hs = stream.connect();
    rep.client_cert_requested = requested.load(Ordering::SeqCst);
    collect_tls(&mut rep, stream.ssl(), req, &target, host_ip);
    if let Err(e) = hs {
        rep.error = Some(format!("TLS handshake failed: {}", ssl_err(&e)));
        finish(&mut rep);
        return Ok(rep);
    }
    rep.handshake = true;

    // one HTTP/1.1 round trip
    let host_header = if target.port == 443 {
        target.host.clone()
    } else if host_ip.is_some_and(|i| i.is_ipv6()) {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut http = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: mtlsctl-probe/{}\r\nAccept: */*\r\nConnection: close\r\n",
        target.path,
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in req.headers {
        http.push_str(&format!("{k}: {v}\r\n"));
    }
    http.push_str("\r\n");
    if let Err(e) = stream
        .write_all(http.as_bytes())
        .and_then(|_| stream.flush())
    {
        rep.error = Some(format!("sending the request failed: {e}"));
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let read_err = loop {
        match stream.ssl_read(&mut chunk) {
            Ok(0) => break None,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 256 * 1024 || response_complete(&buf) {
                    break None;
                }
            }
            Err(e) if e.code() == openssl::ssl::ErrorCode::ZERO_RETURN => break None,
            Err(e) => break Some(ssl_err(&e)),
        }
    };
    // the handshake may have finished late (TLS 1.3 post-handshake state)
    rep.client_cert_requested |= requested.load(Ordering::SeqCst);
    if rep.acceptable_ca_names.is_empty() {
        collect_tls(&mut rep, stream.ssl(), req, &target, host_ip);
    }
    if buf.is_empty() {
        rep.error = Some(match read_err {
            Some(e) => format!("the server ended the connection before answering: {e}"),
            None => "the server closed the connection without an HTTP answer".into(),
        });
    } else {
        parse_response(&mut rep, &buf);
        redact(&mut rep, req.headers);
    }
    let _ = stream.shutdown();
    finish(&mut rep);
    Ok(rep)
}

fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match len {
        Some(n) => buf.len() >= end + 4 + n,
        None => false,
    }
}

fn parse_response(rep: &mut ProbeReport, buf: &[u8]) {
    let text = String::from_utf8_lossy(buf);
    let status_line = text.lines().next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/") {
        rep.error = Some(format!(
            "the server answered something that is not HTTP: {}",
            crate::pki::text::sanitize(&status_line.chars().take(80).collect::<String>())
        ));
        return;
    }
    rep.http_status = parts.next().and_then(|c| c.parse().ok());
    rep.http_reason = parts.next().map(|s| s.trim().to_string());
    if let Some(i) = text.find("\r\n\r\n") {
        let body: String = text[i + 4..].chars().take(512).collect();
        rep.http_body_excerpt = Some(body);
    }
}

/// Echo servers send our headers back: keep credentials out of the report.
fn redact(rep: &mut ProbeReport, headers: &[(String, String)]) {
    let Some(body) = rep.http_body_excerpt.as_mut() else {
        return;
    };
    for (k, v) in headers {
        let secret = k.eq_ignore_ascii_case("authorization")
            || k.eq_ignore_ascii_case("proxy-authorization")
            || k.to_ascii_lowercase().contains("token")
            || k.to_ascii_lowercase().contains("key");
        if !secret {
            continue;
        }
        let mut parts = vec![v.clone()];
        if let Some((_, cred)) = v.split_once(' ') {
            parts.push(cred.to_string());
        }
        for p in parts.into_iter().filter(|p| p.len() >= 4) {
            *body = body.replace(&p, "[redacted]");
        }
    }
}

fn collect_tls(
    rep: &mut ProbeReport,
    ssl: &SslRef,
    req: &Request<'_>,
    target: &Target,
    host_ip: Option<IpAddr>,
) {
    if rep.tls_version.is_none() || rep.tls_version.as_deref() == Some("unknown") {
        let v = ssl.version_str();
        if v != "unknown" {
            rep.tls_version = Some(v.to_string());
        }
        rep.cipher = ssl.current_cipher().map(|c| c.name().to_string());
    }
    let names = requested_ca_names(ssl);
    if !names.is_empty() {
        rep.acceptable_ca_names = names.iter().map(|n| name_der_string(n)).collect();
        if let Some(id) = req.identity {
            // the issuers of our leaf and chain, and the chain's own subjects
            let mut ours: Vec<Vec<u8>> = Vec::new();
            for c in std::iter::once(&id.cert).chain(id.chain.iter()) {
                if let Ok(d) = c.issuer_name().to_der() {
                    ours.push(d);
                }
            }
            for c in &id.chain {
                if let Ok(d) = c.subject_name().to_der() {
                    ours.push(d);
                }
            }
            rep.client_chains_to_acceptable_ca = Some(ours.iter().any(|o| names.contains(o)));
        }
    }
    if rep.server_chain.is_empty()
        && let Some(chain) = ssl.peer_cert_chain()
    {
        rep.server_chain = chain.iter().filter_map(|c| brief(&c.to_owned())).collect();
        let leaf = ssl.peer_certificate();
        if let Some(leaf) = leaf {
            // the name checked is --sni when given, else the URL's host
            let (name, ip) = match req.sni {
                Some(s) => (s, s.parse::<IpAddr>().ok()),
                None => (target.host.as_str(), host_ip),
            };
            match verify_server(&leaf, chain, req.ca, name, ip) {
                Ok(()) => rep.server_verified = true,
                Err(e) => rep.server_verify_error = Some(e),
            }
        }
    }
}

fn verify_server(
    leaf: &X509,
    chain: &StackRef<X509>,
    ca: Option<&[X509]>,
    host: &str,
    ip: Option<IpAddr>,
) -> std::result::Result<(), String> {
    let run =
        || -> std::result::Result<std::result::Result<(), String>, openssl::error::ErrorStack> {
            let mut b = X509StoreBuilder::new()?;
            match ca {
                Some(cas) => {
                    for c in cas {
                        b.add_cert(c.clone())?;
                    }
                }
                None => b.set_default_paths()?,
            }
            let mut p = X509VerifyParam::new()?;
            p.set_purpose(X509PurposeId::SSL_SERVER)?;
            match ip {
                Some(ip) => p.set_ip(ip)?,
                None => p.set_host(host)?,
            }
            b.set_param(&p)?;
            let store = b.build();
            let mut untrusted = Stack::new()?;
            for c in chain {
                untrusted.push(c.to_owned())?;
            }
            let mut ctx = X509StoreContext::new()?;
            ctx.init(&store, leaf, &untrusted, |c| {
                Ok(if c.verify_cert()? {
                    Ok(())
                } else {
                    Err(format!(
                        "{} (depth {})",
                        c.error().error_string(),
                        c.error_depth()
                    ))
                })
            })
        };
    run().unwrap_or_else(|e| Err(e.to_string()))
}

/// Whether the exchange shows the server refusing our certificate, and how.
enum Refusal {
    None,
    NoCertSent,
    CertRefused(String),
}

fn refusal(rep: &ProbeReport) -> Refusal {
    if let Some(status) = rep.http_status {
        let body = rep.http_body_excerpt.as_deref().unwrap_or("");
        if body.contains("No required SSL certificate was sent") || status == 496 {
            return Refusal::NoCertSent;
        }
        if body.contains("SSL certificate error") || status == 495 {
            return Refusal::CertRefused(format!(
                "HTTP {status}: {}",
                rep.http_reason.clone().unwrap_or_default()
            ));
        }
        return Refusal::None;
    }
    let Some(err) = &rep.error else {
        return Refusal::None;
    };
    let e = err.to_ascii_lowercase();
    if !rep.connected {
        return Refusal::None;
    }
    if e.contains("certificate required") {
        return Refusal::NoCertSent;
    }
    let tls_refusal = ["alert", "certificate", "handshake failure"];
    if tls_refusal.iter().any(|k| e.contains(k)) && (rep.client_cert_requested || rep.handshake) {
        if rep.client_certificate.is_none() {
            return Refusal::NoCertSent;
        }
        return Refusal::CertRefused(err.clone());
    }
    Refusal::None
}

/// Fills `ok`, `client_cert_accepted` and the diagnosis.
fn finish(rep: &mut ProbeReport) {
    let mut d = Vec::new();
    let ours_issuer = rep
        .client_certificate
        .as_ref()
        .map(|c| c.issuer.clone())
        .unwrap_or_default();
    let names = rep
        .acceptable_ca_names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    if !rep.connected {
        d.push(format!(
            "Cannot reach the server ({}): check the host, the port and any firewall between us.",
            rep.error.clone().unwrap_or_default()
        ));
        rep.diagnosis = d;
        rep.ok = false;
        return;
    }
    let refused = refusal(rep);
    match &refused {
        Refusal::NoCertSent => {
            rep.client_cert_accepted = Some(false);
            if rep.client_certificate.is_none() {
                d.push("The server requires a client certificate and we sent none: probe with --tenant/--env, --cert/--key or --pfx.".into());
            } else if rep.client_chains_to_acceptable_ca == Some(false) {
                d.push(format!(
                    "The server asks for certificates from {names} but ours is issued by '{ours_issuer}', so none was sent: the operator has not installed our ca-chain.pem for this environment, or this is the wrong environment's certificate."
                ));
            } else {
                d.push("The server says no client certificate arrived: check that the certificate and key are readable and that a proxy in front of the gateway does not terminate TLS.".into());
            }
        }
        Refusal::CertRefused(how) => {
            rep.client_cert_accepted = Some(false);
            if rep.client_chains_to_acceptable_ca == Some(false) {
                d.push(format!(
                    "The server asks for certificates from {names} but ours is issued by '{ours_issuer}': the operator has not installed our ca-chain.pem for this environment, or this is the wrong environment's certificate."
                ));
            } else {
                let mut why = Vec::new();
                let l = how.to_ascii_lowercase();
                if l.contains("revoked") {
                    why.push("the server says it is revoked".to_string());
                }
                if l.contains("expired") {
                    why.push("the server says a certificate or CRL has expired".to_string());
                }
                if l.contains("unknown ca") {
                    why.push("the server does not trust our CA".to_string());
                }
                let revoked_locally = rep.local_notes.iter().any(|n| n.contains("revoked"));
                let base = if rep.acceptable_ca_names.is_empty() {
                    "The server refused our certificate".to_string()
                } else {
                    format!(
                        "The server refused our certificate although it chains to a CA the server asks for ({names})"
                    )
                };
                if revoked_locally {
                    d.push(format!(
                        "{base}: our certificate is revoked and the gateway's CRL lists it. Issue a new certificate (`mtlsctl issue --force` or `renew`) and probe again."
                    ));
                } else if !why.is_empty() {
                    d.push(format!("{base}: {}.", why.join("; ")));
                } else {
                    d.push(format!(
                        "{base} ({how}). Likely causes: it is revoked in the CRL the gateway holds, it has expired, the gateway's CRL has passed its next update (then every client is refused: send a fresh crl.pem), or ssl_verify_depth is too low for the chain."
                    ));
                }
            }
        }
        Refusal::None => {}
    }
    if matches!(refused, Refusal::None) {
        if let Some(status) = rep.http_status {
            if rep.client_certificate.is_some() && rep.client_cert_requested {
                rep.client_cert_accepted = Some(true);
            }
            match status {
                200..=399 => {
                    if !rep.client_cert_requested {
                        d.push("The server did not ask for a client certificate: mutual TLS is not enforced on this endpoint.".into());
                    } else if rep.client_certificate.is_none() {
                        d.push("The server asked for a client certificate but answered without one: client certificates are optional here (ssl_verify_client optional?).".into());
                    } else {
                        d.push(format!(
                            "The whole path works: the gateway accepted our certificate and the request was answered with HTTP {status}."
                        ));
                    }
                }
                401 => d.push("The gateway accepted the TLS connection but the request got HTTP 401: the backend wants credentials; send them with --basic-auth-file or --header.".into()),
                403 => d.push("HTTP 403: the gateway or backend refuses this client after TLS; check certificate mappings or allow-lists (IIS mapping, Tyk certificate ID, a fingerprint or subject check).".into()),
                502..=504 => d.push(format!("HTTP {status}: the gateway accepted us but could not get an answer from its backend.")),
                _ => d.push(format!("The request got HTTP {status} {}.", rep.http_reason.clone().unwrap_or_default())),
            }
        } else if let Some(e) = &rep.error {
            if rep.handshake && rep.client_cert_requested {
                d.push(format!(
                    "The exchange failed after the handshake ({e}): the server may have refused our certificate without a TLS alert (its log says why), or its backend failed."
                ));
            } else {
                d.push(format!("The exchange failed: {e}."));
            }
        }
    }
    if !rep.server_verified && rep.handshake {
        d.push(format!(
            "The server's certificate does not verify against {}: {}. Give the gateway's CA with --ca, or the operator must fix its server certificate.",
            rep.server_trust,
            rep.server_verify_error.clone().unwrap_or_else(|| "no certificate".into())
        ));
    }
    rep.ok = rep.handshake
        && rep.server_verified
        && matches!(refused, Refusal::None)
        && rep.http_status.is_some_and(|s| (200..400).contains(&s))
        && rep.client_cert_requested
        && rep.client_certificate.is_some()
        && rep.client_cert_accepted == Some(true);
    rep.diagnosis = d;
}

/// Re-runs the diagnosis after local notes were added.
pub fn rediagnose(rep: &mut ProbeReport) {
    rep.client_cert_accepted = None;
    finish(rep);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://api.example.com:8443/health?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("api.example.com", 8443, "/health?x=1")
        );
        let t = Target::parse("https://127.0.0.1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/"));
        let t = Target::parse("https://[::1]:9443/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9443));
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("https://").is_err());
    }

    #[test]
    fn echoed_credentials_are_redacted() {
        let mut r = ProbeReport::new("https://x/");
        r.http_body_excerpt = Some(r#"{"Authorization": "Basic dXNlcjpwYXNz"}"#.into());
        redact(
            &mut r,
            &[("Authorization".into(), "Basic dXNlcjpwYXNz".into())],
        );
        let b = r.http_body_excerpt.unwrap();
        assert!(!b.contains("dXNlcjpwYXNz"), "{b}");
        assert!(b.contains("[redacted]"));
    }

    #[test]
    fn nginx_refusals_are_recognised() {
        let mut r = ProbeReport::new("https://x/");
        r.connected = true;
        r.handshake = true;
        r.server_verified = true;
        r.client_cert_requested = true;
        r.http_status = Some(400);
        r.http_body_excerpt = Some("<center>No required SSL certificate was sent</center>".into());
        finish(&mut r);
        assert!(!r.ok);
        assert!(r.diagnosis[0].contains("sent none"));
        r.http_body_excerpt = Some("<center>The SSL certificate error</center>".into());
        r.client_certificate = Some(CertBrief {
            subject: "CN=a".into(),
            issuer: "CN=Platform nonprod CA".into(),
            serial: "01".into(),
            not_after: time::OffsetDateTime::now_utc(),
        });
        r.acceptable_ca_names = vec!["CN=Platform prod CA".into()];
        r.client_chains_to_acceptable_ca = Some(false);
        rediagnose(&mut r);
        assert!(
            r.diagnosis[0]
                .contains("'CN=Platform prod CA' but ours is issued by 'CN=Platform nonprod CA'")
        );
        r.http_status = Some(200);
        r.http_body_excerpt = Some("ok".into());
        r.client_chains_to_acceptable_ca = Some(true);
        rediagnose(&mut r);
        assert!(r.ok, "{:?}", r.diagnosis);
    }
}
