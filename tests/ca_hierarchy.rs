//! The CA hierarchy judged by independent tools: openssl verify on the chains, keytool on
//! the PFX, nginx on the exported bundles through a revocation, a root rotation with its
//! cross-certificate and a retirement, and tenant-scoped CAs that isolate tenants by
//! trust alone.

mod common;
use common::nginx::{Nginx, Trust};
use common::*;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn pf(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

/// The folder of a leaf from its issue report.
fn dir_of(rep: &Value) -> PathBuf {
    Path::new(s(&rep["files"]["cert"]))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn export(ws: &Ws, tenant: &str, env: &str, name: &str) -> PathBuf {
    let out = ws.dir.path().join(name);
    ws.ok(&[
        "export",
        "--tenant",
        tenant,
        "--env",
        env,
        "--format",
        "nginx",
        "--out",
        out.to_str().unwrap(),
    ]);
    out
}

fn ca_list(ws: &Ws, env: &str) -> Vec<Value> {
    ws.json(&["ca", "list", "--env", env])
        .as_array()
        .unwrap()
        .clone()
}

/// The CA of `role` (and `kind`) with `status` in `list`.
fn find<'a>(list: &'a [Value], role: &str, kind: Option<&str>, status: &str) -> &'a Value {
    list.iter()
        .find(|c| c["role"] == role && c["status"] == status && kind.is_none_or(|k| c["kind"] == k))
        .unwrap_or_else(|| panic!("no {role} {kind:?} {status} in {list:#?}"))
}

fn count_certs(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .unwrap()
        .matches("-----BEGIN CERTIFICATE-----")
        .count()
}

