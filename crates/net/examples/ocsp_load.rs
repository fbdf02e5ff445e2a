//! A bounded OCSP load generator for the benchmark (scripts/bench-ocsp.sh): C clients
//! send N POST requests in all (the DER request in a file) to a responder, one
//! connection per request or kept alive, and report throughput and latency as JSON.
//!
//!   cargo run --release -p mtlsctl-net --example ocsp_load -- HOST:PORT REQ.der N C [keepalive]

// a benchmark tool: its report is its output
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Sends one request and reads its answer; Ok(true) when the server closes after it.
fn one(
    stream: &mut TcpStream,
    head: &[u8],
    body: &[u8],
    buf: &mut Vec<u8>,
) -> Result<bool, String> {
    stream.write_all(head).map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            // HTTP/1.0 style: the body ends with the connection
            return if buf.is_empty() {
                Err("closed".into())
            } else {
                Ok(true)
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(h)) = resp.parse(buf) {
            if resp.code != Some(200) {
                return Err(format!("status {:?}", resp.code));
            }
            let len = resp
                .headers
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case("content-length"))
                .and_then(|x| {
                    std::str::from_utf8(x.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                });
            let close = resp.headers.iter().any(|x| {
                x.name.eq_ignore_ascii_case("connection") && x.value.eq_ignore_ascii_case(b"close")
            });
            if let Some(len) = len
                && buf.len() >= h + len
            {
                return Ok(close);
            }
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: ocsp_load HOST:PORT REQ.der N C [keepalive]");
        std::process::exit(2);
    }
    let addr = a[1].clone();
    let body = std::fs::read(&a[2]).expect("request file");
    let n: usize = a[3].parse().expect("N");
    let c: usize = a[4].parse().expect("C");
    let keep = a.get(5).is_some_and(|s| s == "keepalive");
    let head = format!(
        "POST / HTTP/1.{} \r\nHost: {addr}\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n{}\r\n",
        if keep { 1 } else { 0 },
        body.len(),
        if keep { "" } else { "Connection: close\r\n" }
    )
    .replace("HTTP/1.1 \r\n", "HTTP/1.1\r\n")
    .replace("HTTP/1.0 \r\n", "HTTP/1.0\r\n");
    let next = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let t0 = Instant::now();
    let mut lat: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..c)
            .map(|_| {
                let (addr, head, body, next, errors) =
                    (&addr, head.as_bytes(), &body, &next, &errors);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut buf = Vec::with_capacity(4096);
                    let mut conn: Option<TcpStream> = None;
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let t = Instant::now();
                        if conn.is_none() {
                            match TcpStream::connect(addr.as_str()) {
                                Ok(s) => {
                                    let _ = s.set_nodelay(true);
                                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                                    conn = Some(s);
                                }
                                Err(_) => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                    continue;
                                }
                            }
                        }
                        let r = one(conn.as_mut().unwrap(), head, body, &mut buf);
                        if r.is_err() {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        if !keep || r.unwrap_or(true) {
                            conn = None;
                        }
                        mine.push(t.elapsed());
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let wall = t0.elapsed();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{{\"requests\":{},\"errors\":{},\"clients\":{c},\"keepalive\":{keep},\"seconds\":{:.3},\"per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        lat.len(),
        errors.load(Ordering::Relaxed),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
