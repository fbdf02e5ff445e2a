//! `doctor` and the integrity checks of the commands that trust what they read back,
//! each defect made by tampering with a real workspace and judged from outside: openssl
//! reads the CRLs and verifies the chains, the workspace's files are compared byte for
//! byte before and after a refusal.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn pass(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

/// Every file of the workspace with its bytes (the lock file aside).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if !p.ends_with(".mtlsctl.lock") {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, &mut out);
    out
}

/// Runs; returns (exit code, stdout, stderr).
fn run(ws: &Ws, args: &[&str]) -> (i32, String, String) {
    let out = ws.run(args);
    let (o, e) = text(&out);
    (out.status.code().unwrap_or(-1), o, e)
}

fn doctor_json(ws: &Ws, extra: &[&str]) -> (i32, Value) {
    let mut a = vec!["-o", "json", "doctor"];
    a.extend_from_slice(extra);
    let (code, o, e) = run(ws, &a);
    let v = serde_json::from_str(&o).unwrap_or_else(|err| panic!("{err}: {o}\n{e}"));
    (code, v)
}

/// The elements of a JSON array.
fn arr(v: &Value) -> Vec<&Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .collect()
}

fn problems<'a>(rep: &'a Value, check: &str) -> Vec<&'a Value> {
    arr(&rep["problems"])
        .into_iter()
        .filter(|p| p["check"] == check)
        .collect()
}

fn crl_path(ws: &Ws) -> String {
    ws.path("pki/prod/ca/crl.pem").display().to_string()
}

/// The CRL as openssl prints it.
fn crl_text(ws: &Ws) -> String {
    openssl(&["crl", "-noout", "-text", "-in", &crl_path(ws)])
}

fn crl_number(ws: &Ws) -> u64 {
    let out = openssl(&["crl", "-noout", "-crlnumber", "-in", &crl_path(ws)]);
    let hex = out.trim().trim_start_matches("crlNumber=");
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn lists(crl_text: &str, serial: &Value) -> bool {
    crl_text.contains(&format!("Serial Number: {}", s(serial).to_uppercase()))
}

fn revoke(ws: &Ws, args: &[&str]) -> Value {
    let p = pass(ws);
    let mut a = vec!["revoke", "--env", "prod", "--ca-passphrase-file", &p];
    a.extend_from_slice(args);
    ws.json(&a)
}

/// `args` for tenant acme in prod, with the CA passphrase file when `sign`.
fn acme_prod(ws: &Ws, args: &[&str], sign: bool) -> Vec<String> {
    let mut v: Vec<&str> = args.to_vec();
    v.extend(["--tenant", "acme", "--env", "prod"]);
    let p = pass(ws);
    if sign {
        v.extend(["--ca-passphrase-file", &p]);
    }
    v.into_iter().map(String::from).collect()
}

fn crl(ws: &Ws) -> Value {
    ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pass(ws)])
}

#[test]
fn a_healthy_workspace_passes_and_its_chains_verify() {
    let ws = Ws::with_cas(&["acme"]);
    let leaf = ws.issue("acme", "prod", &[]);
    let (code, rep) = doctor_json(&ws, &[]);
    assert_eq!(code, 0, "{rep:#}");
    assert_eq!(rep["healthy"], true);
    assert_eq!(rep["errors"], 0);
    assert_eq!(rep["leaves_checked"], 1);
    assert!(rep["problems"].as_array().unwrap().is_empty(), "{rep:#}");
    // ca init wrote the record doctor checks against
    let rec: Value =
        serde_json::from_slice(&std::fs::read(ws.path("pki/prod/ca/ca.json")).unwrap()).unwrap();
    assert_eq!(rec["recorded_by"], "ca-init");
    assert_eq!(rec["crl_number"], 1);
    if judge("openssl", "openssl") {
        let ca = ws.path("pki/prod/ca/ca.crt").display().to_string();
        let out = openssl(&["verify", "-CAfile", &ca, s(&leaf["files"]["cert"])]);
        assert!(out.contains(": OK"), "{out}");
        // the recorded hash is the SHA-256 of the certificate's SubjectPublicKeyInfo
        let pipe = format!(
            "openssl x509 -in '{ca}' -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256"
        );
        let (ok, dgst) = tool("sh", &["-c", &pipe]);
        assert!(ok, "{dgst}");
        assert!(
            dgst.trim().ends_with(s(&rec["spki_sha256"])),
            "{dgst} vs {rec:#}"
        );
    }
    let (code, out, _) = run(&ws, &["doctor"]);
    assert_eq!(code, 0);
    assert!(out.contains("Healthy"), "{out}");
}

