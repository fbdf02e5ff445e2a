//! End to end: the hand-off installed on a real nginx, then on `mtlsctl serve`, each
//! proxying to a backend that still checks Basic Auth; judged with curl and `probe`.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const USER: &str = "platform";
const PASSWORD: &str = "s3cret-backend-pass";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16, what: &str, child: &mut Child) {
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
            panic!("{what} exited early with {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 15 s");
}

/// A plain-HTTP backend that answers 200 only with the right Basic Auth, 401 otherwise.
struct Backend {
    port: u16,
    stop: Arc<AtomicBool>,
    authorised: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    fn start() -> Backend {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let authorised = Arc::new(AtomicUsize::new(0));
        let (s, a) = (stop.clone(), authorised.clone());
        let expected = format!(
            "Basic {}",
            openssl_base64(format!("{USER}:{PASSWORD}").as_bytes())
        );
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match c.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let head = String::from_utf8_lossy(&buf).into_owned();
                        let auth = head.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("authorization")
                                .then(|| v.trim().to_string())
                        });
                        let (status, body) = if auth.as_deref() == Some(expected.as_str()) {
                            a.fetch_add(1, Ordering::SeqCst);
                            ("200 OK", format!("backend: hello {USER}\n"))
                        } else {
                            (
                                "401 Unauthorized",
                                "backend: wrong or missing credentials\n".into(),
                            )
                        };
                        let _ = write!(
                            c,
                            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nWWW-Authenticate: Basic realm=\"backend\"\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Backend {
            port,
            stop,
            authorised,
            thread: Some(thread),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn openssl_base64(b: &[u8]) -> String {
    // independent of the crate under test
    let mut c = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A child process stopped on drop: SIGTERM first (nginx's master then stops its
/// workers; a SIGKILL would orphan them), SIGKILL if it lingers.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            send_sigterm(self.0.id() as i32);
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

/// nginx on loopback with the exported trust material.
struct Nginx {
    dir: tempfile::TempDir,
    proc: Proc,
}

impl Nginx {
    fn conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    fn start(
        export: &Path,
        server_cert: &Path,
        server_key: &Path,
        port: u16,
        backend: u16,
    ) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("tmp")).unwrap();
        std::fs::create_dir_all(d.join("logs")).unwrap();
        let snippet = std::fs::read_to_string(export.join("nginx/mtls.conf")).unwrap();
        let depth: u32 = snippet
            .lines()
            .find_map(|l| l.trim().strip_prefix("ssl_verify_depth"))
            .map(|v| v.trim().trim_end_matches(';').trim().parse().unwrap())
            .expect("the exported snippet sets ssl_verify_depth");
        assert!(
            depth >= 2,
            "depth {depth} would refuse root -> intermediate -> leaf"
        );
        let conf = format!(
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
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_client_certificate {e}/ca-chain.pem;
        ssl_crl {e}/crl.pem;
        ssl_verify_client on;
        ssl_verify_depth {depth};
        location / {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_read_timeout 10s;
            proxy_connect_timeout 5s;
        }}
    }}
}}
",
            d = d.display(),
            cert = server_cert.display(),
            key = server_key.display(),
            e = export.display(),
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut n = Nginx {
            dir,
            proc: Proc(child),
        };
        wait_port(port, "nginx", &mut n.proc.0);
        n
    }

    fn reload(&self) {
        let (ok, out) = tool(
            "nginx",
            &[
                "-p",
                self.dir.path().to_str().unwrap(),
                "-c",
                self.conf().to_str().unwrap(),
                "-s",
                "reload",
            ],
        );
        assert!(ok, "nginx -s reload failed: {out}");
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/error.log")).unwrap_or_default()
    }
}

/// curl's verdict: (HTTP code, body, curl exit success). Code 0 when no HTTP answer.
fn curl(
    url: &str,
    ca: &Path,
    cert: Option<(&Path, &str)>,
    user: Option<&str>,
) -> (u16, String, bool) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--cacert")
        .arg(ca);
    if let Some((pfx, pw)) = cert {
        c.args(["--cert-type", "P12", "--cert"])
            .arg(format!("{}:{pw}", pfx.display()));
    }
    if let Some(u) = user {
        c.args(["-u", u]);
    }
    let out = c.arg(url).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
        out.status.success(),
    )
}

/// True when a judge this end-to-end test needs is missing (a failure under CI).
fn skip_without(progs: &[&str]) -> bool {
    progs.iter().any(|p| {
        let package = match *p {
            "nginx" => "nginx-light",
            other => other,
        };
        !judge(p, package)
    })
}

