//! The audit trail through the real binary: a history that `audit verify` accepts, each
//! kind of damage named by its line, the listing and its filters, legacy lines before
//! the chain, and an operation refused before it signs when its line cannot be written.

mod common;
use common::*;

use serde_json::Value;
use std::path::Path;

fn pass(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

/// A workspace whose audit log has: ca-init x2, issue, revoke, crl, issue (6 lines).
fn history() -> Ws {
    let ws = Ws::with_cas(&["acme", "beta"]);
    let pf = pass(&ws);
    ws.issue("acme", "nonprod", &[]);
    ws.ok(&[
        "revoke",
        "--tenant",
        "acme",
        "--env",
        "nonprod",
        "--ca-passphrase-file",
        &pf,
    ]);
    ws.ok(&["crl", "--env", "nonprod", "--ca-passphrase-file", &pf]);
    ws.issue("beta", "prod", &[]);
    ws
}

fn log_lines(ws: &Ws) -> Vec<String> {
    std::fs::read_to_string(ws.path("audit.log"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// `audit verify -o json`: the exit code and the verdict.
fn verify(ws: &Ws) -> (Option<i32>, Value) {
    let out = ws.run(&["-o", "json", "audit", "verify"]);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", text(&out).0));
    (out.status.code(), v)
}

/// The line and kind `audit verify` blames, after asserting exit 1.
fn blamed(ws: &Ws) -> (u64, String) {
    let (code, v) = verify(ws);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["ok"], false);
    let p = &v["problem"];
    (p["line"].as_u64().unwrap(), s(&p["kind"]).to_string())
}

fn sha256_hex(b: &[u8]) -> String {
    openssl::sha::sha256(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[test]
fn an_intact_history_verifies_and_prints_its_head() {
    let ws = history();
    let lines = log_lines(&ws);
    assert_eq!(lines.len(), 6, "{lines:?}");
    let ops: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for (i, l) in ops.iter().enumerate() {
        assert_eq!(l["seq"], i as u64 + 1);
        // a journal step's id, or a fresh random one: never empty, never shared
        assert!(s(&l["op_id"]).len() >= 20, "{l}");
        assert!(ids.insert(s(&l["op_id"]).to_string()), "{l}");
    }
    assert_eq!(s(&ops[0]["prev"]), "0".repeat(64));
    assert_eq!(s(&ops[3]["prev"]), sha256_hex(lines[2].as_bytes()));
    let (code, v) = verify(&ws);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["lines"], 6);
    assert_eq!(v["chained"], 6);
    assert_eq!(v["legacy"], 0);
    let last = sha256_hex(lines[5].as_bytes());
    assert_eq!(s(&v["head"]["sha256"]), last);
    assert_eq!(v["head"]["seq"], 6);
    // the table names the counts and the hash to anchor elsewhere
    let out = ws.ok(&["audit", "verify"]);
    assert!(
        out.contains("6 lines checked (0 legacy, 6 chained)"),
        "{out}"
    );
    assert!(out.contains(&last), "{out}");
    // the head file is what it says
    let head: Value =
        serde_json::from_slice(&std::fs::read(ws.path("audit.head")).unwrap()).unwrap();
    assert_eq!(head["seq"], 6);
    assert_eq!(s(&head["sha256"]), last);
}

#[test]
fn each_kind_of_damage_is_named_by_its_line() {
    let ws = history();
    let log = ws.path("audit.log");
    let good = std::fs::read(&log).unwrap();
    let head = std::fs::read(ws.path("audit.head")).unwrap();
    let restore = || {
        std::fs::write(&log, &good).unwrap();
        std::fs::write(ws.path("audit.head"), &head).unwrap();
    };
    let text_lines = log_lines(&ws);

    // one byte of a middle line (the issue's serial)
    let mut edited = good.clone();
    let at = text_lines[..2].iter().map(|l| l.len() + 1).sum::<usize>()
        + text_lines[2].find("\"serial\":\"").unwrap()
        + 10;
    edited[at] = if edited[at] == b'a' { b'b' } else { b'a' };
    std::fs::write(&log, &edited).unwrap();
    assert_eq!(blamed(&ws), (3, "prev_mismatch".into()));
    restore();

    // the last line removed
    let cut = good.len() - text_lines[5].len() - 1;
    std::fs::write(&log, &good[..cut]).unwrap();
    assert_eq!(blamed(&ws), (6, "truncated".into()));
    // the last line cut short
    std::fs::write(&log, &good[..good.len() - 20]).unwrap();
    assert_eq!(blamed(&ws), (6, "incomplete".into()));
    restore();

    // the anchor deleted
    std::fs::remove_file(ws.path("audit.head")).unwrap();
    assert_eq!(blamed(&ws), (6, "head_missing".into()));
    restore();

    // garbage appended, with a terminal escape that must not reach the terminal raw
    let mut g = good.clone();
    g.extend_from_slice(b"garbage \x1b[2J\xe2\x80\xae line\n");
    std::fs::write(&log, &g).unwrap();
    assert_eq!(blamed(&ws), (7, "bad_json".into()));
    let out = ws.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let (o, _) = text(&out);
    assert!(o.contains("broken at line 7"), "{o}");
    assert!(o.contains("garbage \\u{1b}[2J\\u{202e} line"), "{o}");
    assert!(!o.contains('\u{1b}') && !o.contains('\u{202e}'), "{o}");
    let out = ws.run(&["-o", "json", "audit", "verify"]);
    let (o, _) = text(&out);
    assert!(!o.contains('\u{202e}'), "{o}");
    restore();

    // a middle line deleted
    let mut dropped = text_lines.clone();
    dropped.remove(1);
    std::fs::write(&log, dropped.join("\n") + "\n").unwrap();
    assert_eq!(blamed(&ws), (2, "seq_gap".into()));
    restore();
    assert_eq!(verify(&ws).0, Some(0));
}

#[test]
fn a_broken_tail_refuses_the_next_change_and_a_stale_head_does_not() {
    let ws = history();
    let pf = pass(&ws);
    let log = ws.path("audit.log");
    let good = std::fs::read(&log).unwrap();
    let lines = log_lines(&ws);
    // truncated below the head: refused before anything is signed
    std::fs::write(&log, &good[..good.len() - lines[5].len() - 1]).unwrap();
    let crl_before = std::fs::read(ws.path("pki/nonprod/ca/crl.pem")).unwrap();
    let out = ws.run(&["crl", "--env", "nonprod", "--ca-passphrase-file", &pf]);
    assert_eq!(out.status.code(), Some(1));
    let (_, e) = text(&out);
    assert!(e.contains("refusing to change the workspace"), "{e}");
    assert!(e.contains("audit verify"), "{e}");
    assert_eq!(
        std::fs::read(ws.path("pki/nonprod/ca/crl.pem")).unwrap(),
        crl_before
    );
    // a head one line behind (a run killed before it moved the head) is accepted, and
    // the next change moves it on
    std::fs::write(&log, &good).unwrap();
    let behind = format!(
        "{{\"seq\":5,\"sha256\":\"{}\"}}\n",
        sha256_hex(lines[4].as_bytes())
    );
    std::fs::write(ws.path("audit.head"), behind).unwrap();
    let (code, v) = verify(&ws);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["beyond_head"], 1);
    ws.ok(&["crl", "--env", "nonprod", "--ca-passphrase-file", &pf]);
    let (code, v) = verify(&ws);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["beyond_head"], 0);
    assert_eq!(v["head"]["seq"], 7);
}

#[test]
fn the_listing_filters_by_op_tenant_env_time_and_count() {
    let ws = history();
    let issues = ws.json(&["audit", "--op", "issue"]);
    let rows = issues.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{issues}");
    assert!(rows.iter().all(|r| r["op"] == "issue"));
    assert_eq!(rows[0]["tenant"], "acme");
    assert_eq!(rows[0]["line"], 3);
    assert_eq!(rows[1]["tenant"], "beta");
    let acme = ws.json(&["audit", "--tenant", "acme", "--env", "nonprod"]);
    let ops: Vec<&str> = acme
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["op"]))
        .collect();
    assert_eq!(ops, ["issue", "revoke"]);
    let last = ws.json(&["audit", "--limit", "1"]);
    assert_eq!(last.as_array().unwrap().len(), 1);
    assert_eq!(last[0]["seq"], 6);
    assert_eq!(
        ws.json(&["audit", "--since", "1h"])
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let later = ws.json(&["audit", "--since", "2999-01-01T00:00:00Z"]);
    assert!(later.as_array().unwrap().is_empty());
    let table = ws.ok(&["audit", "--env", "nonprod"]);
    assert!(table.contains("tenant/env/kind"), "{table}");
    assert!(table.contains("acme/nonprod/client"), "{table}");
    assert!(!table.contains("beta"), "{table}");
    let out = ws.run(&["audit", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn legacy_lines_are_accepted_and_covered_by_the_first_chained_line() {
    let ws = Ws::new(&["acme"]);
    let legacy = [
        r#"{"time":"2025-01-01T00:00:00Z","user":"ops","op":"ca-init","env":"nonprod","serial":"01"}"#,
        r#"{"time":"2025-01-02T00:00:00Z","user":"ops","op":"issue","tenant":"acme","env":"nonprod","kind":"client","serial":"02"}"#,
    ];
    std::fs::write(ws.path("audit.log"), legacy.join("\n") + "\n").unwrap();
    let (code, v) = verify(&ws);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["legacy"], 2);
    let pf = pass(&ws);
    ws.ok(&[
        "ca",
        "init",
        "--env",
        "nonprod",
        "--ca-passphrase-file",
        &pf,
    ]);
    let lines = log_lines(&ws);
    let first: Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(first["seq"], 1);
    assert_eq!(s(&first["prev"]), sha256_hex(legacy[1].as_bytes()));
    let (code, v) = verify(&ws);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        (v["legacy"].as_u64(), v["chained"].as_u64()),
        (Some(2), Some(1))
    );
    // the listing shows both kinds
    assert_eq!(ws.json(&["audit"]).as_array().unwrap().len(), 3);
}

/// Every certificate folder below pki/ENV/TENANT.
fn leaf_dirs(ws: &Ws, env: &str, tenant: &str) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for kind in ["client", "server"] {
        if let Ok(rd) = std::fs::read_dir(ws.path(&format!("pki/{env}/{tenant}/{kind}"))) {
            v.extend(rd.flatten().map(|e| e.path()));
        }
    }
    v
}

fn refused_issue(ws: &Ws, tenant: &str) {
    let pf = pass(ws);
    let before = leaf_dirs(ws, "nonprod", tenant);
    let out = ws.run(&[
        "issue",
        "--tenant",
        tenant,
        "--env",
        "nonprod",
        "--force",
        "--ca-passphrase-file",
        &pf,
    ]);
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{o}{e}");
    assert!(e.contains("refusing to change the workspace"), "{e}");
    assert!(e.contains("audit.log"), "{e}");
    assert_eq!(
        leaf_dirs(ws, "nonprod", tenant),
        before,
        "a certificate was written"
    );
    // nor a staged one left behind
    let kind_dir = ws.path(&format!("pki/nonprod/{tenant}/client"));
    if let Ok(rd) = std::fs::read_dir(kind_dir) {
        assert!(
            rd.flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with(".tmp-"))
        );
    }
}

#[test]
fn an_audit_log_that_cannot_be_written_refuses_the_operation_before_it_signs() {
    // as root a read-only file can still be written: make the append itself fail
    let ws = history();
    let log = ws.path("audit.log");
    std::fs::rename(&log, ws.path("audit.log.saved")).unwrap();
    std::fs::create_dir(&log).unwrap();
    refused_issue(&ws, "acme");
    refused_issue(&ws, "beta");
    std::fs::remove_dir(&log).unwrap();
    // a dangling symlink into a folder that does not exist
    std::os::unix::fs::symlink(Path::new("gone/audit.log"), &log).unwrap();
    refused_issue(&ws, "acme");
    let pf = pass(&ws);
    let out = ws.run(&["issue", "--all", "--force", "--ca-passphrase-file", &pf]);
    assert_eq!(out.status.code(), Some(1));
    assert!(leaf_dirs(&ws, "prod", "acme").is_empty());
    // put back, the workspace works again
    std::fs::remove_file(&log).unwrap();
    std::fs::rename(ws.path("audit.log.saved"), &log).unwrap();
    ws.issue("acme", "prod", &[]);
    assert_eq!(verify(&ws).0, Some(0));
}
