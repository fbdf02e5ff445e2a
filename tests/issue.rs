//! `ca init` and `issue` judged by openssl: every DESIGN.md section 5 rule for CAs and
//! leaves, each key algorithm, file modes, idempotency, --force, --all, the workspace
//! lock, and every bad input with its exit code and one-line message.

mod common;
use common::*;

use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- helpers

/// `openssl x509 -noout -text` of a certificate file.
fn x509_text(cert: &Path) -> String {
    openssl(&["x509", "-noout", "-text", "-in", cert.to_str().unwrap()])
}

/// The text of the certificate's extension block headed by `name`, up to the next
/// extension header (lines are trimmed and joined by '\n').
fn ext(text: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim_start().starts_with(name))?;
    let mut out = vec![lines[i].trim().to_string()];
    for l in &lines[i + 1..] {
        let t = l.trim();
        if t.starts_with("X509v3 ") || t.starts_with("Signature Algorithm") || t.is_empty() {
            break;
        }
        out.push(t.to_string());
    }
    Some(out.join("\n"))
}

fn verify(ca: &Path, cert: &str, purpose: &str) -> (bool, String) {
    tool(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            ca.to_str().unwrap(),
            cert,
        ],
    )
}

fn assert_verifies(ca: &Path, cert: &str, purpose: &str) {
    let (ok, out) = verify(ca, cert, purpose);
    assert!(ok && out.contains(": OK"), "verify {purpose} failed: {out}");
}

/// `openssl x509 -noout -serial`: the hex digits.
fn serial_of(cert: &str) -> String {
    let s = openssl(&["x509", "-noout", "-serial", "-in", cert]);
    s.trim().trim_start_matches("serial=").to_string()
}

/// notBefore and notAfter as OpenSSL prints them in ISO 8601.
fn dates_of(cert: &Path) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let s = openssl(&[
        "x509",
        "-noout",
        "-startdate",
        "-enddate",
        "-dateopt",
        "iso_8601",
        "-in",
        cert.to_str().unwrap(),
    ]);
    let get = |k: &str| {
        let v = s
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {s}"));
        // "2026-11-23 18:43:46Z"
        let v = v.trim().replace(' ', "T");
        time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("bad date {v}: {e}"))
    };
    (get("notBefore="), get("notAfter="))
}

fn ca_cert(ws: &Ws, env: &str) -> PathBuf {
    ws.path(&format!("pki/{env}/ca/ca.crt"))
}

/// Runs a command that must fail with `code`; returns its stderr, which must be one
/// `error: ...` line (clap's usage errors add a hint line after it).
fn fails(ws: &Ws, args: &[&str], code: i32) -> String {
    let out = ws.run(args);
    let (o, e) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "mtlsctl {args:?}: expected exit {code}\nstdout: {o}\nstderr: {e}"
    );
    assert_no_secrets(&out, &[CA_PASS]);
    let first = e.lines().next().unwrap_or("");
    assert!(first.starts_with("error: "), "not an error line: {e}");
    if code == 1 {
        assert_eq!(e.trim_end().lines().count(), 1, "more than one line: {e}");
    }
    first.to_string()
}

fn pass_arg(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

/// Every file and folder below the workspace's pki/ with its size, for before/after.
fn tree(ws: &Ws) -> Vec<(PathBuf, u64)> {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, u64)>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let m = e.metadata().unwrap();
                out.push((e.path(), if m.is_file() { m.len() } else { 0 }));
                if m.is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(&ws.path("pki"), &mut v);
    v.push((ws.path("audit.log"), file_len(&ws.path("audit.log"))));
    v.sort();
    v
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn set_env_ca_key(ws: &Ws, env: &str, alg: &str) {
    let p = format!("profiles/environments/{env}.yaml");
    let t = std::fs::read_to_string(ws.path(&p)).unwrap();
    let t = t.replace("  # key: ecdsa-p256\n", &format!("  key: {alg}\n"));
    assert!(
        t.contains(&format!("  key: {alg}")),
        "template changed: {t}"
    );
    ws.write(&p, &t);
}

// ---------------------------------------------------------------- the CA

#[test]
fn ca_follows_design_rules() {
    let ws = Ws::with_cas(&["acme"]);
    let ca = ca_cert(&ws, "prod");
    let t = x509_text(&ca);
    let bc = ext(&t, "X509v3 Basic Constraints").expect("basicConstraints");
    assert!(bc.contains("critical"), "{bc}");
    assert!(bc.contains("CA:TRUE, pathlen:0"), "{bc}");
    let ku = ext(&t, "X509v3 Key Usage").expect("keyUsage");
    assert!(ku.contains("critical"), "{ku}");
    assert!(ku.contains("Certificate Sign, CRL Sign"), "{ku}");
    assert!(!ku.contains("Digital Signature"), "{ku}");
    assert!(ext(&t, "X509v3 Subject Key Identifier").is_some(), "{t}");
    assert!(t.contains("Signature Algorithm: ecdsa-with-SHA256"), "{t}");
    // serial: positive, 16 bytes
    let serial = serial_of(ca.to_str().unwrap());
    assert_eq!(serial.len(), 32, "{serial}");
    assert!(u8::from_str_radix(&serial[..2], 16).unwrap() < 0x80);
    // self-verifies as a CA
    assert_verifies(&ca, ca.to_str().unwrap(), "any");
    // one CA per environment
    assert_ne!(
        std::fs::read(&ca).unwrap(),
        std::fs::read(ca_cert(&ws, "nonprod")).unwrap()
    );
}

#[test]
fn ca_key_is_encrypted_and_private() {
    let ws = Ws::with_cas(&["acme"]);
    let key = ws.path("pki/prod/ca/ca.key");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&ws.path("pki/prod/ca")), 0o700);
    assert_eq!(mode(&ws.path("pki/prod")), 0o700);
    assert_eq!(mode(&ws.path("pki")), 0o700);
    let pem = std::fs::read_to_string(&key).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let k = key.to_str().unwrap();
    // no passphrase (empty, so openssl does not prompt): refused
    let (ok, _) = tool("openssl", &["pkey", "-in", k, "-passin", "pass:", "-noout"]);
    assert!(!ok, "the CA key opened without its passphrase");
    let (ok, _) = tool(
        "openssl",
        &["pkey", "-in", k, "-passin", "pass:wrong", "-noout"],
    );
    assert!(!ok, "the CA key opened with a wrong passphrase");
    let pf = format!("file:{}", ws.pass_file.display());
    openssl(&["pkey", "-in", k, "-passin", &pf, "-noout"]);
    // PBES2: PBKDF2-HMAC-SHA-256 with 600,000 (0x927C0) iterations, AES-256-CBC
    let asn = openssl(&["asn1parse", "-in", k]);
    assert!(
        asn.contains("PBES2") && asn.contains("aes-256-cbc"),
        "{asn}"
    );
    assert!(
        asn.contains("hmacWithSHA256") && asn.contains(":0927C0"),
        "{asn}"
    );
}

