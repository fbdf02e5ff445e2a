//! `serve`: a local mTLS test gateway. It requires a client certificate that chains to
//! the environment's CA, honours the environment's CRL (re-read for every connection, so
//! a `revoke` takes effect at once), reports each attempt, and either echoes the request
//! as JSON or forwards it to a plain-HTTP upstream with its headers intact.
//!
//! Its server certificate comes from `ops::serve`, which signs it in memory with the
//! environment CA when the gateway starts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Private};
use openssl::ssl::{HandshakeError, Ssl, SslContext, SslContextBuilder, SslMethod, SslVerifyMode};
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509PurposeId};
use serde::Serialize;
use time::OffsetDateTime;

use super::probe::{name_string, split_host_port};
use super::{NetError, Result};
use crate::pki::serial;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 10 * 1024 * 1024;

/// The gateway's server certificate and key, made in memory.
pub struct ServerIdentity {
    pub cert: X509,
    pub key: PKey<Private>,
    pub serial: String,
    pub not_after: OffsetDateTime,
    pub sans: Vec<String>,
}

/// A plain-HTTP upstream to forward accepted requests to.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub host: String,
    pub port: u16,
    /// Prefixed to each request path ("" for none).
    pub base_path: String,
}

impl Upstream {
    pub fn parse(url: &str) -> Result<Upstream> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| NetError::UpstreamNotHttp { url: url.into() })?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        let (host, port) = split_host_port(auth, 80)
            .ok_or_else(|| NetError::UpstreamNoHost { url: url.into() })?;
        Ok(Upstream {
            host,
            port,
            base_path: path,
        })
    }
}

/// How the gateway runs.
pub struct Config {
    pub env: String,
    pub listen: SocketAddr,
    pub ca: Vec<X509>,
    pub crl: PathBuf,
    pub identity: ServerIdentity,
    pub upstream: Option<Upstream>,
    pub timeout: Duration,
}

/// One connection attempt, as logged.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub peer: String,
    pub subject: Option<String>,
    pub serial: Option<String>,
    /// "accepted" or "refused" (the client certificate), or "error" after acceptance.
    pub result: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[derive(Default, Clone)]
struct VerifyFailure {
    reason: String,
    subject: Option<String>,
    serial: Option<String>,
}

/// A TLS context that requires a client certificate chaining to the env CA and not
/// listed in the env CRL as it is on disk now.
fn context(cfg: &Config, failure: Arc<Mutex<Option<VerifyFailure>>>) -> Result<SslContext> {
    let mut b = SslContextBuilder::new(SslMethod::tls_server())?;
    b.set_certificate(&cfg.identity.cert)?;
    b.set_private_key(&cfg.identity.key)?;
    for c in &cfg.ca {
        b.add_extra_chain_cert(c.clone())?;
    }
    b.check_private_key()?;
    b.set_session_id_context(b"mtlsctl-serve")?;
    let mut names = Stack::new()?;
    for c in &cfg.ca {
        names.push(c.subject_name().to_owned()?)?;
    }
    b.set_client_ca_list(names);
    let mut sb = X509StoreBuilder::new()?;
    for c in &cfg.ca {
        sb.add_cert(c.clone())?;
    }
    {
        let lookup = sb.add_lookup(X509Lookup::file())?;
        lookup
            .load_crl_file(&cfg.crl, openssl::ssl::SslFiletype::PEM)
            .map_err(|source| NetError::Crl {
                path: cfg.crl.clone(),
                env: cfg.env.clone(),
                source,
            })?;
    }
    sb.set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)?;
    sb.set_purpose(X509PurposeId::SSL_CLIENT)?;
    b.set_verify_cert_store(sb.build())?;
    b.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        move |ok, ctx| {
            if !ok {
                let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
                if f.is_none() {
                    // the leaf the client presented: first in the chain being built
                    let leaf = ctx
                        .chain()
                        .and_then(|c| c.iter().next().map(|x| x.to_owned()));
                    let cert = leaf.as_deref().or(ctx.current_cert());
                    *f = Some(VerifyFailure {
                        reason: format!(
                            "{} (depth {})",
                            ctx.error().error_string(),
                            ctx.error_depth()
                        ),
                        subject: cert.map(|c| name_string(c.subject_name())),
                        serial: cert.and_then(serial_of),
                    });
                }
            }
            ok
        },
    );
    Ok(b.build())
}

/// Checks the TLS set-up (key, CA, CRL) and binds the listening socket, so a bad CRL or
/// a busy port fails before the first client arrives.
pub fn bind(cfg: &Config) -> Result<TcpListener> {
    context(cfg, Arc::new(Mutex::new(None)))?;
    let addr = cfg.listen;
    let listener = TcpListener::bind(addr).map_err(|source| NetError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| NetError::Listen { addr, source })?;
    Ok(listener)
}

