//! `renew`, `revoke` and `crl`, judged by openssl: renewal is idempotent and keeps the
//! old certificate; a revoked serial appears in the CRL with its reason and
//! `openssl verify -crl_check` rejects it while accepting the others; CRL numbers only
//! grow.

mod common;
use common::*;

use serde_json::Value;

fn pass(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

fn set_renew_before(ws: &Ws, tenant: &str, dur: &str) {
    let p = ws.path(&format!("profiles/tenants/{tenant}.yaml"));
    let mut text: String = std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("renew_before:"))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("renew_before: {dur}\n"));
    std::fs::write(p, text).unwrap();
}

fn meta(cert_path: &str) -> Value {
    let dir = std::path::Path::new(cert_path).parent().unwrap();
    serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap()
}

fn audit_ops(ws: &Ws) -> Vec<Value> {
    std::fs::read_to_string(ws.path("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn pubkey(cert: &str) -> String {
    openssl(&["x509", "-noout", "-pubkey", "-in", cert])
}

fn crl_number(path: &str) -> u64 {
    let out = openssl(&["crl", "-noout", "-crlnumber", "-in", path]);
    u64::from_str_radix(
        out.trim()
            .trim_start_matches("crlNumber=0x")
            .trim_start_matches("crlNumber="),
        16,
    )
    .unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn renew_is_idempotent_keeps_the_old_certificate_and_audits() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    set_renew_before(&ws, "acme", "1d");
    let old = ws.issue("acme", "prod", &["--validity", "2d"]);
    let beta = ws.issue("beta", "prod", &[]);
    let old_cert = s(&old["files"]["cert"]).to_string();

    // the profile's window (1d) does not cover 2 days: nothing to do
    let r = ws.json(&["renew", "--ca-passphrase-file", &pass(&ws)]);
    assert_eq!(r["renewed"], 0, "{r:#}");
    assert_eq!(r["not_due"], 2);

    // dry run with a wider window: would renew acme only, changes nothing, needs no passphrase
    let r = ws.json(&["renew", "--within", "3d", "--dry-run"]);
    assert_eq!(r["would_renew"], 1, "{r:#}");
    assert_eq!(r["renewed"], 0);
    let item = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tenant"] == "acme")
        .unwrap();
    assert_eq!(item["action"], "would-renew");
    assert_eq!(item["serial"], old["serial"]);
    assert_eq!(meta(&old_cert)["status"], "active");

    // the profile now asks for 5 days' notice: renew picks it up by default
    set_renew_before(&ws, "acme", "5d");
    let r = ws.json(&["renew", "--ca-passphrase-file", &pass(&ws)]);
    assert_eq!(r["renewed"], 1, "{r:#}");
    assert_eq!(r["failed"], 0);
    let item = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "renewed")
        .unwrap();
    assert_eq!(item["tenant"], "acme");
    assert_eq!(item["serial"], old["serial"]);
    let new = &item["certificate"];
    let new_cert = s(&new["files"]["cert"]).to_string();
    assert_ne!(new["serial"], old["serial"]);
    assert_ne!(pubkey(&new_cert), pubkey(&old_cert), "a new key by default");
    // the new one has the profile's validity and chains to the CA
    let ca = ws.path("pki/prod/ca/ca.crt");
    openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        ca.to_str().unwrap(),
        &new_cert,
    ]);
    let end = openssl(&[
        "x509",
        "-noout",
        "-checkend",
        &(300 * 86_400).to_string(),
        "-in",
        &new_cert,
    ]);
    assert!(end.contains("will not expire"), "{end}");
    // the old one is kept, still valid, marked superseded by the new one
    let m = meta(&old_cert);
    assert_eq!(m["status"], "superseded");
    assert_eq!(m["superseded_by"], new["serial"]);
    openssl(&["verify", "-CAfile", ca.to_str().unwrap(), &old_cert]);
    assert_eq!(meta(&new_cert)["renewed_from"], old["serial"]);
    assert_eq!(meta(&new_cert)["origin"], "renew");
    // one audit line for the renewal
    let renewals: Vec<Value> = audit_ops(&ws)
        .into_iter()
        .filter(|e| e["op"] == "renew")
        .collect();
    assert_eq!(renewals.len(), 1);
    assert_eq!(renewals[0]["serial"], new["serial"]);

    // idempotent: right after, nothing is due
    let r = ws.json(&["renew", "--ca-passphrase-file", &pass(&ws)]);
    assert_eq!(r["renewed"], 0, "{r:#}");
    let r = ws.json(&[
        "renew",
        "--within",
        "3d",
        "--ca-passphrase-file",
        &pass(&ws),
    ]);
    assert_eq!(r["renewed"], 0, "{r:#}");
    assert_eq!(
        audit_ops(&ws).iter().filter(|e| e["op"] == "renew").count(),
        1
    );
    // beta was never touched
    assert_eq!(meta(s(&beta["files"]["cert"]))["status"], "active");
    // expiry agrees: nothing due
    assert_eq!(ws.run(&["expiry"]).status.code(), Some(0));
}

