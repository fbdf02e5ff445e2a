//! PKCS#12 in both compatibility modes judged by `openssl pkcs12 -info` and Java's
//! keytool; the standalone `pfx` command; `inspect` on every kind of file; and no
//! command printing key material or a password.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

/// Runs, checks that nothing secret shows, and returns the output.
fn run(ws: &Ws, args: &[&str], secrets: &[&str]) -> Output {
    let o = ws.run(args);
    assert_no_secrets(&o, secrets);
    o
}

/// A failing run with `code` and a one-line `error:`; returns that line.
fn fails(ws: &Ws, args: &[&str], code: i32, secrets: &[&str]) -> String {
    let o = run(ws, args, secrets);
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "mtlsctl {args:?}\nstdout: {out}\nstderr: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    if code == 1 {
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
    err.lines().next().unwrap().to_string()
}

fn password(r: &serde_json::Value) -> String {
    std::fs::read_to_string(s(&r["files"]["pfx_password"]))
        .unwrap()
        .trim_end()
        .to_string()
}

/// `openssl pkcs12 -info` without -legacy (so OpenSSL 3 must read it with its default
/// provider) and without printing keys.
fn pkcs12_info(pfx: &str, pass_file: &str) -> String {
    openssl(&[
        "pkcs12",
        "-info",
        "-in",
        pfx,
        "-passin",
        &format!("file:{pass_file}"),
        "-nokeys",
    ])
}

fn keytool_list(pfx: &str, pass_file: &str) -> String {
    assert!(
        has("keytool"),
        "keytool (Java) is needed to judge PFX files: apt-get install openjdk-17-jre-headless"
    );
    let (ok, out) = tool(
        "keytool",
        &[
            "-list",
            "-v",
            "-storetype",
            "pkcs12",
            "-keystore",
            pfx,
            "-storepass:file",
            pass_file,
        ],
    );
    assert!(ok, "keytool could not read {pfx}: {out}");
    out
}

fn check_modern(info: &str) {
    assert!(
        info.contains("Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC"),
        "key not AES-256/PBKDF2: {info}"
    );
    assert!(info.contains("PRF hmacWithSHA256"), "{info}");
    assert!(info.contains("MAC: sha256, Iteration 2048"), "{info}");
    // the certificates are encrypted too, as openssl pkcs12 -export does by default
    assert!(
        info.contains("PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 2048"),
        "certificates not AES-256/PBKDF2: {info}"
    );
    assert!(
        !info.contains("TripleDES") && !info.contains("RC2"),
        "{info}"
    );
}

fn check_legacy(info: &str) {
    assert!(
        info.contains("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"),
        "key not 3DES: {info}"
    );
    assert!(
        info.contains("PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC"),
        "certificates not 3DES: {info}"
    );
    assert!(info.contains("MAC: sha1"), "{info}");
    assert!(!info.contains("PBES2") && !info.contains("RC2"), "{info}");
}

/// Friendly name, leaf + chain, key matching the certificate.
fn check_contents(pfx: &str, pass_file: &str, cert: &str, ca: &Path, name: &str) {
    let info = pkcs12_info(pfx, pass_file);
    assert!(info.contains(&format!("friendlyName: {name}")), "{info}");
    assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 2, "{info}");
    // the key in the PFX is the certificate's key
    let pin = format!("file:{pass_file}");
    let (ok, keys) = tool(
        "openssl",
        &["pkcs12", "-in", pfx, "-passin", &pin, "-nocerts", "-nodes"],
    );
    assert!(ok, "{keys}");
    let kf = Path::new(pfx).with_extension("test-key.pem");
    std::fs::write(&kf, &keys).unwrap();
    let a = openssl(&["pkey", "-in", kf.to_str().unwrap(), "-pubout"]);
    std::fs::remove_file(&kf).unwrap();
    let b = openssl(&["x509", "-in", cert, "-noout", "-pubkey"]);
    assert_eq!(a, b, "the PFX key does not match the certificate");
    // the chain in it verifies the leaf
    let certs = Path::new(pfx).with_extension("test-certs.pem");
    let (ok, c) = tool(
        "openssl",
        &["pkcs12", "-in", pfx, "-passin", &pin, "-nokeys", "-clcerts"],
    );
    assert!(ok);
    std::fs::write(&certs, c).unwrap();
    openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        ca.to_str().unwrap(),
        certs.to_str().unwrap(),
    ]);
    std::fs::remove_file(&certs).unwrap();
}

