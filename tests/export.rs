//! `export`: every format, judged by openssl; no private key anywhere; deterministic.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn zip_entries(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(p).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        let name = f.name().unwrap().to_string();
        out.insert(name, b);
    }
    out
}

/// The base64 body of every PEM block in a file.
fn pem_bodies(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut inside = false;
    for l in text.lines() {
        if l.starts_with("-----BEGIN") {
            inside = true;
            cur.clear();
        } else if l.starts_with("-----END") {
            inside = false;
            out.push(cur.clone());
        } else if inside && !l.contains(':') {
            cur.push_str(l.trim());
        }
    }
    out
}

fn export(ws: &Ws, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut a = vec![
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend_from_slice(extra);
    ws.json(&a)
}

fn setup() -> (Ws, serde_json::Value) {
    let ws = Ws::with_cas(&["acme", "globex"]);
    let r = ws.issue("acme", "prod", &[]);
    ws.issue("acme", "nonprod", &[]);
    ws.issue("globex", "prod", &[]);
    (ws, r)
}

/// The private scalar of a key, from `openssl pkey -text`.
fn private_scalar(key: &Path, passin: Option<&Path>) -> Vec<u8> {
    let mut a = vec![
        "pkey".to_string(),
        "-in".into(),
        key.display().to_string(),
        "-noout".into(),
        "-text".into(),
    ];
    if let Some(p) = passin {
        a.push("-passin".into());
        a.push(format!("file:{}", p.display()));
    }
    let out = openssl(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let mut hex = String::new();
    let mut inside = false;
    for l in out.lines() {
        if l.starts_with("priv:") {
            inside = true;
            continue;
        }
        if inside {
            if l.starts_with(' ') {
                hex.push_str(&l.trim().replace(':', ""));
            } else {
                break;
            }
        }
    }
    let mut b: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    while b.first() == Some(&0) {
        b.remove(0);
    }
    assert!(b.len() >= 30, "no private scalar in {out}");
    b
}

/// A file's bytes plus everything base64 inside it, decoded (recursively: YAML Secret
/// values are base64 of PEM).
fn expand(bytes: &[u8], depth: u32, out: &mut Vec<Vec<u8>>) {
    out.push(bytes.to_vec());
    if depth == 0 {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    // PEM bodies
    let mut cur = String::new();
    let mut inside = false;
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with("-----BEGIN") {
            inside = true;
            cur.clear();
        } else if t.starts_with("-----END") {
            inside = false;
            if let Ok(d) = openssl::base64::decode_block(&cur) {
                expand(&d, depth - 1, out);
            }
        } else if inside {
            cur.push_str(t);
        }
    }
    // long base64 tokens anywhere (YAML values, XML attributes, one-line bodies)
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=';
    for tok in text.split(|c: char| !is_b64(c)) {
        if tok.len() >= 64
            && tok.len() % 4 == 0
            && let Ok(d) = openssl::base64::decode_block(tok)
        {
            expand(&d, depth - 1, out);
        }
    }
}

#[test]
fn no_format_holds_private_key_material() {
    let (ws, r) = setup();
    let dir = ws.dir.path().join("all");
    export(
        &ws,
        &dir,
        &[
            "--format",
            "all",
            "--tyk-org-id",
            "5e9d9544a1dcd60001d0ed20",
        ],
    );
    let zip = ws.dir.path().join("all.zip");
    export(&ws, &zip, &["--format", "all", "--zip"]);
    // every secret in the workspace: the leaf key, both CA keys, the PFX
    let scalars = vec![
        private_scalar(Path::new(s(&r["files"]["key"])), None),
        private_scalar(&ws.path("pki/prod/ca/ca.key"), Some(&ws.pass_file)),
        private_scalar(&ws.path("pki/nonprod/ca/ca.key"), Some(&ws.pass_file)),
    ];
    // the judge itself finds a key where there is one
    let mut own = Vec::new();
    expand(&std::fs::read(s(&r["files"]["key"])).unwrap(), 3, &mut own);
    assert!(own.iter().any(|v| {
        v.windows(scalars[0].len())
            .any(|w| w == scalars[0].as_slice())
    }));
    let pfx = std::fs::read(s(&r["files"]["pfx"])).unwrap();
    let all: Vec<(String, Vec<u8>)> = files_under(&dir)
        .into_iter()
        .chain(zip_entries(&zip))
        .collect();
    assert!(
        all.len() > 40,
        "expected every format's files, got {}",
        all.len()
    );
    let mut decoded_any = false;
    for (name, bytes) in &all {
        assert!(!name.ends_with(".pfx") && !name.ends_with(".p12") && !name.ends_with(".key"));
        let mut views = Vec::new();
        expand(bytes, 3, &mut views);
        decoded_any |= views.len() > 1;
        for v in &views {
            let text = String::from_utf8_lossy(v);
            assert!(
                !text.contains("PRIVATE KEY"),
                "{name} holds a PEM private key"
            );
            for k in &scalars {
                assert!(
                    !v.windows(k.len()).any(|w| w == k.as_slice()),
                    "{name} holds a private key"
                );
                let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
                assert!(
                    !text.to_lowercase().replace(':', "").contains(&hex),
                    "{name} holds a private key in hex"
                );
            }
            assert!(
                !v.windows(64)
                    .any(|w| pfx.windows(64).step_by(64).any(|k| k == w)),
                "{name} holds PFX bytes"
            );
        }
    }
    assert!(
        decoded_any,
        "the judge decoded nothing: it would miss base64 keys"
    );
}

#[test]
fn same_state_exports_identical_bytes() {
    let (ws, _) = setup();
    let a = ws.dir.path().join("a");
    let b = ws.dir.path().join("b");
    export(&ws, &a, &["--format", "all"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    export(&ws, &b, &["--format", "all"]);
    assert_eq!(files_under(&a), files_under(&b));
    let za = ws.dir.path().join("a.zip");
    let zb = ws.dir.path().join("b.zip");
    export(&ws, &za, &["--format", "all", "--zip"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    export(&ws, &zb, &["--format", "all", "--zip"]);
    assert_eq!(std::fs::read(&za).unwrap(), std::fs::read(&zb).unwrap());
    assert_eq!(zip_entries(&za), files_under(&a));
    let names: Vec<String> = zip_entries(&za).into_keys().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    // a changed state changes the export: a new certificate
    ws.issue("acme", "prod", &["--force"]);
    let c = ws.dir.path().join("c");
    export(&ws, &c, &["--format", "all"]);
    assert_ne!(files_under(&a)["client.pem"], files_under(&c)["client.pem"]);
    // and an existing folder is only replaced with --force
    let out = ws.run(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--out",
        c.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    // and --force never replaces a folder that is not a hand-off
    let other = ws.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "keep me").unwrap();
    let out = ws.run(&[
        "export",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--out",
        other.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an earlier hand-off"));
    assert_eq!(
        std::fs::read_to_string(other.join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn manifest_and_trust_material_agree_with_openssl() {
    let (ws, r) = setup();
    let dir = ws.dir.path().join("h");
    let rep = export(&ws, &dir, &["--format", "all", "--tyk-org-id", "org42"]);
    assert_eq!(rep["out"], dir.to_str().unwrap());
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    // the trust bundle and CRL verify the client certificate, as a gateway would
    openssl(&[
        "verify",
        "-crl_check_all",
        "-purpose",
        "sslclient",
        "-CAfile",
        &p("ca-chain.pem"),
        "-CRLfile",
        &p("crl.pem"),
        &p("client.pem"),
    ]);
    // and refuse the nonprod certificate
    let np = ws.path("pki/nonprod");
    let np_cert = files_under(&np)
        .into_keys()
        .find(|k| k.starts_with("acme/client/") && k.ends_with("/cert.pem"))
        .unwrap();
    let (ok, _) = tool(
        "openssl",
        &[
            "verify",
            "-CAfile",
            &p("ca-chain.pem"),
            np.join(np_cert).to_str().unwrap(),
        ],
    );
    assert!(!ok, "the prod bundle must not trust nonprod certificates");
    // one CRL per CA, signed by it
    let crl = openssl(&[
        "crl",
        "-in",
        &p("crl.pem"),
        "-CAfile",
        &p("ca-chain.pem"),
        "-noout",
    ]);
    assert!(crl.contains("verify OK"), "{crl}");

    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["tenant"], "acme");
    assert_eq!(m["env"], "prod");
    // every file's SHA-256 and role
    for f in m["files"].as_array().unwrap() {
        let out = openssl(&["dgst", "-sha256", "-r", &p(s(&f["path"]))]);
        assert_eq!(
            out.split_whitespace().next().unwrap(),
            s(&f["sha256"]),
            "{f}"
        );
        assert!(!s(&f["role"]).is_empty());
    }
    assert_eq!(
        m["files"].as_array().unwrap().len() + 1,
        files_under(&dir).len(),
        "the manifest lists every file but itself"
    );
    let c = &m["client"];
    assert_eq!(c["serial"], r["serial"]);
    let fp256 = openssl(&[
        "x509",
        "-in",
        &p("client.pem"),
        "-noout",
        "-fingerprint",
        "-sha256",
    ]);
    assert!(
        fp256
            .trim()
            .ends_with(s(&c["fingerprints"]["sha256_colon"])),
        "{fp256}"
    );
    let fp1 = openssl(&[
        "x509",
        "-in",
        &p("client.pem"),
        "-noout",
        "-fingerprint",
        "-sha1",
    ]);
    assert!(
        fp1.trim().ends_with(s(&c["fingerprints"]["sha1_colon"])),
        "{fp1}"
    );
    assert_eq!(
        s(&c["fingerprints"]["sha256_hex"]),
        s(&c["fingerprints"]["sha256_colon"])
            .replace(':', "")
            .to_lowercase()
    );
    assert_eq!(
        s(&c["tyk_certificate_id"]),
        format!("org42{}", s(&c["fingerprints"]["sha256_hex"]))
    );
    // x5t#S256 = base64url(sha256(DER)), no padding
    let b64 = {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl x509 -in '{}' -outform DER | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '='",
                p("client.pem")
            ))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(s(&c["fingerprints"]["x5t_s256"]), b64.trim());
    let subj = openssl(&[
        "x509",
        "-in",
        &p("client.pem"),
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
    ]);
    assert_eq!(
        subj.trim().trim_start_matches("subject=").trim(),
        s(&c["subject"])
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("rfc8705/client-metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["tls_client_auth_subject_dn"], c["subject"]);
    assert_eq!(meta["token_endpoint_auth_method"], "tls_client_auth");
    let cnf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("rfc8705/cnf.json")).unwrap()).unwrap();
    assert_eq!(cnf["cnf"]["x5t#S256"], c["fingerprints"]["x5t_s256"]);

    // nginx: depth raised
    let ngx = std::fs::read_to_string(dir.join("nginx/mtls.conf")).unwrap();
    assert!(ngx.contains("ssl_verify_client      on;"));
    assert!(ngx.contains(&format!("ssl_verify_depth       {};", m["verify_depth"])));
    assert!(m["verify_depth"].as_u64().unwrap() >= 2);
    // ingress-nginx: ca.crt / ca.crl decode to the bundle and CRL
    let sec = std::fs::read_to_string(dir.join("ingress-nginx/secret.yaml")).unwrap();
    for (key, file) in [("ca.crt:", "ca-chain.pem"), ("ca.crl:", "crl.pem")] {
        let b = sec
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap()
            .trim()
            .to_string();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s '{b}' | openssl base64 -d -A"))
            .output()
            .unwrap();
        assert_eq!(out.stdout, std::fs::read(dir.join(file)).unwrap(), "{key}");
    }
    let ann = std::fs::read_to_string(dir.join("ingress-nginx/ingress-annotations.yaml")).unwrap();
    assert!(ann.contains("auth-tls-verify-depth"));
    assert!(ann.contains("auth-tls-secret"));
    // Gateway API ConfigMap has ca.crt
    let cm = std::fs::read_to_string(dir.join("gateway-api/configmap.yaml")).unwrap();
    assert!(cm.contains("kind: ConfigMap") && cm.contains("ca.crt: |"));
    // IIS: DER .cer files, a one-line base64 body, uppercase SHA-1 thumbprints
    let cer = files_under(&dir.join("iis"))
        .into_keys()
        .find(|k| k.starts_with("ca-1-") && k.ends_with(".cer"))
        .unwrap();
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        dir.join("iis").join(cer).to_str().unwrap(),
        "-noout",
    ]);
    let line = std::fs::read_to_string(dir.join("iis/client-base64.txt")).unwrap();
    assert_eq!(line.lines().count(), 1);
    let body: String = pem_bodies(&dir.join("client.pem")).concat();
    assert_eq!(line.trim(), body);
    let th = std::fs::read_to_string(dir.join("iis/thumbprints.txt")).unwrap();
    assert!(th.contains(&s(&c["fingerprints"]["sha1_colon"]).replace(':', "")));
    // Azure: one chain file with the root, under 25 KB; AWS truststore
    let az = std::fs::read(dir.join("azure-appgw/trusted-client-ca-chain.pem")).unwrap();
    assert!(az.len() < 25 * 1024);
    let root = openssl(&[
        "x509",
        "-in",
        &p("azure-appgw/trusted-client-ca-chain.pem"),
        "-noout",
        "-subject",
        "-issuer",
    ]);
    let lines: Vec<&str> = root.lines().collect();
    assert_eq!(
        lines[0].trim_start_matches("subject="),
        lines[1].trim_start_matches("issuer=")
    );
    assert_eq!(
        std::fs::read(dir.join("aws-apigw/truststore.pem")).unwrap(),
        std::fs::read(dir.join("ca-chain.pem")).unwrap()
    );
    let checks = m["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["ok"] == true));
    assert!(checks.iter().any(|c| c["format"] == "aws-apigw"));
    assert!(checks.iter().any(|c| c["format"] == "azure-appgw"));
    // README names the revocation caveats
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("OCSP only"));
    assert!(readme.contains("checks no revocation at all"));
    assert!(readme.contains("re-import"));
    // Tyk IDs
    let tyk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tyk/certificate-ids.json")).unwrap())
            .unwrap();
    assert_eq!(tyk["client_certificate_id"], c["tyk_certificate_id"]);
    // Envoy pins: the SPKI pin is the SHA-256 of the public key
    let spki = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | openssl base64 -A",
            p("client.pem")
        ))
        .output()
        .unwrap();
    assert_eq!(
        s(&c["fingerprints"]["spki_sha256_base64"]),
        String::from_utf8(spki.stdout).unwrap().trim()
    );
}

#[test]
fn a_single_format_and_bad_input() {
    let (ws, _) = setup();
    let dir = ws.dir.path().join("pem");
    export(&ws, &dir, &[]);
    let names: Vec<String> = files_under(&dir).into_keys().collect();
    assert_eq!(
        names,
        [
            "README.txt",
            "ca-chain.pem",
            "client.pem",
            "crl.pem",
            "manifest.json"
        ]
    );
    let out = ws.run(&[
        "export", "--tenant", "acme", "--env", "prod", "--format", "bogus", "--out", "x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown export format"));
    // a tenant without a certificate in that env
    let out = ws.run(&[
        "export", "--tenant", "globex", "--env", "nonprod", "--out", "y",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("mtlsctl issue --tenant globex --env nonprod")
    );
    assert!(!ws.dir.path().join("y").exists());
}

#[test]
fn a_stale_or_foreign_crl_is_refused() {
    let (ws, _) = setup();
    let crl = ws.path("pki/prod/ca/crl.pem");
    let good = std::fs::read(&crl).unwrap();
    let out_dir = ws.dir.path().join("h");
    let try_export = || {
        let out = ws.run(&[
            "export",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        assert!(!out_dir.exists(), "nothing may be written");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // the nonprod CA's CRL in place of prod's
    std::fs::copy(ws.path("pki/nonprod/ca/crl.pem"), &crl).unwrap();
    let err = try_export();
    assert!(
        err.contains("no CRL signed by the CA") && err.contains("mtlsctl crl --env prod"),
        "{err}"
    );
    // a prod CRL whose nextUpdate has passed, made by openssl itself
    let d = ws.dir.path().join("openssl-ca");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        d.join("cfg"),
        format!(
            "[ca]\ndefault_ca=x\n[x]\ndatabase={0}/index.txt\ncrlnumber={0}/crlnumber\ndefault_md=sha256\n",
            d.display()
        ),
    )
    .unwrap();
    openssl(&[
        "ca",
        "-config",
        d.join("cfg").to_str().unwrap(),
        "-gencrl",
        "-keyfile",
        ws.path("pki/prod/ca/ca.key").to_str().unwrap(),
        "-passin",
        &format!("file:{}", ws.pass_file.display()),
        "-cert",
        ws.path("pki/prod/ca/ca.crt").to_str().unwrap(),
        "-crlsec",
        "1",
        "-out",
        crl.to_str().unwrap(),
    ]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let err = try_export();
    assert!(
        err.contains("nextUpdate") && err.contains("mtlsctl crl --env prod"),
        "{err}"
    );
    // the real one back: the export works
    std::fs::write(&crl, good).unwrap();
    export(&ws, &out_dir, &[]);
}

#[test]
fn help_and_completions_list_every_exported_format() {
    let (ws, _) = setup();
    let rep = export(&ws, &ws.dir.path().join("all"), &["--format", "all"]);
    let mut names: Vec<&str> = rep["formats"].as_array().unwrap().iter().map(s).collect();
    names.push("all");
    let listed = names.join(" ");
    let bash = ws.ok(&["completions", "bash"]);
    assert!(bash.contains(&listed), "bash completion lacks `{listed}`");
    let help = ws
        .ok(&["export", "--help"])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        help.contains(&format!("[possible values: {}]", names.join(", "))),
        "{help}"
    );
}

/// `sh -c SCRIPT`, asserting success; returns stdout, trimmed.
fn sh(script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn base64url_decode(s: &str) -> Vec<u8> {
    let mut std = s.replace('-', "+").replace('_', "/");
    while !std.len().is_multiple_of(4) {
        std.push('=');
    }
    openssl::base64::decode_block(&std).unwrap()
}

#[test]
fn rfc8705_registrations_match_the_certificate() {
    let (ws, _) = setup();
    let dir = ws.dir.path().join("h");
    export(&ws, &dir, &["--format", "rfc8705"]);
    let m = json_file(&dir.join("manifest.json"));
    let client = dir.join("client.pem");
    let client = client.to_str().unwrap();
    // tls_client_auth: the existing fields, plus bound tokens and the client_id to fill in
    let meta = json_file(&dir.join("rfc8705/client-metadata.json"));
    assert_eq!(meta["token_endpoint_auth_method"], "tls_client_auth");
    assert_eq!(meta["tls_client_auth_subject_dn"], m["client"]["subject"]);
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(meta["client_id"], "CLIENT_ID");
    let alt = json_file(&dir.join("rfc8705/san-alternatives.json"));
    assert_eq!(
        alt["tls_client_auth_san_uri"], m["client"]["san"]["uri"][0],
        "{alt}"
    );
    // self_signed_tls_client_auth: the certificate itself in a JWK Set
    let ss = json_file(&dir.join("rfc8705/client-metadata-self-signed.json"));
    assert_eq!(
        ss["token_endpoint_auth_method"],
        "self_signed_tls_client_auth"
    );
    assert_eq!(ss["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(ss["client_id"], "CLIENT_ID");
    assert_eq!(ss["jwks"], json_file(&dir.join("rfc8705/jwks.json")));
    let keys = ss["jwks"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    // x5c: standard base64 of the DER; x5t#S256: base64url SHA-256 of the DER, no padding
    let der_b64 = sh(&format!(
        "openssl x509 -in '{client}' -outform DER | openssl base64 -A"
    ));
    assert_eq!(k["x5c"], serde_json::json!([der_b64]));
    let x5t = sh(&format!(
        "openssl x509 -in '{client}' -outform DER | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '='"
    ));
    assert_eq!(s(&k["x5t#S256"]), x5t);
    assert_eq!(k["x5t#S256"], m["client"]["fingerprints"]["x5t_s256"]);
    let cnf = json_file(&dir.join("rfc8705/cnf.json"));
    assert_eq!(cnf["cnf"]["x5t#S256"], k["x5t#S256"]);
    // the JWK's public key is the certificate's: P-256, the SPKI ends in 04 || x || y
    assert_eq!((s(&k["kty"]), s(&k["crv"])), ("EC", "P-256"));
    let spki = sh(&format!(
        "openssl x509 -in '{client}' -noout -pubkey | openssl pkey -pubin -outform DER | openssl base64 -A"
    ));
    let spki = openssl::base64::decode_block(&spki).unwrap();
    let point = &spki[spki.len() - 64..];
    assert_eq!(base64url_decode(s(&k["x"])), point[..32]);
    assert_eq!(base64url_decode(s(&k["y"])), point[32..]);
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("self_signed_tls_client_auth") && readme.contains("jwks_uri"));
}

/// An Express Gateway fragment, parsed.
fn fragment(dir: &Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("express-gateway").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

/// The exported files a fragment's `ca` list names (by file name; the folder is the
/// operator's choice).
fn fragment_cas(dir: &Path, y: &serde_json::Value) -> Vec<std::path::PathBuf> {
    let cas = y["https"]["tls"]["default"]["ca"].as_array().unwrap();
    assert!(!cas.is_empty());
    cas.iter()
        .map(|p| {
            let f = dir.join(Path::new(s(p)).file_name().unwrap());
            assert!(f.is_file(), "{p} names no file the export ships");
            f
        })
        .collect()
}

/// The status the optional fragment's pipeline answers without an accepted certificate.
fn terminate_status(y: &serde_json::Value) -> u64 {
    let pipelines = y["pipelines"].as_object().unwrap();
    let (_, p) = pipelines.iter().next().unwrap();
    for e in p["apiEndpoints"].as_array().unwrap() {
        assert!(y["apiEndpoints"][s(e)].is_object(), "{e} is not defined");
    }
    let policies = p["policies"].as_array().unwrap();
    let terminate = &policies[0]["terminate"][0];
    assert_eq!(terminate["condition"]["name"], "not");
    assert_eq!(
        terminate["condition"]["condition"]["name"],
        "tlsClientAuthenticated"
    );
    let proxy = &policies[1]["proxy"][0]["action"]["serviceEndpoint"];
    assert!(y["serviceEndpoints"][s(proxy)]["url"].is_string());
    for name in ["terminate", "proxy"] {
        assert!(y["policies"].as_array().unwrap().iter().any(|v| v == name));
    }
    terminate["action"]["statusCode"].as_u64().unwrap()
}

#[test]
fn express_gateway_fragments_are_yaml_naming_the_shipped_files() {
    let (ws, _) = setup();
    let dir = ws.dir.path().join("h");
    export(&ws, &dir, &["--format", "express-gateway"]);
    let crl = std::fs::read_to_string(dir.join("crl.pem")).unwrap();
    for (name, reject) in [
        ("gateway.config.yml", true),
        ("gateway.config.optional.yml", false),
    ] {
        let y = fragment(&dir, name);
        let o = &y["https"]["options"];
        assert_eq!(o["requestCert"], true, "{name}");
        assert_eq!(o["rejectUnauthorized"], reject, "{name}");
        assert_eq!(s(&o["crl"]), crl, "{name}: the inline CRL is crl.pem");
        assert!(y["https"]["port"].is_u64());
        let cas = fragment_cas(&dir, &y);
        assert_eq!(cas, [dir.join("ca-chain.pem")]);
    }
    assert_eq!(
        terminate_status(&fragment(&dir, "gateway.config.optional.yml")),
        403
    );
    let m = json_file(&dir.join("manifest.json"));
    let listed: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(&f["path"]))
        .collect();
    assert!(listed.contains(&"express-gateway/gateway.config.yml"));
    assert!(listed.contains(&"express-gateway/gateway.config.optional.yml"));
    let readme = std::fs::read_to_string(dir.join("README.txt")).unwrap();
    assert!(readme.contains("Express Gateway\n---------------\n"));
    assert!(readme.contains("tlsClientAuthenticated") && readme.contains("crl.pem"));
}

/// The HTTPS server Express Gateway starts (lib/gateway/server.js): `https.options` as
/// they are, key, cert and the `ca` files of `https.tls.default`; then the optional
/// fragment's terminate rule on `tlsClientAuthenticated` (req.client.authorized).
const EXPRESS_LIKE_SERVER: &str = r#"
const fs = require('fs');
const https = require('https');
const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const options = Object.assign({}, cfg.options);
options.key = fs.readFileSync(cfg.key, 'utf8');
options.cert = fs.readFileSync(cfg.cert, 'utf8');
options.ca = cfg.ca.map((p) => fs.readFileSync(p, 'utf8'));
const server = https.createServer(options, (req, res) => {
  if (cfg.deny_status && !req.client.authorized) {
    res.writeHead(cfg.deny_status);
    res.end('terminated: ' + req.client.authorizationError + '\n');
    return;
  }
  const peer = req.client.getPeerCertificate();
  res.writeHead(200);
  res.end('hello ' + (peer.subject ? peer.subject.CN : '(no certificate)') + '\n');
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
// never outlive the test, even if it cannot kill us
setTimeout(() => process.exit(3), 120000).unref();
"#;

/// A node process serving one fragment's TLS options; killed on drop.
struct Node {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Node {
    fn start(ws: &Ws, dir: &Path, fragment_name: &str, server: &serde_json::Value) -> Node {
        let y = fragment(dir, fragment_name);
        let deny = (fragment_name == "gateway.config.optional.yml").then(|| terminate_status(&y));
        let cfg = serde_json::json!({
            "options": y["https"]["options"],
            "ca": fragment_cas(dir, &y),
            "key": server["files"]["key"],
            "cert": server["files"]["cert"],
            "deny_status": deny,
        });
        let tmp = ws.dir.path();
        std::fs::write(tmp.join("server.js"), EXPRESS_LIKE_SERVER).unwrap();
        std::fs::write(tmp.join("server.json"), cfg.to_string()).unwrap();
        let log = tmp.join(format!("node-{fragment_name}.log"));
        let mut child = std::process::Command::new("node")
            .arg(tmp.join("server.js"))
            .arg(tmp.join("server.json"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut node = Node {
            child,
            port: 0,
            log,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("node did not listen within 15 s:\n{}", node.log_text()));
        node.port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("node said {line:?}:\n{}", node.log_text()));
        node
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// curl to a path behind the server, with the client certificate and key of an
    /// `issue` report or none; returns the HTTP status (0: no answer) and the body.
    fn get(&self, ca: &Path, client: Option<&serde_json::Value>) -> (u16, String) {
        let mut c = std::process::Command::new("curl");
        c.args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(ca);
        if let Some(r) = client {
            c.args([
                "--cert",
                s(&r["files"]["cert"]),
                "--key",
                s(&r["files"]["key"]),
            ]);
        }
        let out = c
            .arg(format!("https://127.0.0.1:{}/orders", self.port))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let err = String::from_utf8_lossy(&out.stderr);
        (code.trim().parse().unwrap_or(0), format!("{body}{err}"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn express_gateway_tls_options_hold_in_node() {
    if !judges_present(&["node", "curl", "openssl"]) {
        return;
    }
    let (ws, acme) = setup();
    let server = ws.issue(
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
    let ca = ws.path("pki/prod/ca/ca.crt");
    let dir = ws.dir.path().join("eg");
    export(&ws, &dir, &["--format", "express-gateway"]);
    {
        let node = Node::start(&ws, &dir, "gateway.config.yml", &server);
        let (code, body) = node.get(&ca, Some(&acme));
        assert_eq!(
            code,
            200,
            "the tenant's certificate was refused: {body}\n{}",
            node.log_text()
        );
        assert!(body.contains("hello acme-prod-client"), "{body}");
        let (code, body) = node.get(&ca, None);
        assert_eq!(
            code, 0,
            "a client without a certificate got an answer: {body}"
        );
    }
    // revoked: a fresh export carries the new CRL, and Node refuses the old certificate
    ws.ok(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        ws.pass_file.to_str().unwrap(),
    ]);
    let renewed = ws.issue("acme", "prod", &[]);
    export(&ws, &dir, &["--format", "express-gateway", "--force"]);
    {
        let node = Node::start(&ws, &dir, "gateway.config.yml", &server);
        let (code, body) = node.get(&ca, Some(&acme));
        assert_eq!(code, 0, "the revoked certificate got an answer: {body}");
        let (code, body) = node.get(&ca, Some(&renewed));
        assert_eq!(code, 200, "{body}\n{}", node.log_text());
    }
    // certificate on some paths only: every client connects, the pipeline answers 403
    let node = Node::start(&ws, &dir, "gateway.config.optional.yml", &server);
    let (code, body) = node.get(&ca, None);
    assert_eq!(code, 403, "without a certificate: {body}");
    let (code, body) = node.get(&ca, Some(&acme));
    assert_eq!(code, 403, "with the revoked certificate: {body}");
    assert!(body.contains("CERT_REVOKED"), "{body}");
    let (code, body) = node.get(&ca, Some(&renewed));
    assert_eq!(code, 200, "{body}\n{}", node.log_text());
}
