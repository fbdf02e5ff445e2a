//! External CAs per tenant (issue 13, part 7): a tenant whose own CA signs its
//! certificates in an environment where our CA signs the others'. The customer CA is
//! made as the Huawei guide makes it (`openssl req -x509`, no keyUsage); the judges are
//! the openssl CLI, nginx and curl.

mod common;
use common::nginx::{Nginx, Trust};
use common::*;

use std::path::{Path, PathBuf};

const CNF: &str = r#"
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder

[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://platform/tenant/acme/prod
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ nosan_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = URI:spiffe://platform/tenant/acme/prod
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"#;

/// The customer's CA: a root made by `openssl req -x509` with no extension section, so
/// it has basicConstraints and key identifiers but no keyUsage.
fn customer_ca() -> OpensslDir {
    let ca = OpensslDir::new(CNF);
    ca.ossl(&[
        "req",
        "-x509",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "root.key",
        "-out",
        "root.crt",
        "-subj",
        "/CN=Acme Customer Root/O=Acme",
        "-days",
        "3650",
    ]);
    let text = ca.ossl(&["x509", "-in", "root.crt", "-noout", "-text"]);
    assert!(
        !text.contains("Key Usage:"),
        "the root has no keyUsage: {text}"
    );
    ca
}

/// A workspace with our CA in prod, tenants acme and globex, and acme's CA in prod its
/// own (`overrides.prod.ca: {external: true}`).
fn workspace() -> Ws {
    let ws = Ws::with_cas(&["acme", "globex"]);
    let p = "profiles/tenants/acme.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(
        p,
        &format!("{t}\noverrides:\n  prod:\n    ca:\n      external: true\n"),
    );
    ws
}

fn pending_csr(ws: &Ws) -> PathBuf {
    let r = ws.json(&["csr", "--tenant", "acme", "--env", "prod"]);
    PathBuf::from(s(&r["csr"]))
}