fn write_pass(ws: &Ws, name: &str, pw: &str) -> PathBuf {
    let p = ws.dir.path().join(name);
    std::fs::write(&p, format!("{pw}\n")).unwrap();
    p
}

// ---------------------------------------------------------------- issued PFX

#[test]
fn issued_pfx_modern_reads_in_openssl_and_keytool() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue("acme", "prod", &[]);
    let pfx = s(&r["files"]["pfx"]);
    let pf = s(&r["files"]["pfx_password"]);
    let pw = password(&r);
    assert_eq!(pw.len(), 24, "a strong generated password");
    assert_eq!(mode(Path::new(pfx)), 0o600);
    assert_eq!(mode(Path::new(pf)), 0o600);
    check_modern(&pkcs12_info(pfx, pf));
    let ca = ws.path("pki/prod/ca/ca.crt");
    check_contents(pfx, pf, s(&r["files"]["cert"]), &ca, "acme-prod-client");
    let kt = keytool_list(pfx, pf);
    assert!(kt.contains("Your keystore contains 1 entry"), "{kt}");
    assert!(kt.contains("Alias name: acme-prod-client"), "{kt}");
    assert!(kt.contains("Entry type: PrivateKeyEntry"), "{kt}");
    assert!(kt.contains("Certificate chain length: 2"), "{kt}");
    // a wrong password is refused by openssl
    let bad = write_pass(&ws, "bad.txt", "wrong");
    let (ok, _) = tool(
        "openssl",
        &[
            "pkcs12",
            "-info",
            "-in",
            pfx,
            "-passin",
            &format!("file:{}", bad.display()),
            "-noout",
        ],
    );
    assert!(!ok);
    // two issues never share a password
    let r2 = ws.issue("acme", "nonprod", &[]);
    assert_ne!(password(&r2), pw);
}

#[test]
fn issued_pfx_legacy_by_profile_and_by_flag() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    // the profile asks for legacy in prod only
    let p = "profiles/tenants/acme.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(
        p,
        &format!("{t}\noverrides:\n  prod:\n    pfx:\n      compat: legacy\n      friendly_name: \"acme iis {{env}}\"\n"),
    );
    let r = ws.issue("acme", "prod", &[]);
    let (pfx, pf) = (s(&r["files"]["pfx"]), s(&r["files"]["pfx_password"]));
    check_legacy(&pkcs12_info(pfx, pf));
    let ca = ws.path("pki/prod/ca/ca.crt");
    check_contents(pfx, pf, s(&r["files"]["cert"]), &ca, "acme iis prod");
    let kt = keytool_list(pfx, pf);
    assert!(kt.contains("Entry type: PrivateKeyEntry"), "{kt}");
    assert!(kt.contains("Alias name: acme iis prod"), "{kt}");
    // nonprod stays modern
    let r = ws.issue("acme", "nonprod", &[]);
    check_modern(&pkcs12_info(
        s(&r["files"]["pfx"]),
        s(&r["files"]["pfx_password"]),
    ));
    // --legacy on the command line
    let r = ws.issue("beta", "prod", &["--legacy", "--key", "rsa-2048"]);
    let (pfx, pf) = (s(&r["files"]["pfx"]), s(&r["files"]["pfx_password"]));
    check_legacy(&pkcs12_info(pfx, pf));
    let kt = keytool_list(pfx, pf);
    assert!(kt.contains("Entry type: PrivateKeyEntry"), "{kt}");
}

#[test]
fn pfx_can_be_turned_off() {
    let ws = Ws::with_cas(&["acme"]);
    let p = "profiles/tenants/acme.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(p, &format!("{t}\npfx:\n  enabled: false\n"));
    let r = ws.issue("acme", "prod", &[]);
    assert!(r["files"]["pfx"].is_null(), "{r}");
    assert!(r["files"]["pfx_password"].is_null(), "{r}");
    let dir = Path::new(s(&r["files"]["cert"])).parent().unwrap();
    assert!(!dir.join("bundle.pfx").exists());
    assert!(Path::new(s(&r["files"]["key"])).is_file());
}

