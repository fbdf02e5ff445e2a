//! nginx on loopback as a client-certificate gateway, for the suites that judge trust
//! bundles and CRLs with it, and curl as the client.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tool;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, child: &mut Child) {
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
            panic!("nginx exited early with {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nginx did not listen on 127.0.0.1:{port} within 15 s");
}

/// What nginx trusts: files it reads at start and at each reload.
pub struct Trust {
    pub ca: PathBuf,
    /// None: no CRL checking.
    pub crl: Option<PathBuf>,
    pub depth: u32,
}

impl Trust {
    /// The trust of an export folder: its ca-chain.pem, crl.pem and the depth its nginx
    /// snippet sets.
    pub fn of_export(export: &Path) -> Trust {
        let snippet = std::fs::read_to_string(export.join("nginx/mtls.conf")).unwrap();
        let depth = snippet
            .lines()
            .find_map(|l| l.trim().strip_prefix("ssl_verify_depth"))
            .map(|v| v.trim().trim_end_matches(';').trim().parse().unwrap())
            .expect("the exported snippet sets ssl_verify_depth");
        Trust {
            ca: export.join("ca-chain.pem"),
            crl: Some(export.join("crl.pem")),
            depth,
        }
    }
}

/// nginx answering 200 "ok" to every client its trust accepts, 400 to the others.
pub struct Nginx {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

impl Nginx {
    pub fn start(trust: &Trust) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        std::fs::create_dir_all(d.join("logs")).unwrap();
        // the gateway's own certificate is not under test: a throwaway self-signed one
        let (ok, out) = tool(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-days",
                "2",
                "-keyout",
                d.join("server.key").to_str().unwrap(),
                "-out",
                d.join("server.crt").to_str().unwrap(),
            ],
        );
        assert!(ok, "{out}");
        let port = free_port();
        Nginx {
            child: Self::spawn(d, port, trust),
            dir,
            port,
        }
    }

    fn conf_text(d: &Path, port: u16, t: &Trust) -> String {
        let crl = t
            .crl
            .as_ref()
            .map(|c| format!("ssl_crl {};", c.display()))
            .unwrap_or_default();
        format!(
            "worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/logs/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/server.crt;
        ssl_certificate_key {d}/server.key;
        ssl_client_certificate {ca};
        {crl}
        ssl_verify_client on;
        ssl_verify_depth {depth};
        location / {{ return 200 \"ok\"; }}
    }}
}}
",
            d = d.display(),
            ca = t.ca.display(),
            depth = t.depth,
        )
    }

    fn spawn(d: &Path, port: u16, t: &Trust) -> Child {
        std::fs::write(d.join("nginx.conf"), Self::conf_text(d, port, t)).unwrap();
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(port, &mut child);
        child
    }

    /// Points nginx at `trust` and reloads it; waits until the new workers answer.
    pub fn reload(&mut self, trust: &Trust) {
        let d = self.dir.path().to_path_buf();
        std::fs::write(d.join("nginx.conf"), Self::conf_text(&d, self.port, trust)).unwrap();
        let (ok, out) = tool(
            "nginx",
            &[
                "-p",
                d.to_str().unwrap(),
                "-c",
                d.join("nginx.conf").to_str().unwrap(),
                "-s",
                "reload",
            ],
        );
        assert!(ok, "nginx -s reload failed: {out}");
        // the old workers finish; give the new ones a moment to take the port
        std::thread::sleep(Duration::from_millis(700));
    }

    /// The gateway's own (self-signed) certificate, to trust it with `--ca`.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    /// The HTTP status nginx answers a client presenting `cert` (with the chain in the
    /// file after the leaf) and `key`; 0 when the TLS handshake fails.
    pub fn status_with(&self, cert: &Path, key: &Path) -> u16 {
        let out = Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg(self.url())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