#[test]
fn a_substituted_ca_is_named_and_every_command_that_trusts_it_refuses() {
    let ws = Ws::with_cas(&["acme"]);
    let leaf = ws.issue("acme", "prod", &[]);
    let other = Ws::with_cas(&["acme"]);
    for f in ["ca.crt", "crl.pem"] {
        std::fs::copy(
            other.path(&format!("pki/prod/ca/{f}")),
            ws.path(&format!("pki/prod/ca/{f}")),
        )
        .unwrap();
    }
    if judge("openssl", "openssl") {
        // the judge agrees: the tenant's certificate does not chain to what is there now
        let ca = ws.path("pki/prod/ca/ca.crt").display().to_string();
        let (ok, out) = tool(
            "openssl",
            &["verify", "-CAfile", &ca, s(&leaf["files"]["cert"])],
        );
        assert!(!ok, "{out}");
    }
    let (code, rep) = doctor_json(&ws, &[]);
    assert_eq!(code, 1, "{rep:#}");
    let ca = problems(&rep, "ca-record");
    assert_eq!(ca.len(), 1, "{rep:#}");
    assert_eq!(ca[0]["severity"], "error");
    assert!(s(&ca[0]["path"]).ends_with("pki/prod/ca/ca.crt"), "{rep:#}");
    assert_ne!(ca[0]["expected"], ca[0]["found"]);
    assert_eq!(problems(&rep, "leaf-chain").len(), 1, "{rep:#}");

    let before = snapshot(&ws.root());
    let out_dir = ws.dir.path().join("handoff");
    let out = out_dir.display().to_string();
    for args in [
        acme_prod(&ws, &["export", "--out", &out], false),
        acme_prod(&ws, &["issue", "--force"], true),
        acme_prod(&ws, &["revoke"], true),
        ["crl", "--env", "prod", "--ca-passphrase-file", &pass(&ws)]
            .map(String::from)
            .to_vec(),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = run(&ws, &args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("ca.crt") && err.contains("mtlsctl doctor"),
            "{args:?}: {err}"
        );
    }
    assert!(!out_dir.exists(), "export wrote a hand-off");
    assert!(
        before == snapshot(&ws.root()),
        "a refused command changed the workspace"
    );
    // the other views say so too
    let (_, _, err) = run(&ws, &["ca", "show"]);
    assert!(err.contains("ca.crt"), "{err}");
}