// ---------------------------------------------------------------- `pfx`

#[test]
fn pfx_command_bundles_both_modes_and_checks_them() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue("acme", "prod", &[]);
    let (cert, key, chain) = (
        s(&r["files"]["cert"]),
        s(&r["files"]["key"]),
        s(&r["files"]["chain"]),
    );
    let pw = "Pfx-Pass-For-Tests-42";
    let pf = write_pass(&ws, "pfx-pass.txt", pw);
    let pfs = pf.to_str().unwrap();
    let ca = ws.path("pki/prod/ca/ca.crt");
    for (legacy, name) in [(false, "modern.pfx"), (true, "legacy.pfx")] {
        let out = ws.dir.path().join(name);
        let mut a = vec![
            "-o",
            "json",
            "pfx",
            "--cert",
            cert,
            "--key",
            key,
            "--chain",
            chain,
            "--out",
            out.to_str().unwrap(),
            "--password-file",
            pfs,
            "--name",
            "my alias",
        ];
        if legacy {
            a.push("--legacy");
        }
        let o = run(&ws, &a, &[pw]);
        assert!(o.status.success(), "{}", text(&o).1);
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(j["verified"], true);
        assert_eq!(j["compat"], if legacy { "legacy" } else { "modern" });
        assert_eq!(Path::new(s(&j["pfx"])), out);
        assert_eq!(mode(&out), 0o600);
        let o = out.to_str().unwrap();
        let info = pkcs12_info(o, pfs);
        if legacy {
            check_legacy(&info);
        } else {
            check_modern(&info);
        }
        check_contents(o, pfs, cert, &ca, "my alias");
        let kt = keytool_list(o, pfs);
        assert!(kt.contains("Alias name: my alias"), "{kt}");
    }
    // the password from the variable; the friendly name defaults to the CN
    let out = ws.dir.path().join("env.pfx");
    let o = ws
        .cmd()
        .env("MTLSCTL_PFX_PASSWORD", pw)
        .args(["pfx", "--cert", cert, "--key", key, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    assert_no_secrets(&o, &[pw]);
    let info = pkcs12_info(out.to_str().unwrap(), pfs);
    assert!(info.contains("friendlyName: acme-prod-client"), "{info}");
    // an existing file is not replaced without --force
    let before = std::fs::read(&out).unwrap();
    let e = fails(
        &ws,
        &[
            "pfx",
            "--cert",
            cert,
            "--key",
            key,
            "--out",
            out.to_str().unwrap(),
            "--password-file",
            pfs,
        ],
        1,
        &[pw],
    );
    assert!(e.contains("env.pfx") && e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    ws.ok(&[
        "pfx",
        "--cert",
        cert,
        "--key",
        key,
        "--out",
        out.to_str().unwrap(),
        "--password-file",
        pfs,
        "--force",
    ]);
    assert_ne!(std::fs::read(&out).unwrap(), before);
}

#[test]
fn pfx_command_reads_an_encrypted_key_with_its_passphrase() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue("acme", "prod", &[]);
    let (cert, key) = (s(&r["files"]["cert"]), s(&r["files"]["key"]));
    // the same key, encrypted by the openssl CLI (PBES2, AES-256)
    let enc = ws.dir.path().join("enc.key");
    let kpf = write_pass(&ws, "key-pass.txt", "Key-Pass-For-Tests-7");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        key,
        "-out",
        enc.to_str().unwrap(),
        "-passout",
        &format!("file:{}", kpf.display()),
    ]);
    let pw = "Pfx-Pass-For-Tests-43";
    let pf = write_pass(&ws, "pfx-pass.txt", pw);
    let out = ws.dir.path().join("enc.pfx");
    let base = [
        "pfx",
        "--cert",
        cert,
        "--key",
        enc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--password-file",
        pf.to_str().unwrap(),
    ];
    // without the passphrase and no terminal: a usage error naming flag and variable
    let e = fails(&ws, &base, 2, &[pw, "Key-Pass-For-Tests-7"]);
    assert!(
        e.contains("--key-passphrase-file") && e.contains("MTLSCTL_KEY_PASSPHRASE"),
        "{e}"
    );
    assert!(!out.exists());
    // a wrong passphrase writes nothing
    let bad = write_pass(&ws, "bad-key-pass.txt", "wrong");
    let mut a = base.to_vec();
    a.extend(["--key-passphrase-file", bad.to_str().unwrap()]);
    fails(&ws, &a, 1, &[pw]);
    assert!(!out.exists());
    // with it: the PFX opens in openssl and holds the same key
    let mut a = base.to_vec();
    a.extend(["--key-passphrase-file", kpf.to_str().unwrap()]);
    let o = run(&ws, &a, &[pw, "Key-Pass-For-Tests-7"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let info = pkcs12_info(out.to_str().unwrap(), pf.to_str().unwrap());
    assert!(info.contains("Shrouded Keybag"), "{info}");
}

#[test]
fn pfx_command_refuses_bad_input() {
    let ws = Ws::with_cas(&["acme"]);
    let a = ws.issue("acme", "prod", &[]);
    let b = ws.issue("acme", "nonprod", &[]);
    let pw = "Another-Pfx-Pass-7";
    let pf = write_pass(&ws, "p.txt", pw);
    let pfs = pf.to_str().unwrap();
    let out = ws.dir.path().join("x.pfx");
    let outs = out.to_str().unwrap();
    // the key of another certificate
    let e = fails(
        &ws,
        &[
            "pfx",
            "--cert",
            s(&a["files"]["cert"]),
            "--key",
            s(&b["files"]["key"]),
            "--out",
            outs,
            "--password-file",
            pfs,
        ],
        1,
        &[pw],
    );
    assert!(e.contains("does not belong to the certificate"), "{e}");
    assert!(!out.exists(), "a PFX was written for a mismatched key");
    // no password and no terminal: names the flag and the variable
    let e = fails(
        &ws,
        &[
            "pfx",
            "--cert",
            s(&a["files"]["cert"]),
            "--key",
            s(&a["files"]["key"]),
            "--out",
            outs,
        ],
        2,
        &[],
    );
    assert!(
        e.contains("--password-file") && e.contains("MTLSCTL_PFX_PASSWORD"),
        "{e}"
    );
    assert!(!out.exists());
    // a certificate file that is not one
    let junk = write_pass(&ws, "junk.pem", "not a certificate");
    let e = fails(
        &ws,
        &[
            "pfx",
            "--cert",
            junk.to_str().unwrap(),
            "--key",
            s(&a["files"]["key"]),
            "--out",
            outs,
            "--password-file",
            pfs,
        ],
        1,
        &[pw],
    );
    assert!(e.contains("junk.pem"), "{e}");
    // a key file that is not one
    let e = fails(
        &ws,
        &[
            "pfx",
            "--cert",
            s(&a["files"]["cert"]),
            "--key",
            junk.to_str().unwrap(),
            "--out",
            outs,
            "--password-file",
            pfs,
        ],
        1,
        &[pw],
    );
    assert!(e.contains("junk.pem"), "{e}");
    // a missing file
    let e = fails(
        &ws,
        &[
            "pfx",
            "--cert",
            "/nonexistent/cert.pem",
            "--key",
            s(&a["files"]["key"]),
            "--out",
            outs,
            "--password-file",
            pfs,
        ],
        1,
        &[pw],
    );
    assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    assert!(!out.exists());
}

// ---------------------------------------------------------------- `inspect`

#[test]
fn inspect_certificate_chain_csr_and_key() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue(
        "acme",
        "prod",
        &["--kind", "server", "--dns", "api.acme.example"],
    );
    let cert = s(&r["files"]["cert"]);
    let o = run(&ws, &["-o", "json", "inspect", cert], &[]);
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &j["items"][0];
    assert_eq!(c["type"], "certificate");
    assert_eq!(c["serial"], r["serial"]);
    assert_eq!(c["subject"], r["subject"]);
    assert_eq!(
        c["issuer"],
        "CN=Example Platform prod mTLS CA,O=Example Platform"
    );
    assert_eq!(c["san"]["dns"][0], "api.acme.example");
    assert_eq!(c["extended_key_usage"], serde_json::json!(["serverAuth"]));
    assert_eq!(c["key_usage"], serde_json::json!(["digitalSignature"]));
    assert_eq!(c["is_ca"], false);
    assert_eq!(c["key"]["algorithm"], "ecdsa-p256");
    assert_eq!(c["not_after"], r["not_after"]);
    // fingerprints as openssl computes them
    for (alg, field) in [("-sha256", "sha256"), ("-sha1", "sha1")] {
        let fp = openssl(&["x509", "-noout", "-fingerprint", alg, "-in", cert]);
        let fp = fp.trim().rsplit('=').next().unwrap();
        assert_eq!(s(&c["fingerprints"][field]), fp, "{field}");
    }
    // the table form, and DER input
    let out = ws.ok(&["inspect", cert]);
    assert!(
        out.contains("api.acme.example") && out.contains(s(&r["serial"])),
        "{out}"
    );
    let der = ws.dir.path().join("cert.der");
    openssl(&[
        "x509",
        "-in",
        cert,
        "-outform",
        "DER",
        "-out",
        der.to_str().unwrap(),
    ]);
    let j = ws.json(&["inspect", der.to_str().unwrap()]);
    assert_eq!(j["items"][0]["serial"], r["serial"]);
    // a chain: leaf + CA
    let j = ws.json(&["inspect", s(&r["files"]["fullchain"])]);
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{j}");
    assert_eq!(items[0]["serial"], r["serial"]);
    assert_eq!(items[1]["is_ca"], true);
    // a CSR
    let key = ws.dir.path().join("csr.key");
    let csr = ws.dir.path().join("req.csr");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=csr.example/O=Req Org",
        "-out",
        csr.to_str().unwrap(),
    ]);
    let o = run(&ws, &["-o", "json", "inspect", csr.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("CN=csr.example"), "{out}");
    assert!(out.contains("rsa-2048"), "{out}");
    // a private key: described, never printed
    let key_pem = std::fs::read_to_string(s(&r["files"]["key"])).unwrap();
    let body = key_pem.lines().nth(1).unwrap().to_string();
    for k in [s(&r["files"]["key"]), key.to_str().unwrap()] {
        for fmt in ["table", "json"] {
            let o = run(&ws, &["-o", fmt, "inspect", k], &[&body]);
            assert!(o.status.success(), "{}", text(&o).1);
            let out = String::from_utf8_lossy(&o.stdout);
            assert!(
                out.contains("ecdsa-p256") || out.contains("rsa-2048"),
                "{out}"
            );
            if fmt == "json" {
                let j: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!(j["items"][0]["type"], "private_key", "{j}");
            }
        }
    }
}