/// Serves on `listener` until `stop` turns true; reports every attempt through `log`.
pub fn run(
    cfg: &Config,
    listener: &TcpListener,
    stop: &AtomicBool,
    log: &(dyn Fn(&Attempt) + Sync),
) -> Result<()> {
    let active = AtomicUsize::new(0);
    std::thread::scope(|s| {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((tcp, peer)) => {
                    active.fetch_add(1, Ordering::SeqCst);
                    let active = &active;
                    s.spawn(move || {
                        let a = handle(cfg, tcp, peer);
                        log(&a);
                        active.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
        // connections in flight finish within their timeouts; the scope waits for them
        let deadline = Instant::now() + cfg.timeout;
        while active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    Ok(())
}

fn handle(cfg: &Config, tcp: TcpStream, peer: SocketAddr) -> Attempt {
    let mut a = Attempt {
        time: OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc()),
        peer: peer.to_string(),
        subject: None,
        serial: None,
        result: "refused",
        reason: String::new(),
        method: None,
        path: None,
        status: None,
    };
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(cfg.timeout));
    let _ = tcp.set_write_timeout(Some(cfg.timeout));
    let failure = Arc::new(Mutex::new(None));
    let ctx = match context(cfg, failure.clone()) {
        Ok(c) => c,
        Err(e) => {
            a.result = "error";
            a.reason = e.to_string();
            return a;
        }
    };
    let ssl = match Ssl::new(&ctx) {
        Ok(s) => s,
        Err(e) => {
            a.result = "error";
            a.reason = e.to_string();
            return a;
        }
    };
    let mut tls = match ssl.accept(tcp) {
        Ok(s) => s,
        Err(e) => {
            let f = failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
            refused(&mut a, f, &e);
            return a;
        }
    };
    if let Some(c) = tls.ssl().peer_certificate() {
        a.subject = Some(name_string(c.subject_name()));
        a.serial = serial_of(&c);
    }
    a.result = "accepted";
    a.reason = "client certificate verified against the CA and CRL".into();
    let req = match read_request(&mut tls) {
        Ok(r) => r,
        Err(e) => {
            a.result = "error";
            a.reason = format!("accepted, then no valid HTTP request: {e}");
            let _ = respond(&mut tls, 400, "text/plain", b"bad request\n");
            let _ = tls.shutdown();
            return a;
        }
    };
    a.method = Some(req.method.clone());
    a.path = Some(req.path.clone());
    a.status = Some(answer(cfg, &mut tls, &req, &mut a));
    let _ = tls.shutdown();
    a
}

/// Why the handshake failed: our verification's finding when it refused the client's
/// certificate (naming that certificate), else what the TLS layer says.
fn refused<S>(a: &mut Attempt, failure: Option<VerifyFailure>, e: &HandshakeError<S>) {
    let Some(f) = failure else {
        let msg = handshake_reason(e);
        a.reason = if msg.contains("did not return a certificate")
            || msg.contains("certificate required")
        {
            "no client certificate".into()
        } else {
            format!("TLS handshake failed: {msg}")
        };
        return;
    };
    a.reason = format!("client certificate refused: {}", f.reason);
    let leaf = match e {
        HandshakeError::Failure(m) => m.ssl().peer_certificate(),
        _ => None,
    };
    match leaf {
        Some(c) => {
            a.subject = Some(name_string(c.subject_name()));
            a.serial = serial_of(&c);
        }
        None => {
            a.subject = f.subject;
            a.serial = f.serial;
        }
    }
}

/// Answers an accepted request: echoes it, or forwards it and relays the upstream's
/// answer (a 502 when the upstream fails). Returns the status sent.
fn answer<S: Write>(cfg: &Config, tls: &mut S, req: &HttpRequest, a: &mut Attempt) -> u16 {
    let Some(up) = &cfg.upstream else {
        let body = echo_json(req, a.subject.as_deref(), a.serial.as_deref());
        let _ = respond(tls, 200, "application/json", &body);
        return 200;
    };
    match forward(
        up,
        req,
        a.subject.as_deref(),
        a.serial.as_deref(),
        cfg.timeout,
    ) {
        Ok(resp) => {
            let st = status_of(&resp).unwrap_or(502);
            let _ = tls.write_all(&resp).and_then(|_| tls.flush());
            st
        }
        Err(e) => {
            a.reason = format!("accepted; upstream failed: {e}");
            let _ = respond(
                tls,
                502,
                "text/plain",
                format!("upstream failed: {e}\n").as_bytes(),
            );
            502
        }
    }
}

fn serial_of(c: &openssl::x509::X509Ref) -> Option<String> {
    c.serial_number()
        .to_bn()
        .ok()
        .map(|b| serial::to_hex(&b.to_vec()))
}

fn handshake_reason<S>(e: &HandshakeError<S>) -> String {
    match e {
        HandshakeError::Failure(m) => {
            let err = m.error();
            err.ssl_error()
                .map(|s| {
                    s.errors()
                        .iter()
                        .map(|x| x.reason().unwrap_or("unknown").to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| err.to_string())
        }
        HandshakeError::SetupFailure(e) => e.to_string(),
        HandshakeError::WouldBlock(_) => "timed out".into(),
    }
}

/// One HTTP/1.1 request.
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn read_request<R: Read>(r: &mut R) -> std::result::Result<HttpRequest, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
        let n = r.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a full request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let start = lines.next().unwrap_or("");
    let mut parts = start.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "bad request line '{}'",
            crate::pki::text::sanitize(start)
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!(
            "unsupported protocol '{}'",
            crate::pki::text::sanitize(version)
        ));
    }
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err("request body too large".into());
    }
    let mut body = buf[end + 4..].to_vec();
    while body.len() < len {
        let n = r.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok(HttpRequest {
        method: method.to_string(),
        path: path.to_string(),
        version: version.to_string(),
        headers,
        body,
    })
}

fn echo_json(req: &HttpRequest, subject: Option<&str>, serial: Option<&str>) -> Vec<u8> {
    let mut headers = serde_json::Map::new();
    for (k, v) in &req.headers {
        match headers.get_mut(k) {
            Some(serde_json::Value::String(s)) => {
                s.push_str(", ");
                s.push_str(v);
            }
            _ => {
                headers.insert(k.clone(), v.clone().into());
            }
        }
    }
    let v = serde_json::json!({
        "method": req.method,
        "path": req.path,
        "version": req.version,
        "headers": headers,
        "body_bytes": req.body.len(),
        "client": { "subject": subject, "serial": serial },
    });
    let mut out = serde_json::to_vec_pretty(&v).expect("json");
    out.push(b'\n');
    out
}

fn respond<W: Write>(w: &mut W, status: u16, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        502 => "Bad Gateway",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

/// Headers the gateway sets itself; a client's own copies are dropped.
const CLIENT_SUBJECT_HEADER: &str = "X-Client-Subject";
const CLIENT_SERIAL_HEADER: &str = "X-Client-Serial";

fn forward(
    up: &Upstream,
    req: &HttpRequest,
    subject: Option<&str>,
    serial: Option<&str>,
    timeout: Duration,
) -> std::result::Result<Vec<u8>, String> {
    let addr = (up.host.as_str(), up.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", up.host))?
        .next()
        .ok_or_else(|| format!("no address for {}", up.host))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let mut head = format!("{} {}{} HTTP/1.1\r\n", req.method, up.base_path, req.path);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("connection")
            || k.eq_ignore_ascii_case(CLIENT_SUBJECT_HEADER)
            || k.eq_ignore_ascii_case(CLIENT_SERIAL_HEADER)
        {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(sub) = subject {
        head.push_str(&format!(
            "{CLIENT_SUBJECT_HEADER}: {}\r\n",
            sub.replace(['\r', '\n'], " ")
        ));
    }
    if let Some(ser) = serial {
        head.push_str(&format!("{CLIENT_SERIAL_HEADER}: {ser}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(&req.body))
        .and_then(|_| s.flush())
        .map_err(|e| format!("sending to {addr}: {e}"))?;
    let mut resp = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                resp.extend_from_slice(&chunk[..n]);
                if resp.len() > MAX_BODY + MAX_HEAD {
                    return Err("upstream response too large".into());
                }
                if upstream_complete(&resp) {
                    break;
                }
            }
            Err(e) if resp.is_empty() => return Err(format!("reading from {addr}: {e}")),
            Err(_) => break,
        }
    }
    if resp.is_empty() {
        return Err(format!("{addr} closed the connection without answering"));
    }
    Ok(resp)
}

fn upstream_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|n| buf.len() >= end + 4 + n)
}

fn status_of(resp: &[u8]) -> Option<u16> {
    let line = resp.split(|b| *b == b'\n').next()?;
    let s = String::from_utf8_lossy(line);
    s.split(' ').nth(1)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        let u = Upstream::parse("http://127.0.0.1:8080/api/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base_path.as_str()),
            ("127.0.0.1", 8080, "/api")
        );
        assert_eq!(Upstream::parse("http://backend").unwrap().port, 80);
        assert!(Upstream::parse("https://x").is_err());
    }

    #[test]
    fn parses_a_request_and_echoes_it() {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic dTpw\r\nContent-Length: 3\r\n\r\nabc";
        let r = read_request(&mut &raw[..]).unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/x?y=1"));
        assert_eq!(r.body, b"abc");
        let j: serde_json::Value =
            serde_json::from_slice(&echo_json(&r, Some("CN=a"), Some("01"))).unwrap();
        assert_eq!(j["headers"]["Authorization"], "Basic dTpw");
        assert_eq!(j["client"]["subject"], "CN=a");
        assert!(read_request(&mut &b"garbage\r\n\r\n"[..]).is_err());
        assert_eq!(status_of(b"HTTP/1.1 401 Unauthorized\r\n"), Some(401));
    }
}
