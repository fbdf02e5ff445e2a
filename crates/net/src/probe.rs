//! `probe`: a real TLS handshake with a client certificate, then one HTTP/1.1 round trip
//! (under TLS 1.3 a server's refusal of the client certificate only shows on the first
//! read), reported as facts. Judging them (the diagnosis in plain words) is the business
//! of the probe operation in mtlsctl-core.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{Ssl, SslContextBuilder, SslMethod, SslRef, SslStream, SslVerifyMode};
use openssl::stack::{Stack, StackRef};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyParam;
use openssl::x509::{X509, X509NameRef, X509PurposeId, X509StoreContext};
use serde::Serialize;
use x509_parser::prelude::FromDer;

use super::tls::{DeadlineStream, connect_by};
use super::{NetError, Result};
use crate::pki::inspect;

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

/// A parsed `https://host[:port]/path` URL.
#[derive(Clone, Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| NetError::NotHttps { url: url.into() })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) =
            split_host_port(authority, 443).ok_or_else(|| NetError::NoHost { url: url.into() })?;
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
    /// Bounds the whole exchange: resolution, connection, handshake, request, answer.
    pub timeout: Duration,
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

/// The report's summary of a certificate; None when it cannot be parsed.
pub fn brief(x: &X509) -> Option<CertBrief> {
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

/// What happened on the wire: the connection, the handshake and the HTTP round trip, as
/// facts. Judging them (is our certificate accepted, what is wrong) is the caller's part.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exchange {
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
    /// Whether we sent credentials (an Authorization header, a token or key header).
    pub credentials_sent: bool,
    /// Whether our certificate or chain names one of the acceptable CAs (None: no names
    /// sent, or no certificate of ours).
    pub client_chains_to_acceptable_ca: Option<bool>,
    /// Whether the server accepted our certificate (None: not known). Left unknown here:
    /// it is a judgement of the whole exchange, made by whoever diagnoses it.
    pub client_cert_accepted: Option<bool>,
    pub http_status: Option<u16>,
    pub http_reason: Option<String>,
    /// The start of the response body (at most 512 bytes).
    pub http_body_excerpt: Option<String>,
    /// The TLS or I/O error that ended the exchange, if one did.
    pub error: Option<String>,
}

