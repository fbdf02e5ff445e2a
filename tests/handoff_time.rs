//! Hand-off over time (issue 13): the stable `current` path, platform-side delivery,
//! what to do next, off-boarding. Judged by openssl, keytool and the Kubernetes schema
//! where they are present.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn pass(ws: &Ws) -> String {
    ws.pass_file.display().to_string()
}

fn link_of(ws: &Ws, rel: &str) -> String {
    std::fs::read_link(ws.path(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .display()
        .to_string()
}

fn row<'a>(list: &'a Value, serial: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["serial"] == serial)
        .unwrap_or_else(|| panic!("{serial} not listed: {list:#}"))
}

#[test]
fn current_follows_the_active_certificate_through_renew_and_revoke() {
    let ws = Ws::with_cas(&["acme"]);
    let first = ws.issue("acme", "prod", &[]);
    let s1 = s(&first["serial"]).to_string();
    let cur = "pki/prod/acme/client/current";
    // a relative link to the sibling serial folder, with the same files
    assert_eq!(link_of(&ws, cur), s1);
    assert_eq!(
        std::fs::read(ws.path(&format!("{cur}/cert.pem"))).unwrap(),
        std::fs::read(ws.path(&format!("pki/prod/acme/client/{s1}/cert.pem"))).unwrap()
    );
    let list = ws.json(&["list"]);
    assert_eq!(
        Path::new(s(&row(&list, &s1)["current"])),
        ws.path(cur),
        "{list:#}"
    );
    let (table, _) = text(&ws.run(&["list"]));
    assert!(table.contains("yes"), "{table}");

    let r = ws.json(&["renew", "--force", "--ca-passphrase-file", &pass(&ws)]);
    let s2 = s(&r["items"][0]["certificate"]["serial"]).to_string();
    assert_ne!(s1, s2);
    assert_eq!(link_of(&ws, cur), s2);
    let list = ws.json(&["list", "--all"]);
    assert!(row(&list, &s1)["current"].is_null());
    assert!(!row(&list, &s2)["current"].is_null());
    let out = ws.run(&["-o", "json", "expiry"]);
    let exp: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = exp["findings"]
        .as_array()
        .or_else(|| exp.as_array())
        .unwrap()
        .iter()
        .find(|f| f["serial"] == s2.as_str())
        .unwrap_or_else(|| panic!("{exp:#}"))
        .clone();
    assert_eq!(Path::new(s(&f["current"])), ws.path(cur));
    // doctor accepts the link it made
    let out = ws.run(&["-o", "json", "doctor"]);
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["errors"], 0, "{rep:#}");

    // a revoked certificate is active no more: the link goes
    ws.ok(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "prod",
        "--ca-passphrase-file",
        &pass(&ws),
    ]);
    assert!(std::fs::symlink_metadata(ws.path(cur)).is_err());
    let s3 = s(&ws.issue("acme", "prod", &[])["serial"]).to_string();
    assert_eq!(link_of(&ws, cur), s3);
}

#[test]
fn a_current_link_of_another_shape_is_refused_never_followed() {
    let ws = Ws::with_cas(&["acme"]);
    ws.issue("acme", "prod", &[]);
    let cur = ws.path("pki/prod/acme/client/current");
    std::fs::remove_file(&cur).unwrap();
    std::os::unix::fs::symlink("/etc", &cur).unwrap();
    let out = ws.run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    let (_, err) = text(&out);
    assert!(err.contains("current"), "{err}");
    let out = ws.run(&["-o", "json", "doctor"]);
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rep["errors"].as_u64().unwrap() >= 1, "{rep:#}");
    // the next change of the active certificate puts the link right
    std::fs::remove_file(&cur).unwrap();
    std::os::unix::fs::symlink("../../../../../etc", &cur).unwrap();
    assert_eq!(ws.run(&["list"]).status.code(), Some(1));
    std::fs::remove_file(&cur).unwrap();
    let s2 = s(&ws.issue("acme", "prod", &["--force"])["serial"]).to_string();
    assert_eq!(link_of(&ws, "pki/prod/acme/client/current"), s2);
}