#[test]
fn inspect_pfx_with_and_without_its_password() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue("acme", "prod", &[]);
    let pw = password(&r);
    let (pfx, pf) = (s(&r["files"]["pfx"]), s(&r["files"]["pfx_password"]));
    let key_pem = std::fs::read_to_string(s(&r["files"]["key"])).unwrap();
    let body = key_pem.lines().nth(1).unwrap().to_string();
    let o = run(
        &ws,
        &["-o", "json", "inspect", pfx, "--password-file", pf],
        &[&pw, &body],
    );
    assert!(o.status.success(), "{}", text(&o).1);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let item = &j["items"][0];
    assert_eq!(item["certificate"]["serial"], r["serial"]);
    assert_eq!(item["chain"].as_array().unwrap().len(), 1, "{j}");
    let o = run(&ws, &["inspect", pfx, "--password-file", pf], &[&pw, &body]);
    assert!(o.status.success());
    // the password from the variable
    let o = ws
        .cmd()
        .env("MTLSCTL_PFX_PASSWORD", &pw)
        .args(["inspect", pfx])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    assert_no_secrets(&o, &[&pw, &body]);
    // a wrong password: one line, exit 1
    let bad = write_pass(&ws, "bad.txt", "definitely-wrong");
    let e = fails(
        &ws,
        &["inspect", pfx, "--password-file", bad.to_str().unwrap()],
        1,
        &[&pw, "definitely-wrong"],
    );
    assert!(e.contains("password"), "{e}");
    // no password and no terminal: the protection only, and how to see the rest
    let o = run(&ws, &["inspect", pfx], &[&pw, &body]);
    assert!(o.status.success(), "{}", text(&o).1);
    let (out, _) = text(&o);
    assert!(out.contains("contents not read"), "{out}");
    assert!(
        out.contains("MAC:           HMAC-SHA-256, 2048 iterations"),
        "{out}"
    );
    assert!(
        out.contains("--password-file") && out.contains("MTLSCTL_PFX_PASSWORD"),
        "{out}"
    );
    assert!(!out.contains("subject:"), "{out}");
    let o = run(&ws, &["-o", "json", "inspect", pfx], &[&pw, &body]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let item = &j["items"][0];
    assert_eq!(item["opened"], false, "{j}");
    assert_eq!(item["has_key"], true, "{j}");
    assert!(item["certificate"].is_null(), "{j}");
    assert_eq!(item["mac"]["algorithm"], "HMAC-SHA-256", "{j}");
}

