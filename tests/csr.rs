//! CSR flows: `csr` -> an independent CA (the openssl CLI) -> `import` -> a PFX keytool
//! opens; `sign` on requests made by `openssl req`, including hostile ones.

mod common;
use common::*;

use std::path::{Path, PathBuf};

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

[ acme_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://platform/tenant/acme/prod
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:api.example.com
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"#;

/// An external CA run with the openssl CLI: root -> intermediate.
struct ExtCa(OpensslDir);

impl std::ops::Deref for ExtCa {
    type Target = OpensslDir;
    fn deref(&self) -> &OpensslDir {
        &self.0
    }
}

impl ExtCa {
    fn new() -> ExtCa {
        let ca = ExtCa(OpensslDir::new(CNF));
        ca.ossl(&[
            "req",
            "-x509",
            "-new",
            "-config",
            "cnf",
            "-extensions",
            "root_ext",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.crt",
            "-subj",
            "/CN=Partner Root/O=Partner",
            "-days",
            "3650",
        ]);
        ca.ec_key_and_csr("int", "/CN=Partner Issuing CA/O=Partner");
        ca.sign_csr("int.csr", "root", "int_ext", 1000, "int.crt");
        let mut chain = std::fs::read(ca.p("int.crt")).unwrap();
        chain.extend(std::fs::read(ca.p("root.crt")).unwrap());
        std::fs::write(ca.p("chain.pem"), chain).unwrap();
        ca
    }

    /// Signs a CSR file with the intermediate, with the extension section `ext`.
    fn sign(&self, csr: &Path, ext: &str, out: &str) -> PathBuf {
        self.sign_csr(csr.to_str().unwrap(), "int", ext, 90, out);
        self.p(out)
    }
}

fn csr_json(ws: &Ws) -> serde_json::Value {
    ws.json(&["csr", "--tenant", "acme", "--env", "prod"])
}

#[test]
fn csr_external_ca_import_pfx_opens_in_keytool() {
    let ws = Ws::new(&["acme"]); // no CA of our own in prod
    let r = csr_json(&ws);
    let key = PathBuf::from(s(&r["key"]));
    let csr = PathBuf::from(s(&r["csr"]));
    assert_eq!(mode(&key), 0o600);
    assert!(key.starts_with(ws.path("pki/prod/acme/client/pending")));
    // openssl accepts the request and its self-signature
    let text = openssl(&[
        "req",
        "-in",
        csr.to_str().unwrap(),
        "-verify",
        "-noout",
        "-text",
    ]);
    assert!(text.contains("acme-prod-client"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    // a second request while one is pending is refused
    let again = ws.run(&["csr", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let ca = ExtCa::new();
    let signed = ca.sign(&csr, "acme_ext", "acme.crt");
    let chain = ca.p("chain.pem");
    let rep = ws.json(&[
        "import",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--cert",
        signed.to_str().unwrap(),
        "--chain",
        chain.to_str().unwrap(),
    ]);
    assert_eq!(rep["action"], "imported");
    assert!(!ws.path("pki/prod/acme/client/pending").exists());
    let pfx = s(&rep["files"]["pfx"]).to_string();
    let pass_file = s(&rep["files"]["pfx_password"]).to_string();
    assert_eq!(mode(Path::new(&pfx)), 0o600);
    let pass = std::fs::read_to_string(&pass_file)
        .unwrap()
        .trim()
        .to_string();
    // openssl: the PFX holds the key, the leaf and the chain
    let certs = openssl(&[
        "pkcs12",
        "-in",
        &pfx,
        "-passin",
        &format!("pass:{pass}"),
        "-nokeys",
    ]);
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 3, "{certs}");
    if judge("keytool", "default-jre-headless") {
        let (ok, out) = tool(
            "keytool",
            &[
                "-list",
                "-keystore",
                &pfx,
                "-storetype",
                "PKCS12",
                "-storepass",
                &pass,
            ],
        );
        assert!(ok, "keytool failed: {out}");
        assert!(out.contains("PrivateKeyEntry"), "{out}");
    }
    // inventory and audit
    let list = ws.ok(&["list"]);
    assert!(list.contains("acme"), "{list}");
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
    assert!(audit.contains("\"op\":\"import\"") && audit.contains("\"op\":\"csr\""));
    // and the workspace verifies it against the imported chain
    let v = ws.json(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(v["valid"], true, "{v:#}");
}

#[test]
fn import_refuses_foreign_key_wrong_eku_and_missing_root() {
    let ws = Ws::new(&["acme"]);
    let r = csr_json(&ws);
    let csr = PathBuf::from(s(&r["csr"]));
    let ca = ExtCa::new();
    let chain = ca.p("chain.pem");
    // a certificate for another key
    ca.ec_key_and_csr("other", "/CN=other");
    let other = ca.sign(&ca.p("other.csr"), "client_ext", "other.crt");
    let out = ws.run(&[
        "import",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--cert",
        other.to_str().unwrap(),
        "--chain",
        chain.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pending key"));
    // the right key but serverAuth only
    let server = ca.sign(&csr, "server_ext", "server.crt");
    let out = ws.run(&[
        "import",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--cert",
        server.to_str().unwrap(),
        "--chain",
        chain.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong_eku"), "{err}");
    // the chain without its root
    let good = ca.sign(&csr, "client_ext", "good.crt");
    let out = ws.run(&[
        "import",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--cert",
        good.to_str().unwrap(),
        "--chain",
        ca.p("int.crt").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("root"));
    // nothing was stored; the request is still pending
    assert!(ws.path("pki/prod/acme/client/pending/key.pem").is_file());
    let list = ws.json(&["list"]);
    assert_eq!(list.as_array().map(|a| a.len()).unwrap_or(0), 0, "{list}");
}

#[test]
fn issue_in_an_external_ca_env_explains_the_flow() {
    let ws = Ws::new(&["acme"]);
    let p = "profiles/environments/prod.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    assert!(t.contains("ca:\n"), "{t}");
    ws.write(p, &t.replacen("ca:\n", "ca:\n  external: true\n", 1));
    let out = ws.run(&["issue", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mtlsctl csr") && err.contains("mtlsctl import"),
        "{err}"
    );
}

/// A request made by `openssl req` in `dir`.
fn req(dir: &Path, name: &str, key: &str, extra: &[&str]) -> PathBuf {
    let cnf = dir.join("cnf");
    std::fs::write(&cnf, CNF).unwrap();
    let keyopt: Vec<&str> = if key == "ec" {
        vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]
    } else {
        vec!["-newkey", key]
    };
    let out = dir.join(format!("{name}.csr"));
    let mut args = vec!["req", "-new", "-config", cnf.to_str().unwrap()];
    args.extend(keyopt);
    let keyfile = dir.join(format!("{name}.key"));
    let subj = format!("/CN={name}.partner.example/O=Partner");
    args.extend([
        "-nodes",
        "-keyout",
        keyfile.to_str().unwrap(),
        "-out",
        out.to_str().unwrap(),
        "-subj",
        &subj,
    ]);
    args.extend_from_slice(extra);
    openssl(&args);
    out
}

fn sign(ws: &Ws, csr: &Path, extra: &[&str]) -> std::process::Output {
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let mut a = vec![
        "-o",
        "json",
        "sign",
        "--csr",
        csr.to_str().unwrap(),
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ];
    a.extend_from_slice(extra);
    ws.run(&a)
}

fn signed(ws: &Ws, csr: &Path, extra: &[&str]) -> serde_json::Value {
    let out = sign(ws, csr, extra);
    assert!(
        out.status.success(),
        "sign failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn text_of(cert: &str) -> String {
    openssl(&["x509", "-in", cert, "-noout", "-text"])
}

#[test]
fn sign_rsa_and_ec_requests() {
    let ws = Ws::with_cas(&["acme"]);
    let d = tempfile::tempdir().unwrap();
    let ca = ws.path("pki/prod/ca/ca.crt");
    for (name, key) in [("rsa", "rsa:2048"), ("ec", "ec")] {
        let csr = req(
            d.path(),
            name,
            key,
            &["-addext", "subjectAltName=DNS:gw.partner.example"],
        );
        let r = signed(&ws, &csr, &["--dns", "gw.partner.example"]);
        let cert = s(&r["cert"]).to_string();
        openssl(&[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "gw.partner.example",
            "-CAfile",
            ca.to_str().unwrap(),
            &cert,
        ]);
        let t = text_of(&cert);
        assert!(
            t.contains("TLS Web Server Authentication") && !t.contains("Client Auth"),
            "{t}"
        );
        assert!(t.contains("CA:FALSE"), "{t}");
        if name == "rsa" {
            assert!(t.contains("Key Encipherment"), "{t}");
        } else {
            assert!(
                t.contains("NIST CURVE: P-384") || t.contains("secp384r1"),
                "{t}"
            );
        }
        // the public key is the request's
        let want = openssl(&["req", "-in", csr.to_str().unwrap(), "-noout", "-pubkey"]);
        let got = openssl(&["x509", "-in", &cert, "-noout", "-pubkey"]);
        assert_eq!(want, got);
        // recorded where `revoke --env prod --serial` finds it
        let serial = s(&r["serial"]);
        let meta = ws.path(&format!("pki/prod/_signed/server/{serial}/meta.json"));
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
        assert_eq!(m["origin"], "sign");
        assert_eq!(m["status"], "active");
    }
    // both remain active: signing for partners supersedes nothing
    let list = ws.json(&["list", "--env", "prod"]);
    let active = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["status"] == "valid")
        .count();
    assert_eq!(active, 2, "{list:#}");
}

#[test]
fn sign_never_grants_ca_true() {
    let ws = Ws::with_cas(&["acme"]);
    let d = tempfile::tempdir().unwrap();
    let csr = req(
        d.path(),
        "sneaky",
        "ec",
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectAltName=DNS:gw.partner.example",
        ],
    );
    let out = sign(&ws, &csr, &["--accept-csr-sans"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("CA:TRUE"));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = text_of(s(&r["cert"]));
    assert!(t.contains("CA:FALSE") && !t.contains("CA:TRUE"), "{t}");
    assert!(!t.contains("Certificate Sign"), "{t}");
    assert!(t.contains("DNS:gw.partner.example"), "{t}");
    // and it cannot act as a CA for anything
    let (ok, _) = tool(
        "openssl",
        &[
            "verify",
            "-purpose",
            "any",
            "-CAfile",
            s(&r["cert"]),
            s(&r["cert"]),
        ],
    );
    assert!(!ok);
}

#[test]
fn sign_refuses_a_bad_signature() {
    let ws = Ws::with_cas(&["acme"]);
    let d = tempfile::tempdir().unwrap();
    let csr = req(d.path(), "tampered", "ec", &[]);
    let der = d.path().join("tampered.der");
    openssl(&[
        "req",
        "-in",
        csr.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    let mut bytes = std::fs::read(&der).unwrap();
    // change the subject's O value ("Partner" -> "Qartner"): the signature no longer covers it
    let pos = bytes.windows(7).position(|w| w == b"Partner").unwrap();
    bytes[pos] = b'Q';
    std::fs::write(&der, &bytes).unwrap();
    let (_, said) = tool(
        "openssl",
        &[
            "req",
            "-in",
            der.to_str().unwrap(),
            "-inform",
            "DER",
            "-verify",
            "-noout",
        ],
    );
    assert!(
        said.contains("verify failure"),
        "openssl should also refuse it: {said}"
    );
    let out = sign(&ws, &der, &["--dns", "gw.partner.example"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("self-signature"), "{err}");
    assert!(!ws.path("pki/prod/_signed").exists());
}

#[test]
fn sign_takes_csr_names_only_when_allowed() {
    let ws = Ws::with_cas(&["acme"]);
    let d = tempfile::tempdir().unwrap();
    let csr = req(
        d.path(),
        "named",
        "ec",
        &[
            "-addext",
            "subjectAltName=DNS:wanted.partner.example,DNS:evil.example.com",
        ],
    );
    // a server certificate needs names; the request's are not taken by default
    let out = sign(&ws, &csr, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--accept-csr-sans"));
    // names from the command line only
    let out = sign(&ws, &csr, &["--dns", "gw.partner.example"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("evil.example.com"));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = text_of(s(&r["cert"]));
    assert!(
        t.contains("DNS:gw.partner.example") && !t.contains("evil"),
        "{t}"
    );
    // with --accept-csr-sans
    let r = signed(
        &ws,
        &csr,
        &["--accept-csr-sans", "--kind", "client", "--validity", "30d"],
    );
    let t = text_of(s(&r["cert"]));
    assert!(t.contains("DNS:wanted.partner.example"), "{t}");
    assert!(t.contains("TLS Web Client Authentication"), "{t}");
    let days = (time::OffsetDateTime::parse(
        s(&r["not_after"]),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
        - time::OffsetDateTime::now_utc())
    .whole_days();
    assert!((29..=30).contains(&days), "{days}");
}

#[test]
fn sign_refuses_weak_keys() {
    let ws = Ws::with_cas(&["acme"]);
    let d = tempfile::tempdir().unwrap();
    let csr = req(d.path(), "weak", "rsa:1024", &[]);
    let out = sign(&ws, &csr, &["--dns", "gw.partner.example"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rsa-1024") && err.contains("key policy"),
        "{err}"
    );
}

#[test]
fn sign_for_a_tenant_uses_its_profile() {
    let ws = Ws::with_cas(&["acme"]);
    let d = tempfile::tempdir().unwrap();
    let csr = req(d.path(), "tenantgw", "ec", &[]);
    let r = signed(&ws, &csr, &["--tenant", "acme", "--kind", "client"]);
    assert_eq!(r["tenant"], "acme");
    assert!(s(&r["subject"]).contains("acme-prod-client"), "{r}");
    let serial = s(&r["serial"]);
    assert!(
        ws.path(&format!("pki/prod/acme/client/{serial}/meta.json"))
            .is_file()
    );
    // the tenant's current certificate now verifies in the workspace
    let v = ws.json(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(v["serial"], serial);
}
