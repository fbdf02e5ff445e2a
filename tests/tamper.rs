//! A workspace that someone else has written to: a tenant profile linked to a secret
//! outside, file names that are no tenant names or carry terminal escapes, a corrupt
//! meta.json, a tenant folder linked elsewhere, a subject beyond RFC 5280's bounds. Each
//! through the real binary: what it prints, what it exits with, what it writes.

mod common;
use common::*;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A line that looks like /etc/shadow's first; none of it may ever be printed.
const SHADOW: &str =
    "root:$6$Zx9Secr3tSalt$TheRootPasswordHashThatMustNeverLeak:19876:0:99999:7:::\n";
const SECRET_BITS: &[&str] = &["Zx9Secr3tSalt", "TheRootPasswordHash", "19876"];

fn pass_arg(ws: &Ws) -> String {
    ws.pass_file.to_str().unwrap().to_string()
}

/// `args` and the CA passphrase file.
fn with_pass<'a>(args: &[&'a str], pf: &'a str) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["--ca-passphrase-file", pf]);
    v
}

/// `issue --all` in JSON; returns the exit code, the report and stderr.
fn issue_all(ws: &Ws) -> (Option<i32>, serde_json::Value, String) {
    let pf = pass_arg(ws);
    let out = ws.run(&with_pass(&["-o", "json", "issue", "--all"], &pf));
    let (o, e) = text(&out);
    let j = serde_json::from_str(&o).unwrap_or_else(|err| panic!("{err}: {o}\n{e}"));
    (out.status.code(), j, e)
}

/// (tenant, env) of each certificate in an `issue --all` report.
fn issued(j: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = j["issued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (s(&r["tenant"]).to_string(), s(&r["env"]).to_string()))
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(t, e)| (t.to_string(), e.to_string()))
        .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Neither stream holds a raw ESC or any control character but the line ends.
fn assert_no_control_chars(out: &std::process::Output) {
    let (o, e) = text(out);
    for s in [&o, &e] {
        assert!(
            !s.chars().any(|c| c.is_control() && c != '\n'),
            "a control character reached the terminal: {s:?}"
        );
    }
}

#[test]
fn a_tenant_profile_linked_to_a_secret_outside_is_refused_unread() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    // the "shadow" file sits beside the workspace, outside it
    let secret = ws.dir.path().join("shadow");
    std::fs::write(&secret, SHADOW).unwrap();
    let profile = ws.path("profiles/tenants/acme.yaml");
    std::fs::remove_file(&profile).unwrap();
    symlink(&secret, &profile).unwrap();
    let pf = pass_arg(&ws);

    for args in [
        with_pass(&["issue", "--tenant", "acme", "--env", "prod"], &pf),
        vec!["profile", "show", "--tenant", "acme", "--env", "prod"],
    ] {
        let out = ws.run(&args);
        assert_no_secrets(&out, SECRET_BITS);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {:?}", text(&out));
        let (_, e) = text(&out);
        assert!(e.contains("profiles/tenants/acme.yaml"), "{e}");
        assert!(e.contains("symbolic link") && e.contains("replace"), "{e}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
    }
    assert!(!ws.path("pki/prod/acme").exists());

    // `list` names the file in a warning; `issue --all` skips it and issues the rest
    let out = ws.run(&["list"]);
    assert_no_secrets(&out, SECRET_BITS);
    assert!(text(&out).1.contains("acme.yaml"), "{:?}", text(&out));
    let (code, j, e) = issue_all(&ws);
    assert_eq!(code, Some(0), "{e}");
    assert!(e.contains("acme.yaml") && e.contains("skipped"), "{e}");
    for bit in SECRET_BITS {
        assert!(!e.contains(bit) && !j.to_string().contains(bit), "{e}");
    }
    assert_eq!(issued(&j), pairs(&[("beta", "nonprod"), ("beta", "prod")]));

    // an environment profile linked outside stops everything, and shows nothing of it
    let envp = ws.path("profiles/environments/prod.yaml");
    std::fs::remove_file(&envp).unwrap();
    symlink(&secret, &envp).unwrap();
    let out = ws.run(&["list"]);
    assert_no_secrets(&out, SECRET_BITS);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("profiles/environments/prod.yaml"));
}