#[test]
fn a_new_ca_passphrase_needs_twelve_characters() {
    let ws = Ws::new(&[]);
    let short = ws.dir.path().join("short.txt");
    std::fs::write(&short, "eleven-char\n").unwrap();
    let e = fails(
        &ws,
        &[
            "ca",
            "init",
            "--env",
            "prod",
            "--ca-passphrase-file",
            short.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        e.contains("11 characters") && e.contains("at least 12"),
        "{e}"
    );
    assert!(!ws.path("pki/prod/ca/ca.key").exists());
    // twelve is enough, counted in characters, not bytes
    let twelve = ws.dir.path().join("twelve.txt");
    std::fs::write(&twelve, "zwölf-zeiche\n").unwrap();
    ws.ok(&[
        "ca",
        "init",
        "--env",
        "prod",
        "--ca-passphrase-file",
        twelve.to_str().unwrap(),
    ]);
}

#[test]
fn issue_all_takes_each_environments_passphrase_from_its_own_variable() {
    let ws = Ws::new(&["acme", "beta"]);
    let passes = [
        (
            "nonprod",
            "MTLSCTL_CA_PASSPHRASE_NONPROD",
            "nonprod passphrase 1",
        ),
        (
            "prod",
            "MTLSCTL_CA_PASSPHRASE_PROD",
            "the prod passphrase 2",
        ),
    ];
    for (env, var, pass) in passes {
        let o = ws
            .cmd()
            .env(var, pass)
            .args(["ca", "init", "--env", env])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o).1);
    }
    // the generic variable holds one of the two: the other environment fails
    let o = ws
        .cmd()
        .env("MTLSCTL_CA_PASSPHRASE", passes[1].2)
        .args(["issue", "--all"])
        .output()
        .unwrap();
    let (_, e) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("MTLSCTL_CA_PASSPHRASE_NONPROD"), "{e}");
    // each from its own variable, which wins over the generic one
    let o = ws
        .cmd()
        .env("MTLSCTL_CA_PASSPHRASE", "neither of them")
        .env(passes[0].1, passes[0].2)
        .env(passes[1].1, passes[1].2)
        .args(["-o", "json", "issue", "--all"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    assert_no_secrets(&o, &[passes[0].2, passes[1].2]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["issued"].as_array().map(Vec::len), Some(4), "{j}");
}

#[test]
fn ca_init_is_a_no_op_when_present_and_json_names_files() {
    let ws = Ws::with_cas(&[]);
    let before = std::fs::read(ca_cert(&ws, "prod")).unwrap();
    let pf = pass_arg(&ws);
    let j = ws.json(&["ca", "init", "--env", "prod", "--ca-passphrase-file", &pf]);
    assert_eq!(j["created"], false);
    assert_eq!(std::fs::read(ca_cert(&ws, "prod")).unwrap(), before);
    let cert = s(&j["files"]["cert"]);
    let key = s(&j["files"]["key"]);
    assert!(Path::new(cert).is_absolute() && Path::new(key).is_absolute());
    assert_eq!(Path::new(cert), ca_cert(&ws, "prod"));
    let fp = openssl(&["x509", "-noout", "-fingerprint", "-sha256", "-in", cert]);
    let fp = fp.trim().rsplit('=').next().unwrap().replace(':', "");
    assert_eq!(
        s(&j["sha256"]).replace(':', "").to_lowercase(),
        fp.to_lowercase()
    );
    assert_eq!(s(&j["serial"]), serial_of(cert).to_lowercase());
    assert!(s(&j["subject"]).contains("prod"));
    assert!(j["not_after"].as_str().unwrap().ends_with('Z'));
    let shown = ws.json(&["ca", "show", "--env", "prod"]);
    let shown = if shown.is_array() { &shown[0] } else { &shown };
    assert_eq!(shown["serial"], j["serial"]);
}

#[test]
fn ca_without_passphrase_needs_the_explicit_flag() {
    let ws = Ws::new(&[]);
    // a usage error: the run needs a flag it was not given
    let e = fails(&ws, &["ca", "init", "--env", "prod"], 2);
    assert!(
        e.contains("--ca-passphrase-file") && e.contains("MTLSCTL_CA_PASSPHRASE"),
        "{e}"
    );
    assert!(e.contains("--no-passphrase"), "{e}");
    assert!(!ws.path("pki/prod/ca/ca.key").exists());
    ws.ok(&["ca", "init", "--env", "prod", "--no-passphrase"]);
    let k = ws.path("pki/prod/ca/ca.key");
    assert_eq!(mode(&k), 0o600);
    openssl(&["pkey", "-in", k.to_str().unwrap(), "-noout"]);
}

// ---------------------------------------------------------------- leaves

struct Leaf {
    json: serde_json::Value,
    text: String,
}

impl Leaf {
    fn cert(&self) -> &str {
        s(&self.json["files"]["cert"])
    }
}

fn issue(ws: &Ws, tenant: &str, env: &str, extra: &[&str]) -> Leaf {
    let json = ws.issue(tenant, env, extra);
    let text = x509_text(Path::new(s(&json["files"]["cert"])));
    Leaf { json, text }
}

/// The leaf rules of DESIGN.md section 5 that hold for every key and kind.
fn check_leaf_rules(ws: &Ws, env: &str, l: &Leaf, rsa: bool, client: bool) {
    let t = &l.text;
    let bc = ext(t, "X509v3 Basic Constraints").expect("basicConstraints");
    assert!(bc.contains("CA:FALSE"), "{bc}");
    let ku = ext(t, "X509v3 Key Usage").expect("keyUsage");
    assert!(ku.contains("critical"), "{ku}");
    let want = if rsa {
        "Digital Signature, Key Encipherment"
    } else {
        "Digital Signature"
    };
    assert_eq!(ku.lines().nth(1), Some(want), "{ku}");
    let eku = ext(t, "X509v3 Extended Key Usage").expect("EKU");
    let want = if client {
        "TLS Web Client Authentication"
    } else {
        "TLS Web Server Authentication"
    };
    assert_eq!(eku.lines().nth(1), Some(want), "exactly one EKU: {eku}");
    let ski = ext(t, "X509v3 Subject Key Identifier").expect("SKI");
    let aki = ext(t, "X509v3 Authority Key Identifier").expect("AKI");
    // the AKI names the CA's SKI
    let ca_t = x509_text(&ca_cert(ws, env));
    let ca_ski = ext(&ca_t, "X509v3 Subject Key Identifier").unwrap();
    let ca_ski = ca_ski.lines().nth(1).unwrap();
    assert!(
        aki.contains(ca_ski),
        "AKI {aki} is not the CA's SKI {ca_ski}"
    );
    assert_ne!(ski.lines().nth(1).unwrap(), ca_ski);
    // serial
    let serial = serial_of(l.cert());
    assert_eq!(serial.len(), 32, "16-byte serial: {serial}");
    assert!(
        u8::from_str_radix(&serial[..2], 16).unwrap() < 0x80,
        "positive"
    );
    assert_eq!(s(&l.json["serial"]), serial.to_lowercase());
    // validity
    let (nb, na) = dates_of(Path::new(l.cert()));
    let now = time::OffsetDateTime::now_utc();
    let back = now - nb;
    assert!(
        back >= time::Duration::minutes(2) && back <= time::Duration::minutes(15),
        "notBefore {nb} should be a few minutes before {now}"
    );
    let (_, ca_na) = dates_of(&ca_cert(ws, env));
    assert!(na <= ca_na, "leaf notAfter {na} beyond the CA's {ca_na}");
    // chain verification as the kind says, and not as the other kind
    let ca = ca_cert(ws, env);
    let (purpose, other) = if client {
        ("sslclient", "sslserver")
    } else {
        ("sslserver", "sslclient")
    };
    assert_verifies(&ca, l.cert(), purpose);
    let (ok, out) = verify(&ca, l.cert(), other);
    assert!(!ok, "a {purpose} certificate also passed {other}: {out}");
    // the stored chain is the CA
    let chain = std::fs::read(s(&l.json["files"]["chain"])).unwrap();
    assert_eq!(chain, std::fs::read(&ca).unwrap());
    // JSON times and paths
    for k in ["not_before", "not_after"] {
        assert!(s(&l.json[k]).ends_with('Z'), "{k} not RFC 3339 UTC");
    }
    for k in ["cert", "key", "chain", "pfx", "pfx_password"] {
        assert!(Path::new(s(&l.json["files"][k])).is_absolute(), "{k}");
    }
}

#[test]
fn client_leaf_ecdsa_p256_follows_design_rules() {
    let ws = Ws::with_cas(&["acme"]);
    let l = issue(&ws, "acme", "prod", &[]);
    check_leaf_rules(&ws, "prod", &l, false, true);
    assert!(l.text.contains("Signature Algorithm: ecdsa-with-SHA256"));
    assert!(l.text.contains("ASN1 OID: prime256v1"), "{}", l.text);
    // the profile's URI SAN
    let san = ext(&l.text, "X509v3 Subject Alternative Name").expect("SAN");
    assert!(
        san.contains("URI:spiffe://platform/tenant/acme/prod"),
        "{san}"
    );
    // subject from the template
    let subj = openssl(&[
        "x509",
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
        "-in",
        l.cert(),
    ]);
    assert!(
        subj.contains("CN=acme-prod-client,OU=acme,O=Example Platform"),
        "{subj}"
    );
    // the key on disk is the certificate's
    let key = s(&l.json["files"]["key"]);
    let a = openssl(&["pkey", "-in", key, "-pubout"]);
    let b = openssl(&["x509", "-in", l.cert(), "-noout", "-pubkey"]);
    assert_eq!(a, b);
}

#[test]
fn server_leaf_has_san_and_server_eku() {
    let ws = Ws::with_cas(&["acme"]);
    let l = issue(
        &ws,
        "acme",
        "nonprod",
        &[
            "--kind",
            "server",
            "--dns",
            "api.acme.example",
            "--ip",
            "10.1.2.3",
        ],
    );
    check_leaf_rules(&ws, "nonprod", &l, false, false);
    let san = ext(&l.text, "X509v3 Subject Alternative Name").expect("SAN");
    assert!(san.contains("DNS:api.acme.example"), "{san}");
    assert!(san.contains("IP Address:10.1.2.3"), "{san}");
    // the name checks of an independent verifier
    let ca = ca_cert(&ws, "nonprod");
    let (ok, out) = tool(
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "api.acme.example",
            "-CAfile",
            ca.to_str().unwrap(),
            l.cert(),
        ],
    );
    assert!(ok, "{out}");
    let (ok, _) = tool(
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "other.example",
            "-CAfile",
            ca.to_str().unwrap(),
            l.cert(),
        ],
    );
    assert!(!ok, "hostname check should fail for another name");
}