/// `inspect` of a PFX of `compat` (issued for acme/prod), without and with its password:
/// the JSON items.
fn inspect_both_ways(ws: &Ws, target: &str) -> (serde_json::Value, serde_json::Value) {
    let r = ws.issue("acme", "prod", &["--force", "--pfx-target", target]);
    let (pfx, pf) = (s(&r["files"]["pfx"]), s(&r["files"]["pfx_password"]));
    let without = ws.json(&["inspect", pfx]);
    let with = ws.json(&["inspect", pfx, "--password-file", pf]);
    let table = ws.ok(&["inspect", pfx]);
    let enc = s(&without["items"][0]["encryption"][0]["encryption"]);
    assert!(table.contains(enc), "{table}");
    let mac = s(&without["items"][0]["mac"]["description"]);
    assert!(table.contains(mac), "{table}");
    (without["items"][0].clone(), with["items"][0].clone())
}

#[test]
fn inspect_shows_each_profiles_mac_and_encryption_with_or_without_the_password() {
    let ws = Ws::with_cas(&["acme"]);
    let pbes2 = "PBES2 PBKDF2-HMAC-SHA-256 2048 iterations AES-256-CBC";
    let des = "pbeWithSHAAnd3-KeyTripleDES-CBC 2048 iterations";
    let mut cases = vec![
        (
            "modern",
            "HMAC-SHA-256",
            "HMAC-SHA-256, 2048 iterations",
            pbes2,
        ),
        ("legacy", "HMAC-SHA-1", "HMAC-SHA-1, 2048 iterations", des),
    ];
    if cfg!(feature = "vendored-openssl") {
        let mac = "PBMAC1 HMAC-SHA-256 (key: PBKDF2-HMAC-SHA-256, 2048 iterations)";
        cases.push(("pbmac1", "PBMAC1", mac, pbes2));
    }
    for (target, alg, mac, bags) in cases {
        let (without, with) = inspect_both_ways(&ws, target);
        for item in [&without, &with] {
            assert_eq!(item["mac"]["algorithm"], alg, "{item}");
            assert_eq!(item["mac"]["description"], mac, "{item}");
            assert_eq!(item["mac"]["iterations"], 2048, "{item}");
            let kinds: Vec<&str> = item["encryption"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| s(&b["bag"]))
                .collect();
            assert_eq!(kinds, ["encrypted_data", "shrouded_key"], "{item}");
            for b in item["encryption"].as_array().unwrap() {
                assert_eq!(b["encryption"], bags, "{item}");
                assert_eq!(b["iterations"], 2048, "{item}");
            }
        }
        if target == "pbmac1" {
            assert_eq!(with["mac"]["prf"], "HMAC-SHA-256", "{with}");
        }
        assert_eq!(without["opened"], false);
        assert_eq!(with["opened"], true);
        assert_eq!(with["key_matches_cert"], true, "{with}");
        assert_eq!(with["friendly_name"], "acme-prod-client", "{with}");
    }
}

