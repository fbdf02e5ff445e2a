//! `mtlsctl verify`: every failure class with its exit code and reason code, on
//! certificates these tests make with the openssl CLI (the independent judge) or with
//! mtlsctl itself.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

/// A small PKI made with the openssl CLI in a temp dir.
struct Pki(OpensslDir);

impl std::ops::Deref for Pki {
    type Target = OpensslDir;
    fn deref(&self) -> &OpensslDir {
        &self.0
    }
}

const CNF: &str = r#"
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder

[ root_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ root0_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ int_ext ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:api.example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ crl_ext ]
authorityKeyIdentifier = keyid

[ ca ]
default_ca = ca_default
[ ca_default ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/root.crt
private_key = $dir/root.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 7
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
"#;

impl Pki {
    fn new() -> Pki {
        Pki(OpensslDir::new(CNF))
    }

    /// A self-signed root `name`.crt/.key with the given extension section.
    fn root(&self, name: &str, ext: &str) {
        self.ossl(&[
            "req",
            "-x509",
            "-new",
            "-config",
            "cnf",
            "-extensions",
            ext,
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN=Test {name}"),
            "-days",
            "3650",
        ]);
    }

    /// A key and certificate `name` signed by `ca`, valid for `days`.
    fn leaf(&self, name: &str, ca: &str, ext: &str, days: u32) {
        self.ec_key_and_csr(name, &format!("/CN=Test {name}"));
        self.sign_csr(
            &format!("{name}.csr"),
            ca,
            ext,
            days,
            &format!("{name}.crt"),
        );
    }

    /// Sets up `openssl ca` state for the root `root` (must be named "root").
    fn ca_db(&self) {
        std::fs::create_dir_all(self.p("newcerts")).unwrap();
        std::fs::write(self.p("index.txt"), "").unwrap();
        std::fs::write(self.p("serial"), "1000\n").unwrap();
        std::fs::write(self.p("crlnumber"), "01\n").unwrap();
    }

    /// A leaf issued through `openssl ca` (so that it can be revoked).
    fn ca_leaf(&self, name: &str) {
        self.ec_key_and_csr(name, &format!("/CN=Test {name}"));
        self.ossl(&[
            "ca",
            "-batch",
            "-config",
            "cnf",
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.crt"),
            "-extensions",
            "client_ext",
            "-notext",
        ]);
    }

    fn revoke(&self, name: &str) {
        self.ossl(&["ca", "-config", "cnf", "-revoke", &format!("{name}.crt")]);
    }

    fn gencrl(&self, out: &str, hours: u32) {
        self.ossl(&[
            "ca",
            "-config",
            "cnf",
            "-gencrl",
            "-crlexts",
            "crl_ext",
            "-crlhours",
            &hours.to_string(),
            "-out",
            out,
        ]);
    }

    fn cat(&self, out: &str, parts: &[&str]) {
        let mut all = Vec::new();
        for p in parts {
            all.extend(std::fs::read(self.p(p)).unwrap());
        }
        std::fs::write(self.p(out), all).unwrap();
    }
}

fn verify(args: &[&str]) -> Output {
    let d = tempfile::tempdir().unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mtlsctl"));
    c.env("NO_COLOR", "1")
        .env_remove("MTLSCTL_WORKSPACE")
        .current_dir(d.path())
        .arg("-o")
        .arg("json")
        .arg("verify")
        .args(args);
    c.output().unwrap()
}

/// Runs `verify -o json ARGS`; returns (exit code, JSON).
fn vjson(args: &[&str]) -> (i32, serde_json::Value) {
    let out = verify(args);
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}) from verify {args:?}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

/// Asserts exit 1 and that `code` is the reason (first error); returns the JSON.
fn assert_invalid(args: &[&str], code: &str) -> serde_json::Value {
    let (rc, v) = vjson(args);
    assert_eq!(rc, 1, "expected exit 1 for {args:?}: {v:#}");
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], code, "{v:#}");
    let f = &v["findings"][0];
    assert_eq!(f["code"], code);
    assert!(!s(&f["message"]).is_empty() && !s(&f["fix"]).is_empty());
    v
}

fn assert_valid(args: &[&str]) -> serde_json::Value {
    let (rc, v) = vjson(args);
    assert_eq!(rc, 0, "expected a valid chain for {args:?}: {v:#}");
    assert_eq!(v["valid"], true);
    assert!(v["reason"].is_null());
    v
}