#[test]
fn server_leaf_without_san_is_refused() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass_arg(&ws);
    let before = tree(&ws);
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--kind",
            "server",
            "--ca-passphrase-file",
            &pf,
        ],
        1,
    );
    assert!(e.contains("--dns"), "{e}");
    assert_eq!(tree(&ws), before, "something was written");
}

#[test]
fn rsa_2048_leaf_has_key_encipherment() {
    let ws = Ws::with_cas(&["acme"]);
    let l = issue(&ws, "acme", "prod", &["--key", "rsa-2048"]);
    check_leaf_rules(&ws, "prod", &l, true, true);
    assert!(l.text.contains("Public-Key: (2048 bit)"), "{}", l.text);
    assert!(l.text.contains("Exponent: 65537"), "{}", l.text);
    // OpenSSL's own consistency check of the generated key (primes, d, CRT values)
    let key = s(&l.json["files"]["key"]);
    let out = openssl(&["rsa", "-check", "-noout", "-in", key]);
    assert!(out.contains("RSA key ok"), "{out}");
    // an ECDSA CA signs it with SHA-256
    assert!(l.text.contains("Signature Algorithm: ecdsa-with-SHA256"));
}

#[test]
fn rsa_3072_leaf_under_an_rsa_ca_uses_sha256() {
    let ws = Ws::new(&["acme"]);
    set_env_ca_key(&ws, "prod", "rsa-3072");
    let pf = pass_arg(&ws);
    ws.ok(&["ca", "init", "--env", "prod", "--ca-passphrase-file", &pf]);
    let ca_t = x509_text(&ca_cert(&ws, "prod"));
    assert!(ca_t.contains("Public-Key: (3072 bit)"), "{ca_t}");
    assert!(ca_t.contains("Signature Algorithm: sha256WithRSAEncryption"));
    let l = issue(&ws, "acme", "prod", &["--key", "rsa-3072"]);
    check_leaf_rules(&ws, "prod", &l, true, true);
    let out = openssl(&["rsa", "-check", "-noout", "-in", s(&l.json["files"]["key"])]);
    assert!(out.contains("RSA key ok"), "{out}");
    assert!(l.text.contains("Public-Key: (3072 bit)"));
    assert!(
        l.text
            .contains("Signature Algorithm: sha256WithRSAEncryption")
    );
}