/// A password file and a PFX written by the openssl CLI with `iter` iterations for the
/// bags and the MAC.
fn openssl_pfx(ws: &Ws, r: &serde_json::Value, name: &str, iter: &str) -> (PathBuf, PathBuf) {
    let pf = write_pass(ws, &format!("{name}.pass"), "crafted-pass");
    let out = ws.dir.path().join(name);
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        s(&r["files"]["cert"]),
        "-inkey",
        s(&r["files"]["key"]),
        "-out",
        out.to_str().unwrap(),
        "-passout",
        "pass:crafted-pass",
        "-iter",
        iter,
        "-maciter",
    ]);
    (out, pf)
}

/// `der` with the MAC's iteration count (the file's last INTEGER) set to 2^31 - 1; the
/// MAC no longer verifies, which a reader only learns after the derivation.
fn with_huge_mac_iterations(der: &[u8]) -> Vec<u8> {
    use der::{Decode, Encode};
    let mut pfx = pkcs12::Pfx::from_der(der).unwrap();
    pfx.mac_data.as_mut().unwrap().iterations = i32::MAX;
    pfx.to_der().unwrap()
}

#[test]
fn pfx_files_asking_for_too_many_iterations_are_refused_before_opening() {
    let ws = Ws::with_cas(&["acme"]);
    let r = ws.issue("acme", "prod", &[]);
    // just over the limit, made by the openssl CLI
    let (over, pf) = openssl_pfx(&ws, &r, "over.p12", "1000001");
    let (over, pfs) = (over.to_str().unwrap(), pf.to_str().unwrap());
    let e = fails(&ws, &["inspect", over, "--password-file", pfs], 1, &[]);
    assert!(e.contains("1,000,001") && e.contains("1,000,000"), "{e}");
    // without the password it only describes the file
    let j = ws.json(&["inspect", over]);
    assert_eq!(j["items"][0]["mac"]["iterations"], 1000001, "{j}");
    // 2^31 - 1 MAC iterations: refused at once by inspect and probe
    let huge = ws.dir.path().join("huge.p12");
    let der = std::fs::read(s(&r["files"]["pfx"])).unwrap();
    std::fs::write(&huge, with_huge_mac_iterations(&der)).unwrap();
    let h = huge.to_str().unwrap();
    let t = std::time::Instant::now();
    let e = fails(&ws, &["inspect", h, "--password-file", pfs], 1, &[]);
    assert!(e.contains("2,147,483,647") && e.contains("MAC"), "{e}");
    let e = fails(
        &ws,
        &[
            "probe",
            "https://127.0.0.1:9/",
            "--pfx",
            h,
            "--password-file",
            pfs,
        ],
        1,
        &[],
    );
    assert!(e.contains("2,147,483,647"), "{e}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
}

/// Python's `cryptography` (its wheel bundles a current OpenSSL): opens `pfx` with the
/// password in `pass_file` and is refused with another. Under CI a missing module fails.
fn python_opens(pfx: &str, pass_file: &str) -> Option<String> {
    const SCRIPT: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.serialization import pkcs12
data = open(sys.argv[1], "rb").read()
pw = open(sys.argv[2], "rb").read().splitlines()[0]
key, cert, extra = pkcs12.load_key_and_certificates(data, pw)
spki = lambda k: k.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
assert spki(key.public_key()) == spki(cert.public_key()), "key and certificate differ"
try:
    pkcs12.load_key_and_certificates(data, b"not-the-password")
    sys.exit("a wrong password opened it")
except ValueError:
    pass
print(cert.subject.rfc4514_string(), len(extra))
"#;
    let (ok, out) = tool("python3", &["-c", "import cryptography"]);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "Python cryptography is needed to judge PBMAC1 files (scripts/deps.sh): {out}"
        );
        eprintln!("skipped: Python cryptography is not installed");
        return None;
    }
    let (ok, out) = tool("python3", &["-c", SCRIPT, pfx, pass_file]);
    assert!(ok, "Python cryptography could not open {pfx}: {out}");
    Some(out)
}