/// The workspace of both tests: tenants acme and globex, envs nonprod and prod.
struct Setup {
    ws: Ws,
    prod: serde_json::Value,
    nonprod: serde_json::Value,
    auth_file: PathBuf,
    wrong_auth_file: PathBuf,
    ca: PathBuf,
}

fn setup() -> Setup {
    let ws = Ws::with_cas(&["acme", "globex"]);
    let prod = ws.issue("acme", "prod", &[]);
    let nonprod = ws.issue("acme", "nonprod", &[]);
    ws.issue("globex", "prod", &[]);
    ws.issue("globex", "nonprod", &[]);
    let auth_file = ws.dir.path().join("basic-auth.txt");
    std::fs::write(&auth_file, format!("{USER}:{PASSWORD}\n")).unwrap();
    let wrong_auth_file = ws.dir.path().join("wrong-auth.txt");
    std::fs::write(&wrong_auth_file, format!("{USER}:not-the-password\n")).unwrap();
    let ca = ws.path("pki/prod/ca/ca.crt");
    Setup {
        ws,
        prod,
        nonprod,
        auth_file,
        wrong_auth_file,
        ca,
    }
}

fn pfx(r: &serde_json::Value) -> (PathBuf, String) {
    let p = PathBuf::from(s(&r["files"]["pfx"]));
    let pw = std::fs::read_to_string(s(&r["files"]["pfx_password"]))
        .unwrap()
        .trim()
        .to_string();
    (p, pw)
}