#[test]
fn two_tiers_by_default_and_openssl_judges_the_chain_and_the_eku() {
    if !judges_present(&["openssl", "keytool"]) {
        return;
    }
    let ws = Ws::two_tier_with_cas(&["acme"]);
    let list = ca_list(&ws, "prod");
    assert_eq!(list.len(), 2, "{list:#?}");
    let root = find(&list, "root", None, "active");
    let issuing = find(&list, "issuing", Some("client"), "active");
    assert_eq!(root["path_length"], 1);
    assert_eq!(issuing["path_length"], 0);
    assert_eq!(issuing["extended_key_usage"][0], "clientAuth", "{issuing}");
    // the root lives 20 years, the issuing CA 5
    assert!(root["not_after"].as_str().unwrap() > issuing["not_after"].as_str().unwrap());

    let rep = ws.issue("acme", "prod", &[]);
    let d = dir_of(&rep);
    let root_crt = s(&root["cert"]).to_string();
    assert_eq!(
        count_certs(&d.join("chain.pem")),
        2,
        "issuing CA, then the root"
    );
    assert_eq!(count_certs(&d.join("fullchain.pem")), 3);
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        &root_crt,
        "-untrusted",
        d.join("chain.pem").to_str().unwrap(),
        d.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(out.contains(": OK"), "{out}");
    // the leaf is the issuing CA's, not the root's
    let issuer = openssl(&[
        "x509",
        "-noout",
        "-issuer",
        "-in",
        d.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(issuer.contains("Issuing Client"), "{issuer}");

    // a serverAuth leaf signed with the client-issuing CA's key: the chain refuses it
    let iss_dir = Path::new(s(&issuing["cert"])).parent().unwrap();
    let t = OpensslDir::new("");
    t.ossl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=api.example.com",
        "-keyout",
        &t.ps("s.key"),
        "-out",
        &t.ps("s.csr"),
    ]);
    std::fs::write(
        t.p("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:api.example.com\n",
    )
    .unwrap();
    t.ossl(&[
        "x509",
        "-req",
        "-in",
        &t.ps("s.csr"),
        "-CA",
        s(&issuing["cert"]),
        "-CAkey",
        iss_dir.join("ca.key").to_str().unwrap(),
        "-passin",
        &format!("file:{}", pf(&ws)),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &t.ps("ext.cnf"),
        "-out",
        &t.ps("s.crt"),
    ]);
    let (ok, out) = tool(
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            &root_crt,
            "-untrusted",
            s(&issuing["cert"]),
            &t.ps("s.crt"),
        ],
    );
    assert!(
        !ok && out.contains("unsuitable certificate purpose"),
        "{out}"
    );

    // keytool: the PFX holds leaf, issuing CA and root
    let pfx = d.join("bundle.pfx");
    let pw = std::fs::read_to_string(d.join("bundle.pfx.pass")).unwrap();
    let (ok, out) = tool(
        "keytool",
        &[
            "-list",
            "-v",
            "-storetype",
            "PKCS12",
            "-keystore",
            pfx.to_str().unwrap(),
            "-storepass",
            pw.trim(),
        ],
    );
    assert!(ok, "{out}");
    assert!(out.contains("Certificate chain length: 3"), "{out}");

    // a server certificate comes from a server-issuing CA made on first use
    let srv = ws.issue(
        "acme",
        "prod",
        &["--kind", "server", "--dns", "api.acme.example"],
    );
    let sd = dir_of(&srv);
    let issuer = openssl(&[
        "x509",
        "-noout",
        "-issuer",
        "-in",
        sd.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(issuer.contains("Issuing Server"), "{issuer}");
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-CAfile",
        &root_crt,
        "-untrusted",
        sd.join("chain.pem").to_str().unwrap(),
        sd.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(out.contains(": OK"), "{out}");
    let list = ca_list(&ws, "prod");
    find(&list, "issuing", Some("server"), "active");
    // the client bundle does not carry the server-issuing CA
    let e = export(&ws, "acme", "prod", "x");
    assert_eq!(count_certs(&e.join("ca-chain.pem")), 2);
}

#[test]
fn nginx_accepts_the_two_tier_export_and_refuses_a_revoked_leaf_after_reload() {
    if !judges_present(&["nginx", "curl", "openssl"]) {
        return;
    }
    let ws = Ws::two_tier_with_cas(&["acme"]);
    let rep = ws.issue("acme", "prod", &[]);
    let d = dir_of(&rep);
    let e = export(&ws, "acme", "prod", "export1");
    assert_eq!(count_certs(&e.join("ca-chain.pem")), 2);
    let crls = std::fs::read_to_string(e.join("crl.pem")).unwrap();
    assert_eq!(crls.matches("BEGIN X509 CRL").count(), 2, "one CRL per CA");
    let trust = Trust::of_export(&e);
    assert_eq!(trust.depth, 3, "leaf, issuing CA, root");
    let mut nginx = Nginx::start(&trust);
    // the client sends only its own certificate: the bundle has the issuing CA
    assert_eq!(
        nginx.status_with(&d.join("cert.pem"), &d.join("key.pem")),
        200,
        "{}",
        nginx.error_log()
    );

    ws.ok(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    // the issuing CA's CRL lists it; openssl says so with the whole chain's CRLs
    let fresh = ws.issue("acme", "prod", &[]);
    let e2 = export(&ws, "acme", "prod", "export2");
    let root = find(&ca_list(&ws, "prod"), "root", None, "active")["cert"].clone();
    let (ok, out) = tool(
        "openssl",
        &[
            "verify",
            "-crl_check_all",
            "-CAfile",
            s(&root),
            "-untrusted",
            d.join("chain.pem").to_str().unwrap(),
            "-CRLfile",
            e2.join("crl.pem").to_str().unwrap(),
            d.join("cert.pem").to_str().unwrap(),
        ],
    );
    assert!(!ok && out.contains("revoked"), "{out}");
    nginx.reload(&Trust::of_export(&e2));
    assert_eq!(
        nginx.status_with(&d.join("cert.pem"), &d.join("key.pem")),
        400
    );
    let nd = dir_of(&fresh);
    assert_eq!(
        nginx.status_with(&nd.join("cert.pem"), &nd.join("key.pem")),
        200
    );
}

#[test]
fn a_root_rotation_keeps_every_gateway_working_until_the_old_root_is_retired() {
    if !judges_present(&["nginx", "curl", "openssl"]) {
        return;
    }
    let ws = Ws::two_tier_with_cas(&["acme", "globex"]);
    let old = ws.issue("acme", "prod", &[]);
    let od = dir_of(&old);
    let e1 = export(&ws, "acme", "prod", "before");
    let old_root = ws.dir.path().join("old-root.pem");
    std::fs::copy(ws.path("pki/prod/ca/ca.crt"), &old_root).unwrap();
    let mut nginx = Nginx::start(&Trust::of_export(&e1));
    assert_eq!(
        nginx.status_with(&od.join("cert.pem"), &od.join("key.pem")),
        200
    );
    ws.issue("globex", "prod", &[]);

    let rot = ws.json(&[
        "ca",
        "rotate",
        "--env",
        "prod",
        "--tier",
        "root",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    assert_eq!(rot["due"], 2, "acme's and globex's {rot:#}");
    assert!(
        rot["created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["role"] == "cross")
    );
    let old_root_serial = rot["retiring"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "root")
        .map(|c| s(&c["serial"]).to_string())
        .unwrap();
    // the old leaf is due, reason ca-rotation
    let plan = ws.json(&["renew", "--env", "prod", "--dry-run"]);
    let item = plan["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tenant"] == "acme")
        .unwrap();
    assert_eq!(item["action"], "would-renew", "{plan:#}");
    assert!(s(&item["reason"]).contains("ca-rotation"), "{item}");

    // overlap: the new export trusts old and new; nginx reloaded accepts both leaves
    let new = ws.issue("acme", "prod", &["--force"]);
    let nd = dir_of(&new);
    let e2 = export(&ws, "acme", "prod", "overlap");
    assert_eq!(
        count_certs(&e2.join("ca-chain.pem")),
        4,
        "two roots, two issuing CAs"
    );
    let t2 = Trust::of_export(&e2);
    assert_eq!(
        t2.depth, 3,
        "leaf, issuing CA (or its cross-certificate), root"
    );
    nginx.reload(&t2);
    assert_eq!(
        nginx.status_with(&od.join("cert.pem"), &od.join("key.pem")),
        200
    );
    assert_eq!(
        nginx.status_with(&nd.join("fullchain.pem"), &nd.join("key.pem")),
        200
    );

    // a gateway that holds only the old root accepts the new leaf through the
    // cross-certificate in its chain
    assert_eq!(
        count_certs(&nd.join("chain.pem")),
        1,
        "the new issuing CA as the old root certified it"
    );
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        old_root.to_str().unwrap(),
        "-untrusted",
        nd.join("chain.pem").to_str().unwrap(),
        nd.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(out.contains(": OK"), "{out}");
    let old_only = Nginx::start(&Trust {
        ca: old_root.clone(),
        crl: None,
        depth: 3,
    });
    assert_eq!(
        old_only.status_with(&nd.join("fullchain.pem"), &nd.join("key.pem")),
        200,
        "{}",
        old_only.error_log()
    );
    drop(old_only);

    // retire refuses while a current certificate chains to the old root (globex's)
    let e = ws.run(&[
        "ca",
        "retire",
        "--env",
        "prod",
        "--serial",
        &old_root_serial,
    ]);
    assert_eq!(e.status.code(), Some(1));
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("globex/prod/client") && err.contains("mtlsctl renew"),
        "{err}"
    );
    ws.ok(&["renew", "--env", "prod", "--ca-passphrase-file", &pf(&ws)]);
    let retire = ws.json(&[
        "ca",
        "retire",
        "--env",
        "prod",
        "--serial",
        &old_root_serial,
    ]);
    assert_eq!(retire["changed"], true, "{retire:#}");
    let e3 = export(&ws, "acme", "prod", "after");
    assert_eq!(
        count_certs(&e3.join("ca-chain.pem")),
        2,
        "the new root and its issuing CA"
    );
    nginx.reload(&Trust::of_export(&e3));
    assert_eq!(
        nginx.status_with(&od.join("cert.pem"), &od.join("key.pem")),
        400
    );
    assert_eq!(
        nginx.status_with(&nd.join("fullchain.pem"), &nd.join("key.pem")),
        200
    );
    // the retired CAs still sign their CRLs; doctor and the audit trail agree
    let crl = ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pf(&ws)]);
    assert!(crl["crls"].as_array().unwrap().len() >= 4, "{crl:#}");
    ws.ok(&["doctor"]);
    ws.ok(&["audit", "verify"]);
}

#[test]
fn tenant_scoped_cas_isolate_tenants_by_trust_alone() {
    if !judges_present(&["nginx", "curl"]) {
        return;
    }
    let ws = Ws::two_tier(&["acme", "globex"]);
    let env_yaml = ws.path("profiles/environments/prod.yaml");
    let text = std::fs::read_to_string(&env_yaml).unwrap();
    std::fs::write(
        &env_yaml,
        text.replacen("ca:\n", "ca:\n  scope: tenant\n", 1),
    )
    .unwrap();
    for t in ["acme", "globex"] {
        ws.ok(&[
            "ca",
            "init",
            "--env",
            "prod",
            "--tenant",
            t,
            "--ca-passphrase-file",
            &pf(&ws),
        ]);
    }
    assert!(ws.path("pki/prod/acme/ca/ca.crt").is_file());
    assert!(!ws.path("pki/prod/ca").exists(), "no shared CA");
    let a = dir_of(&ws.issue("acme", "prod", &[]));
    let g = dir_of(&ws.issue("globex", "prod", &[]));
    let subj = openssl(&[
        "x509",
        "-noout",
        "-issuer",
        "-in",
        a.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(subj.contains("(acme)"), "{subj}");
    let e = export(&ws, "acme", "prod", "acme-export");
    let nginx = Nginx::start(&Trust::of_export(&e));
    assert_eq!(
        nginx.status_with(&a.join("cert.pem"), &a.join("key.pem")),
        200
    );
    assert_eq!(
        nginx.status_with(&g.join("fullchain.pem"), &g.join("key.pem")),
        400
    );
    // every command covers every set
    let list = ca_list(&ws, "prod");
    assert_eq!(list.len(), 4, "{list:#?}");
    assert!(list.iter().all(|c| c["scope"] == "tenant"));
    let crl = ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pf(&ws)]);
    assert_eq!(crl["crls"].as_array().unwrap().len(), 4, "{crl:#}");
    ws.ok(&[
        "revoke",
        "--tenant",
        "globex",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    // the revocation is globex's CA's, not acme's
    let globex_issuing = ca_list(&ws, "prod")
        .into_iter()
        .find(|c| c["tenant"] == "globex" && c["role"] == "issuing")
        .unwrap();
    let crl_text = openssl(&["crl", "-noout", "-text", "-in", s(&globex_issuing["crl"])]);
    let serial = std::fs::read_to_string(g.join("meta.json")).unwrap();
    let serial: Value = serde_json::from_str(&serial).unwrap();
    assert!(
        crl_text
            .to_lowercase()
            .contains(&s(&serial["serial"]).to_lowercase()),
        "{crl_text}"
    );
    ws.ok(&["doctor"]);
}

#[test]
fn an_offline_root_is_asked_for_only_when_it_must_sign() {
    if !judges_present(&["openssl"]) {
        return;
    }
    let ws = Ws::two_tier(&["acme"]);
    let vault = ws.dir.path().join("vault");
    let rep = ws.json(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--root-key-out",
        vault.to_str().unwrap(),
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    let key = PathBuf::from(s(&rep["root_key_out"]));
    assert!(key.starts_with(&vault), "{rep:#}");
    assert_eq!(mode(&key) & 0o777, 0o600);
    assert!(
        !ws.path("pki/prod/ca/ca.key").exists(),
        "the root key is not kept"
    );
    // the key opens with the CA passphrase and matches the root
    let pubkey = openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-passin",
        &format!("file:{}", pf(&ws)),
        "-pubout",
    ]);
    let root_pub = openssl(&[
        "x509",
        "-noout",
        "-pubkey",
        "-in",
        ws.path("pki/prod/ca/ca.crt").to_str().unwrap(),
    ]);
    assert_eq!(pubkey.trim(), root_pub.trim());
    // leaves, their CRL and revocations need no root key
    ws.issue("acme", "prod", &[]);
    let crl = ws.run(&["crl", "--env", "prod", "--ca-passphrase-file", &pf(&ws)]);
    assert!(crl.status.success());
    let err = String::from_utf8_lossy(&crl.stderr);
    assert!(
        err.contains("--root-key"),
        "the root's CRL is skipped, and said so: {err}"
    );
    // a new issuing CA needs it, and says which flag
    let out = ws.run(&[
        "ca",
        "rotate",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("offline") && err.contains("--root-key"),
        "{err}"
    );
    let rot = ws.json(&[
        "ca",
        "rotate",
        "--env",
        "prod",
        "--root-key",
        key.to_str().unwrap(),
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    assert_eq!(rot["created"].as_array().unwrap().len(), 1);
    let crl = ws.json(&[
        "crl",
        "--env",
        "prod",
        "--root-key",
        key.to_str().unwrap(),
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    assert!(crl["skipped"].as_array().unwrap().is_empty(), "{crl:#}");
    ws.ok(&["doctor"]);
}

#[test]
fn a_one_tier_environment_moves_to_two_tiers_without_touching_its_leaves() {
    if !judges_present(&["openssl"]) {
        return;
    }
    let ws = Ws::with_cas(&["acme"]);
    let old = ws.issue("acme", "prod", &[]);
    assert!(
        !ws.path("pki/prod/ca/hierarchy.json").exists(),
        "one tier, as before"
    );
    let rot = ws.json(&[
        "ca",
        "rotate",
        "--env",
        "prod",
        "--tier",
        "issuing",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    assert_eq!(
        rot["due"], 0,
        "the root stays: its leaves are not due {rot:#}"
    );
    assert!(rot["retiring"].as_array().unwrap().is_empty());
    // the old leaf still verifies and is not due
    let v = ws.run(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let plan = ws.json(&["renew", "--env", "prod", "--dry-run"]);
    assert_eq!(plan["items"][0]["action"], "not-due", "{plan:#}");
    // a new leaf is the issuing CA's
    let new = ws.issue("acme", "prod", &["--force"]);
    let d = dir_of(&new);
    assert_eq!(count_certs(&d.join("chain.pem")), 2);
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        ws.path("pki/prod/ca/ca.crt").to_str().unwrap(),
        "-untrusted",
        d.join("chain.pem").to_str().unwrap(),
        d.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(out.contains(": OK"), "{out}");
    let _ = old;
    ws.ok(&["doctor"]);
}

#[test]
fn a_tampered_hierarchy_stops_every_command_that_would_trust_it() {
    let ws = Ws::two_tier_with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let h = ws.path("pki/prod/ca/hierarchy.json");
    let text = std::fs::read_to_string(&h).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let sha = s(&v["cas"][1]["sha256"]).to_string();
    std::fs::write(&h, text.replace(&sha, &"0".repeat(64))).unwrap();
    let out = ws.run(&[
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--force",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hierarchy.json") && err.contains("restore"),
        "{err}"
    );
    let out = ws.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hierarchy.json"));
}

/// Every ca.crt below the workspace's pki/, and whether a staging folder is left.
fn ca_files(ws: &Ws) -> (Vec<PathBuf>, bool) {
    fn walk(d: &Path, out: &mut Vec<PathBuf>, staged: &mut bool) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".stage-")
                {
                    *staged = true;
                }
                walk(&p, out, staged);
            } else if p.file_name().is_some_and(|n| n == "ca.crt") {
                out.push(p);
            }
        }
    }
    let (mut out, mut staged) = (Vec::new(), false);
    walk(&ws.path("pki"), &mut out, &mut staged);
    out.sort();
    (out, staged)
}

fn audit_ops(ws: &Ws, op: &str) -> usize {
    std::fs::read_to_string(ws.path("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("\"op\":\"{op}\"")))
        .count()
}

/// A copy of `t`'s workspace to kill a run in.
fn copy_ws(t: &Ws) -> Ws {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = tool(
        "cp",
        &[
            "-a",
            t.root().to_str().unwrap(),
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");
    let pass_file = dir.path().join("ca-pass.txt");
    std::fs::write(&pass_file, format!("{CA_PASS}\n")).unwrap();
    Ws { dir, pass_file }
}

#[test]
fn ca_init_rotate_and_retire_survive_a_kill_at_every_point() {
    use std::os::unix::process::ExitStatusExt;
    let points = [
        "after-journal",
        "after-sign",
        "stage-file:1",
        "stage-file:4",
        "after-stage",
        "after-place",
        "after-record",
        "before-audit",
        "after-audit",
    ];
    // (template, command, audit op)
    let fresh = Ws::two_tier(&["acme"]);
    let two = Ws::two_tier_with_cas(&["acme"]);
    two.issue("acme", "prod", &[]);
    let one = Ws::with_cas(&["acme"]);
    one.issue("acme", "prod", &[]);
    let rotated = copy_ws(&two);
    let rot = rotated.json(&[
        "ca",
        "rotate",
        "--env",
        "prod",
        "--tier",
        "root",
        "--ca-passphrase-file",
        rotated.pass_file.to_str().unwrap(),
    ]);
    rotated.ok(&[
        "renew",
        "--env",
        "prod",
        "--ca-passphrase-file",
        rotated.pass_file.to_str().unwrap(),
    ]);
    let old_root = rot["retiring"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == "root")
        .map(|c| s(&c["serial"]).to_string())
        .unwrap();
    let cases: Vec<(&Ws, Vec<&str>, &str)> = vec![
        (&fresh, vec!["ca", "init", "--env", "prod"], "ca-init"),
        (
            &two,
            vec!["ca", "rotate", "--env", "prod", "--tier", "root"],
            "ca-rotate",
        ),
        (
            &two,
            vec!["ca", "rotate", "--env", "prod", "--kind", "server"],
            "ca-rotate",
        ),
        (&one, vec!["ca", "rotate", "--env", "prod"], "ca-rotate"),
        (
            &rotated,
            vec!["ca", "retire", "--env", "prod", "--serial", &old_root],
            "ca-retire",
        ),
    ];
    for (t, args, op) in &cases {
        let mut any = false;
        for p in points {
            let ws = copy_ws(t);
            let before = audit_ops(&ws, op);
            let mut full: Vec<&str> = args.clone();
            let pfs = ws.pass_file.to_str().unwrap().to_string();
            if *op != "ca-retire" {
                full.extend(["--ca-passphrase-file", &pfs]);
            }
            let out = ws
                .cmd()
                .args(&full)
                .env("MTLSCTL_FAULT", p)
                .output()
                .unwrap();
            let hit = out.status.signal() == Some(9);
            any |= hit;
            // the next run that may change the workspace finishes or undoes it (for
            // ca init: ca init again, which then makes the CA if the first did not)
            if *op == "ca-init" {
                ws.ok(&["ca", "init", "--env", "prod", "--ca-passphrase-file", &pfs]);
            } else {
                ws.ok(&["crl", "--env", "prod", "--ca-passphrase-file", &pfs]);
            }
            let what = format!("{args:?} killed at {p}");
            let (files, staged) = ca_files(&ws);
            assert!(!staged, "{what}: a staging folder is left");
            let listed: Vec<PathBuf> = ws
                .json(&["ca", "list"])
                .as_array()
                .unwrap()
                .iter()
                .map(|c| PathBuf::from(s(&c["cert"])))
                .collect();
            for f in &files {
                assert!(listed.contains(f), "{what}: {} is not listed", f.display());
            }
            let after = audit_ops(&ws, op);
            let took = *op == "ca-init" || after > before;
            assert_eq!(
                after - before,
                usize::from(took),
                "{what}: one audit line per change"
            );
            if *op == "ca-init" && took {
                assert_eq!(files.len(), 2, "{what}: root and issuing CA");
            }
            let d = ws.run(&["doctor"]);
            assert!(
                d.status.success(),
                "{what}: doctor: {}",
                String::from_utf8_lossy(&d.stdout)
            );
            ws.ok(&["audit", "verify"]);
            if !hit {
                assert!(
                    out.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        assert!(any, "{args:?} reached no fault point");
    }
}

#[test]
fn name_constraints_from_the_profile_bind_what_the_issuing_ca_vouches_for() {
    if !judges_present(&["openssl"]) {
        return;
    }
    let ws = Ws::two_tier(&["acme"]);
    let cfg = ws.path("mtlsctl.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replacen(
        "    eku: auto",
        "    eku: auto\n    name_constraints:\n      permitted: {dns: [\".example.com\"]}",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    ws.ok(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    let root = ws.path("pki/prod/ca/ca.crt");
    let verify = |rep: &Value| {
        let d = dir_of(rep);
        tool(
            "openssl",
            &[
                "verify",
                "-purpose",
                "sslserver",
                "-CAfile",
                root.to_str().unwrap(),
                "-untrusted",
                d.join("chain.pem").to_str().unwrap(),
                d.join("cert.pem").to_str().unwrap(),
            ],
        )
    };
    let inside = ws.issue(
        "acme",
        "prod",
        &["--kind", "server", "--dns", "api.example.com"],
    );
    let (ok, out) = verify(&inside);
    assert!(ok, "{out}");
    let outside = ws.issue(
        "acme",
        "prod",
        &["--kind", "server", "--dns", "api.other.test", "--force"],
    );
    let (ok, out) = verify(&outside);
    assert!(!ok && out.contains("permitted subtree violation"), "{out}");
}

#[test]
fn expiry_warns_when_an_issuing_ca_lives_less_than_the_leaves_it_issues() {
    let ws = Ws::two_tier(&["acme"]);
    let cfg = ws.path("mtlsctl.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    // the issuing CA lives 400 days, prod leaves 365: issuing fails in 35 days
    std::fs::write(
        &cfg,
        text.replacen("    validity: 5y", "    validity: 400d", 1),
    )
    .unwrap();
    ws.ok(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    let out = ws.cmd().args(["-o", "json", "expiry"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "due: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = rep
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "ca" && f["status"] == "due")
        .unwrap_or_else(|| panic!("{rep:#}"));
    let why = s(&f["reason"]);
    assert!(
        why.contains("mtlsctl ca rotate --env prod --tier issuing") && why.contains("(1y)"),
        "{why}"
    );
}

#[test]
fn probe_fails_when_a_gateway_still_accepts_what_we_revoked() {
    if !judges_present(&["nginx", "curl"]) {
        return;
    }
    let ws = Ws::two_tier_with_cas(&["acme"]);
    let d = dir_of(&ws.issue("acme", "prod", &[]));
    let e = export(&ws, "acme", "prod", "handoff");
    let nginx = Nginx::start(&Trust::of_export(&e));
    let probe = |cert: &Path, key: &Path| {
        let out = ws
            .cmd()
            .args(["-o", "json", "probe", &nginx.url()])
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--ca")
            .arg(nginx.server_cert())
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    let (code, v) = probe(&d.join("cert.pem"), &d.join("key.pem"));
    assert_eq!(code, Some(0), "{v:#}");
    ws.ok(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf(&ws),
    ]);
    // nginx still holds the CRL of the first hand-off
    let (code, v) = probe(&d.join("cert.pem"), &d.join("key.pem"));
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["ok"], false);
    let first = v["diagnosis"][0].as_str().unwrap();
    assert!(
        first.contains("revoked it") && first.contains("old CRL") && first.contains("crl.pem"),
        "{first}"
    );
}

#[test]
fn tenant_flags_of_a_shared_ca_are_refused_with_the_way_out() {
    let ws = Ws::two_tier_with_cas(&["acme"]);
    for args in [
        vec!["ca", "rotate", "--env", "prod", "--tenant", "acme"],
        vec![
            "ca", "retire", "--env", "prod", "--tenant", "acme", "--serial", "01",
        ],
        vec!["ca", "init", "--env", "prod", "--tenant", "acme"],
    ] {
        let mut a = args.clone();
        let pf = pf(&ws);
        if args[1] != "retire" {
            a.extend(["--ca-passphrase-file", &pf]);
        }
        let out = ws.run(&a);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains("shares the prod CA") && err.contains("overrides.prod"),
            "{err}"
        );
    }
}