#[test]
fn renew_with_reuse_key_keeps_the_public_key() {
    let ws = Ws::with_cas(&["acme"]);
    set_renew_before(&ws, "acme", "1d");
    let old = ws.issue("acme", "nonprod", &["--validity", "2d"]);
    let r = ws.json(&[
        "renew",
        "--env",
        "nonprod",
        "--within",
        "3d",
        "--reuse-key",
        "--ca-passphrase-file",
        &pass(&ws),
    ]);
    assert_eq!(r["renewed"], 1, "{r:#}");
    let item = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["action"] == "renewed")
        .unwrap();
    let new_cert = s(&item["certificate"]["files"]["cert"]);
    assert_eq!(pubkey(new_cert), pubkey(s(&old["files"]["cert"])));
    assert_ne!(item["certificate"]["serial"], old["serial"]);
}

#[test]
fn renew_needs_the_passphrase_only_when_something_is_due() {
    let ws = Ws::with_cas(&["acme"]);
    set_renew_before(&ws, "acme", "1d");
    ws.issue("acme", "prod", &["--validity", "2d"]);
    // nothing due: no passphrase asked
    ws.ok(&["renew"]);
    // due, no passphrase and no terminal: a failure naming the flag, exit 1
    let out = ws.run(&["renew", "--within", "3d"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ca-passphrase-file"), "{err}");
}

#[test]
fn revoke_lists_the_serial_with_its_reason_and_openssl_rejects_it() {
    let ws = Ws::with_cas(&["acme", "beta", "gamma"]);
    let acme = ws.issue("acme", "prod", &[]);
    let beta = ws.issue("beta", "prod", &[]);
    let gamma = ws.issue("gamma", "prod", &[]);
    let crl = ws.path("pki/prod/ca/crl.pem");
    let crl_s = crl.to_str().unwrap().to_string();
    let n0 = crl_number(&crl_s);

    let r = ws.json(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--reason",
        "key-compromise",
        "--ca-passphrase-file",
        &pass(&ws),
    ]);
    assert_eq!(r["action"], "revoked", "{r:#}");
    assert_eq!(r["serial"], acme["serial"]);
    assert_eq!(r["reason"], "key-compromise");
    assert_eq!(r["crl"]["path"], crl_s.as_str());
    let n1 = crl_number(&crl_s);
    assert!(n1 > n0, "{n1} > {n0}");
    assert_eq!(r["crl"]["crl_number"], n1);

    // by env + serial, with colons and capitals, as other tools print serials
    let serial_b = s(&beta["serial"]).to_uppercase();
    let colons: Vec<String> = serial_b
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let r = ws.json(&[
        "revoke",
        "--env",
        "prod",
        "--serial",
        &colons.join(":"),
        "--reason",
        "cessation-of-operation",
        "--ca-passphrase-file",
        &pass(&ws),
    ]);
    assert_eq!(r["action"], "revoked", "{r:#}");
    assert_eq!(r["tenant"], "beta");

    let text = openssl(&["crl", "-noout", "-text", "-in", &crl_s]);
    for (serial, reason) in [
        (s(&acme["serial"]), "Key Compromise"),
        (s(&beta["serial"]), "Cessation Of Operation"),
    ] {
        let at = text
            .find(&format!("Serial Number: {}", serial.to_uppercase()))
            .unwrap_or_else(|| panic!("{serial} not in CRL:\n{text}"));
        let entry = &text[at..];
        let next = entry[1..]
            .find("Serial Number:")
            .map_or(entry.len(), |i| i + 1);
        assert!(entry[..next].contains(reason), "{reason}:\n{text}");
    }
    assert!(!text.contains(&s(&gamma["serial"]).to_uppercase()));
    assert!(text.contains("Authority Key Identifier"), "{text}");
    assert!(text.contains("Version 2"), "{text}");

    let ca = ws.path("pki/prod/ca/ca.crt");
    let verify = |cert: &str| {
        tool(
            "openssl",
            &[
                "verify",
                "-crl_check",
                "-CAfile",
                ca.to_str().unwrap(),
                "-CRLfile",
                &crl_s,
                cert,
            ],
        )
    };
    let (ok, out) = verify(s(&acme["files"]["cert"]));
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify(s(&beta["files"]["cert"]));
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify(s(&gamma["files"]["cert"]));
    assert!(ok, "{out}");

    // recorded in the leaf, the CA state and the audit log
    let m = meta(s(&acme["files"]["cert"]));
    assert_eq!(m["status"], "revoked");
    assert_eq!(m["revocation_reason"], "key-compromise");
    assert!(m["revoked_at"].is_string());
    let state: Value =
        serde_json::from_slice(&std::fs::read(ws.path("pki/prod/ca/state.json")).unwrap()).unwrap();
    assert_eq!(state["revocations"].as_array().unwrap().len(), 2);
    assert_eq!(state["crl_number"], crl_number(&crl_s));
    assert_eq!(
        audit_ops(&ws)
            .iter()
            .filter(|e| e["op"] == "revoke")
            .count(),
        2
    );

    // twice: a clear no-op, no new CRL, no passphrase needed
    let n2 = crl_number(&crl_s);
    let before = std::fs::read(&crl).unwrap();
    let r = ws.json(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--reason",
        "superseded",
    ]);
    assert_eq!(r["action"], "unchanged", "{r:#}");
    assert_eq!(r["reason"], "key-compromise");
    assert!(r["crl"].is_null());
    assert_eq!(std::fs::read(&crl).unwrap(), before);
    assert_eq!(crl_number(&crl_s), n2);
    let out = ws.ok(&["revoke", "--tenant", "acme", "--env", "prod"]);
    assert!(out.contains("already revoked"), "{out}");

    // expiry reports the revoked-but-current certificate: 4
    let out = ws.run(&["-o", "json", "expiry"]);
    assert_eq!(out.status.code(), Some(4));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["tenant"] == "acme")
        .unwrap();
    assert_eq!(f["status"], "revoked");
    // a replacement clears it
    ws.issue("acme", "prod", &[]);
    ws.issue("beta", "prod", &[]);
    assert_eq!(ws.run(&["expiry"]).status.code(), Some(0));
}

