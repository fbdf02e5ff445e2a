//! The commented YAML files that `init`, `env add` and `tenant add` write.

const CONFIG: &str = include_str!("../../templates/mtlsctl.yaml");
const ENVIRONMENT: &str = include_str!("../../templates/environment.yaml");
const TENANT: &str = include_str!("../../templates/tenant.yaml");

/// Quotes a value for a YAML double-quoted scalar.
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn fill(t: &str, vars: &[(&str, String)]) -> String {
    let mut s = t.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("@{k}@"), v);
    }
    s
}

pub fn config(org: &str, envs: &[String]) -> String {
    let list = envs.join(", ");
    fill(
        CONFIG,
        &[
            ("ORG", yaml_quote(org)),
            ("ENVIRONMENTS", format!("[{list}]")),
        ],
    )
}

pub fn environment(env: &str) -> String {
    let crl = if env == "prod" || env == "production" {
        "7d"
    } else {
        "30d"
    };
    let validity = if env == "prod" || env == "production" {
        "365d"
    } else {
        "90d"
    };
    fill(
        ENVIRONMENT,
        &[
            ("ENV", env.to_string()),
            ("CRL_VALIDITY", crl.to_string()),
            ("VALIDITY", validity.to_string()),
        ],
    )
}

pub fn tenant(name: &str, org: &str, envs: &[String]) -> String {
    fill(
        TENANT,
        &[
            ("TENANT", name.to_string()),
            ("ORG", yaml_quote(org)),
            ("ENVIRONMENTS", format!("[{}]", envs.join(", "))),
        ],
    )
}