fn probe(st: &Setup, url: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec![
        "-o",
        "json",
        "probe",
        url,
        "--ca",
        st.ca.to_str().unwrap(),
        "--timeout",
        "5s",
    ];
    a.extend_from_slice(extra);
    let out = st.ws.run(&a);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "probe printed no JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn diagnosis(v: &serde_json::Value) -> String {
    v["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The probe cases shared by both gateways; `revoked` is the old certificate's folder.
fn assert_probe_cases(st: &Setup, url: &str) {
    let auth = st.auth_file.to_str().unwrap();
    // good: the tenant's prod certificate, through the PFX and through the workspace
    let (pfx_path, pw) = pfx(&st.prod);
    let pwf = st.ws.dir.path().join("pfx-pass.txt");
    std::fs::write(&pwf, format!("{pw}\n")).unwrap();
    let (rc, v) = probe(
        st,
        url,
        &[
            "--pfx",
            pfx_path.to_str().unwrap(),
            "--password-file",
            pwf.to_str().unwrap(),
            "--basic-auth-file",
            auth,
        ],
    );
    assert_eq!(rc, 0, "good case failed: {v:#}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["http_status"], 200);
    assert_eq!(v["client_cert_requested"], true);
    assert_eq!(v["client_cert_accepted"], true);
    assert_eq!(v["server_verified"], true);
    assert_eq!(v["client_chains_to_acceptable_ca"], true);
    assert!(s(&v["tls_version"]).starts_with("TLS"), "{v:#}");
    let names = v["acceptable_ca_names"].as_array().unwrap();
    assert!(
        names
            .iter()
            .any(|n| s(n).contains("prod mTLS CA") && !s(n).contains("nonprod")),
        "{v:#}"
    );
    assert!(diagnosis(&v).contains("whole path works"), "{v:#}");

    // right certificate, wrong password: TLS passes, the backend says 401
    let (rc, v) = probe(
        st,
        url,
        &[
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--basic-auth-file",
            st.wrong_auth_file.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["http_status"], 401);
    assert_eq!(v["client_cert_accepted"], true);
    assert!(diagnosis(&v).contains("401"), "{v:#}");

    // no certificate
    let (rc, v) = probe(st, url, &["--basic-auth-file", auth]);
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["client_cert_accepted"], false);
    assert!(
        diagnosis(&v).contains("requires a client certificate and we sent none"),
        "{v:#}"
    );

    // the nonprod certificate at the prod gateway
    let (rc, v) = probe(
        st,
        url,
        &[
            "--tenant",
            "acme",
            "--env",
            "nonprod",
            "--basic-auth-file",
            auth,
        ],
    );
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["client_cert_accepted"], false);
    assert_eq!(v["client_chains_to_acceptable_ca"], false);
    let d = diagnosis(&v);
    assert!(
        d.contains("asks for certificates from 'CN=Example Platform prod mTLS CA")
            && d.contains("ours is issued by 'CN=Example Platform nonprod mTLS CA")
            && d.contains("ca-chain.pem"),
        "{d}"
    );
}

fn assert_revoked_probe(st: &Setup, url: &str, old_dir: &Path) {
    let (rc, v) = probe(
        st,
        url,
        &[
            "--cert",
            old_dir.join("cert.pem").to_str().unwrap(),
            "--key",
            old_dir.join("key.pem").to_str().unwrap(),
            "--basic-auth-file",
            st.auth_file.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["client_cert_accepted"], false);
    assert_eq!(v["client_chains_to_acceptable_ca"], true);
    assert!(diagnosis(&v).contains("revoked"), "{v:#}");
}

fn revoke_acme_prod(st: &Setup) -> PathBuf {
    let old = PathBuf::from(s(&st.prod["files"]["cert"]))
        .parent()
        .unwrap()
        .to_path_buf();
    st.ws.ok(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        st.ws.pass_file.to_str().unwrap(),
    ]);
    old
}

#[test]
fn nginx_gateway_with_exported_trust() {
    if skip_without(&["nginx", "curl", "openssl"]) {
        return;
    }
    let st = setup();
    let backend = Backend::start();
    // the gateway's own server certificate, from the prod CA
    let server = st.ws.issue(
        "globex",
        "prod",
        &[
            "--kind",
            "server",
            "--ip",
            "127.0.0.1",
            "--dns",
            "localhost",
        ],
    );
    let export = st.ws.dir.path().join("handoff");
    st.ws.ok(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--format",
        "nginx",
        "--out",
        export.to_str().unwrap(),
    ]);
    let port = free_port();
    let nginx = Nginx::start(
        &export,
        Path::new(s(&server["files"]["cert"])),
        Path::new(s(&server["files"]["key"])),
        port,
        backend.port,
    );
    let url = format!("https://127.0.0.1:{port}/api/orders");
    let creds = format!("{USER}:{PASSWORD}");
    let (prod_pfx, prod_pw) = pfx(&st.prod);
    let (np_pfx, np_pw) = pfx(&st.nonprod);

    // curl: the tenant's prod certificate with Basic Auth checked by the backend
    let (code, body, _) = curl(&url, &st.ca, Some((&prod_pfx, &prod_pw)), Some(&creds));
    assert_eq!(
        code,
        200,
        "prod certificate refused: {body}\n{}",
        nginx.error_log()
    );
    assert!(body.contains("backend: hello platform"), "{body}");
    assert_eq!(backend.authorised.load(Ordering::SeqCst), 1);
    let (code, body, _) = curl(
        &url,
        &st.ca,
        Some((&prod_pfx, &prod_pw)),
        Some("platform:wrong"),
    );
    assert_eq!(code, 401, "{body}");
    // no certificate
    let (code, body, _) = curl(&url, &st.ca, None, Some(&creds));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("No required SSL certificate was sent"),
        "{body}"
    );
    // the nonprod certificate
    let (code, body, _) = curl(&url, &st.ca, Some((&np_pfx, &np_pw)), Some(&creds));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("SSL certificate error"), "{body}");
    assert_eq!(
        backend.authorised.load(Ordering::SeqCst),
        1,
        "a refused client reached the backend"
    );

    assert_probe_cases(&st, &url);
    // the server certificate names localhost too: SNI and name check by --sni
    let auth = st.auth_file.to_str().unwrap();
    let (rc, v) = probe(
        &st,
        &url,
        &[
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--sni",
            "localhost",
            "--basic-auth-file",
            auth,
        ],
    );
    assert_eq!(rc, 0, "{v:#}");
    assert_eq!(v["sni"], "localhost");

    // revoke, export again, reload nginx: the old certificate is refused
    let old = revoke_acme_prod(&st);
    let renewed = st.ws.issue("acme", "prod", &[]);
    st.ws.ok(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--format",
        "nginx",
        "--out",
        export.to_str().unwrap(),
        "--force",
    ]);
    openssl(&[
        "crl",
        "-in",
        export.join("crl.pem").to_str().unwrap(),
        "-noout",
        "-text",
    ])
    .to_ascii_lowercase()
    .contains(&s(&st.prod["serial"]).to_ascii_lowercase())
    .then_some(())
    .expect("the fresh export's CRL lists the revoked serial");
    nginx.reload();
    let start = Instant::now();
    let (mut code, mut body, _) = (0, String::new(), false);
    while start.elapsed() < Duration::from_secs(10) {
        (code, body, _) = curl(&url, &st.ca, Some((&prod_pfx, &prod_pw)), Some(&creds));
        if code == 400 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        code, 400,
        "revoked certificate still accepted after reload: {body}"
    );
    // a reload is graceful: until the old worker has taken its signal it may still accept
    // a connection with the old CRL. Wait for several refusals in a row before going on.
    let mut refused_in_a_row = 1;
    while refused_in_a_row < 5 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
        (code, body, _) = curl(&url, &st.ca, Some((&prod_pfx, &prod_pw)), Some(&creds));
        refused_in_a_row = if code == 400 { refused_in_a_row + 1 } else { 1 };
    }
    assert_eq!(
        code, 400,
        "revoked certificate accepted again after reload: {body}"
    );
    assert!(body.contains("SSL certificate error"), "{body}");
    assert!(
        nginx.error_log().contains("certificate revoked"),
        "{}",
        nginx.error_log()
    );
    // (requests during the reload may still have reached the backend)
    let reached = backend.authorised.load(Ordering::SeqCst);
    assert_revoked_probe(&st, &url, &old);
    assert_eq!(backend.authorised.load(Ordering::SeqCst), reached);
    // the replacement passes
    let (new_pfx, new_pw) = pfx(&renewed);
    let (code, body, _) = curl(&url, &st.ca, Some((&new_pfx, &new_pw)), Some(&creds));
    assert_eq!(code, 200, "{body}");
    assert_eq!(backend.authorised.load(Ordering::SeqCst), reached + 1);
}