#[test]
fn a_regular_file_that_is_no_profile_is_not_quoted() {
    let ws = Ws::new(&["acme"]);
    ws.write("profiles/tenants/acme.yaml", SHADOW);
    let out = ws.run(&["profile", "show", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    assert_no_secrets(&out, SECRET_BITS);
    let (_, e) = text(&out);
    assert!(e.contains("acme.yaml:1:1:"), "{e}");
}

#[test]
fn a_tenant_file_named_ca_is_never_issued_for() {
    let ws = Ws::with_cas(&["acme"]);
    let acme = std::fs::read_to_string(ws.path("profiles/tenants/acme.yaml")).unwrap();
    ws.write("profiles/tenants/ca.yaml", &acme);
    ws.write("profiles/tenants/pending.yaml", &acme);
    let pf = pass_arg(&ws);
    let ca_before = files_under(&ws.path("pki/prod/ca"));

    let out = ws.run(&with_pass(
        &["issue", "--tenant", "ca", "--env", "prod"],
        &pf,
    ));
    assert_eq!(out.status.code(), Some(1));
    let (_, e) = text(&out);
    assert!(
        e.contains("profiles/tenants/ca.yaml") && e.contains("reserved"),
        "{e}"
    );

    let out = ws.run(&["list"]);
    assert!(out.status.success());
    let (_, e) = text(&out);
    assert!(e.contains("warning:") && e.contains("ca.yaml"), "{e}");
    assert!(e.contains("pending.yaml"), "{e}");

    let (code, j, e) = issue_all(&ws);
    assert_eq!(code, Some(0), "{e}");
    assert!(e.contains("ca.yaml") && e.contains("skipped"), "{e}");
    assert_eq!(issued(&j), pairs(&[("acme", "nonprod"), ("acme", "prod")]));
    // nothing was put among the CA's files, nothing lists as tenant "ca"
    assert_eq!(files_under(&ws.path("pki/prod/ca")), ca_before);
    assert!(!ws.path("pki/prod/ca/client").exists());
    let l = ws.json(&["list", "--all"]);
    assert!(
        l.as_array().unwrap().iter().all(|r| r["tenant"] == "acme"),
        "{l}"
    );
}

#[test]
fn a_name_with_terminal_escapes_from_a_file_name_is_escaped() {
    let ws = Ws::with_cas(&["acme"]);
    let acme = std::fs::read_to_string(ws.path("profiles/tenants/acme.yaml")).unwrap();
    let evil = "evil\u{1b}]0;pwned\u{7}\u{1b}[31mred\nline";
    ws.write(&format!("profiles/tenants/{evil}.yaml"), &acme);
    let pf = pass_arg(&ws);

    let out = ws.run(&["list"]);
    assert_no_control_chars(&out);
    let (_, e) = text(&out);
    assert!(e.contains("evil\\u{1b}]0;pwned\\u{7}"), "{e}");
    assert!(e.contains("\\u{a}line.yaml"), "{e}");

    let out = ws.run(&with_pass(&["issue", "--all"], &pf));
    assert_no_control_chars(&out);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).1.contains("skipped"));

    // the same name given as a flag is refused, escaped
    let out = ws.run(&with_pass(
        &["issue", "--tenant", evil, "--env", "prod"],
        &pf,
    ));
    assert_eq!(out.status.code(), Some(1));
    assert_no_control_chars(&out);
    let out = ws.run(&["list", "--env", "pr\u{1b}[2Jod"]);
    assert_ne!(out.status.code(), Some(0));
    assert_no_control_chars(&out);
    assert!(
        !files_under(&ws.path("pki"))
            .iter()
            .any(|p| p.to_string_lossy().contains("evil"))
    );
}

