//! HTTP/1.x framing for the test gateway, on top of httparse (the maintained parser):
//! what a request head may contain, how long its body is, and chunked bodies. Strict where
//! a lenient reading lets one request mean two things to two parsers: a bare CR or LF,
//! a NUL, two Content-Length headers, or a Transfer-Encoding other than one `chunked`
//! is refused with 400 before anything is forwarded.

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// Most headers in one request.
const MAX_HEADERS: usize = 100;

/// One HTTP/1.x request, its body decoded (chunked bodies de-chunked).
#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request is refused: the status to answer and a reason for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> Refusal {
    Refusal {
        status: 400,
        reason: reason.into(),
    }
}

/// Parses what has arrived so far: `Ok(None)` while the request is incomplete,
/// `Ok(Some(request))` once head and body are whole, `Err` for a request to refuse.
pub fn parse_request(
    buf: &[u8],
    max_body: usize,
) -> std::result::Result<Option<HttpRequest>, Refusal> {
    let Some(head_len) = head_end(buf)? else {
        return Ok(None);
    };
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    match req.parse(&buf[..head_len]) {
        Ok(httparse::Status::Complete(n)) if n == head_len => {}
        Ok(_) => return Err(bad("malformed request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal {
                status: 431,
                reason: format!("more than {MAX_HEADERS} headers"),
            });
        }
        Err(e) => return Err(bad(format!("malformed request head: {e}"))),
    }
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(bad("malformed request line"));
    };
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        // httparse already refuses control bytes here; the check is cheap and explicit
        if h.value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) || h.name.is_empty() {
            return Err(bad(format!(
                "CR, LF or NUL in header '{}'",
                crate::pki::text::sanitize(h.name)
            )));
        }
        headers.push((
            h.name.to_string(),
            String::from_utf8_lossy(h.value).trim().to_string(),
        ));
    }
    let framing = framing(&headers, max_body)?;
    let rest = &buf[head_len..];
    let body = match framing {
        Framing::Length(n) => {
            if rest.len() < n {
                return Ok(None);
            }
            rest[..n].to_vec()
        }
        Framing::Chunked => match dechunk(rest, max_body)? {
            Some(b) => b,
            None => return Ok(None),
        },
    };
    Ok(Some(HttpRequest {
        method: method.to_string(),
        path: path.to_string(),
        version: format!("HTTP/1.{minor}"),
        headers,
        body,
    }))
}

/// Whether a request whose head has arrived asks for `100 Continue` before its body.
pub fn wants_continue(buf: &[u8]) -> bool {
    let Ok(Some(n)) = head_end(buf) else {
        return false;
    };
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    if req.parse(&buf[..n]).is_err() {
        return false;
    }
    req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("expect") && h.value.eq_ignore_ascii_case(b"100-continue")
    })
}

/// The length of the head (through its empty line) once it has all arrived. Refuses a
/// bare CR or LF or a NUL anywhere in it, and a head larger than [`MAX_HEAD`].
fn head_end(buf: &[u8]) -> std::result::Result<Option<usize>, Refusal> {
    let limit = buf.len().min(MAX_HEAD);
    let mut i = 0;
    while i < limit {
        match buf[i] {
            0 => return Err(bad("NUL byte in the request head")),
            b'\n' => return Err(bad("bare LF in the request head (lines must end in CRLF)")),
            b'\r' => {
                let Some(&next) = buf.get(i + 1) else {
                    return Ok(None);
                };
                if next != b'\n' {
                    return Err(bad("bare CR in the request head"));
                }
                if buf.get(i + 2..i + 4) == Some(b"\r\n") {
                    return Ok(Some(i + 4));
                }
                if i + 2 >= buf.len() || (i + 3 >= buf.len() && buf[i + 2] == b'\r') {
                    return Ok(None);
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    if buf.len() >= MAX_HEAD {
        return Err(Refusal {
            status: 431,
            reason: format!("request head larger than {} KiB", MAX_HEAD / 1024),
        });
    }
    Ok(None)
}

enum Framing {
    Length(usize),
    Chunked,
}

/// How the body is delimited, refusing the ambiguous cases (RFC 9112 section 6.3).
fn framing(headers: &[(String, String)], max_body: usize) -> std::result::Result<Framing, Refusal> {
    let lengths: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str())
        .collect();
    let codings: Vec<String> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    if lengths.len() > 1 {
        return Err(bad("duplicate Content-Length"));
    }
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err(bad("both Transfer-Encoding and Content-Length"));
        }
        if codings.len() != 1 || codings[0] != "chunked" {
            return Err(bad(format!(
                "conflicting or unsupported Transfer-Encoding '{}' (only one 'chunked' is accepted)",
                crate::pki::text::sanitize(&codings.join(", "))
            )));
        }
        return Ok(Framing::Chunked);
    }
    let Some(v) = lengths.first() else {
        return Ok(Framing::Length(0));
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "invalid Content-Length '{}'",
            crate::pki::text::sanitize(v)
        )));
    }
    match v.parse::<usize>() {
        Ok(n) if n <= max_body => Ok(Framing::Length(n)),
        _ => Err(too_large(max_body)),
    }
}