#[test]
fn serve_gateway_same_cases() {
    if skip_without(&["curl", "openssl"]) {
        return;
    }
    let st = setup();
    let backend = Backend::start();
    let port = free_port();
    let mut child = st
        .ws
        .cmd()
        .args([
            "serve",
            "--env",
            "prod",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &format!("http://127.0.0.1:{}", backend.port),
            "--timeout",
            "5s",
            "--ca-passphrase-file",
            st.ws.pass_file.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_port(port, "mtlsctl serve", &mut child);
    let mut serve = Proc(child);
    let url = format!("https://127.0.0.1:{port}/api/orders");
    let creds = format!("{USER}:{PASSWORD}");
    let (prod_pfx, prod_pw) = pfx(&st.prod);
    let (np_pfx, np_pw) = pfx(&st.nonprod);

    let (code, body, _) = curl(&url, &st.ca, Some((&prod_pfx, &prod_pw)), Some(&creds));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("backend: hello platform"), "{body}");
    let (code, _, _) = curl(
        &url,
        &st.ca,
        Some((&prod_pfx, &prod_pw)),
        Some("platform:x"),
    );
    assert_eq!(code, 401);
    let (code, body, ok) = curl(&url, &st.ca, None, Some(&creds));
    assert!(
        !ok && code == 0,
        "no certificate got through: {code} {body}"
    );
    let (code, body, ok) = curl(&url, &st.ca, Some((&np_pfx, &np_pw)), Some(&creds));
    assert!(
        !ok && code == 0,
        "nonprod certificate got through: {code} {body}"
    );
    assert_eq!(backend.authorised.load(Ordering::SeqCst), 1);

    assert_probe_cases(&st, &url);
    // serve's certificate names 127.0.0.1 only: another name does not verify
    let (rc, v) = probe(
        &st,
        &url,
        &[
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--sni",
            "api.other.example",
            "--basic-auth-file",
            st.auth_file.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["server_verified"], false);
    assert_eq!(v["http_status"], 200);
    assert!(
        diagnosis(&v).contains("server's certificate does not verify against --ca"),
        "{v:#}"
    );

    // serve reads the CRL for every connection: no restart needed
    let reached = backend.authorised.load(Ordering::SeqCst);
    let old = revoke_acme_prod(&st);
    let (code, body, ok) = curl(&url, &st.ca, Some((&prod_pfx, &prod_pw)), Some(&creds));
    assert!(
        !ok && code == 0,
        "revoked certificate got through: {code} {body}"
    );
    assert_revoked_probe(&st, &url, &old);
    assert_eq!(backend.authorised.load(Ordering::SeqCst), reached);

    // SIGTERM stops it cleanly; every attempt was logged as one JSON line
    let pid = serve.0.id() as i32;
    assert_eq!(send_sigterm(pid), 0);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = serve.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "serve ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "serve exited with {status}");
    let mut out = String::new();
    serve
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        for k in ["time", "peer", "subject", "serial", "result", "reason"] {
            assert!(l.get(k).is_some(), "log line lacks {k}: {l}");
        }
    }
    let prod_serial = s(&st.prod["serial"]);
    assert!(
        lines
            .iter()
            .any(|l| l["result"] == "accepted" && l["serial"] == prod_serial && l["status"] == 200)
    );
    assert!(
        lines
            .iter()
            .any(|l| l["result"] == "refused" && s(&l["reason"]).contains("no client certificate"))
    );
    assert!(lines.iter().any(|l| l["result"] == "refused"
        && l["serial"] == s(&st.nonprod["serial"])
        && s(&l["reason"]).contains("certificate")));
    assert!(lines.iter().any(|l| l["result"] == "refused"
        && l["serial"] == prod_serial
        && s(&l["reason"]).contains("revoked")));
}

fn send_sigterm(pid: i32) -> i32 {
    // the test crate has no libc binding of its own: use kill(1)
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok { 0 } else { 1 }
}