fn rfc3339_in(days: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    t.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn simple() -> Pki {
    let p = Pki::new();
    p.root("root", "root0_ext");
    p.leaf("client", "root", "client_ext", 10);
    p.leaf("server", "root", "server_ext", 10);
    p
}

#[test]
fn valid_chain_and_json_shape() {
    let p = simple();
    let v = assert_valid(&[
        &p.ps("client.crt"),
        "--ca",
        &p.ps("root.crt"),
        "--purpose",
        "client",
    ]);
    let path = v["path"].as_array().unwrap();
    assert_eq!(path.len(), 2);
    assert_eq!(path[0]["role"], "leaf");
    assert_eq!(path[0]["depth"], 0);
    assert_eq!(path[1]["role"], "root");
    assert_eq!(path[1]["trusted"], true);
    assert_eq!(path[0]["subject"], "CN=Test client");
    assert_eq!(v["purpose"], "client");
    // expiring within the default 30-day window: a warning, not a failure
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(&f["code"]))
        .collect();
    assert!(codes.contains(&"expires_soon"), "{codes:?}");
    assert!(Path::new(s(&v["cert"])).is_absolute());
}

#[test]
fn expired() {
    let p = simple();
    let at = rfc3339_in(30);
    assert_invalid(
        &[&p.ps("client.crt"), "--ca", &p.ps("root.crt"), "--at", &at],
        "expired",
    );
}

#[test]
fn not_yet_valid() {
    let p = simple();
    let at = rfc3339_in(-2);
    let v = assert_invalid(
        &[&p.ps("client.crt"), "--ca", &p.ps("root.crt"), "--at", &at],
        "not_yet_valid",
    );
    assert_eq!(v["findings"][0]["depth"], 0);
}