#[test]
fn a_corrupt_meta_json_is_that_folders_problem_only() {
    let ws = Ws::with_cas(&["acme", "beta", "gamma"]);
    ws.issue("acme", "prod", &[]);
    let beta = ws.issue("beta", "prod", &[]);
    let beta_dir = Path::new(s(&beta["files"]["cert"]))
        .parent()
        .unwrap()
        .to_path_buf();
    let meta = beta_dir.join("meta.json");
    std::fs::write(&meta, "{ \"serial\": 12, oops").unwrap();
    let meta_s = meta.display().to_string();

    // list: the others still list, the broken one is named, exit 1
    let out = ws.run(&["-o", "json", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let (o, e) = text(&out);
    let rows: serde_json::Value = serde_json::from_str(&o).unwrap();
    let tenants: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| s(&r["tenant"]))
        .collect();
    assert_eq!(tenants, ["acme"]);
    assert!(e.contains(&meta_s) && e.contains("corrupt"), "{e}");
    let out = ws.run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).0.contains("acme"));

    // expiry: unreadable for that folder (exit 1), every other certificate judged
    let out = ws.run(&["-o", "json", "expiry", "--critical", "1h", "--within", "1d"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let (o, e) = text(&out);
    let f: serde_json::Value = serde_json::from_str(&o).unwrap();
    let f = f.as_array().unwrap();
    assert!(
        f.iter()
            .any(|x| x["status"] == "unreadable" && s(&x["source"]) == meta_s),
        "{o}"
    );
    assert!(
        f.iter()
            .any(|x| x["tenant"] == "acme" && x["status"] == "ok"),
        "{o}"
    );
    assert!(e.contains(&meta_s), "{e}");

    // issue --all: everyone else is issued, the broken folder is named
    let (code, j, e) = issue_all(&ws);
    assert_eq!(code, Some(1), "{e}");
    assert_eq!(
        issued(&j),
        pairs(&[
            ("acme", "nonprod"),
            ("beta", "nonprod"),
            ("gamma", "nonprod"),
            ("gamma", "prod")
        ])
    );
    let failed = j["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{j}");
    assert_eq!(
        (s(&failed[0]["tenant"]), s(&failed[0]["env"])),
        ("beta", "prod")
    );
    assert!(s(&failed[0]["error"]).contains(&meta_s), "{j}");
    assert!(e.contains("beta/prod") && e.contains(&meta_s), "{e}");
    assert_eq!(j["unchanged"], 1);
}

#[test]
fn a_tenant_folder_linked_elsewhere_is_never_written_through() {
    let ws = Ws::with_cas(&["acme", "beta"]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path("pki/prod")).unwrap();
    let link = ws.path("pki/prod/acme");
    symlink(outside.path(), &link).unwrap();
    let pf = pass_arg(&ws);
    let link_s = link.display().to_string();

    let out = ws.run(&with_pass(
        &["issue", "--tenant", "acme", "--env", "prod"],
        &pf,
    ));
    assert_eq!(out.status.code(), Some(1));
    let (_, e) = text(&out);
    assert!(e.contains(&link_s) && e.contains("symbolic link"), "{e}");
    assert!(files_under(outside.path()).is_empty());

    // list names the link instead of skipping it in silence
    let out = ws.run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains(&link_s), "{:?}", text(&out));

    // issue --all: acme/prod fails naming the link, the rest is issued, nothing outside
    let (code, j, e) = issue_all(&ws);
    assert_eq!(code, Some(1), "{e}");
    assert_eq!(
        issued(&j),
        pairs(&[("acme", "nonprod"), ("beta", "nonprod"), ("beta", "prod")])
    );
    assert!(s(&j["failed"][0]["error"]).contains(&link_s), "{j}");
    assert!(files_under(outside.path()).is_empty());

    // renew and revoke do not reach through it either
    let out = ws.run(&with_pass(&["renew"], &pf));
    assert!(files_under(outside.path()).is_empty(), "{:?}", text(&out));
    assert!(link.is_symlink());
}

#[test]
fn a_subject_or_san_list_beyond_the_limits_is_refused_naming_the_setting() {
    let ws = Ws::new(&["acme"]);
    let p = "profiles/tenants/acme.yaml";
    let cn65 = "c".repeat(65);
    ws.write(
        p,
        &format!(
            "organization: Acme\nenvironments: [prod]\nclient:\n  subject: \"CN={cn65},O={{org}}\"\n"
        ),
    );
    let out = ws.run(&["profile", "show", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    let (_, e) = text(&out);
    assert!(e.contains("acme.yaml:4:12:"), "{e}");
    assert!(
        e.contains("CN is 65 characters") && e.contains("at most 64"),
        "{e}"
    );
    let out = ws.run(&["issue", "--tenant", "acme", "--env", "prod"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("acme.yaml:4:12:"));

    // 64 is fine
    let cn64 = "c".repeat(64);
    ws.write(
        p,
        &format!(
            "organization: Acme\nenvironments: [prod]\nclient:\n  subject: \"CN={cn64},O={{org}}\"\n"
        ),
    );
    let out = ws.run(&["profile", "show", "--tenant", "acme", "--env", "prod"]);
    assert!(out.status.success(), "{:?}", text(&out));

    // too many SANs by flag: the flag is named
    let mut args: Vec<String> = ["issue", "--tenant", "acme", "--env", "prod"]
        .map(String::from)
        .to_vec();
    for i in 0..101 {
        args.push("--dns".into());
        args.push(format!("h{i}.example.com"));
    }
    let out = ws.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(1));
    let (_, e) = text(&out);
    assert!(e.contains("--dns") && e.contains("at most 100"), "{e}");
    assert!(!ws.path("pki/prod/acme").exists());
}