#[test]
fn pbmac1_files_open_in_python_cryptography_or_are_refused_without_openssl_3_4() {
    let ws = Ws::with_cas(&["acme"]);
    let args = ["--pfx-target", "pbmac1"];
    if !cfg!(feature = "vendored-openssl") {
        let pf = ws.pass_file.display();
        let cmd = format!("issue --tenant acme --env prod --ca-passphrase-file {pf}");
        let words: Vec<&str> = cmd.split(' ').chain(args).collect();
        let e = fails(&ws, &words, 1, &[]);
        assert!(
            e.contains("needs OpenSSL 3.4 or later") && e.contains("default features"),
            "{e}"
        );
        return;
    }
    let r = ws.issue("acme", "prod", &args);
    let (pfx, pf) = (s(&r["files"]["pfx"]), s(&r["files"]["pfx_password"]));
    if let Some(out) = python_opens(pfx, pf) {
        assert!(
            out.contains("CN=acme-prod-client") && out.trim_end().ends_with(" 1"),
            "{out}"
        );
    }
    // inspect names the MAC without the password (the system's openssl 3.0 cannot read it)
    let j = ws.json(&["inspect", pfx]);
    assert_eq!(j["items"][0]["mac"]["algorithm"], "PBMAC1", "{j}");
}