#[test]
fn a_lost_state_is_rebuilt_from_the_certificates_and_the_number_only_grows() {
    if !judge("openssl", "openssl") {
        return;
    }
    let ws = Ws::with_cas(&["acme", "beta"]);
    let acme = ws.issue("acme", "prod", &[]);
    let beta = ws.issue("beta", "prod", &[]);
    revoke(&ws, &["--tenant", "acme", "--reason", "key-compromise"]);
    revoke(&ws, &["--tenant", "beta"]);
    let n0 = crl_number(&ws);

    // state.json lost: the next CRL still lists both, under a higher number
    std::fs::remove_file(ws.path("pki/prod/ca/state.json")).unwrap();
    let (code, rep) = doctor_json(&ws, &[]);
    assert_eq!(code, 1);
    assert!(!problems(&rep, "revocations").is_empty(), "{rep:#}");
    let r = crl(&ws);
    assert_eq!(r["restored"].as_array().unwrap().len(), 2, "{r:#}");
    let text = crl_text(&ws);
    assert!(
        lists(&text, &acme["serial"]) && lists(&text, &beta["serial"]),
        "{text}"
    );
    assert!(text.contains("Key Compromise"), "{text}");
    let n1 = crl_number(&ws);
    assert!(n1 > n0, "{n1} > {n0}");
    let (_, out, _) = run(
        &ws,
        &["crl", "--env", "prod", "--ca-passphrase-file", &pass(&ws)],
    );
    assert!(!out.contains("restored"), "restored twice: {out}");
    let n1 = n1 + 1;

    // state.json and crl.pem lost: ca.json still knows the number
    std::fs::remove_file(ws.path("pki/prod/ca/state.json")).unwrap();
    std::fs::remove_file(ws.path("pki/prod/ca/crl.pem")).unwrap();
    let n2 = crl_number_after_crl(&ws);
    assert!(n2 > n1, "{n2} > {n1}");
    let text = crl_text(&ws);
    assert!(
        lists(&text, &acme["serial"]) && lists(&text, &beta["serial"]),
        "{text}"
    );

    // and ca.json lost instead: state.json knows it
    std::fs::remove_file(ws.path("pki/prod/ca/ca.json")).unwrap();
    std::fs::remove_file(ws.path("pki/prod/ca/crl.pem")).unwrap();
    assert!(crl_number_after_crl(&ws) > n2);
    let (code, rep) = doctor_json(&ws, &[]);
    assert_eq!(code, 0, "{rep:#}");

    // a revoked certificate whose folder is gone too: the previous CRL still names it
    let dir = Path::new(s(&acme["files"]["cert"])).parent().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_file(ws.path("pki/prod/ca/state.json")).unwrap();
    crl(&ws);
    let text = crl_text(&ws);
    assert!(lists(&text, &acme["serial"]), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
}

fn crl_number_after_crl(ws: &Ws) -> u64 {
    let r = crl(ws);
    let n = crl_number(ws);
    assert_eq!(r["crl_number"], n);
    n
}

#[test]
fn an_older_crl_put_back_is_stale_for_expiry_serve_and_doctor() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let old = std::fs::read(ws.path("pki/prod/ca/crl.pem")).unwrap();
    crl(&ws);
    crl(&ws);
    std::fs::write(ws.path("pki/prod/ca/crl.pem"), old).unwrap();

    let (code, out, err) = run(&ws, &["expiry"]);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(out.contains("stale-crl"), "{out}");
    assert!(
        err.contains("stale") && err.contains("mtlsctl crl --env prod"),
        "{err}"
    );
    let (code, o, _) = run(&ws, &["-o", "json", "expiry"]);
    assert_eq!(code, 4);
    let findings: Value = serde_json::from_str(&o).unwrap();
    let f = arr(&findings)
        .into_iter()
        .find(|f| f["kind"] == "crl")
        .unwrap();
    assert_eq!(f["status"], "stale-crl");
    assert!(s(&f["error"]).contains("below 3"), "{f:#}");

    let (code, _, err) = run(
        &ws,
        &[
            "serve",
            "--env",
            "prod",
            "--listen",
            "127.0.0.1:0",
            "--ca-passphrase-file",
            &pass(&ws),
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("stale"), "{err}");

    let (code, rep) = doctor_json(&ws, &[]);
    assert_eq!(code, 1);
    let p = problems(&rep, "crl");
    assert_eq!(p.len(), 1, "{rep:#}");
    assert_eq!(p[0]["needs_passphrase"], true);
    assert_eq!(p[0]["found"], "CRL number 1");

    // an export would hand the older CRL to a gateway: refused, nothing written
    let out_dir = ws.dir.path().join("handoff");
    let out_s = out_dir.to_str().unwrap().to_string();
    let (code, _, err) = run(
        &ws,
        &[
            "export", "--tenant", "acme", "--env", "prod", "--format", "nginx", "--out", &out_s,
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("stale") || err.contains("older"), "{err}");
    assert!(!out_dir.exists());

    crl(&ws);
    let (code, _, _) = run(&ws, &["expiry"]);
    assert_eq!(code, 0);
    let (code, _, err) = run(
        &ws,
        &[
            "export", "--tenant", "acme", "--env", "prod", "--format", "nginx", "--out", &out_s,
        ],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn staging_leftovers_and_links_out_of_the_workspace_are_named() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let tmp = ws.path("pki/prod/acme/client/.tmp-x");
    std::fs::create_dir(&tmp).unwrap();
    let link = ws.path("pki/prod/acme/outside.pem");
    std::os::unix::fs::symlink(ws.dir.path().join("ca-pass.txt"), &link).unwrap();
    let (code, rep) = doctor_json(&ws, &[]);
    assert_eq!(code, 1, "{rep:#}");
    let st = problems(&rep, "staging");
    assert_eq!(st.len(), 1, "{rep:#}");
    assert_eq!(s(&st[0]["path"]), tmp.to_str().unwrap());
    let ln = problems(&rep, "symlink");
    assert_eq!(ln.len(), 1, "{rep:#}");
    assert_eq!(s(&ln[0]["path"]), link.to_str().unwrap());
    let (_, out, _) = run(&ws, &["doctor"]);
    assert!(
        out.contains(".tmp-x") && out.contains("outside.pem"),
        "{out}"
    );
    std::fs::remove_dir(&tmp).unwrap();
    std::fs::remove_file(&link).unwrap();
    assert_eq!(doctor_json(&ws, &[]).0, 0);
}

#[test]
fn repair_records_an_old_workspace_and_rebuilds_its_state() {
    let ws = Ws::with_cas(&["acme"]);
    let leaf = ws.issue("acme", "prod", &[]);
    revoke(&ws, &["--tenant", "acme"]);
    // a workspace from before ca.json, whose state.json was lost
    std::fs::remove_file(ws.path("pki/prod/ca/ca.json")).unwrap();
    std::fs::remove_file(ws.path("pki/prod/ca/state.json")).unwrap();
    let (code, rep) = doctor_json(&ws, &[]);
    assert_eq!(code, 1);
    let ca = problems(&rep, "ca-record");
    assert_eq!(ca[0]["severity"], "warning", "{rep:#}");
    assert!(s(&ca[0]["problem"]).contains("not yet recorded"));

    let (code, rep) = doctor_json(&ws, &["--repair"]);
    assert_eq!(code, 0, "{rep:#}");
    assert_eq!(rep["repaired"].as_array().unwrap().len(), 2, "{rep:#}");
    let state: Value =
        serde_json::from_slice(&std::fs::read(ws.path("pki/prod/ca/state.json")).unwrap()).unwrap();
    assert_eq!(state["revocations"][0]["serial"], leaf["serial"]);
    assert_eq!(state["crl_number"], 2);
    let rec: Value =
        serde_json::from_slice(&std::fs::read(ws.path("pki/prod/ca/ca.json")).unwrap()).unwrap();
    assert_eq!(rec["recorded_by"], "doctor");
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["op"], "doctor-repair", "{audit}");
    assert!(s(&last["detail"]).contains("state.json"), "{last}");
    // the next run that loads the key confirms the record
    crl(&ws);
    let rec: Value =
        serde_json::from_slice(&std::fs::read(ws.path("pki/prod/ca/ca.json")).unwrap()).unwrap();
    assert_eq!(rec["recorded_by"], "signer");
    assert_eq!(rec["crl_number"], 3);

    // a revocation only meta.json remembers: repair restores it, and says the CRL needs
    // the passphrase
    let next = ws.issue("acme", "prod", &["--force"]);
    let meta_path = Path::new(s(&next["files"]["cert"])).with_file_name("meta.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["status"] = "revoked".into();
    meta["revoked_at"] = "2026-01-01T00:00:00Z".into();
    meta["revocation_reason"] = "key-compromise".into();
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta).unwrap()).unwrap();
    let (code, rep) = doctor_json(&ws, &["--repair"]);
    assert_eq!(code, 1, "{rep:#}");
    let left = problems(&rep, "crl");
    assert_eq!(left.len(), 1, "{rep:#}");
    assert_eq!(left[0]["needs_passphrase"], true);
    assert!(s(&left[0]["fix"]).contains("mtlsctl crl --env prod"));
    crl(&ws);
    assert_eq!(doctor_json(&ws, &[]).0, 0);
}

#[test]
fn key_compromise_revokes_every_certificate_of_the_key() {
    let ws = Ws::with_cas(&["acme"]);
    let first = ws.issue("acme", "prod", &[]);
    let p = pass(&ws);
    // renew --force renews a certificate that is not due, keeping the key
    let r = ws.json(&[
        "renew",
        "--force",
        "--reuse-key",
        "--ca-passphrase-file",
        &p,
    ]);
    assert_eq!(r["renewed"], 1, "{r:#}");
    assert_eq!(r["force"], true);
    let second = r["items"][0]["certificate"].clone();
    assert_ne!(second["serial"], first["serial"]);
    // then a new key
    let r = ws.json(&["renew", "--force", "--ca-passphrase-file", &p]);
    let third = r["items"][0]["certificate"].clone();
    assert_eq!(r["renewed"], 1, "{r:#}");

    // without --force nothing is due
    let r = ws.json(&["renew", "--ca-passphrase-file", &p]);
    assert_eq!(r["renewed"], 0, "{r:#}");

    // revoking the first for key-compromise revokes the second (same key), not the third
    let rep = revoke(
        &ws,
        &[
            "--serial",
            s(&first["serial"]),
            "--reason",
            "key-compromise",
        ],
    );
    let also = arr(&rep["also_revoked"]);
    assert_eq!(also.len(), 1, "{rep:#}");
    assert_eq!(also[0]["serial"], second["serial"]);
    assert_eq!(also[0]["status"], "superseded");
    assert_eq!(rep["replacement"], third["serial"]);
    if judge("openssl", "openssl") {
        let text = crl_text(&ws);
        assert!(
            lists(&text, &first["serial"]) && lists(&text, &second["serial"]),
            "{text}"
        );
        assert!(!lists(&text, &third["serial"]), "{text}");
        let ca = ws.path("pki/prod/ca/ca.crt").display().to_string();
        for (c, want) in [(&second, "certificate revoked"), (&third, ": OK")] {
            let (_, out) = tool(
                "openssl",
                &[
                    "verify",
                    "-crl_check",
                    "-CAfile",
                    &ca,
                    "-CRLfile",
                    &crl_path(&ws),
                    s(&c["files"]["cert"]),
                ],
            );
            assert!(out.contains(want), "{out}");
        }
    }
    // a superseded certificate whose replacement exists: no advice to issue one
    let (_, out, _) = run(
        &ws,
        &["revoke", "--env", "prod", "--serial", s(&first["serial"])],
    );
    assert!(out.contains("already revoked"), "{out}");
    let list = ws.json(&["list", "-a"]);
    let revoked = arr(&list)
        .into_iter()
        .filter(|r| r["status"] == "revoked")
        .count();
    assert_eq!(revoked, 2, "{list:#}");
}

#[test]
fn revoking_a_superseded_certificate_does_not_advise_a_replacement() {
    let ws = Ws::with_cas(&["acme"]);
    let first = ws.issue("acme", "prod", &[]);
    let p = pass(&ws);
    ws.json(&["renew", "--force", "--ca-passphrase-file", &p]);
    let (code, out, err) = run(
        &ws,
        &[
            "revoke",
            "--env",
            "prod",
            "--serial",
            s(&first["serial"]),
            "--ca-passphrase-file",
            &p,
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("mtlsctl issue"), "{out}");
    assert!(out.contains("is not affected"), "{out}");
    // revoking the current one does
    let args = acme_prod(&ws, &["revoke"], true);
    let (_, out, _) = run(&ws, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains("mtlsctl issue --tenant acme --env prod"),
        "{out}"
    );
}

#[test]
fn a_client_certificate_from_another_ca_is_never_handed_off() {
    let ws = Ws::with_cas(&["acme"]);
    let mine = ws.issue("acme", "prod", &[]);
    let other = Ws::with_cas(&["acme"]);
    let theirs = other.issue("acme", "prod", &[]);
    std::fs::copy(s(&theirs["files"]["cert"]), s(&mine["files"]["cert"])).unwrap();
    let out_dir = ws.dir.path().join("handoff");
    let (code, _, err) = run(
        &ws,
        &[
            "export",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--format",
            "nginx",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cert.pem"), "{err}");
    assert!(!out_dir.exists());
    // the independent judge agrees the certificate does not chain to this CA
    let o = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ws.path("pki/prod/ca/ca.crt"))
        .arg(s(&mine["files"]["cert"]))
        .output()
        .unwrap();
    assert!(!o.status.success());
}
