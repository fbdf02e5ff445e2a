//! The OCSP client side: `serve` asks the responder a client certificate names before it
//! answers (as nginx's `ssl_ocsp on` does), and `probe` reports what that responder says
//! of the certificate it presents; both against `mtlsctl ocsp serve`, judged by curl.

mod common;
#[path = "common/net.rs"]
mod net;

use common::*;
use net::*;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

/// A two-tier workspace whose certificates name our responder on `port`.
fn workspace(port: u16) -> Ws {
    let ws = Ws::two_tier(&["acme"]);
    let p = ws.path("mtlsctl.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let line = "  # ocsp_url: \"http://ocsp.example.com/\"";
    assert!(text.contains(line), "the template offers ca.ocsp_url");
    std::fs::write(
        &p,
        text.replacen(
            line,
            &format!("  ocsp_url: \"http://127.0.0.1:{port}/\""),
            1,
        ),
    )
    .unwrap();
    ws.ok(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
    ws
}

fn responder(ws: &Ws, port: u16) -> Proc {
    let child = ws
        .cmd()
        .args(["ocsp", "serve", "--env", "prod", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--ca-passphrase-file")
        .arg(&ws.pass_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    wait_port(port, "mtlsctl ocsp serve", &mut p.0);
    p
}

fn dir_of(rep: &Value) -> PathBuf {
    Path::new(s(&rep["files"]["cert"]))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn serve_refuses_a_certificate_our_responder_says_is_revoked_without_a_restart() {
    if !judges_present(&["curl"]) {
        return;
    }
    let oport = free_port();
    let ws = workspace(oport);
    let good = dir_of(&ws.issue("acme", "prod", &[]));
    let _ocsp = responder(&ws, oport);
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let (_serve, port) = start_serve(&ws, "prod", &["--ca-passphrase-file", &pf]);
    let url = format!("https://127.0.0.1:{port}/");
    let root = ws.path("pki/prod/ca/ca.crt");
    let with = |d: &Path, extra: &[&str]| {
        curl(
            &url,
            &root,
            Some((&d.join("cert.pem"), &d.join("key.pem"))),
            extra,
        )
    };
    let r = with(&good, &[]);
    assert_eq!(r.code, 200, "{}", r.text);

    // probe reports the responder's word
    let probe = |d: &Path| -> (Option<i32>, Value) {
        let out = ws
            .cmd()
            .args(["-o", "json", "probe", &url, "--ca"])
            .arg(&root)
            .arg("--cert")
            .arg(d.join("cert.pem"))
            .arg("--key")
            .arg(d.join("key.pem"))
            .output()
            .unwrap();
        (
            out.status.code(),
            serde_json::from_slice(&out.stdout).unwrap(),
        )
    };
    let (code, v) = probe(&good);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["ocsp"]["status"], "good", "{v:#}");

    // the CRL serve reads is kept as it was before the revocation (a gateway whose CRL
    // is old): the refusal below is OCSP's
    let crl = PathBuf::from(s(ws
        .json(&["ca", "list", "--env", "prod"])
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "issuing" && c["kind"] == "client")
        .map(|c| &c["crl"])
        .unwrap()));
    let old_crl = std::fs::read(&crl).unwrap();
    ws.ok(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        &pf,
    ]);
    let tmp = crl.with_extension("old");
    std::fs::write(&tmp, &old_crl).unwrap();
    std::fs::rename(&tmp, &crl).unwrap();
    // neither serve nor the responder restarted
    let r = with(&good, &[]);
    assert_eq!(r.code, 403, "{}", r.text);
    assert!(r.text.contains("revoked (OCSP"), "{}", r.text);
    let (code, v) = probe(&good);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["ocsp"]["status"], "revoked", "{v:#}");
}

#[test]
fn serve_refuses_when_the_responder_does_not_answer() {
    if !judges_present(&["curl"]) {
        return;
    }
    let oport = free_port();
    let ws = workspace(oport);
    let d = dir_of(&ws.issue("acme", "prod", &[]));
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let (_serve, port) = start_serve(&ws, "prod", &["--ca-passphrase-file", &pf]);
    let r = curl(
        &format!("https://127.0.0.1:{port}/"),
        &ws.path("pki/prod/ca/ca.crt"),
        Some((&d.join("cert.pem"), &d.join("key.pem"))),
        &[],
    );
    assert_eq!(r.code, 403, "{}", r.text);
    assert!(r.text.contains("no OCSP answer"), "{}", r.text);
}