#[test]
fn revoke_errors_are_clear() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let out = ws.run(&[
        "revoke",
        "--env",
        "prod",
        "--serial",
        "abcd",
        "--ca-passphrase-file",
        &pass(&ws),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no certificate with serial abcd"));
    let out = ws.run(&["revoke", "--tenant", "acme", "--env", "nonprod"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no current certificate"));
    let out = ws.run(&[
        "revoke", "--tenant", "acme", "--env", "prod", "--reason", "boredom",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = ws.run(&["revoke", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn crl_numbers_grow_and_next_update_follows_the_profile() {
    let ws = Ws::with_cas(&["acme"]);
    let crl = ws.path("pki/prod/ca/crl.pem");
    let crl_s = crl.to_str().unwrap().to_string();
    let n0 = crl_number(&crl_s);
    let out_file = ws.dir.path().join("copy.crl.pem");
    let r = ws.json(&[
        "crl",
        "--env",
        "prod",
        "--out",
        out_file.to_str().unwrap(),
        "--ca-passphrase-file",
        &pass(&ws),
    ]);
    let n1 = crl_number(&crl_s);
    assert!(n1 > n0);
    assert_eq!(r["crl_number"], n1);
    assert_eq!(
        std::fs::read(&crl).unwrap(),
        std::fs::read(&out_file).unwrap()
    );
    assert_eq!(mode(&crl), 0o644);
    // signed by the CA
    let ca = ws.path("pki/prod/ca/ca.crt");
    let v = openssl(&[
        "crl",
        "-noout",
        "-in",
        &crl_s,
        "-CAfile",
        ca.to_str().unwrap(),
    ]);
    assert!(v.contains("verify OK"), "{v}");

    // nextUpdate from the profile's crl_validity
    let env = ws.path("profiles/environments/prod.yaml");
    let text = std::fs::read_to_string(&env)
        .unwrap()
        .replace("crl_validity: 7d", "crl_validity: 2d");
    assert!(text.contains("crl_validity: 2d"), "{text}");
    std::fs::write(&env, text).unwrap();
    let r = ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pass(&ws)]);
    assert!(crl_number(&crl_s) > n1);
    let next = time::OffsetDateTime::parse(
        s(&r["next_update"]),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = next - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(47) && left <= time::Duration::hours(48),
        "{left}"
    );
    let t = openssl(&[
        "crl",
        "-noout",
        "-nextupdate",
        "-dateopt",
        "iso_8601",
        "-in",
        &crl_s,
    ]);
    let t = t.trim().trim_start_matches("nextUpdate=").replace(' ', "T");
    assert_eq!(
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).unwrap(),
        next
    );
    // an audit line per CRL
    assert_eq!(
        audit_ops(&ws).iter().filter(|e| e["op"] == "crl").count(),
        2
    );
}

#[test]
fn an_old_style_ca_key_still_opens_and_is_re_encrypted_at_the_next_signing() {
    let ws = Ws::with_cas(&[]);
    let key = ws.path("pki/prod/ca/ca.key");
    let k = key.to_str().unwrap();
    let pin = format!("file:{}", pass(&ws));
    let before = openssl(&["pkey", "-in", k, "-passin", &pin, "-pubout"]);
    // what OpenSSL's writer (every workspace so far) made: PBKDF2 with 2,048 iterations
    let plain = ws.dir.path().join("plain.pem");
    openssl(&[
        "pkey",
        "-in",
        k,
        "-passin",
        &pin,
        "-out",
        plain.to_str().unwrap(),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-iter",
        "2048",
        "-in",
        plain.to_str().unwrap(),
        "-passout",
        &pin,
        "-out",
        k,
    ]);
    std::fs::remove_file(&plain).unwrap();
    let iterations = |asn: &str| {
        asn.lines()
            .skip_while(|l| !l.contains(":PBKDF2"))
            .find(|l| l.contains("INTEGER"))
            .map(|l| l.rsplit(':').next().unwrap().trim().to_string())
    };
    let asn = openssl(&["asn1parse", "-in", k]);
    assert_eq!(iterations(&asn).as_deref(), Some("0800"), "{asn}");

    let r = ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pass(&ws)]);
    assert_eq!(r["env"], "prod", "{r}");
    let asn = openssl(&["asn1parse", "-in", k]);
    assert_eq!(
        iterations(&asn).as_deref(),
        Some("0927C0"),
        "600,000: {asn}"
    );
    assert!(
        asn.contains("hmacWithSHA256") && asn.contains("aes-256-cbc"),
        "{asn}"
    );
    assert_eq!(mode(&key), 0o600);
    // the same key, under the same passphrase
    assert_eq!(
        openssl(&["pkey", "-in", k, "-passin", &pin, "-pubout"]),
        before
    );
    let ops: Vec<Value> = audit_ops(&ws)
        .into_iter()
        .filter(|e| e["op"] == "ca-key-reencrypt")
        .collect();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(ops[0]["env"], "prod");
    // once is enough: the next signing leaves the file alone
    let text = std::fs::read(&key).unwrap();
    ws.json(&["crl", "--env", "prod", "--ca-passphrase-file", &pass(&ws)]);
    assert_eq!(std::fs::read(&key).unwrap(), text);
}