#[test]
fn p384_ca_signs_with_sha384() {
    let ws = Ws::new(&["acme"]);
    set_env_ca_key(&ws, "prod", "ecdsa-p384");
    let pf = pass_arg(&ws);
    ws.ok(&["ca", "init", "--env", "prod", "--ca-passphrase-file", &pf]);
    let ca_t = x509_text(&ca_cert(&ws, "prod"));
    assert!(ca_t.contains("ASN1 OID: secp384r1"), "{ca_t}");
    assert!(
        ca_t.contains("Signature Algorithm: ecdsa-with-SHA384"),
        "{ca_t}"
    );
    let l = issue(&ws, "acme", "prod", &["--key", "ecdsa-p384"]);
    check_leaf_rules(&ws, "prod", &l, false, true);
    assert!(l.text.contains("ASN1 OID: secp384r1"), "{}", l.text);
    assert!(l.text.contains("Signature Algorithm: ecdsa-with-SHA384"));
}

#[test]
fn ed25519_ca_and_leaf() {
    let ws = Ws::new(&["acme"]);
    set_env_ca_key(&ws, "prod", "ed25519");
    let pf = pass_arg(&ws);
    ws.ok(&["ca", "init", "--env", "prod", "--ca-passphrase-file", &pf]);
    let l = issue(&ws, "acme", "prod", &["--key", "ed25519"]);
    check_leaf_rules(&ws, "prod", &l, false, true);
    assert!(
        l.text.contains("Public Key Algorithm: ED25519"),
        "{}",
        l.text
    );
    assert!(l.text.contains("Signature Algorithm: ED25519"));
}

#[test]
fn ed25519_and_p384_leaves_under_the_default_ca() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    let l = issue(&ws, "acme", "prod", &["--key", "ed25519"]);
    check_leaf_rules(&ws, "prod", &l, false, true);
    assert!(l.text.contains("Public Key Algorithm: ED25519"));
    let l = issue(&ws, "beta", "prod", &["--key", "ecdsa-p384"]);
    check_leaf_rules(&ws, "prod", &l, false, true);
    assert!(l.text.contains("ASN1 OID: secp384r1"));
}

#[test]
fn leaf_may_not_outlive_its_ca_unless_clipping_is_asked() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass_arg(&ws);
    let before = tree(&ws);
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--validity",
            "20y",
            "--ca-passphrase-file",
            &pf,
        ],
        1,
    );
    assert!(e.contains("--validity") && e.contains("clip_to_ca"), "{e}");
    assert_eq!(tree(&ws), before);
    // clip_to_ca in the tenant's profile: clipped, with a warning
    let p = "profiles/tenants/acme.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(p, &format!("{t}\nclip_to_ca: true\n"));
    let out = ws.run(&[
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--validity",
        "20y",
        "--ca-passphrase-file",
        &pf,
    ]);
    let (o, e) = text(&out);
    assert!(out.status.success(), "{e}");
    assert!(e.contains("clipped"), "no warning: {e}");
    let cert = ws.path("pki/prod/acme/client");
    let leaf = std::fs::read_dir(&cert)
        .unwrap()
        .flatten()
        .find(|d| !d.file_name().to_string_lossy().starts_with('.'))
        .unwrap()
        .path()
        .join("cert.pem");
    let (_, na) = dates_of(&leaf);
    let (_, ca_na) = dates_of(&ca_cert(&ws, "prod"));
    assert_eq!(na, ca_na, "{o}");
}