fn too_large(max_body: usize) -> Refusal {
    Refusal {
        status: 413,
        reason: format!("request body larger than the {max_body}-byte limit"),
    }
}

/// Decodes a chunked body: `Ok(None)` while incomplete. Trailers are read and dropped.
fn dechunk(mut rest: &[u8], max_body: usize) -> std::result::Result<Option<Vec<u8>>, Refusal> {
    let mut body = Vec::new();
    loop {
        let (start, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(x)) => x,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(bad("invalid chunk size in a chunked body")),
        };
        rest = &rest[start..];
        if size == 0 {
            // trailer fields, then the empty line
            let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
            return match httparse::parse_headers(rest, &mut storage) {
                Ok(httparse::Status::Complete(_)) => Ok(Some(body)),
                Ok(httparse::Status::Partial) => Ok(None),
                Err(_) => Err(bad("malformed trailer in a chunked body")),
            };
        }
        let size = usize::try_from(size).map_err(|_| too_large(max_body))?;
        if size > max_body.saturating_sub(body.len()) {
            return Err(too_large(max_body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        if &rest[size..size + 2] != b"\r\n" {
            return Err(bad("a chunk does not end in CRLF"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The status of an HTTP response head, when it has arrived.
pub fn status_of(resp: &[u8]) -> Option<u16> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut storage);
    match r.parse(resp) {
        Ok(_) => r.code,
        Err(_) => None,
    }
}

/// Whether a response with a Content-Length has all arrived (without one, the end is the
/// close: we always ask with `Connection: close`).
pub fn response_complete(buf: &[u8]) -> bool {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut storage);
    let Ok(httparse::Status::Complete(n)) = r.parse(buf) else {
        return false;
    };
    let len = r
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        });
    len.is_some_and(|l| buf.len() >= n + l)
}

/// The reason phrase we send for a status.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A whole response with `Connection: close`.
pub fn response(status: u16, ctype: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reason_phrase(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> std::result::Result<Option<HttpRequest>, Refusal> {
        parse_request(raw, 1024)
    }

    #[test]
    fn a_plain_request() {
        let r = parse(b"POST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/x?y=1"));
        assert_eq!(r.body, b"abc");
        assert!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab")
                .unwrap()
                .is_none()
        );
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r").unwrap().is_none());
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r").unwrap().is_none());
    }

    #[test]
    fn injection_and_smuggling_are_refused() {
        for raw in [
            &b"GET / HTTP/1.1\r\nX-A: a\nX-Client-Subject: CN=admin\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nX-A: a\rX-B: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n",
            b"GET /a\nb HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
            b"POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\na",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"garbage\r\n\r\n",
        ] {
            let e = parse(raw).expect_err(&String::from_utf8_lossy(raw));
            assert_eq!(e.status, 400, "{e:?}");
        }
        let e = parse(b"POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n").unwrap_err();
        assert_eq!(e.status, 413);
        let big = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(parse(&big).unwrap_err().status, 431);
    }

    #[test]
    fn chunked_bodies() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nRust\r\n3;x=y\r\n!!!\r\n0\r\nX-T: 1\r\n\r\n";
        let r = parse(raw).unwrap().unwrap();
        assert_eq!(r.body, b"Rust!!!");
        for cut in 48..raw.len() {
            assert!(parse(&raw[..cut]).unwrap().is_none(), "{cut}");
        }
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n")
                .unwrap_err()
                .status,
            413
        );
    }

    #[test]
    fn random_heads_never_panic() {
        // a small xorshift generator: no dependency, the same inputs every run
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: [&[u8]; 14] = [
            b"\r\n",
            b"\n",
            b"\r",
            b"\0",
            b": ",
            b"GET / HTTP/1.1",
            b"Content-Length",
            b"Transfer-Encoding",
            b"chunked",
            b"5",
            b"ffffffffffffffff",
            b"0",
            b"a",
            b";x",
        ];
        for _ in 0..20_000 {
            let mut buf = Vec::new();
            for _ in 0..(next() % 24) {
                buf.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            let _ = parse_request(&buf, 1024);
            let _ = wants_continue(&buf);
            let _ = status_of(&buf);
            let _ = response_complete(&buf);
        }
    }

    #[test]
    fn expect_continue() {
        assert!(wants_continue(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        ));
        assert!(!wants_continue(
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
        ));
        assert!(!wants_continue(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"
        ));
    }

    #[test]
    fn responses() {
        assert_eq!(status_of(b"HTTP/1.1 401 Unauthorized\r\n"), Some(401));
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"
        ));
    }
}
