//! Profiles: layering and provenance (`profile show`), strict validation with
//! file:line:col, `init` / `tenant add` / `env add`, and finding the workspace.

mod common;
use common::*;

use std::path::Path;
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run that must fail with `code` and a single `error: ...` line; returns that line.
fn fails(ws: &Ws, args: &[&str], code: i32) -> String {
    let out = ws.run(args);
    let e = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "mtlsctl {args:?}: expected exit {code}\nstdout: {}\nstderr: {e}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(e.starts_with("error: "), "{e}");
    if code == 1 {
        assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    }
    e.lines().next().unwrap().to_string()
}

fn show(ws: &Ws, tenant: &str, env: &str, extra: &[&str]) -> serde_json::Value {
    let mut a = vec!["profile", "show", "--tenant", tenant, "--env", env];
    a.extend_from_slice(extra);
    ws.json(&a)
}

/// The text at line:col (1-based) of a workspace file.
fn at(ws: &Ws, file: &str, line: u64, col: u64) -> String {
    let text = std::fs::read_to_string(ws.path(file)).unwrap();
    let l = text
        .lines()
        .nth(line as usize - 1)
        .unwrap_or_else(|| panic!("{file} has no line {line}"));
    l.chars().skip(col as usize - 1).collect()
}

/// Asserts that a provenance points into `file` at a place that holds `value`.
fn from_file(ws: &Ws, v: &serde_json::Value, file: &str, value: &str) {
    let src = &v["source"];
    assert_eq!(src["type"], "file", "{v}");
    assert_eq!(src["file"], file, "{v}");
    let here = at(
        ws,
        file,
        src["line"].as_u64().unwrap(),
        src["column"].as_u64().unwrap(),
    );
    assert!(
        here.trim_start_matches('"').starts_with(value),
        "{file}:{}:{} holds '{here}', not '{value}'",
        src["line"],
        src["column"]
    );
}

// ---------------------------------------------------------------- provenance

#[test]
fn profile_show_json_names_where_each_value_came_from() {
    let ws = Ws::new(&["acme"]);
    let j = show(&ws, "acme", "prod", &[]);
    assert_eq!(j["tenant"], "acme");
    assert_eq!(j["env"], "prod");
    let leaf = &j["leaf"];
    // from mtlsctl.yaml defaults
    assert_eq!(leaf["key"]["value"], "ecdsa-p256");
    from_file(&ws, &leaf["key"], "mtlsctl.yaml", "ecdsa-p256");
    assert_eq!(leaf["renew_before"]["value"], "30d");
    from_file(&ws, &leaf["renew_before"], "mtlsctl.yaml", "30d");
    // from the environment profile (its leaf.validity overrides mtlsctl.yaml's)
    from_file(
        &ws,
        &leaf["validity"],
        "profiles/environments/prod.yaml",
        s(&leaf["validity"]["value"]),
    );
    // from the tenant profile
    assert_eq!(
        leaf["subject"]["value"],
        "CN=acme-prod-client,OU=acme,O=Example Platform"
    );
    from_file(
        &ws,
        &leaf["subject"],
        "profiles/tenants/acme.yaml",
        "CN={tenant}",
    );
    // built in
    assert_eq!(leaf["dual_eku"]["value"], false);
    assert_eq!(leaf["dual_eku"]["source"]["type"], "default");
    // the CA's settings
    let ca = &j["ca"];
    assert_eq!(ca["key"]["value"], "ecdsa-p256");
    from_file(&ws, &ca["key"], "mtlsctl.yaml", "ecdsa-p256");
    // a flag wins and says so
    let j = show(&ws, "acme", "prod", &["--kind", "server"]);
    assert_eq!(j["leaf"]["kind"]["value"], "server");
    assert_eq!(j["leaf"]["kind"]["source"]["type"], "flag");
    assert_eq!(j["leaf"]["kind"]["source"]["flag"], "--kind");
}

