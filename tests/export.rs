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
