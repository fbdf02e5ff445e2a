//! A small, bounded HTTP/1.1 server for plain-HTTP services such as the OCSP responder:
//! requests parsed by httparse, a fixed pool of worker threads fed by a bounded queue
//! (a full queue answers 503 at once), a read deadline per request and a lifetime per
//! connection, bounded header and body sizes, keep-alive, and a stop flag checked
//! between connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Limits of the server.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Worker threads: at most this many connections are served at once.
    pub workers: usize,
    /// Accepted connections waiting for a worker; beyond, 503.
    pub queue: usize,
    /// How long a worker waits for the next bytes of a request (and idles between
    /// keep-alive requests).
    pub read_timeout: Duration,
    /// The longest a connection is served, keep-alive included.
    pub conn_lifetime: Duration,
    /// Request line and headers.
    pub max_head: usize,
    pub max_body: usize,
    pub max_requests_per_conn: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            workers: 8,
            queue: 256,
            read_timeout: Duration::from_secs(5),
            conn_lifetime: Duration::from_secs(30),
            max_head: 8 * 1024,
            max_body: 64 * 1024,
            max_requests_per_conn: 1000,
        }
    }
}

/// A request as a handler sees it.
#[derive(Debug)]
pub struct HttpRequest {
    pub peer: SocketAddr,
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What a handler answers.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// `Cache-Control: max-age` (RFC 5019 6), when set.
    pub max_age: Option<u64>,
}

impl HttpResponse {
    pub fn text(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            max_age: None,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(tcp: &mut TcpStream, r: &HttpResponse, keep_alive: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    if let Some(a) = r.max_age {
        head.push_str(&format!(
            "Cache-Control: max-age={a}, public, no-transform, must-revalidate\r\n"
        ));
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    tcp.write_all(&out)
}

/// A request read from a connection, or why none could be.
enum Read1 {
    Req(HttpRequest, bool),
    /// The peer closed, or idled out, between requests.
    Closed,
    /// A broken request: answer with this status and close.
    Bad(u16, &'static str),
}

fn read_one(tcp: &mut TcpStream, buf: &mut Vec<u8>, peer: SocketAddr, cfg: &HttpConfig) -> Read1 {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or("").to_string();
                let path = req.path.unwrap_or("").to_string();
                let http11 = req.version == Some(1);
                let mut content_length = 0usize;
                let mut content_type = None;
                let mut close = !http11;
                for h in req.headers.iter() {
                    let v = String::from_utf8_lossy(h.value).trim().to_string();
                    if h.name.eq_ignore_ascii_case("content-length") {
                        match v.parse::<usize>() {
                            Ok(n) => content_length = n,
                            Err(_) => return Read1::Bad(400, "bad Content-Length\n"),
                        }
                    } else if h.name.eq_ignore_ascii_case("content-type") {
                        content_type = Some(v);
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        let l = v.to_ascii_lowercase();
                        if l.contains("close") {
                            close = true;
                        } else if l.contains("keep-alive") {
                            close = false;
                        }
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Read1::Bad(
                            400,
                            "chunked bodies are not accepted: send Content-Length\n",
                        );
                    }
                }
                if content_length > cfg.max_body {
                    return Read1::Bad(413, "request body too large\n");
                }
                while buf.len() < head_len + content_length {
                    match tcp.read(&mut chunk) {
                        Ok(0) => return Read1::Bad(400, "body cut short\n"),
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(_) => return Read1::Bad(408, "timed out reading the body\n"),
                    }
                }
                let body = buf[head_len..head_len + content_length].to_vec();
                buf.drain(..head_len + content_length);
                return Read1::Req(
                    HttpRequest {
                        peer,
                        method,
                        path,
                        content_type,
                        body,
                    },
                    !close,
                );
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > cfg.max_head {
                    return Read1::Bad(431, "request head too large\n");
                }
            }
            Err(_) => return Read1::Bad(400, "not an HTTP request\n"),
        }
        match tcp.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Read1::Closed,
            Ok(0) => return Read1::Bad(400, "request cut short\n"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if buf.is_empty() => return Read1::Closed,
            Err(_) => return Read1::Bad(408, "timed out reading the request\n"),
        }
    }
}

fn serve_conn(
    mut tcp: TcpStream,
    peer: SocketAddr,
    cfg: &HttpConfig,
    stop: &AtomicBool,
    handler: &(dyn Fn(&HttpRequest) -> HttpResponse + Sync),
    on_bad: &(dyn Fn(SocketAddr, u16, &str) + Sync),
) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(cfg.read_timeout));
    let _ = tcp.set_write_timeout(Some(cfg.read_timeout));
    let _ = tcp.set_nodelay(true);
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1024);
    for n in 0..cfg.max_requests_per_conn {
        match read_one(&mut tcp, &mut buf, peer, cfg) {
            Read1::Closed => return,
            Read1::Bad(status, msg) => {
                on_bad(peer, status, msg.trim_end());
                let _ = write_response(&mut tcp, &HttpResponse::text(status, msg), false);
                return;
            }
            Read1::Req(req, keep) => {
                let resp = handler(&req);
                let keep = keep
                    && n + 1 < cfg.max_requests_per_conn
                    && started.elapsed() < cfg.conn_lifetime
                    && !stop.load(Ordering::SeqCst);
                if write_response(&mut tcp, &resp, keep).is_err() || !keep {
                    return;
                }
            }
        }
    }
}

/// Waits up to 100 ms for a connection to accept (so the stop flag is seen that often,
/// and a new connection is taken at once rather than after a sleep).
fn wait_readable(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let mut fds = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call
    unsafe {
        libc::poll(&mut fds, 1, 100);
    }
}

/// Serves `listener` (non-blocking) until `stop` turns true: `handler` answers each
/// request; `on_bad` hears of every request refused before it reached the handler (and
/// of 503s for a full queue). Connections in flight are finished, within their read
/// deadline, before it returns.
pub fn serve(
    listener: &TcpListener,
    cfg: &HttpConfig,
    stop: &AtomicBool,
    handler: &(dyn Fn(&HttpRequest) -> HttpResponse + Sync),
    on_bad: &(dyn Fn(SocketAddr, u16, &str) + Sync),
) {
    let (tx, rx) = sync_channel::<(TcpStream, SocketAddr)>(cfg.queue.max(1));
    let rx = Arc::new(Mutex::new(rx));
    std::thread::scope(|s| {
        for _ in 0..cfg.workers.max(1) {
            let rx = Arc::clone(&rx);
            s.spawn(move || {
                loop {
                    let next = {
                        let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
                        guard.recv_timeout(Duration::from_millis(100))
                    };
                    match next {
                        Ok((tcp, peer)) => serve_conn(tcp, peer, cfg, stop, handler, on_bad),
                        Err(RecvTimeoutError::Timeout) => {
                            if stop.load(Ordering::SeqCst) {
                                return;
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        }
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((tcp, peer)) => match tx.try_send((tcp, peer)) {
                    Ok(()) => {}
                    Err(TrySendError::Full((mut tcp, peer))) => {
                        on_bad(peer, 503, "every worker is busy and the queue is full");
                        let _ = tcp.set_nonblocking(false);
                        let _ = tcp.set_write_timeout(Some(Duration::from_millis(200)));
                        let _ = write_response(
                            &mut tcp,
                            &HttpResponse::text(503, "busy, try again\n"),
                            false,
                        );
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                },
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_readable(listener),
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
        drop(tx);
    });
}