#[test]
fn leaf_files_and_folders_are_private() {
    let ws = Ws::with_cas(&["acme"]);
    let j = ws.issue("acme", "prod", &[]);
    let f = &j["files"];
    for k in ["key", "pfx", "pfx_password"] {
        assert_eq!(mode(Path::new(s(&f[k]))), 0o600, "{k}");
    }
    let dir = Path::new(s(&f["cert"])).parent().unwrap();
    let mut p = dir.to_path_buf();
    while p != ws.root() {
        assert_eq!(mode(&p), 0o700, "{}", p.display());
        p = p.parent().unwrap().to_path_buf();
    }
    // the key is an unencrypted PKCS#8 key matching the certificate; no temp files left
    let key = std::fs::read_to_string(s(&f["key"])).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    // an audit line for the issuance, with no secret in it
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
    let last: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(last["op"], "issue");
    assert_eq!(last["tenant"], "acme");
    assert_eq!(last["serial"], j["serial"]);
    let pw = std::fs::read_to_string(s(&f["pfx_password"])).unwrap();
    assert!(!audit.contains(pw.trim()));
}

// ---------------------------------------------------------------- idempotency

#[test]
fn second_issue_changes_nothing_and_force_supersedes() {
    let ws = Ws::with_cas(&["acme"]);
    let first = ws.issue("acme", "prod", &[]);
    assert_eq!(first["action"], "issued");
    let before = tree(&ws);
    let second = ws.issue("acme", "prod", &[]);
    assert_eq!(second["action"], "unchanged");
    assert_eq!(second["serial"], first["serial"]);
    assert_eq!(second["files"], first["files"]);
    assert_eq!(tree(&ws), before, "a second run wrote something");
    // table output says so too, exit 0
    let pf = pass_arg(&ws);
    let out = ws.run(&[
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ]);
    assert!(out.status.success());
    let (o, e) = text(&out);
    assert!(format!("{o}{e}").contains("nothing changed"), "{o}{e}");
    assert!(o.contains(s(&first["serial"])));

    let third = ws.issue("acme", "prod", &["--force"]);
    assert_eq!(third["action"], "issued");
    assert_ne!(third["serial"], first["serial"]);
    let all = ws.json(&["list", "--all", "--tenant", "acme"]);
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{all}");
    let st = |serial: &serde_json::Value| {
        rows.iter()
            .find(|r| r["serial"] == *serial)
            .map(|r| r["status"].clone())
            .unwrap()
    };
    assert_eq!(st(&first["serial"]), "superseded");
    assert_eq!(st(&third["serial"]), "valid");
    // the plain list shows only the current one
    let cur = ws.json(&["list", "--tenant", "acme"]);
    assert_eq!(cur.as_array().unwrap().len(), 1);
    assert_eq!(cur[0]["serial"], third["serial"]);
    // both certificates still verify (superseded is not revoked)
    let ca = ca_cert(&ws, "prod");
    assert_verifies(&ca, s(&first["files"]["cert"]), "sslclient");
}

#[test]
fn issue_all_over_tenants_and_envs_then_nothing() {
    let ws = Ws::with_cas(&["acme", "beta", "gamma"]);
    let pf = pass_arg(&ws);
    let j = ws.json(&["issue", "--all", "--ca-passphrase-file", &pf]);
    let issued = j["issued"].as_array().unwrap();
    assert_eq!(issued.len(), 6, "{j}");
    assert_eq!(j["unchanged"], 0);
    assert!(j["failed"].as_array().unwrap().is_empty());
    let mut pairs: Vec<(String, String)> = issued
        .iter()
        .map(|r| (s(&r["tenant"]).to_string(), s(&r["env"]).to_string()))
        .collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 6);
    for r in issued {
        let env = s(&r["env"]);
        assert_verifies(&ca_cert(&ws, env), s(&r["files"]["cert"]), "sslclient");
        // each env's certificate fails against the other env's CA
        let other = if env == "prod" { "nonprod" } else { "prod" };
        let (ok, _) = verify(&ca_cert(&ws, other), s(&r["files"]["cert"]), "sslclient");
        assert!(!ok, "a {env} certificate passed the {other} CA");
    }
    let before = tree(&ws);
    let again = ws.json(&["issue", "--all", "--ca-passphrase-file", &pf]);
    assert_eq!(again["issued"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["unchanged"], 6);
    assert_eq!(tree(&ws), before);
    // the table form ends with the one-line summary and what to do next
    let out = ws.ok(&["issue", "--all", "--ca-passphrase-file", &pf]);
    let tail: Vec<&str> = out.trim_end().lines().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            "next: nothing: every tenant has a valid certificate",
            "0 issued, 6 unchanged, 0 failed"
        ]
    );
    // --env limits the run; a new tenant is picked up
    ws.ok(&["tenant", "add", "delta"]);
    let j = ws.json(&[
        "issue",
        "--all",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ]);
    let issued = j["issued"].as_array().unwrap();
    assert_eq!(issued.len(), 1, "{j}");
    assert_eq!(issued[0]["tenant"], "delta");
    assert_eq!(issued[0]["env"], "prod");
    assert_eq!(j["unchanged"], 3);
}

#[test]
fn issue_all_with_one_worker_or_many_issues_the_same_set() {
    let ws = Ws::with_cas(&["acme", "beta", "gamma"]);
    let pf = pass_arg(&ws);
    let one = ws.json(&[
        "issue",
        "--all",
        "--env",
        "prod",
        "-j",
        "1",
        "--ca-passphrase-file",
        &pf,
    ]);
    assert_eq!(one["issued"].as_array().unwrap().len(), 3, "{one}");
    let many = ws.json(&["issue", "--all", "--jobs", "8", "--ca-passphrase-file", &pf]);
    let issued = many["issued"].as_array().unwrap();
    assert_eq!(issued.len(), 3, "{many}");
    assert!(issued.iter().all(|r| r["env"] == "nonprod"), "{many}");
    assert_eq!(many["unchanged"], 3);
    for r in issued {
        assert_verifies(
            &ca_cert(&ws, "nonprod"),
            s(&r["files"]["cert"]),
            "sslclient",
        );
    }
}