fn import(ws: &Ws, cert: &Path, chain: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "import",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--cert",
        cert.to_str().unwrap(),
        "--chain",
        chain.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ws.run(&args)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn issue_for_the_external_tenant_refuses_and_names_the_flow() {
    let ws = workspace();
    let out = ws.run(&["issue", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("overrides.prod.ca.external") && err.contains("mtlsctl csr"),
        "{err}"
    );
    // the other tenant still gets our CA
    ws.issue("globex", "prod", &[]);
    // issue --all never mints acme one of ours in prod, and says what to do instead
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let out = ws.run(&[
        "issue",
        "--all",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("acme") && err.contains("mtlsctl csr"), "{err}");
    let list = ws.json(&["list"]).to_string();
    assert!(list.contains("\"tenant\":\"globex\""), "{list}");
    assert!(!list.contains("\"tenant\":\"acme\""), "{list}");
}

#[test]
fn customer_ca_without_key_usage_end_to_end() {
    let ws = workspace();
    ws.issue("globex", "prod", &[]);
    let csr = pending_csr(&ws);
    let ca = customer_ca();
    ca.sign_csr(csr.to_str().unwrap(), "root", "client_ext", 90, "acme.crt");
    let (cert, root) = (ca.p("acme.crt"), ca.p("root.crt"));

    // without the flag: refused, in one line naming the flag; nothing stored
    let out = import(&ws, &cert, &root, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--accept-nonconforming-ca"), "{err}");
    assert!(ws.path("pki/prod/acme/client/pending/key.pem").is_file());

    // with it: imported, warned in the output and the audit line
    let out = import(
        &ws,
        &cert,
        &root,
        &["--accept-nonconforming-ca", "-o", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["action"], "imported", "{rep:#}");
    let warned = rep["warnings"].to_string();
    assert!(warned.contains("Acme Customer Root"), "{rep:#}");
    assert!(
        stderr(&out).contains("accept-nonconforming-ca"),
        "{}",
        stderr(&out)
    );
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
    let line = audit
        .lines()
        .find(|l| l.contains("\"op\":\"import\""))
        .expect("an import audit line");
    assert!(line.contains("nonconforming CA accepted"), "{line}");

    // verify --tenant: the stored customer chain is the anchor
    let v = ws.json(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(v["valid"], true, "{v:#}");

    // export hands over the customer's CA, byte for byte, never ours
    let out_dir = ws.root().parent().unwrap().join("acme-export");
    let e = ws.run(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--format",
        "huawei-apig,nginx",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(e.status.success(), "{}", stderr(&e));
    let customer = std::fs::read(&root).unwrap();
    assert_eq!(
        std::fs::read(out_dir.join("ca-chain.pem")).unwrap(),
        customer
    );
    assert_eq!(
        std::fs::read(out_dir.join("huawei-apig/trusted_root_ca.pem")).unwrap(),
        customer
    );
    let ours = std::fs::read(ws.path("pki/prod/ca/ca.crt")).unwrap();
    assert_ne!(customer, ours);

    // the other tenant still gets our CA in its export
    let g_dir = ws.root().parent().unwrap().join("globex-export");
    ws.ok(&[
        "export",
        "--tenant",
        "globex",
        "--env",
        "prod",
        "--format",
        "huawei-apig",
        "--out",
        g_dir.to_str().unwrap(),
    ]);
    let g_chain = std::fs::read_to_string(g_dir.join("ca-chain.pem")).unwrap();
    let ours_text = String::from_utf8(ours).unwrap();
    assert!(g_chain.contains(ours_text.trim()), "{g_chain}");

    // nginx configured with the customer CA from the export accepts the certificate
    if judges_present(&["nginx", "curl"]) {
        let snippet = std::fs::read_to_string(out_dir.join("nginx/mtls.conf")).unwrap();
        // no CRL of ours for the customer's CA: the snippet sets none
        assert!(
            !snippet.lines().any(|l| l.starts_with("ssl_crl")),
            "{snippet}"
        );
        let depth = snippet
            .lines()
            .find_map(|l| l.trim().strip_prefix("ssl_verify_depth"))
            .map(|v| v.trim().trim_end_matches(';').trim().parse().unwrap())
            .unwrap_or(2);
        let nginx = Nginx::start(&Trust {
            ca: out_dir.join("ca-chain.pem"),
            crl: None,
            depth,
        });
        let current = ws.path("pki/prod/acme/client/current");
        let status = nginx.status_with(&current.join("cert.pem"), &current.join("key.pem"));
        assert_eq!(status, 200, "{}", nginx.error_log());
    }

    // expiry agrees: a due imported certificate is renewed by a new request
    let out = ws.run(&["-o", "json", "expiry", "--within", "365d"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("external-ca") && text.contains("mtlsctl renew --tenant acme"),
        "{text}{}",
        stderr(&out)
    );

    // renew makes a new request and says to send it
    let r = ws.json(&["renew", "--tenant", "acme", "--env", "prod", "--force"]);
    let item = &r["items"][0];
    assert_eq!(item["action"], "requested", "{r:#}");
    let req = PathBuf::from(s(&item["request"]));
    assert!(req.is_file(), "{r:#}");
    openssl(&["req", "-in", req.to_str().unwrap(), "-verify", "-noout"]);
    assert!(r["next"].to_string().contains("send"), "{r:#}");
    // the imported certificate is still the current one
    let v = ws.json(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(v["valid"], true, "{v:#}");

    // a name the profile now asks for: verify --tenant says what is missing, and its fix
    // is a new request, never `issue --force` (which would discard the imported one)
    let p = "profiles/tenants/acme.yaml";
    let prof = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(
        p,
        &prof.replace("{tenant}/{env}\"]", "{tenant}/{env}/v2\"]"),
    );
    let out = ws.run(&["-o", "json", "verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "profile_san_mismatch", "{v:#}");
    let all = v.to_string();
    assert!(
        all.contains("mtlsctl csr") && !all.contains("issue --tenant"),
        "{v:#}"
    );
}

#[test]
fn import_refuses_a_missing_san_and_a_leaf_without_client_auth() {
    let ws = workspace();
    let csr = pending_csr(&ws);
    let ca = customer_ca();
    let root = ca.p("root.crt");
    // the profile asks for URI:spiffe://platform/tenant/acme/prod
    ca.sign_csr(csr.to_str().unwrap(), "root", "nosan_ext", 90, "nosan.crt");
    let out = import(
        &ws,
        &ca.p("nosan.crt"),
        &root,
        &["--accept-nonconforming-ca"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("spiffe://platform/tenant/acme/prod") && err.contains("profile_san_mismatch"),
        "{err}"
    );
    assert!(!err.contains("issue --force"), "{err}");
    // serverAuth only: never accepted, with or without the flag
    ca.sign_csr(
        csr.to_str().unwrap(),
        "root",
        "server_ext",
        90,
        "server.crt",
    );
    let out = import(
        &ws,
        &ca.p("server.crt"),
        &root,
        &["--accept-nonconforming-ca"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong_eku"), "{}", stderr(&out));
    assert!(ws.path("pki/prod/acme/client/pending/key.pem").is_file());
}

#[test]
fn export_works_in_an_external_ca_environment() {
    let ws = Ws::new(&["acme"]);
    let p = "profiles/environments/prod.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(p, &t.replacen("ca:\n", "ca:\n  external: true\n", 1));
    let csr = pending_csr(&ws);
    let ca = customer_ca();
    ca.sign_csr(csr.to_str().unwrap(), "root", "client_ext", 90, "acme.crt");
    let root = ca.p("root.crt");
    let out = import(
        &ws,
        &ca.p("acme.crt"),
        &root,
        &["--accept-nonconforming-ca"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = ws.json(&["verify", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(v["valid"], true, "{v:#}");
    let dir = ws.root().parent().unwrap().join("export");
    let e = ws.run(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--format",
        "huawei-apig",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(e.status.success(), "{}", stderr(&e));
    assert_eq!(
        std::fs::read(dir.join("huawei-apig/trusted_root_ca.pem")).unwrap(),
        std::fs::read(&root).unwrap()
    );
}
