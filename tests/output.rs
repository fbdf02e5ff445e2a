//! The output contract: `-q` prints nothing on success, a closed pipe keeps the verdict's
//! exit code, and a short validity under the default renewal window works.

mod common;
use common::*;

use std::process::{Command, Stdio};

/// Runs `mtlsctl ARGS | head -1` through a shell and returns mtlsctl's own exit code.
fn exit_through_head(ws: &Ws, args: &str) -> i32 {
    let bin = assert_cmd::cargo::cargo_bin("mtlsctl");
    let script = format!(
        "{} -C {} {args} | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}",
        bin.display(),
        ws.root().display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("MTLSCTL_NO_INPUT", "1")
        .env_remove("MTLSCTL_CA_PASSPHRASE")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn quiet_prints_nothing_on_success() {
    let ws = Ws::with_cas(&["acme"]);
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let one = [
        "issue",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pf,
    ];
    // the second issue finds the first one valid: "unchanged" is a success too
    let cases: Vec<Vec<&str>> = vec![
        one.to_vec(),
        one.to_vec(),
        vec!["issue", "--all", "--ca-passphrase-file", &pf, "--force"],
        vec!["crl", "--env", "prod", "--ca-passphrase-file", &pf],
        vec!["ca", "show"],
        vec!["list"],
        vec!["verify", "--tenant", "acme", "--env", "prod"],
    ];
    for args in cases {
        let mut a = vec!["-q"];
        a.extend(args.iter().copied());
        let out = ws.run(&a);
        assert!(
            out.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "-q printed on success: {a:?}"
        );
    }
}

#[test]
fn quiet_still_prints_a_failed_verdict() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let cert = ws.path("pki/prod/acme/client");
    let serial = std::fs::read_dir(&cert)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let nonprod_ca = ws.path("pki/nonprod/ca/ca.crt");
    let out = ws.run(&[
        "-q",
        "verify",
        serial.join("cert.pem").to_str().unwrap(),
        "--ca",
        nonprod_ca.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INVALID"));
}

#[test]
fn a_closed_pipe_keeps_the_verdict() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let serial = std::fs::read_dir(ws.path("pki/prod/acme/client"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let cert = serial.join("cert.pem");
    let nonprod_ca = ws.path("pki/nonprod/ca/ca.crt");
    // an invalid chain: exit 1 even though `head` closed the pipe after one line
    let v = format!("verify {} --ca {}", cert.display(), nonprod_ca.display());
    assert_eq!(exit_through_head(&ws, &v), 1);
    // everything is due within 400 days: exit 3 through the pipe, in table and JSON
    assert_eq!(exit_through_head(&ws, "expiry --within 400d"), 3);
    assert_eq!(exit_through_head(&ws, "-o json expiry --within 400d"), 3);
    // a long listing cut short is still a success
    let inspect = format!("inspect {}", cert.display());
    assert_eq!(exit_through_head(&ws, &inspect), 0);
}

#[test]
fn a_validity_shorter_than_the_renewal_window_renews_at_two_thirds() {
    let ws = Ws::with_cas(&["acme"]);
    let rep = ws.issue("acme", "prod", &["--validity", "21d"]);
    assert!(rep["serial"].is_string(), "{rep}");
    // a profile whose validity is shorter: profile show names where the window came from
    let tenant = ws.path("profiles/tenants/acme.yaml");
    let text = std::fs::read_to_string(&tenant).unwrap();
    std::fs::write(&tenant, format!("{text}\nvalidity: 21d\n")).unwrap();
    let shown = ws.json(&["profile", "show", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(shown["leaf"]["renew_before"]["value"], "1w", "{shown}");
    let source = shown["leaf"]["renew_before"]["source"].to_string();
    assert!(source.contains("a third of validity 21d"), "{source}");
    std::fs::write(&tenant, text).unwrap();
    // a window given by flag must fit
    let pf = ws.pass_file.to_str().unwrap();
    let out = ws.run(&[
        "issue",
        "--tenant",
        "acme",
        "--env",
        "nonprod",
        "--validity",
        "20d",
        "--renew-before",
        "25d",
        "--ca-passphrase-file",
        pf,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--renew-before (25d) must be shorter than the validity (20d)"),
        "{err}"
    );
    // and with a fitting window the certificate is not due at once
    ws.issue(
        "acme",
        "nonprod",
        &["--validity", "20d", "--renew-before", "5d", "--force"],
    );
    let out = ws.run(&["expiry"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let listed = ws.json(&["list"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "valid"),
        "{listed}"
    );
}