#[test]
fn two_issue_all_at_once_lose_and_duplicate_nothing() {
    let tenants: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    let ws = Ws::with_cas(&names);
    let pf = pass_arg(&ws);
    let spawn = || {
        ws.cmd()
            .args(["-o", "json", "issue", "--all", "--ca-passphrase-file", &pf])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let ja: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let jb: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    let n = |j: &serde_json::Value| j["issued"].as_array().unwrap().len();
    assert_eq!(n(&ja) + n(&jb), 24, "issued {} + {}", n(&ja), n(&jb));
    // exactly one certificate per tenant x env on disk, none superseded
    let all = ws.json(&["list", "--all"]);
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 24, "{all}");
    let mut serials: Vec<&str> = rows.iter().map(|r| s(&r["serial"])).collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 24);
    assert!(rows.iter().all(|r| r["status"] == "valid"));
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
    let issues = audit
        .lines()
        .filter(|l| l.contains("\"op\":\"issue\""))
        .count();
    assert_eq!(issues, 24);
    for l in audit.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("whole audit lines");
    }
}

#[test]
fn workspace_lock_makes_a_second_run_wait() {
    // hold the lock from the test; a run must not finish until it is released
    let ws = Ws::with_cas(&["acme"]);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(ws.path(".mtlsctl.lock"))
        .unwrap();
    lock.lock().unwrap();
    let pf = pass_arg(&ws);
    let mut child = ws
        .cmd()
        .args([
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--ca-passphrase-file",
            &pf,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(child.try_wait().unwrap().is_none(), "ran despite the lock");
    assert!(!ws.path("pki/prod/acme").exists());
    drop(lock);
    assert!(child.wait().unwrap().success());
    assert!(ws.path("pki/prod/acme/client").is_dir());
}

// ---------------------------------------------------------------- bad input

#[test]
fn wrong_ca_passphrase_writes_nothing() {
    let ws = Ws::with_cas(&["acme"]);
    let wrong = ws.dir.path().join("wrong.txt");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let before = tree(&ws);
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--ca-passphrase-file",
            wrong.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        e.contains("ca.key") && e.contains("--ca-passphrase-file"),
        "{e}"
    );
    assert!(e.contains("MTLSCTL_CA_PASSPHRASE"), "{e}");
    assert_eq!(tree(&ws), before);
    // the same through the variable
    let out = ws
        .cmd()
        .env("MTLSCTL_CA_PASSPHRASE", "still wrong")
        .args(["issue", "--tenant", "acme", "--env", "prod"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(tree(&ws), before);
    // and --all fails before it writes anything
    let out = ws
        .cmd()
        .env("MTLSCTL_CA_PASSPHRASE", "still wrong")
        .args(["issue", "--all"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_no_secrets(&out, &["still wrong"]);
    assert_eq!(tree(&ws), before);
    // the right one through the variable works
    let out = ws
        .cmd()
        .env("MTLSCTL_CA_PASSPHRASE", CA_PASS)
        .args(["issue", "--tenant", "acme", "--env", "prod"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_no_secrets(&out, &[CA_PASS]);
}

#[test]
fn missing_ca_passphrase_without_a_terminal_names_flag_and_variable() {
    let ws = Ws::with_cas(&["acme"]);
    let e = fails(&ws, &["issue", "--tenant", "acme", "--env", "prod"], 2);
    assert!(e.contains("--ca-passphrase-file"), "{e}");
    assert!(e.contains("MTLSCTL_CA_PASSPHRASE"), "{e}");
    assert!(!ws.path("pki/prod/acme").exists());
}

#[test]
fn unknown_tenant_and_env_list_the_known_ones() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    let pf = pass_arg(&ws);
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "nope",
            "--env",
            "prod",
            "--ca-passphrase-file",
            &pf,
        ],
        1,
    );
    assert!(e.contains("'nope'") && e.contains("acme, beta"), "{e}");
    assert!(e.contains("mtlsctl tenant add nope"), "{e}");
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "acme",
            "--env",
            "staging",
            "--ca-passphrase-file",
            &pf,
        ],
        1,
    );
    assert!(
        e.contains("'staging'") && e.contains("nonprod, prod"),
        "{e}"
    );
    assert!(e.contains("mtlsctl env add staging"), "{e}");
    let e = fails(&ws, &["issue", "--all", "--env", "staging"], 1);
    assert!(e.contains("nonprod, prod"), "{e}");
}

#[test]
fn env_without_ca_says_to_run_ca_init() {
    let ws = Ws::new(&["acme"]);
    let pf = pass_arg(&ws);
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--ca-passphrase-file",
            &pf,
        ],
        1,
    );
    assert!(e.contains("mtlsctl ca init --env prod"), "{e}");
    let e = fails(&ws, &["issue", "--all", "--ca-passphrase-file", &pf], 1);
    assert!(e.contains("mtlsctl ca init --env"), "{e}");
    assert!(!ws.path("pki").join("prod").join("acme").exists());
}