#[test]
fn tenant_override_for_one_env_wins_and_is_used() {
    let ws = Ws::with_cas(&["acme"]);
    let p = "profiles/tenants/acme.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(
        p,
        &format!(
            "{t}\nvalidity: 100d\noverrides:\n  prod:\n    key: rsa-2048\n    validity: 200d\n    pfx:\n      compat: legacy\n"
        ),
    );
    let prod = show(&ws, "acme", "prod", &[]);
    let leaf = &prod["leaf"];
    assert_eq!(leaf["key"]["value"], "rsa-2048");
    from_file(&ws, &leaf["key"], p, "rsa-2048");
    assert_eq!(leaf["validity"]["value"], "200d");
    from_file(&ws, &leaf["validity"], p, "200d");
    assert_eq!(leaf["pfx_compat"]["value"], "legacy");
    // the other env gets the tenant's top level, not the override
    let np = show(&ws, "acme", "nonprod", &[]);
    assert_eq!(np["leaf"]["key"]["value"], "ecdsa-p256");
    assert_eq!(np["leaf"]["validity"]["value"], "100d");
    from_file(&ws, &np["leaf"]["validity"], p, "100d");
    // and issue follows the profile: an RSA key, 200 days
    let r = ws.issue("acme", "prod", &[]);
    let text = openssl(&["x509", "-noout", "-text", "-in", s(&r["files"]["cert"])]);
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    let nb = time::OffsetDateTime::parse(
        s(&r["not_before"]),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let na = time::OffsetDateTime::parse(
        s(&r["not_after"]),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (na - nb).whole_days();
    assert_eq!(days, 200, "validity {days} days");
    // a flag beats the override
    let r = ws.issue("acme", "prod", &["--force", "--key", "ecdsa-p256"]);
    let text = openssl(&["x509", "-noout", "-text", "-in", s(&r["files"]["cert"])]);
    assert!(text.contains("prime256v1"), "{text}");
}

#[test]
fn profile_show_table_lists_settings_with_their_source() {
    let ws = Ws::new(&["acme"]);
    let out = ws.ok(&["profile", "show", "--tenant", "acme", "--env", "prod"]);
    assert!(out.contains("Tenant acme in prod"), "{out}");
    let key_row = out
        .lines()
        .find(|l| l.contains("| key "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(key_row.contains("ecdsa-p256") && key_row.contains("mtlsctl.yaml:"));
    assert!(out.contains("| default"), "{out}");
    assert!(!out.contains("PRIVATE KEY"));
}

// ---------------------------------------------------------------- strict errors

#[test]
fn unknown_keys_get_a_did_you_mean_in_every_file() {
    let ws = Ws::new(&["acme"]);
    let show = ["profile", "show", "--tenant", "acme", "--env", "prod"];
    // tenant profile
    let p = "profiles/tenants/acme.yaml";
    let orig = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(
        p,
        "organization: Acme\nenvironments: [prod]\nvalidty: 30d\n",
    );
    let e = fails(&ws, &show, 1);
    assert!(e.contains("acme.yaml:3:1:"), "{e}");
    assert!(
        e.contains("unknown key 'validty'") && e.contains("'validity'"),
        "{e}"
    );
    ws.write(p, &orig);
    // environment profile
    let p = "profiles/environments/prod.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(p, &t.replace("crl_validity:", "crl_valdity:"));
    let e = fails(&ws, &show, 1);
    assert!(
        e.contains("prod.yaml:") && e.contains("'crl_validity'"),
        "{e}"
    );
    ws.write(p, &t);
    // mtlsctl.yaml
    let p = "mtlsctl.yaml";
    let t = std::fs::read_to_string(ws.path(p)).unwrap();
    ws.write(p, &t.replace("renew_before:", "renew_befor:"));
    let e = fails(&ws, &show, 1);
    assert!(
        e.contains("mtlsctl.yaml:") && e.contains("'renew_before'"),
        "{e}"
    );
    ws.write(p, &t);
    ws.ok(&show);
}

#[test]
fn bad_values_name_file_line_col() {
    let ws = Ws::new(&["acme"]);
    let show = ["profile", "show", "--tenant", "acme", "--env", "prod"];
    let p = "profiles/tenants/acme.yaml";
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "organization: Acme\nenvironments: [prod]\nvalidity: 10q\n",
            "acme.yaml:3:11:",
            &["'10q'", "90d"],
        ),
        (
            "organization: Acme\nenvironments: [prod]\nrenew_before: soon\n",
            "acme.yaml:3:15:",
            &["'soon'"],
        ),
        (
            "organization: Acme\nenvironments: [prod]\nkey: rsa-1024\n",
            "acme.yaml:3:6:",
            &["rsa-1024", "ecdsa-p256"],
        ),
        (
            "organization: Acme\nenvironments: [prod]\nkind: both\n",
            "acme.yaml:3:",
            &["both"],
        ),
        (
            "organization: Acme\nenvironments: [prod]\nclient:\n  subject: \"CN={tenat}\"\n",
            "acme.yaml:4:",
            &["{tenat}", "{tenant}"],
        ),
        (
            "organization: Acme\nenvironments: [prod]\nclient:\n  san:\n    uri: [\"spiffe://x/{nope}\"]\n",
            "acme.yaml:5:",
            &["{nope}"],
        ),
        (
            "organization: Acme\nenvironments: [nonprod]\n",
            "acme.yaml:2:",
            &["'prod'", "environments"],
        ),
        (
            "organization: Acme\nenvironments: [prod, staging]\n",
            "acme.yaml:2:22:",
            &["'staging'", "nonprod, prod"],
        ),
        (
            "organization: Acme\nenvironments: [prod]\noverrides:\n  prdo:\n    key: rsa-2048\n",
            "acme.yaml:",
            &["'prdo'", "did you mean 'prod'?"],
        ),
        (
            "organization: Acme\nenvironments: [prod\nclient: {\n",
            "acme.yaml:",
            &[],
        ),
        ("organization: Acme\n", "acme.yaml", &["environments"]),
        ("environments: 7\n", "acme.yaml:1:", &[]),
    ];
    for (yaml, place, words) in cases {
        ws.write(p, yaml);
        let e = fails(&ws, &show, 1);
        assert!(e.contains(place), "for {yaml:?}: {e}");
        for w in *words {
            assert!(e.contains(w), "for {yaml:?}: '{w}' not in {e}");
        }
        // issue reports the same error and writes nothing
        let e2 = fails(&ws, &["issue", "--tenant", "acme", "--env", "prod"], 1);
        assert_eq!(e, e2);
    }
    assert!(!ws.path("pki/prod").exists());
}

#[test]
fn unknown_tenant_and_env_in_profile_show() {
    let ws = Ws::new(&["acme", "beta"]);
    let e = fails(
        &ws,
        &["profile", "show", "--tenant", "gamma", "--env", "prod"],
        1,
    );
    assert!(e.contains("'gamma'") && e.contains("acme, beta"), "{e}");
    let e = fails(
        &ws,
        &["profile", "show", "--tenant", "acme", "--env", "qa"],
        1,
    );
    assert!(e.contains("'qa'") && e.contains("nonprod, prod"), "{e}");
    assert!(e.contains("mtlsctl env add qa"), "{e}");
}

// ---------------------------------------------------------------- init, add

#[test]
fn init_creates_profiles_from_the_templates() {
    let ws = Ws::with_envs(&["acme"], &["dev", "live"]);
    for f in [
        "mtlsctl.yaml",
        "profiles/environments/dev.yaml",
        "profiles/environments/live.yaml",
        "profiles/tenants/acme.yaml",
    ] {
        assert!(ws.path(f).is_file(), "{f}");
    }
    assert!(!ws.path("profiles/environments/prod.yaml").exists());
    let cfg = std::fs::read_to_string(ws.path("mtlsctl.yaml")).unwrap();
    assert!(cfg.contains("Example Platform"));
    let j = show(&ws, "acme", "live", &[]);
    assert_eq!(
        j["leaf"]["subject"]["value"],
        "CN=acme-live-client,OU=acme,O=Example Platform"
    );
    // a second init refuses and changes nothing
    let out = ws.run_raw(&["init", ws.root().to_str().unwrap(), "--org", "Other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already a workspace"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(ws.path("mtlsctl.yaml")).unwrap(),
        cfg
    );
    // without --org and without a terminal: a usage error naming the flag
    let d = tempfile::tempdir().unwrap();
    let out = ws.run_raw(&["init", d.path().join("w").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--org"), "{}", stderr(&out));
    assert!(!d.path().join("w/mtlsctl.yaml").exists());
}

#[test]
fn env_add_then_ca_init_and_issue_in_it() {
    let ws = Ws::new(&["acme"]);
    ws.ok(&["env", "add", "staging"]);
    assert!(ws.path("profiles/environments/staging.yaml").is_file());
    let cfg = std::fs::read_to_string(ws.path("mtlsctl.yaml")).unwrap();
    assert!(cfg.contains("staging"), "{cfg}");
    // twice: an error, nothing changed
    let e = fails(&ws, &["env", "add", "staging"], 1);
    assert!(e.contains("staging"), "{e}");
    assert_eq!(
        std::fs::read_to_string(ws.path("mtlsctl.yaml")).unwrap(),
        cfg
    );
    let pf = ws.pass_file.to_str().unwrap().to_string();
    let j = ws.json(&[
        "ca",
        "init",
        "--env",
        "staging",
        "--ca-passphrase-file",
        &pf,
    ]);
    assert_eq!(j["created"], true);
    let ca = s(&j["files"]["cert"]).to_string();
    assert!(ca.ends_with("pki/staging/ca/ca.crt"));
    // acme does not list staging yet: the error says so
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
    assert!(e.contains("acme.yaml:") && e.contains("'staging'"), "{e}");
    // a tenant added for staging can be issued there, and verifies against its CA only
    ws.ok(&["tenant", "add", "beta", "--env", "staging"]);
    let r = ws.issue("beta", "staging", &[]);
    openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslclient",
        "-CAfile",
        &ca,
        s(&r["files"]["cert"]),
    ]);
    let prod_ca = ws.path("pki/prod/ca/ca.crt");
    assert!(!prod_ca.exists());
}

#[test]
fn tenant_add_validates_names_and_envs() {
    let ws = Ws::new(&["acme"]);
    let out = ws.run(&["tenant", "add", "../evil"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("'../evil'"));
    assert!(!ws.dir.path().join("evil.yaml").exists());
    let e = fails(&ws, &["tenant", "add", "acme"], 1);
    assert!(e.contains("acme"), "{e}");
    let out = ws.run(&["tenant", "add", "beta", "--env", "qa"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("'qa'"), "{}", stderr(&out));
    assert!(!ws.path("profiles/tenants/beta.yaml").exists());
    ws.ok(&["tenant", "add", "beta", "--org", "Beta Inc"]);
    let j = show(&ws, "beta", "prod", &[]);
    assert_eq!(j["leaf"]["tenant_org"], "Beta Inc");
}

// ---------------------------------------------------------------- the workspace

#[test]
fn workspace_is_found_from_a_subfolder_or_the_variable() {
    let ws = Ws::new(&["acme"]);
    let sub = ws.path("profiles/tenants");
    let bin = assert_cmd::cargo::cargo_bin("mtlsctl");
    let run = |dir: &Path, env: Option<&Path>| {
        let mut c = std::process::Command::new(&bin);
        c.current_dir(dir)
            .env("MTLSCTL_NO_INPUT", "1")
            .env_remove("MTLSCTL_WORKSPACE")
            .args([
                "-o", "json", "profile", "show", "--tenant", "acme", "--env", "prod",
            ]);
        if let Some(e) = env {
            c.env("MTLSCTL_WORKSPACE", e);
        }
        c.output().unwrap()
    };
    assert!(run(&sub, None).status.success());
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run(elsewhere.path(), None);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("no workspace found") && e.contains("mtlsctl init"),
        "{e}"
    );
    assert!(e.contains("-C") && e.contains("MTLSCTL_WORKSPACE"), "{e}");
    assert!(run(elsewhere.path(), Some(&ws.root())).status.success());
    let out = run(elsewhere.path(), Some(elsewhere.path()));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a workspace"),
        "{}",
        stderr(&out)
    );
}
