//! Asking an OCSP responder (RFC 6960, over plain HTTP as the certificate's Authority
//! Information Access names it) whether a client certificate is revoked: what `serve`
//! does before it answers a client, as nginx's `ssl_ocsp on` does. Requests and
//! responses are OpenSSL's (the openssl crate's `ocsp` module), the HTTP response head is
//! parsed by httparse.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
};
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

/// The largest OCSP response read.
const MAX_RESPONSE: usize = 64 * 1024;
/// How far thisUpdate/nextUpdate may be off our clock.
const CLOCK_LEEWAY_SECS: u32 = 300;

/// What the responder said about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Good,
    Revoked {
        reason: String,
    },
    Unknown,
    /// No usable answer: unreachable, an error status, a bad signature, stale.
    NoAnswer(String),
}

/// The first OCSP responder URL of `cert`'s Authority Information Access, if any.
pub fn responder_url(cert: &X509) -> Option<String> {
    cert.ocsp_responders()
        .ok()?
        .iter()
        .map(|s| s.to_string())
        .next()
}

/// Asks the responder `cert` names about it. `issuer` signed `cert`; `trust` holds every
/// CA the response's signer (the CA or its delegated responder) may chain to. Bounded by
/// `timeout` as a whole.
pub fn check(cert: &X509, issuer: &X509, trust: &[X509], url: &str, timeout: Duration) -> Verdict {
    match ask(cert, issuer, trust, url, timeout) {
        Ok(v) => v,
        Err(why) => Verdict::NoAnswer(why),
    }
}

fn ask(
    cert: &X509,
    issuer: &X509,
    trust: &[X509],
    url: &str,
    timeout: Duration,
) -> Result<Verdict, String> {
    fn e(what: &'static str) -> impl Fn(openssl::error::ErrorStack) -> String {
        move |err| format!("{what}: {err}")
    }
    let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).map_err(e("cert id"))?;
    let mut req = OcspRequest::new().map_err(e("request"))?;
    req.add_id(id).map_err(e("request"))?;
    let body = req.to_der().map_err(e("request"))?;
    let der = post(url, &body, timeout)?;
    let resp = OcspResponse::from_der(&der).map_err(|_| "not an OCSP response".to_string())?;
    if resp.status() != OcspResponseStatus::SUCCESSFUL {
        return Err(format!(
            "the responder answered status {}",
            resp.status().as_raw()
        ));
    }
    let basic = resp.basic().map_err(e("response"))?;
    let mut store = X509StoreBuilder::new().map_err(e("store"))?;
    for c in trust {
        store.add_cert(c.clone()).map_err(e("store"))?;
    }
    let store = store.build();
    let certs = Stack::new().map_err(e("store"))?;
    basic
        .verify(&certs, &store, OcspFlag::empty())
        .map_err(|err| format!("the response's signature does not verify: {err}"))?;
    let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer).map_err(e("cert id"))?;
    let Some(st) = basic.find_status(&id) else {
        return Err("the response does not speak of this certificate".into());
    };
    st.check_validity(CLOCK_LEEWAY_SECS, None)
        .map_err(|_| "the response is outside its validity (thisUpdate/nextUpdate)".to_string())?;
    Ok(match st.status {
        OcspCertStatus::GOOD => Verdict::Good,
        OcspCertStatus::REVOKED => Verdict::Revoked {
            reason: format!("reason code {}", st.reason.as_raw()),
        },
        _ => Verdict::Unknown,
    })
}

/// POSTs `body` to an `http://host[:port]/path` URL and returns the response body.
fn post(url: &str, body: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url}' is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {authority}: {err}"))?
        .next()
        .ok_or_else(|| format!("{authority} has no address"))?;
    let left = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut s = TcpStream::connect_timeout(&addr, left(deadline))
        .map_err(|err| format!("cannot reach the responder at {authority}: {err}"))?;
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.set_write_timeout(Some(left(deadline))).ok();
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .map_err(|err| format!("cannot send to the responder: {err}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if Instant::now() >= deadline {
            return Err(format!("the responder did not answer within {timeout:?}"));
        }
        s.set_read_timeout(Some(left(deadline))).ok();
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    return Err("the responder's answer is too large".into());
                }
            }
            Err(err) => return Err(format!("reading the responder's answer: {err}")),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let start = match r.parse(&buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("the responder's answer is not HTTP".into()),
    };
    if r.code != Some(200) {
        return Err(format!(
            "the responder answered HTTP {}",
            r.code.unwrap_or(0)
        ));
    }
    Ok(buf[start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_is_not_http_or_not_there_is_no_answer() {
        assert!(post("https://x/", b"", Duration::from_millis(50)).is_err());
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let e = post(
            &format!("http://127.0.0.1:{port}/"),
            b"x",
            Duration::from_millis(300),
        );
        assert!(e.unwrap_err().contains("cannot reach"));
    }
}