#[test]
fn bad_flags_are_usage_errors_naming_the_flag() {
    let ws = Ws::with_cas(&["acme"]);
    let base = ["issue", "--tenant", "acme", "--env", "prod"];
    fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        v
    }
    let e = fails(&ws, &with(&base, &["--validity", "3x"]), 2);
    assert!(e.contains("--validity") && e.contains("90d"), "{e}");
    let e = fails(&ws, &with(&base, &["--key", "rsa-1024"]), 2);
    assert!(e.contains("--key") && e.contains("ecdsa-p256"), "{e}");
    let e = fails(&ws, &with(&base, &["--kind", "both"]), 2);
    assert!(e.contains("--kind"), "{e}");
    let e = fails(&ws, &with(&base, &["--ip", "300.1.1.1"]), 2);
    assert!(e.contains("--ip"), "{e}");
    let out = ws.run(&["issue", "--tenant", "acme"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--env <ENV>"));
    let e = fails(&ws, &["issue", "--all", "--dns", "x.example"], 2);
    assert!(e.contains("--dns"), "{e}");
    let pf = pass_arg(&ws);
    let e = fails(
        &ws,
        &with(&base, &["--dns", "bad name!", "--ca-passphrase-file", &pf]),
        1,
    );
    assert!(e.contains("bad name!"), "{e}");
    assert!(!ws.path("pki/prod/acme").exists());
}

#[test]
fn broken_profile_is_an_error_with_file_line_col() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass_arg(&ws);
    let args = [
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ];
    let p = "profiles/tenants/acme.yaml";
    ws.write(p, "organization: Acme\nenvironments: [prod\nclient: {\n");
    let e = fails(&ws, &args, 1);
    assert!(e.contains("acme.yaml:"), "{e}");
    ws.write(
        p,
        "organization: Acme\nenvironments: [prod]\nclient:\n  subjekt: \"CN=x\"\n",
    );
    let e = fails(&ws, &args, 1);
    assert!(e.contains("acme.yaml:4:3:"), "{e}");
    assert!(e.contains("did you mean 'subject'"), "{e}");
    ws.write(
        p,
        "organization: Acme\nenvironments: [prod]\nvalidity: 10q\n",
    );
    let e = fails(&ws, &args, 1);
    assert!(e.contains("acme.yaml:3:11:") && e.contains("'10q'"), "{e}");
    ws.write(
        p,
        "organization: Acme\nenvironments: [prod]\nclient:\n  subject: \"CN={tenat}\"\n",
    );
    let e = fails(&ws, &args, 1);
    assert!(e.contains("acme.yaml:4:") && e.contains("{tenant}"), "{e}");
    ws.write(p, "organization: Acme\nenvironments: [nonprod]\n");
    let e = fails(&ws, &args, 1);
    assert!(e.contains("acme.yaml:2:") && e.contains("'prod'"), "{e}");
    assert!(!ws.path("pki/prod/acme").exists());
}