#[test]
fn wrong_eku_explains_the_fix() {
    let p = simple();
    let v = assert_invalid(
        &[
            &p.ps("server.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--purpose",
            "client",
        ],
        "wrong_eku",
    );
    let f = &v["findings"][0];
    assert!(s(&f["message"]).contains("serverAuth only"), "{f}");
    assert!(s(&f["fix"]).contains("--kind client"), "{f}");
    // and in words on the terminal
    let out = verify_table(&[
        &p.ps("server.crt"),
        "--ca",
        &p.ps("root.crt"),
        "--purpose",
        "client",
    ]);
    assert!(
        out.contains("wrong_eku") && out.contains("reissue with --kind client"),
        "{out}"
    );
}

fn verify_table(args: &[&str]) -> String {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mtlsctl"));
    c.env("NO_COLOR", "1").arg("verify").args(args);
    let out = c.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn wrong_ca_between_environments() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue("acme", "nonprod", &[]);
    let cert = s(&r["files"]["cert"]).to_string();
    let prod_ca = ws.path("pki/prod/ca/ca.crt");
    let v = assert_invalid(
        &[
            &cert,
            "--ca",
            prod_ca.to_str().unwrap(),
            "--purpose",
            "client",
        ],
        "wrong_ca",
    );
    assert!(s(&v["findings"][0]["message"]).contains("nonprod"));
    let nonprod_ca = ws.path("pki/nonprod/ca/ca.crt");
    assert_valid(&[
        &cert,
        "--ca",
        nonprod_ca.to_str().unwrap(),
        "--purpose",
        "client",
    ]);
}

#[test]
fn missing_intermediate_then_supplied() {
    let p = Pki::new();
    p.root("root", "root_ext");
    p.leaf("int", "root", "int_ext", 100);
    p.leaf("client", "int", "client_ext", 10);
    assert_invalid(
        &[
            &p.ps("client.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--purpose",
            "client",
        ],
        "missing_intermediate",
    );
    assert_valid(&[
        &p.ps("client.crt"),
        "--ca",
        &p.ps("root.crt"),
        "--untrusted",
        &p.ps("int.crt"),
        "--purpose",
        "client",
    ]);
    // trusting only the intermediate is not enough: the root is wanted too
    assert_invalid(
        &[
            &p.ps("client.crt"),
            "--ca",
            &p.ps("int.crt"),
            "--purpose",
            "client",
        ],
        "ca_not_root",
    );
    p.cat("both.pem", &["int.crt", "root.crt"]);
    assert_valid(&[
        &p.ps("client.crt"),
        "--ca",
        &p.ps("both.pem"),
        "--purpose",
        "client",
    ]);
    // a gateway that allows no intermediate
    assert_invalid(
        &[
            &p.ps("client.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--untrusted",
            &p.ps("int.crt"),
            "--max-depth",
            "0",
        ],
        "chain_too_long",
    );
    // the leaf followed by its intermediate in one file
    p.cat("full.pem", &["client.crt", "int.crt"]);
    let v = assert_valid(&[&p.ps("full.pem"), "--ca", &p.ps("root.crt")]);
    assert_eq!(v["path"].as_array().unwrap().len(), 3);
    assert_eq!(v["path"][1]["role"], "intermediate");
}

#[test]
fn path_length_exceeded() {
    let p = Pki::new();
    p.root("root", "root0_ext"); // may sign leaves only
    p.leaf("int", "root", "int_ext", 100);
    p.leaf("client", "int", "client_ext", 10);
    assert_invalid(
        &[
            &p.ps("client.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--untrusted",
            &p.ps("int.crt"),
            "--purpose",
            "client",
        ],
        "path_length_exceeded",
    );
}

#[test]
fn hostname_mismatch_and_match() {
    let p = simple();
    let v = assert_invalid(
        &[
            &p.ps("server.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--purpose",
            "server",
            "--hostname",
            "www.example.com",
        ],
        "hostname_mismatch",
    );
    assert!(s(&v["findings"][0]["message"]).contains("api.example.com"));
    assert_valid(&[
        &p.ps("server.crt"),
        "--ca",
        &p.ps("root.crt"),
        "--purpose",
        "server",
        "--hostname",
        "api.example.com",
    ]);
    assert_invalid(
        &[
            &p.ps("server.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--purpose",
            "server",
            "--ip",
            "192.0.2.7",
        ],
        "ip_mismatch",
    );
}

fn revocable() -> Pki {
    let p = Pki::new();
    p.root("root", "root0_ext");
    p.ca_db();
    p.ca_leaf("good");
    p.ca_leaf("bad");
    p
}

#[test]
fn revoked_with_crl() {
    let p = revocable();
    p.revoke("bad");
    p.gencrl("crl.pem", 24);
    assert_invalid(
        &[
            &p.ps("bad.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--crl",
            &p.ps("crl.pem"),
        ],
        "revoked",
    );
    let v = assert_valid(&[
        &p.ps("good.crt"),
        "--ca",
        &p.ps("root.crt"),
        "--crl",
        &p.ps("crl.pem"),
    ]);
    assert_eq!(v["crl_checked"], true);
    // without the CRL, the revoked certificate still looks fine: revocation needs --crl
    assert_valid(&[&p.ps("bad.crt"), "--ca", &p.ps("root.crt")]);
}

#[test]
fn stale_crl() {
    let p = revocable();
    p.gencrl("crl.pem", 1);
    let at = rfc3339_in(1); // past nextUpdate, the certificate itself still valid
    let v = assert_invalid(
        &[
            &p.ps("good.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--crl",
            &p.ps("crl.pem"),
            "--at",
            &at,
        ],
        "crl_expired",
    );
    assert!(s(&v["findings"][0]["fix"]).contains("mtlsctl crl"));
}

#[test]
fn crl_missing_for_an_intermediate() {
    let p = Pki::new();
    p.root("root", "root_ext");
    p.ca_db();
    p.gencrl("root.crl", 24); // the root's CRL only
    p.leaf("int", "root", "int_ext", 100);
    p.leaf("client", "int", "client_ext", 10);
    assert_invalid(
        &[
            &p.ps("client.crt"),
            "--ca",
            &p.ps("root.crt"),
            "--untrusted",
            &p.ps("int.crt"),
            "--crl",
            &p.ps("root.crl"),
        ],
        "crl_missing",
    );
}

#[test]
fn usage_errors_exit_2() {
    let p = simple();
    let out = verify(&[&p.ps("client.crt")]);
    assert_eq!(out.status.code(), Some(2), "no --ca");
    let out = verify(&[
        &p.ps("client.crt"),
        "--ca",
        &p.ps("root.crt"),
        "--at",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2), "bad --at");
    let out = verify(&[
        &p.ps("client.crt"),
        "--ca",
        &p.ps("root.crt"),
        "--purpose",
        "both",
    ]);
    assert_eq!(out.status.code(), Some(2), "bad purpose");
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(2), "nothing to verify");
    // an unreadable file is an error (1), named in the message
    let out = verify(&["/nonexistent/leaf.pem", "--ca", &p.ps("root.crt")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/leaf.pem"));
}

#[test]
fn tenant_mode_uses_env_ca_crl_and_profile() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let v = ws.json(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(v["valid"], true, "{v:#}");
    assert_eq!(v["crl_checked"], true);
    assert_eq!(v["kind"], "client");
    assert_eq!(v["purpose"], "client");
    // the profile now asks for a name the certificate lacks
    let t = std::fs::read_to_string(ws.path("profiles/tenants/acme.yaml")).unwrap();
    assert!(t.contains("{tenant}/{env}\"]"), "template changed: {t}");
    ws.write(
        "profiles/tenants/acme.yaml",
        &t.replace("{tenant}/{env}\"]", "{tenant}/{env}/v2\"]"),
    );
    let out = ws.run(&["-o", "json", "verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "profile_san_mismatch", "{v:#}");
    assert!(s(&v["findings"][0]["message"]).contains("/prod/v2"));
}

#[test]
fn tenant_mode_without_certificate_is_an_error() {
    let ws = Ws::with_cas(&["acme"]);
    let out = ws.run(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mtlsctl issue"));
}

#[test]
fn every_reason_code_is_documented() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/verify.md")).unwrap();
    for code in mtlsctl_core::types::verify::Code::ALL {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "{code} is not in docs/verify.md"
        );
    }
}
