//! Helpers for the tests that run `mtlsctl serve` and hit it with real clients: free
//! ports, waiting for a listener, stopping a child, and curl as the judge. Included by
//! path (`#[path = "common/net.rs"] mod net;`) beside `mod common;`.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common::Ws;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("{what} exited early with {st}: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 15 s");
}

pub fn send_sigterm(pid: u32) -> bool {
    send_signal(pid, "TERM")
}

/// kill(1) with `-SIG`: the test crates have no libc binding of their own.
pub fn send_signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A child process stopped on drop: SIGTERM, then SIGKILL if it lingers.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            send_sigterm(self.0.id());
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if !matches!(self.0.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mtlsctl serve --env ENV --listen 127.0.0.1:PORT` with `extra` flags, started and
/// listening. stdout (the attempt log) is piped; stderr too.
pub fn start_serve(ws: &Ws, env: &str, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--env", env, "--listen", &listen];
    args.extend_from_slice(extra);
    let child = ws
        .cmd()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    wait_port(port, "mtlsctl serve", &mut p.0);
    (p, port)
}

/// What curl saw: HTTP code (0 for none), body plus stderr, and curl's exit code.
pub struct CurlOut {
    pub code: u16,
    pub text: String,
    pub exit: i32,
}

/// curl `url` trusting `ca`, presenting `cert`/`key` PEM files when given, plus `extra`.
pub fn curl(url: &str, ca: &Path, cert: Option<(&Path, &Path)>, extra: &[&str]) -> CurlOut {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(ca);
    if let Some((cert, key)) = cert {
        c.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    c.args(extra);
    let out = c.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    CurlOut {
        code: code.trim().parse().unwrap_or(0),
        text: format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
        exit: out.status.code().unwrap_or(-1),
    }
}
