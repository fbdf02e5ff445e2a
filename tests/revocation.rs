//! Revocation that runs itself (issue 12): revocation pointers in the certificates
//! (judged by openssl), CRLs fetched from their distribution point (curl, then openssl
//! verifies them), `crl --if-due` idempotence, `crl publish`, expired entries leaving the
//! CRL, and the hand-off naming the URLs.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Ws, judges_present, openssl, s};

/// Turns the commented revocation URLs of the mtlsctl.yaml template on, with `crl` as
/// the CRL URL template.
fn set_urls(ws: &Ws, crl: &str) {
    let p = ws.path("mtlsctl.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let line = "  # crl_url: \"http://pki.example.com/crl/{env}/{ca}.crl\"";
    assert!(text.contains(line), "the template offers ca.crl_url");
    let text = text
        .replacen(line, &format!("  crl_url: \"{crl}\""), 1)
        .replacen("  # ocsp_url: ", "  ocsp_url: ", 1)
        .replacen("  # issuer_url: ", "  issuer_url: ", 1);
    std::fs::write(&p, text).unwrap();
}

fn ca_init(ws: &Ws, env: &str) {
    ws.ok(&[
        "ca",
        "init",
        "--env",
        env,
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
}

/// The only issuing CA folder of prod's set.
fn issuing_dir(ws: &Ws) -> PathBuf {
    let d = ws.path("pki/prod/ca/issuing");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(v.len(), 1, "one issuing CA in {}", d.display());
    v.pop().unwrap()
}

fn serial_of(cert: &Path) -> String {
    let out = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"]);
    out.trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

fn exts(cert: &Path) -> String {
    openssl(&[
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-ext",
        "crlDistributionPoints,authorityInfoAccess",
    ])
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A static web server (python3's http.server) over `dir`; killed on drop.
struct WebServer(Child);

impl WebServer {
    fn start(dir: &Path, port: u16) -> WebServer {
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "http.server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        WebServer(child)
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn leaves_and_issuing_cas_name_crl_ocsp_and_issuer() {
    let ws = Ws::two_tier(&["acme"]);
    set_urls(&ws, "http://pki.example.com/crl/{env}/{ca}.crl");
    ca_init(&ws, "prod");
    let root_serial = serial_of(&ws.path("pki/prod/ca/ca.crt"));
    let issuing = issuing_dir(&ws);
    let issuing_serial = serial_of(&issuing.join("ca.crt"));
    let rep = ws.issue("acme", "prod", &[]);
    let cert = PathBuf::from(s(&rep["files"]["cert"]));

    // the leaf points at its issuing CA's CRL and certificate, {ca} its serial
    let e = exts(&cert);
    assert!(
        e.contains(&format!(
            "URI:http://pki.example.com/crl/prod/{issuing_serial}.crl"
        )),
        "{e}"
    );
    assert!(e.contains("OCSP - URI:http://ocsp.example.com/"), "{e}");
    assert!(
        e.contains(&format!(
            "CA Issuers - URI:http://pki.example.com/crl/prod/{issuing_serial}.crt"
        )),
        "{e}"
    );
    // the issuing CA points at the root's
    let e = exts(&issuing.join("ca.crt"));
    assert!(
        e.contains(&format!(
            "URI:http://pki.example.com/crl/prod/{root_serial}.crl"
        )),
        "{e}"
    );
    // neither extension is critical, and the chain still verifies
    let text = openssl(&["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"]);
    assert!(
        !text.contains("CRL Distribution Points: critical"),
        "{text}"
    );
    assert!(
        !text.contains("Authority Information Access: critical"),
        "{text}"
    );
    let chain = cert.with_file_name("chain.pem");
    openssl(&[
        "verify",
        "-CAfile",
        ws.path("pki/prod/ca/ca.crt").to_str().unwrap(),
        "-untrusted",
        chain.to_str().unwrap(),
        "-purpose",
        "sslclient",
        cert.to_str().unwrap(),
    ]);

    // inspect and verify show them
    let j = ws.json(&["inspect", cert.to_str().unwrap()]);
    let dump = j.to_string();
    assert!(
        dump.contains(&format!(
            "http://pki.example.com/crl/prod/{issuing_serial}.crl"
        )),
        "{dump}"
    );
    let t = ws.ok(&["inspect", cert.to_str().unwrap()]);
    assert!(
        t.contains("CRL DP:") && t.contains("OCSP:        http://ocsp.example.com/"),
        "{t}"
    );
    let out = ws.run(&["verify", "--tenant", "acme", "--env", "prod"]);
    let (o, e) = common::text(&out);
    assert!(
        o.contains("revocation at depth 0: CRL http://pki.example.com/crl/prod/"),
        "{o}{e}"
    );

    // the hand-off carries the URLs and offers ssl_ocsp
    let dir = ws.dir.path().join("handoff");
    ws.ok(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--format",
        "nginx",
        "--format",
        "azure-appgw",
        "--format",
        "f5",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["revocation"]["ocsp_url"], "http://ocsp.example.com/");
    let crls = m["revocation"]["crl_urls"].as_array().unwrap();
    assert_eq!(crls.len(), 2, "{m}");
    let conf = std::fs::read_to_string(dir.join("nginx/mtls.conf")).unwrap();
    assert!(conf.contains("\nssl_ocsp               on;"), "{conf}");
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(
        readme.contains("How the CRL stays fresh") || readme.contains("how the CRL stays fresh"),
        "{readme}"
    );
    assert!(readme.contains("turn on revocation checking"), "{readme}");
    assert!(readme.contains("CRLDP"), "{readme}");
}

#[test]
fn without_urls_the_handoff_says_revocation_is_by_file() {
    let ws = Ws::two_tier_with_cas(&["acme"]);
    let rep = ws.issue("acme", "prod", &[]);
    let cert = PathBuf::from(s(&rep["files"]["cert"]));
    assert!(!exts(&cert).contains("URI:"));
    let dir = ws.dir.path().join("handoff");
    ws.ok(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--format",
        "nginx",
        "--format",
        "azure-appgw",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(m["revocation"]["ocsp_url"].is_null());
    let conf = std::fs::read_to_string(dir.join("nginx/mtls.conf")).unwrap();
    assert!(conf.contains("# ssl_ocsp               on;"), "{conf}");
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("crl.pem is a static file"), "{readme}");
    assert!(readme.contains("is NOT refused by the gateway"), "{readme}");
}

#[test]
fn bad_url_templates_name_the_file_and_what_to_do() {
    let ws = Ws::two_tier(&["acme"]);
    set_urls(&ws, "https://pki.example.com/{env}/{ca}.crl");
    let out = ws.run(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
    let (_, e) = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("mtlsctl.yaml:") && e.contains("must start with http://"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");

    let ws = Ws::two_tier(&["acme"]);
    set_urls(&ws, "http://pki.example.com/{env}/{cA}.crl");
    let out = ws.run(&["profile", "show", "--tenant", "acme", "--env", "prod"]);
    let (_, e) = common::text(&out);
    assert!(e.contains("did you mean {ca}?"), "{e}");

    // {tenant} means nothing for CAs every tenant shares
    let ws = Ws::two_tier(&["acme"]);
    set_urls(&ws, "http://pki.example.com/{tenant}/{ca}.crl");
    let out = ws.run(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
    let (_, e) = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("uses {tenant}") && e.contains("ca.scope: tenant"),
        "{e}"
    );
}

#[test]
fn crl_fetched_from_the_distribution_point_verifies() {
    if !judges_present(&["curl", "python3"]) {
        return;
    }
    let ws = Ws::two_tier(&["acme"]);
    let port = free_port();
    set_urls(&ws, &format!("http://127.0.0.1:{port}/{{env}}/{{ca}}.crl"));
    ca_init(&ws, "prod");
    let rep = ws.issue("acme", "prod", &[]);
    let cert = PathBuf::from(s(&rep["files"]["cert"]));
    let web = ws.dir.path().join("web");
    let j = ws.json(&[
        "crl",
        "publish",
        "--env",
        "prod",
        "--out",
        web.to_str().unwrap(),
    ]);
    assert_eq!(j["published"].as_array().unwrap().len(), 2, "{j}");
    let _server = WebServer::start(&web, port);

    // the URL is read from the certificate itself
    let e = exts(&cert);
    let url = e
        .split_whitespace()
        .find_map(|w| w.strip_prefix("URI:").filter(|u| u.ends_with(".crl")))
        .unwrap_or_else(|| panic!("no CDP in {e}"))
        .to_string();
    let fetch = |name: &str| {
        let out = ws.dir.path().join(name);
        let (ok, msg) = common::tool("curl", &["-fsS", "-o", out.to_str().unwrap(), &url]);
        assert!(ok, "curl {url}: {msg}");
        out
    };
    let der = fetch("fetched.crl");
    let chain = cert.with_file_name("chain.pem");
    let v = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        der.to_str().unwrap(),
        "-CAfile",
        chain.to_str().unwrap(),
        "-noout",
    ]);
    assert!(v.contains("verify OK"), "{v}");

    // a revocation reaches the URL with the next publish, under the same name
    let serial = s(&rep["serial"]).to_string();
    ws.ok(&[
        "revoke",
        "--env",
        "prod",
        "--serial",
        &serial,
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
    ws.ok(&[
        "crl",
        "publish",
        "--env",
        "prod",
        "--out",
        web.to_str().unwrap(),
    ]);
    let der = fetch("fetched2.crl");
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        der.to_str().unwrap(),
        "-CAfile",
        chain.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.to_ascii_lowercase().contains(&serial), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    // PEM beside the DER, the same CRL
    let pem = url.rsplit('/').next().unwrap().to_string() + ".pem";
    let pem_text = openssl(&[
        "crl",
        "-in",
        web.join("prod").join(&pem).to_str().unwrap(),
        "-noout",
        "-hash",
    ]);
    assert!(!pem_text.trim().is_empty());
}

fn crl_number(ws: &Ws, dir: &Path) -> u64 {
    let _ = ws;
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state.json")).unwrap()).unwrap();
    v["crl_number"].as_u64().unwrap()
}

#[test]
fn crl_if_due_is_idempotent_and_signs_only_what_is_due() {
    let ws = Ws::two_tier_with_cas(&["acme"]);
    let root = ws.path("pki/prod/ca");
    let issuing = issuing_dir(&ws);
    let (r0, i0) = (crl_number(&ws, &root), crl_number(&ws, &issuing));

    // fresh CRLs: nothing to do, success, no passphrase asked for
    for _ in 0..2 {
        let j = ws.json(&["crl", "--env", "prod", "--if-due"]);
        assert!(j["crls"].as_array().unwrap().is_empty(), "{j}");
        assert_eq!(j["fresh"].as_array().unwrap().len(), 2, "{j}");
        assert!(j.get("crl_number").is_none(), "{j}");
    }
    assert_eq!(
        (crl_number(&ws, &root), crl_number(&ws, &issuing)),
        (r0, i0)
    );
    let t = ws.ok(&["crl", "--env", "prod", "--if-due"]);
    assert!(t.contains("No CRL of prod is due"), "{t}");

    // a window wider than the issuing CA's 7-day CRL but not the root's 1-year one
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let j = ws.json(&[
        "crl",
        "--env",
        "prod",
        "--if-due",
        "--before",
        "30d",
        "--ca-passphrase-file",
        &pf,
    ]);
    assert_eq!(j["crls"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["crl_number"], i0 + 1, "{j}");
    assert_eq!(crl_number(&ws, &root), r0);

    // a lost CRL file is due whatever its window
    std::fs::remove_file(issuing.join("crl.pem")).unwrap();
    let out = ws.run(&["crl", "--env", "prod", "--if-due"]);
    let (_, e) = common::text(&out);
    assert!(
        !out.status.success() && e.contains("--ca-passphrase-file"),
        "{e}"
    );
    let j = ws.json(&[
        "crl",
        "--env",
        "prod",
        "--if-due",
        "--ca-passphrase-file",
        &pf,
    ]);
    assert_eq!(j["crls"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["crl_number"], i0 + 2, "{j}");
    let j = ws.json(&["crl", "--env", "prod", "--if-due"]);
    assert!(j["crls"].as_array().unwrap().is_empty(), "{j}");

    // a recorded revocation the CRL lacks is due too
    let rep = ws.issue("acme", "prod", &[]);
    let serial = s(&rep["serial"]).to_string();
    let old_crl = std::fs::read(issuing.join("crl.pem")).unwrap();
    ws.ok(&[
        "revoke",
        "--env",
        "prod",
        "--serial",
        &serial,
        "--ca-passphrase-file",
        &pf,
    ]);
    std::fs::write(issuing.join("crl.pem"), old_crl).unwrap();
    let j = ws.json(&[
        "crl",
        "--env",
        "prod",
        "--if-due",
        "--ca-passphrase-file",
        &pf,
    ]);
    assert_eq!(j["crls"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["revoked"], 1, "{j}");
    // --before without --if-due is a usage error
    let out = ws.run(&["crl", "--env", "prod", "--before", "1d"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn expired_certificates_leave_the_next_crl() {
    let ws = Ws::two_tier_with_cas(&["acme"]);
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let rep = ws.issue(
        "acme",
        "prod",
        &[
            "--not-before",
            "2020-01-01T00:00:00Z",
            "--not-after",
            "2020-02-01T00:00:00Z",
            "--fixture",
        ],
    );
    let serial = s(&rep["serial"]).to_string();
    ws.ok(&[
        "revoke",
        "--env",
        "prod",
        "--serial",
        &serial,
        "--ca-passphrase-file",
        &pf,
    ]);
    let issuing = issuing_dir(&ws);
    let listed = |ws: &Ws| {
        let _ = ws;
        openssl(&[
            "crl",
            "-in",
            issuing.join("crl.pem").to_str().unwrap(),
            "-noout",
            "-text",
        ])
        .to_ascii_lowercase()
        .contains(&serial)
    };
    // revoked after it expired: listed (once a CRL signed after both has listed it, it
    // may go)
    assert!(listed(&ws));
    let j = ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pf]);
    assert!(
        listed(&ws),
        "the revocation is younger than the previous CRL: {j}"
    );
    // as if the revocation had been recorded before the previous CRL was signed
    let sp = issuing.join("state.json");
    let mut st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sp).unwrap()).unwrap();
    st["revocations"][0]["revoked_at"] = "2020-01-15T00:00:00Z".into();
    assert_eq!(st["revocations"][0]["not_after"], "2020-02-01T00:00:00Z");
    std::fs::write(&sp, st.to_string()).unwrap();
    let j = ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pf]);
    assert_eq!(j["revoked"], 0, "{j}");
    assert_eq!(j["expired_left_out"], 1, "{j}");
    assert!(!listed(&ws));
    // state.json keeps the record, and doctor does not call the entry missing
    let st = std::fs::read_to_string(&sp).unwrap();
    assert!(st.contains(&serial));
    ws.ok(&["doctor", "--env", "prod"]);
    // and it stays out
    ws.ok(&["crl", "--env", "prod", "--ca-passphrase-file", &pf]);
    assert!(!listed(&ws));
}

// ---------------------------------------------------------------------------------------
// ocsp serve

/// `mtlsctl ocsp serve` in the background; stopped by SIGTERM on drop.
struct OcspServer {
    child: Child,
    port: u16,
}

impl OcspServer {
    fn start(ws: &Ws, env: &str, port: u16) -> OcspServer {
        let mut child = ws
            .cmd()
            .args([
                "ocsp",
                "serve",
                "--env",
                env,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--ca-passphrase-file",
                ws.pass_file.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = child.try_wait() {
                let mut e = String::new();
                use std::io::Read;
                let _ = child.stderr.take().unwrap().read_to_string(&mut e);
                panic!("ocsp serve exited early with {st}: {e}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "ocsp serve did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        OcspServer { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it with SIGTERM; returns (exit success, stdout).
    fn stop(mut self) -> (bool, String) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                let mut out = String::new();
                use std::io::Read;
                let _ = self.child.stdout.take().unwrap().read_to_string(&mut out);
                return (st.success(), out);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "SIGTERM did not stop it"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OcspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `openssl ocsp` against the responder; returns its whole output.
fn ask(srv: &OcspServer, issuer: &Path, what: &[&str], root: &Path) -> String {
    let mut args = vec![
        "ocsp".to_string(),
        "-issuer".into(),
        issuer.display().to_string(),
    ];
    args.extend(what.iter().map(|s| s.to_string()));
    args.extend([
        "-url".into(),
        srv.url(),
        "-CAfile".into(),
        root.display().to_string(),
        "-resp_text".into(),
    ]);
    let (_, out) = common::tool(
        "openssl",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    out
}

#[test]
fn ocsp_responder_answers_from_the_records_judged_by_openssl() {
    if !judges_present(&["curl"]) {
        return;
    }
    let ws = Ws::two_tier(&["acme"]);
    let port = free_port();
    set_urls(
        &ws,
        &format!("http://127.0.0.1:{port}/crl/{{env}}/{{ca}}.crl"),
    );
    // the template's OCSP URL points elsewhere: the responder answers whatever the URL
    ca_init(&ws, "prod");
    let rep = ws.issue("acme", "prod", &[]);
    let cert = PathBuf::from(s(&rep["files"]["cert"]));
    let serial = s(&rep["serial"]).to_string();
    let issuing = issuing_dir(&ws).join("ca.crt");
    let root = ws.path("pki/prod/ca/ca.crt");
    let srv = OcspServer::start(&ws, "prod", port);
    let c = cert.to_str().unwrap();

    let out = ask(&srv, &issuing, &["-cert", c], &root);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{c}: good")), "{out}");
    assert!(out.contains("OCSP Nonce"), "the nonce is echoed: {out}");
    assert!(out.contains("Next Update:"), "{out}");
    // signed by a delegated responder: EKU OCSPSigning and ocsp-nocheck
    assert!(out.contains("OCSP Signing"), "{out}");
    assert!(out.contains("OCSP No Check"), "{out}");

    // without a nonce the signed answer is reused (RFC 5019), until the state changes
    for _ in 0..2 {
        let out = ask(&srv, &issuing, &["-cert", c, "-no_nonce"], &root);
        assert!(
            out.contains("Response verify OK") && out.contains(&format!("{c}: good")),
            "{out}"
        );
    }

    // revoked after `revoke`, with its reason, without a restart
    let pf = ws.pass_file.to_str().unwrap().to_string();
    ws.ok(&[
        "revoke",
        "--env",
        "prod",
        "--serial",
        &serial,
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        &pf,
    ]);
    let out = ask(&srv, &issuing, &["-cert", c], &root);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{c}: revoked")), "{out}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");

    // unknown for a serial never issued; a new certificate is good without a restart
    let out = ask(
        &srv,
        &issuing,
        &["-serial", "0x7f0123456789abcdef0123456789abcd"],
        &root,
    );
    assert!(out.contains(": unknown"), "{out}");
    let rep2 = ws.issue("acme", "prod", &["--force"]);
    let c2 = s(&rep2["files"]["cert"]).to_string();
    std::thread::sleep(Duration::from_millis(2100));
    let out = ask(&srv, &issuing, &["-cert", &c2], &root);
    assert!(out.contains(&format!("{c2}: good")), "{out}");
    // the issuing CA itself, asked of the root
    let out = ask(&srv, &root, &["-cert", issuing.to_str().unwrap()], &root);
    assert!(out.contains(": good"), "{out}");

    // GET (RFC 5019): base64 of the request, URL-encoded, after the responder's path
    let req = ws.dir.path().join("req.der");
    openssl(&[
        "ocsp",
        "-issuer",
        issuing.to_str().unwrap(),
        "-cert",
        c,
        "-no_nonce",
        "-reqout",
        req.to_str().unwrap(),
    ]);
    let b64 = openssl(&["base64", "-A", "-in", req.to_str().unwrap()]);
    let enc: String = b64
        .trim()
        .chars()
        .map(|ch| match ch {
            '+' => "%2B".to_string(),
            '/' => "%2F".to_string(),
            '=' => "%3D".to_string(),
            o => o.to_string(),
        })
        .collect();
    let resp = ws.dir.path().join("resp.der");
    let (ok, msg) = common::tool(
        "curl",
        &[
            "-fsS",
            "-o",
            resp.to_str().unwrap(),
            &format!("{}/{enc}", srv.url()),
        ],
    );
    assert!(ok, "{msg}");
    let out = openssl(&[
        "ocsp",
        "-respin",
        resp.to_str().unwrap(),
        "-issuer",
        issuing.to_str().unwrap(),
        "-cert",
        c,
        "-CAfile",
        root.to_str().unwrap(),
    ]);
    assert!(
        out.contains("Response verify OK") && out.contains(": revoked"),
        "{out}"
    );

    // garbage: malformedRequest; a CA it does not serve: unauthorized
    let bad = ws.dir.path().join("bad.der");
    common::tool(
        "curl",
        &[
            "-sS",
            "-o",
            bad.to_str().unwrap(),
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            "not an ocsp request",
            &srv.url(),
        ],
    );
    let (_, out) = common::tool(
        "openssl",
        &[
            "ocsp",
            "-respin",
            bad.to_str().unwrap(),
            "-resp_text",
            "-noverify",
        ],
    );
    assert!(
        out.to_ascii_lowercase().contains("malformedrequest"),
        "{out}"
    );
    let foreign = ws.dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    let fk = foreign.join("k.pem");
    let fc = foreign.join("c.pem");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        fk.to_str().unwrap(),
        "-out",
        fc.to_str().unwrap(),
        "-subj",
        "/CN=Foreign",
        "-days",
        "2",
    ]);
    let (_, out) = common::tool(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            fc.to_str().unwrap(),
            "-serial",
            "0x01",
            "-url",
            &srv.url(),
            "-noverify",
        ],
    );
    assert!(out.to_ascii_lowercase().contains("unauthorized"), "{out}");

    // the CRL at its distribution point, from the same process
    let e = exts(&cert);
    let url = e
        .split_whitespace()
        .find_map(|w| w.strip_prefix("URI:").filter(|u| u.ends_with(".crl")))
        .unwrap()
        .to_string();
    let der = ws.dir.path().join("crl.der");
    let (ok, msg) = common::tool("curl", &["-fsS", "-o", der.to_str().unwrap(), &url]);
    assert!(ok, "{msg}");
    let chain = cert.with_file_name("chain.pem");
    let v = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        der.to_str().unwrap(),
        "-CAfile",
        chain.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(
        v.contains("verify OK") && v.to_ascii_lowercase().contains(&serial),
        "{v}"
    );

    // SIGTERM stops it cleanly; one JSON line per request, each responder audited
    let (ok, log) = srv.stop();
    assert!(ok, "exit status after SIGTERM");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 8, "{log}");
    assert!(
        lines.iter().any(|l| l["ocsp_status"] == "unauthorized"),
        "{log}"
    );
    assert!(lines.iter().any(|l| l["kind"] == "crl"), "{log}");
    assert!(
        log.contains(":cached"),
        "the second no-nonce answer was reused: {log}"
    );
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
    assert_eq!(
        audit.matches("\"ocsp-responder-cert\"").count(),
        2,
        "{audit}"
    );
    ws.ok(&["audit", "verify"]);
}

#[test]
fn nginx_checks_client_certificates_with_our_responder() {
    if !judges_present(&["nginx", "curl"]) {
        return;
    }
    let ws = Ws::two_tier(&["acme"]);
    let port = free_port();
    set_urls(
        &ws,
        &format!("http://127.0.0.1:{port}/crl/{{env}}/{{ca}}.crl"),
    );
    ca_init(&ws, "prod");
    let good = ws.issue("acme", "prod", &[]);
    let bad = ws.issue("acme", "prod", &["--force"]);
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let srv = OcspServer::start(&ws, "prod", port);

    let d = ws.dir.path().join("nginx");
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    let (sk, sc) = (d.join("server.key"), d.join("server.crt"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        sk.to_str().unwrap(),
        "-out",
        sc.to_str().unwrap(),
        "-subj",
        "/CN=localhost",
        "-days",
        "2",
    ]);
    let chain = PathBuf::from(s(&good["files"]["cert"])).with_file_name("chain.pem");
    let nport = free_port();
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
        listen 127.0.0.1:{nport} ssl;
        ssl_certificate {sc};
        ssl_certificate_key {sk};
        ssl_client_certificate {chain};
        ssl_verify_client on;
        ssl_verify_depth 3;
        ssl_ocsp on;
        ssl_ocsp_responder http://127.0.0.1:{port}/;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {{ return 200 \"ok $ssl_client_serial\\n\"; }}
    }}
}}
",
        d = d.display(),
        sc = sc.display(),
        sk = sk.display(),
        chain = chain.display(),
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    struct Nginx(Child);
    impl Drop for Nginx {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let mut nginx = Nginx(
        Command::new("nginx")
            .arg("-p")
            .arg(&d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", nport)).is_err() {
        if let Ok(Some(st)) = nginx.0.try_wait() {
            panic!(
                "nginx exited with {st}: {}",
                std::fs::read_to_string(d.join("logs/error.log")).unwrap_or_default()
            );
        }
        assert!(t0.elapsed() < Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(50));
    }
    let call = |rep: &serde_json::Value| {
        let cert = s(&rep["files"]["cert"]);
        let key = PathBuf::from(cert).with_file_name("key.pem");
        let out = Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "10",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--cert",
                cert,
            ])
            .arg("--key")
            .arg(&key)
            .arg(format!("https://127.0.0.1:{nport}/"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first = call(&good);
    assert!(
        first.ends_with("200"),
        "the tenant's certificate is accepted: {first}\n{}",
        std::fs::read_to_string(d.join("logs/error.log")).unwrap_or_default()
    );
    assert!(call(&bad).ends_with("200"));
    // revoke one: refused from the next handshake, nginx never reloaded, no CRL at all
    ws.ok(&[
        "revoke",
        "--env",
        "prod",
        "--serial",
        s(&bad["serial"]),
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        &pf,
    ]);
    let refused = call(&bad);
    assert!(refused.ends_with("400"), "revoked is refused: {refused}");
    assert!(call(&good).ends_with("200"));
    let log = std::fs::read_to_string(d.join("logs/error.log")).unwrap_or_default();
    assert!(log.contains("revoked"), "{log}");
    // with the responder down nginx refuses even the good certificate (hard fail), as
    // docs/revocation.md says
    drop(srv);
    let down = call(&good);
    assert!(down.ends_with("400"), "responder down: {down}");
}

#[test]
fn tenant_scoped_cas_expand_tenant_in_their_urls() {
    let ws = Ws::two_tier(&["acme"]);
    set_urls(&ws, "http://pki.example.com/{env}/{tenant}/{ca}.crl");
    let envp = ws.path("profiles/environments/prod.yaml");
    let text = std::fs::read_to_string(&envp).unwrap();
    let line = "  # scope: tenant ";
    assert!(text.contains(line), "the template offers ca.scope");
    std::fs::write(&envp, text.replacen(line, "  scope: tenant #", 1)).unwrap();
    ws.ok(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--tenant",
        "acme",
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
    let rep = ws.issue("acme", "prod", &[]);
    let e = exts(&PathBuf::from(s(&rep["files"]["cert"])));
    assert!(e.contains("URI:http://pki.example.com/prod/acme/"), "{e}");
}