impl Exchange {
    fn new(url: &str) -> Self {
        Exchange {
            url: url.to_string(),
            ..Exchange::default()
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

/// Connects, shakes hands and makes one HTTP request. Network failures are findings, not
/// errors: they land in the exchange.
pub fn exchange(req: &Request<'_>) -> Result<Exchange> {
    let at = Instant::now() + req.timeout;
    let target = Target::parse(req.url)?;
    let mut rep = Exchange::new(req.url);
    rep.credentials_sent = req.headers.iter().any(|(k, _)| is_secret_header(k));
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

    let Some(tcp) = connect(&mut rep, &target, at, req.timeout) else {
        return Ok(rep);
    };
    let tcp = DeadlineStream::new(tcp, at, req.timeout);
    let ssl = client_ssl(req, sni.as_deref())?;
    let requested = Box::new(AtomicBool::new(false));
    // SAFETY: `requested` outlives `stream` (declared before it, dropped after it).
    unsafe {
        SSL_set_cert_cb(
            ssl.as_ptr(),
            Some(mark_requested),
            &*requested as *const AtomicBool as *mut libc::c_void,
        );
    }
    let mut stream = SslStream::new(ssl, tcp)?;
    let hs = stream.connect();
    rep.client_cert_requested = requested.load(Ordering::SeqCst);
    collect_tls(&mut rep, stream.ssl(), req, &target, host_ip);
    if let Err(e) = hs {
        rep.error = Some(format!("TLS handshake failed: {}", ssl_err(&e)));
        return Ok(rep);
    }
    rep.handshake = true;

    // one HTTP/1.1 round trip
    let http = request_text(&target, host_ip, req.headers);
    if let Err(e) = stream
        .write_all(http.as_bytes())
        .and_then(|_| stream.flush())
    {
        rep.error = Some(format!("sending the request failed: {e}"));
    }
    let (buf, read_err) = read_answer(&mut stream);
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
    Ok(rep)
}

/// Resolves the target and connects to the first of its addresses that answers. Records
/// that address, or why none could be reached (then there is no stream).
fn connect(
    rep: &mut Exchange,
    target: &Target,
    at: Instant,
    timeout: Duration,
) -> Option<std::net::TcpStream> {
    let addrs: Vec<SocketAddr> = match (target.host.as_str(), target.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            let host = target.host.clone();
            rep.error = Some(NetError::Resolve { host, source: e }.to_string());
            return None;
        }
    };
    match connect_by(&addrs, at, timeout) {
        Ok((tcp, a)) => {
            rep.address = Some(a.to_string());
            rep.connected = true;
            Some(tcp)
        }
        Err(last_err) => {
            rep.error = Some(format!(
                "cannot connect to {}:{}: {last_err}",
                target.host, target.port
            ));
            None
        }
    }
}

/// The client side of the handshake, presenting our identity if we have one. It checks
/// nothing: we verify the server ourselves after the handshake so that a bad server
/// certificate is reported, not just fatal.
fn client_ssl(req: &Request<'_>, sni: Option<&str>) -> Result<Ssl> {
    let mut b = SslContextBuilder::new(SslMethod::tls_client())?;
    b.set_verify(SslVerifyMode::NONE);
    if let Some(id) = req.identity {
        b.set_certificate(&id.cert)?;
        b.set_private_key(&id.key)?;
        for c in &id.chain {
            b.add_extra_chain_cert(c.clone())?;
        }
    }
    let ctx = b.build();
    // the SSL object holds its own reference to the context
    let mut ssl = Ssl::new(&ctx)?;
    if let Some(s) = sni {
        ssl.set_hostname(s)?;
    }
    Ok(ssl)
}

/// The GET request for the target's path, with our extra headers.
fn request_text(target: &Target, host_ip: Option<IpAddr>, headers: &[(String, String)]) -> String {
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
    for (k, v) in headers {
        http.push_str(&format!("{k}: {v}\r\n"));
    }
    http.push_str("\r\n");
    http
}

/// Reads the answer until the server closes, the body is complete or 256 KiB have come;
/// returns what came and the TLS or I/O error that ended the reading, if one did.
fn read_answer<S: Read + Write>(stream: &mut SslStream<S>) -> (Vec<u8>, Option<String>) {
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
    (buf, read_err)
}

fn response_complete(buf: &[u8]) -> bool {
    crate::http::response_complete(buf)
}

fn parse_response(rep: &mut Exchange, buf: &[u8]) {
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

/// Whether a header carries credentials.
fn is_secret_header(k: &str) -> bool {
    k.eq_ignore_ascii_case("authorization")
        || k.eq_ignore_ascii_case("proxy-authorization")
        || k.to_ascii_lowercase().contains("token")
        || k.to_ascii_lowercase().contains("key")
}

/// Echo servers send our headers back: keep credentials out of the report.
fn redact(rep: &mut Exchange, headers: &[(String, String)]) {
    let Some(body) = rep.http_body_excerpt.as_mut() else {
        return;
    };
    for (k, v) in headers {
        if !is_secret_header(k) {
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
    rep: &mut Exchange,
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
        let mut r = Exchange::new("https://x/");
        r.http_body_excerpt = Some(r#"{"Authorization": "Basic dXNlcjpwYXNz"}"#.into());
        redact(
            &mut r,
            &[("Authorization".into(), "Basic dXNlcjpwYXNz".into())],
        );
        let b = r.http_body_excerpt.unwrap();
        assert!(!b.contains("dXNlcjpwYXNz"), "{b}");
        assert!(b.contains("[redacted]"));
    }
}
