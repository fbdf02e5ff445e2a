//! `probe`'s diagnosis in each case of issue 14 part 5, against `mtlsctl serve`: the
//! cause named and a fix that works. Certificates with past or future dates are signed by
//! `openssl ca` with the environment's own CA key, so the gateway's verdict is OpenSSL's.

mod common;
#[path = "common/net.rs"]
mod net;

use common::*;
use net::*;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn probe(ws: &Ws, url: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut a = vec!["-o", "json", "probe", url];
    if !extra.contains(&"--timeout") {
        a.extend(["--timeout", "5s"]);
    }
    a.extend_from_slice(extra);
    let out = ws.run(&a);
    let t = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&t).unwrap_or_else(|e| {
        panic!(
            "probe printed no JSON ({e}): {t}\nstderr: {}",
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

struct Setup {
    ws: Ws,
    ca: String,
}

fn setup() -> Setup {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let ca = ws.path("pki/prod/ca/ca.crt").display().to_string();
    Setup { ws, ca }
}

fn serve(st: &Setup, extra: &[&str]) -> (Proc, u16) {
    let mut args = vec!["--ca-passphrase-file", st.ws.pass_file.to_str().unwrap()];
    args.extend_from_slice(extra);
    start_serve(&st.ws, "prod", &args)
}

/// A client certificate for acme's subject signed by the prod CA with the given dates
/// (`YYYYMMDDHHMMSSZ`), by `openssl ca`; returns (cert, key).
fn dated_cert(st: &Setup, start: &str, end: &str) -> (PathBuf, PathBuf) {
    let o = OpensslDir::new(
        "[ca]\ndefault_ca=c\n[c]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=pol\nunique_subject=no\n[pol]\ncommonName=supplied\norganizationName=optional\norganizationalUnitName=optional\n[req]\ndistinguished_name=dn\n[dn]\n[client]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n",
    );
    std::fs::write(o.p("index.txt"), "").unwrap();
    o.ec_key_and_csr("dated", "/O=Example Platform/OU=acme/CN=acme-prod-client");
    let passin = format!("file:{}", st.ws.pass_file.display());
    o.ossl(&[
        "ca",
        "-batch",
        "-notext",
        "-config",
        "cnf",
        "-rand_serial",
        "-preserveDN",
        "-extensions",
        "client",
        "-cert",
        &st.ca,
        "-keyfile",
        st.ws.path("pki/prod/ca/ca.key").to_str().unwrap(),
        "-passin",
        &passin,
        "-startdate",
        start,
        "-enddate",
        end,
        "-in",
        "dated.csr",
        "-out",
        "dated.crt",
    ]);
    let keep = st.ws.dir.path().join(format!("dated-{start}"));
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::copy(o.p("dated.crt"), keep.join("cert.pem")).unwrap();
    std::fs::copy(o.p("dated.key"), keep.join("key.pem")).unwrap();
    (keep.join("cert.pem"), keep.join("key.pem"))
}

#[test]
fn expired_and_not_yet_valid_certificates_are_named() {
    if !judges_present(&["openssl"]) {
        return;
    }
    let st = setup();
    let (_s, port) = serve(&st, &[]);
    let url = format!("https://127.0.0.1:{port}/");
    let (cert, key) = dated_cert(&st, "20200101000000Z", "20200201000000Z");
    let (rc, v) = probe(
        &st.ws,
        &url,
        &[
            "--ca",
            &st.ca,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["client_cert_accepted"], false, "{v:#}");
    let d = diagnosis(&v);
    assert!(d.contains("our certificate expired on 2020-02-01"), "{d}");
    assert!(
        d.contains("mtlsctl issue --tenant TENANT --env ENV --force"),
        "{d}"
    );

    let (cert, key) = dated_cert(&st, "20990101000000Z", "20990201000000Z");
    let (rc, v) = probe(
        &st.ws,
        &url,
        &[
            "--ca",
            &st.ca,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(rc, 1, "{v:#}");
    let d = diagnosis(&v);
    assert!(d.contains("not valid before 2099-01-01"), "{d}");
}

#[test]
fn a_server_certificate_presented_as_client_is_named() {
    let st = setup();
    let (_s, port) = serve(&st, &[]);
    let url = format!("https://127.0.0.1:{port}/");
    let server = st.ws.issue(
        "acme",
        "prod",
        &["--kind", "server", "--dns", "api.example.com"],
    );
    let (rc, v) = probe(
        &st.ws,
        &url,
        &[
            "--ca",
            &st.ca,
            "--cert",
            s(&server["files"]["cert"]),
            "--key",
            s(&server["files"]["key"]),
        ],
    );
    assert_eq!(rc, 1, "{v:#}");
    let d = diagnosis(&v);
    assert!(d.contains("not a client certificate"), "{d}");
    assert!(d.contains("serverAuth"), "{d}");
    assert!(
        d.contains("mtlsctl issue --tenant acme --env prod --force"),
        "{d}"
    );
}

#[test]
fn a_revoked_certificate_is_named_with_a_fix_that_works() {
    let st = setup();
    let (_s, port) = serve(&st, &[]);
    let url = format!("https://127.0.0.1:{port}/");
    let cur = st.ws.issue("acme", "prod", &[]);
    let (cert, key) = (
        s(&cur["files"]["cert"]).to_string(),
        s(&cur["files"]["key"]).to_string(),
    );
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
    let (rc, v) = probe(
        &st.ws,
        &url,
        &["--ca", &st.ca, "--cert", &cert, "--key", &key],
    );
    assert_eq!(rc, 1, "{v:#}");
    let d = diagnosis(&v);
    assert!(d.contains("revoked"), "{d}");
    let fix = "mtlsctl issue --tenant acme --env prod --force";
    assert!(d.contains(fix), "{d}");
    assert!(!d.contains("`mtlsctl renew"), "{d}");
    // the fix works: run it, then the tenant's certificate passes
    st.ws.ok(&[
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--force",
        "--ca-passphrase-file",
        st.ws.pass_file.to_str().unwrap(),
    ]);
    let (rc, v) = probe(
        &st.ws,
        &url,
        &["--ca", &st.ca, "--tenant", "acme", "--env", "prod"],
    );
    assert_eq!(rc, 0, "{v:#}");
}

#[test]
fn without_ca_the_first_line_claims_no_success() {
    let st = setup();
    let (_s, port) = serve(&st, &[]);
    let url = format!("https://127.0.0.1:{port}/");
    let (rc, v) = probe(&st.ws, &url, &["--tenant", "acme", "--env", "prod"]);
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["ok"], false);
    let first = s(&v["diagnosis"][0]);
    assert!(!first.contains("whole path works"), "{first}");
    assert!(diagnosis(&v).contains("--ca"), "{v:#}");
    // and the table's first diagnosis line says the same
    let out = st.ws.run(&[
        "probe",
        &url,
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--timeout",
        "5s",
    ]);
    let (o, _) = text(&out);
    let line = o
        .lines()
        .skip_while(|l| !l.starts_with("diagnosis:"))
        .nth(1)
        .unwrap_or("");
    assert!(!line.contains("whole path works"), "{o}");
    assert!(o.contains("result: FAILED"), "{o}");
}

/// A plain-HTTP backend that answers every request 401.
fn backend_401() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            let Ok((mut c, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            c.set_nonblocking(false).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 8192];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"b\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, stop)
}

#[test]
fn a_401_after_credentials_says_they_were_refused() {
    let st = setup();
    let (bport, stop) = backend_401();
    let up = format!("http://127.0.0.1:{bport}");
    let (_s, port) = serve(&st, &["--upstream", &up]);
    let url = format!("https://127.0.0.1:{port}/");
    let auth = st.ws.dir.path().join("auth.txt");
    std::fs::write(&auth, "platform:wrong\n").unwrap();
    let base = ["--ca", st.ca.as_str(), "--tenant", "acme", "--env", "prod"];
    let mut with = base.to_vec();
    with.extend(["--basic-auth-file", auth.to_str().unwrap()]);
    let (rc, v) = probe(&st.ws, &url, &with);
    assert_eq!(
        (rc, &v["http_status"]),
        (1, &serde_json::json!(401)),
        "{v:#}"
    );
    let d = diagnosis(&v);
    assert!(d.contains("refused the credentials we sent"), "{d}");
    assert!(!d.contains("send them"), "{d}");
    let (_, v) = probe(&st.ws, &url, &base);
    assert!(diagnosis(&v).contains("wants credentials"), "{v:#}");
    stop.store(true, Ordering::SeqCst);
}

#[test]
fn a_403_without_a_certificate_says_the_path_wants_one() {
    let st = setup();
    let (_s, port) = serve(
        &st,
        &["--client-auth", "optional", "--require-cert-on", "/private"],
    );
    let (rc, v) = probe(
        &st.ws,
        &format!("https://127.0.0.1:{port}/private/x"),
        &["--ca", &st.ca],
    );
    assert_eq!(rc, 1, "{v:#}");
    assert_eq!(v["http_status"], 403);
    let d = diagnosis(&v);
    assert!(
        d.contains(
            "we sent no client certificate: the gateway wants one on this path (/private/x)"
        ),
        "{d}"
    );
    // with the certificate the same path works
    let (rc, v) = probe(
        &st.ws,
        &format!("https://127.0.0.1:{port}/private/x"),
        &["--ca", &st.ca, "--tenant", "acme", "--env", "prod"],
    );
    assert_eq!(rc, 0, "{v:#}");
}

/// A TCP server that accepts and sends one byte a second, forever: a TLS server that
/// never finishes its handshake.
fn trickling_server() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let s = s.clone();
            std::thread::spawn(move || {
                // a ServerHello record header, then its body a byte at a time
                let bytes = [
                    0x16u8, 0x03, 0x03, 0x40, 0x00, 0x02, 0x00, 0x3f, 0xfc, 0x03, 0x03,
                ];
                let mut i = 0;
                while !s.load(Ordering::SeqCst) {
                    if c.write_all(&[bytes.get(i).copied().unwrap_or(0x00)])
                        .is_err()
                    {
                        return;
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(700));
                }
            });
        }
    });
    (port, stop)
}

#[test]
fn timeout_bounds_the_whole_exchange() {
    let ws = Ws::new(&[]);
    let (port, stop) = trickling_server();
    let t0 = Instant::now();
    let (rc, v) = probe(
        &ws,
        &format!("https://127.0.0.1:{port}/"),
        &["--timeout", "2s"],
    );
    let took = t0.elapsed();
    assert_eq!(rc, 1, "{v:#}");
    assert!(
        took < Duration::from_secs(4),
        "probe took {took:?} with --timeout 2s"
    );
    assert!(s(&v["error"]).contains("--timeout"), "{v:#}");
    // expiry --remote goes through the same deadline
    let t0 = Instant::now();
    let out = ws.run(&[
        "expiry",
        "--remote",
        &format!("127.0.0.1:{port}"),
        "--timeout",
        "2s",
    ]);
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "expiry --remote took {took:?}"
    );
    let (o, e) = text(&out);
    assert!(format!("{o}{e}").contains("2s --timeout"), "{o}{e}");
    stop.store(true, Ordering::SeqCst);
}