#[test]
fn inspect_garbage_and_missing_files() {
    let ws = Ws::new(&[]);
    let g = ws.dir.path().join("garbage.bin");
    std::fs::write(&g, b"\x00\x01\x02 this is not PEM or DER \xff\xfe").unwrap();
    let e = fails(&ws, &["inspect", g.to_str().unwrap()], 1, &[]);
    assert!(e.contains("garbage.bin"), "{e}");
    let t = ws.dir.path().join("notes.txt");
    std::fs::write(&t, "hello\nworld\n").unwrap();
    let e = fails(&ws, &["inspect", t.to_str().unwrap()], 1, &[]);
    assert!(e.contains("notes.txt"), "{e}");
    let bad_pem = ws.dir.path().join("bad.pem");
    std::fs::write(
        &bad_pem,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = fails(&ws, &["inspect", bad_pem.to_str().unwrap()], 1, &[]);
    assert!(e.contains("bad.pem"), "{e}");
    let e = fails(&ws, &["inspect", "/nonexistent/file.pem"], 1, &[]);
    assert!(e.contains("/nonexistent/file.pem"), "{e}");
}

// ---------------------------------------------------------------- secrets

#[test]
fn no_command_prints_keys_or_passwords() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let r = ws.issue("acme", "prod", &[]);
    let pw = password(&r);
    let key_pem = std::fs::read_to_string(s(&r["files"]["key"])).unwrap();
    let body = key_pem.lines().nth(1).unwrap().to_string();
    let secrets = [pw.as_str(), body.as_str(), CA_PASS];
    let cmds: Vec<Vec<&str>> = vec![
        vec![
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--ca-passphrase-file",
            &pf,
        ],
        vec![
            "-o",
            "json",
            "issue",
            "--tenant",
            "acme",
            "--env",
            "prod",
            "--ca-passphrase-file",
            &pf,
        ],
        vec!["issue", "--all", "--ca-passphrase-file", &pf],
        vec![
            "-o",
            "json",
            "issue",
            "--all",
            "--force",
            "--ca-passphrase-file",
            &pf,
        ],
        vec!["list", "--all"],
        vec!["-o", "json", "list", "--all"],
        vec!["ca", "show"],
        vec!["-o", "json", "ca", "show"],
        vec!["profile", "show", "--tenant", "acme", "--env", "prod"],
        vec!["inspect", s(&r["files"]["key"])],
        vec!["-o", "json", "inspect", s(&r["files"]["key"])],
    ];
    for c in &cmds {
        let o = run(&ws, c, &secrets);
        assert!(o.status.success(), "{c:?}: {}", text(&o).1);
    }
    // the audit log neither
    let audit = std::fs::read_to_string(ws.path("audit.log")).unwrap();
    for sec in secrets {
        assert!(!audit.contains(sec));
    }
    assert!(!audit.contains("PRIVATE KEY"));
}