#[test]
fn issue_all_reports_a_failing_tenant_and_issues_the_rest() {
    let ws = Ws::with_cas(&["acme", "beta", "gamma"]);
    // beta's prod certificate would outlive the CA: refused, the others go ahead
    let p = "profiles/tenants/beta.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(p, &format!("{t}\noverrides:\n  prod:\n    validity: 20y\n"));
    let pf = pass_arg(&ws);
    let out = ws.run(&["-o", "json", "issue", "--all", "--ca-passphrase-file", &pf]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_secrets(&out, &[CA_PASS]);
    let (o, e) = text(&out);
    let j: serde_json::Value = serde_json::from_str(&o).unwrap();
    assert_eq!(j["issued"].as_array().unwrap().len(), 5, "{j}");
    let failed = j["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["tenant"], "beta");
    assert_eq!(failed[0]["env"], "prod");
    assert!(s(&failed[0]["error"]).contains("--validity"), "{j}");
    assert!(e.contains("beta/prod"), "{e}");
    let none = ws.json(&["list", "--all", "--tenant", "beta", "--env", "prod"]);
    assert!(none.as_array().unwrap().is_empty(), "{none}");
    // fixing the profile and running again issues only the missing one
    ws.write(p, &t);
    let j = ws.json(&["issue", "--all", "--ca-passphrase-file", &pf]);
    assert_eq!(j["issued"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["issued"][0]["tenant"], "beta");
    assert_eq!(j["unchanged"], 5);
}

#[test]
fn leftovers_of_an_interrupted_run_are_never_taken_for_certificates() {
    let ws = Ws::with_cas(&["acme"]);
    let first = ws.issue("acme", "prod", &[]);
    // what a kill between staging and renaming leaves: a hidden, complete-looking folder
    let leaf = Path::new(s(&first["files"]["cert"])).parent().unwrap();
    let stale = leaf.parent().unwrap().join(".tmp-interrupted");
    std::fs::create_dir(&stale).unwrap();
    for f in std::fs::read_dir(leaf).unwrap().flatten() {
        std::fs::copy(f.path(), stale.join(f.file_name())).unwrap();
    }
    let meta = stale.join("meta.json");
    let m = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(
        &meta,
        m.replace(s(&first["serial"]), "7fffffffffffffffffffffffffffffff"),
    )
    .unwrap();
    let all = ws.json(&["list", "--all"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["serial"], first["serial"]);
    let again = ws.issue("acme", "prod", &[]);
    assert_eq!(again["action"], "unchanged");
    assert_eq!(again["serial"], first["serial"]);
}

// ---------------------------------------------------------------- explicit bounds, fixtures

/// An RFC 3339 time `secs` seconds from now, whole seconds.
fn at(secs: i64) -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    now + time::Duration::seconds(secs)
}

fn rfc(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[test]
fn explicit_bounds_are_the_certificates_to_the_second() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass_arg(&ws);
    // absolute bounds, a life of one second, an hour from now
    let (nb, na) = (at(3600), at(3601));
    let r = ws.json(&[
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
        "--not-before",
        &rfc(nb),
        "--not-after",
        &rfc(na),
    ]);
    let cert = PathBuf::from(s(&r["files"]["cert"]));
    assert_eq!(dates_of(&cert), (nb, na), "openssl x509 -dates: {r:#}");
    assert_eq!(r["fixture"], serde_json::Value::Null, "{r:#}");
    // `openssl verify` says it is not yet valid
    let (ok, out) = verify(&ca_cert(&ws, "prod"), cert.to_str().unwrap(), "sslclient");
    assert!(!ok && out.contains("not yet valid"), "{out}");

    // relative bounds: an expired fixture, -2h .. -1h
    let r = ws.json(&[
        "issue",
        "--tenant",
        "acme",
        "--env",
        "nonprod",
        "--ca-passphrase-file",
        &pf,
        "--not-before",
        "-2h",
        "--not-after",
        "-1h",
        "--fixture",
    ]);
    assert_eq!(r["fixture"], true, "{r:#}");
    let cert = PathBuf::from(s(&r["files"]["cert"]));
    let (b, a) = dates_of(&cert);
    assert!((b - at(-7200)).whole_seconds().abs() <= 5, "{b} {a}");
    assert_eq!(a - b, time::Duration::hours(1));
    let (ok, out) = verify(
        &ca_cert(&ws, "nonprod"),
        cert.to_str().unwrap(),
        "sslclient",
    );
    assert!(!ok && out.contains("certificate has expired"), "{out}");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cert.parent().unwrap().join("meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["fixture"], true, "{meta:#}");
    assert_eq!(meta["status"], "active");
}

#[test]
fn an_expired_window_needs_fixture_and_bad_times_name_their_flag() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass_arg(&ws);
    let before = tree(&ws);
    let base = [
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str], code| {
        let a = with(extra);
        fails(&ws, &a.iter().map(String::as_str).collect::<Vec<_>>(), code)
    };
    let e = run(&["--not-before", "-2h", "--not-after", "-1h"], 1);
    assert!(e.contains("--not-after") && e.contains("--fixture"), "{e}");
    let e = run(&["--not-after", "yesterday"], 2);
    assert!(
        e.contains("--not-after 'yesterday'") && e.contains("RFC 3339"),
        "{e}"
    );
    let e = run(&["--not-before", "+1x"], 2);
    assert!(e.contains("--not-before"), "{e}");
    let e = run(
        &[
            "--not-before",
            "-1h",
            "--not-after",
            "+1h",
            "--validity",
            "1d",
        ],
        2,
    );
    assert!(e.contains("--validity"), "{e}");
    let e = run(&["--not-before", "+1h", "--not-after", "+30m"], 1);
    assert!(
        e.contains("--not-after") && e.contains("after --not-before"),
        "{e}"
    );
    assert_eq!(tree(&ws), before, "a refused issue wrote something");
}

#[test]
fn a_short_explicit_life_fits_the_renewal_window() {
    let ws = Ws::with_cas(&["acme"]);
    // ten seconds: the profile's 30d renew_before gives way, as for a short --validity
    let r = ws.issue(
        "acme",
        "prod",
        &["--not-after", "+10s", "--not-before", "-0s"],
    );
    let cert = PathBuf::from(s(&r["files"]["cert"]));
    let (b, a) = dates_of(&cert);
    assert_eq!(a - b, time::Duration::seconds(10));
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(cert.parent().unwrap().join("meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["renew_before_secs"], 3, "{meta:#}");
}

#[test]
fn fixtures_are_refused_in_production_and_where_the_profile_says_so() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = pass_arg(&ws);
    let prod = std::fs::read_to_string(ws.path("profiles/environments/prod.yaml")).unwrap();
    ws.write(
        "profiles/environments/prod.yaml",
        &format!("production: true\n{prod}"),
    );
    let before = tree(&ws);
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--ca-passphrase-file",
            &pf,
            "--fixture",
        ],
        1,
    );
    assert!(
        e.contains("production: true") && e.contains("fixtures: true") && e.contains("prod.yaml"),
        "{e}"
    );
    assert_eq!(tree(&ws), before);
    // fixtures: true overrides production
    ws.write(
        "profiles/environments/prod.yaml",
        &format!("production: true\nfixtures: true\n{prod}"),
    );
    let r = ws.issue("acme", "prod", &["--fixture"]);
    assert_eq!(r["fixture"], true);
    // fixtures: false forbids them anywhere
    let np = std::fs::read_to_string(ws.path("profiles/environments/nonprod.yaml")).unwrap();
    ws.write(
        "profiles/environments/nonprod.yaml",
        &format!("fixtures: false\n{np}"),
    );
    let e = fails(
        &ws,
        &[
            "issue",
            "--tenant",
            "acme",
            "--env",
            "nonprod",
            "--ca-passphrase-file",
            &pf,
            "--fixture",
        ],
        1,
    );
    assert!(
        e.contains("fixtures: false") && e.contains("nonprod.yaml"),
        "{e}"
    );
}

#[test]
fn a_fixture_is_never_current() {
    let ws = Ws::with_cas(&["acme", "globex"]);
    let pf = pass_arg(&ws);
    let real = ws.issue("acme", "prod", &[]);
    // a valid fixture issued after the real certificate supersedes nothing
    let fx = ws.issue("acme", "prod", &["--fixture", "--not-after", "+1h"]);
    assert_eq!(fx["fixture"], true);
    let again = ws.issue("acme", "prod", &[]);
    assert_eq!(again["action"], "unchanged", "{again:#}");
    assert_eq!(again["serial"], real["serial"]);
    let real_meta = std::fs::read_to_string(
        PathBuf::from(s(&real["files"]["cert"]))
            .parent()
            .unwrap()
            .join("meta.json"),
    )
    .unwrap();
    assert!(real_meta.contains("\"active\""), "{real_meta}");

    // an expired fixture alone: issue --all still issues the tenant a real certificate
    ws.issue(
        "globex",
        "prod",
        &["--fixture", "--not-before", "-2h", "--not-after", "-1h"],
    );
    let all = ws.json(&[
        "issue",
        "--all",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ]);
    let issued: Vec<&str> = all["issued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["tenant"]))
        .collect();
    assert_eq!(issued, ["globex"], "{all:#}");
    assert!(all["issued"][0]["fixture"].is_null());

    // expiry judges the real certificates only: nothing expired, nothing due
    let out = ws.run(&["-o", "json", "expiry"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = v.to_string();
    assert!(
        !text.contains(s(&fx["serial"])),
        "expiry lists a fixture: {v:#}"
    );

    // list shows the fixtures as such
    let rows = ws.json(&["list", "--env", "prod"]);
    let fixtures: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fixture"] == true)
        .collect();
    assert_eq!(fixtures.len(), 2, "{rows:#}");
    let table = ws.ok(&["list", "--env", "prod"]);
    assert!(table.contains("expired (fixture)"), "{table}");
    assert!(table.contains("(fixture)"), "{table}");
}
