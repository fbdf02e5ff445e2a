//! Names: SAN syntax, the CN beside the SANs, server names, and name constraints
//! (their form, and wildcards that could reach an excluded subtree).

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, NameConstraints};

use super::finding::{BadConstraints, BadSan, Detail, Finding};
use super::{Cert, Checks, Code, Purpose};

/// DNS, email and IP SANs of the leaf that are not well formed.
pub(super) fn san_syntax(k: &Checks, x: &X509Certificate<'_>, out: &mut Vec<Finding>) {
    let Ok(Some(san)) = x.subject_alternative_name() else {
        return;
    };
    for g in &san.value.general_names {
        let bad = match g {
            GeneralName::DNSName(d) if !dns_san_ok(d) => BadSan::Dns(d.to_string()),
            GeneralName::RFC822Name(m) if !email_ok(m) => BadSan::Email(m.to_string()),
            GeneralName::IPAddress(b) if b.len() != 4 && b.len() != 16 => BadSan::IpLength(b.len()),
            _ => continue,
        };
        let detail = Detail::InvalidSan(bad);
        out.push(Finding::new(Code::InvalidSan, Some(k.chain[0].r()), detail));
    }
}

/// CABF BR 7.1.4.3: a CN that names a host must be one of the SANs.
pub(super) fn cn_not_in_san(k: &Checks, x: &X509Certificate<'_>, out: &mut Vec<Finding>) {
    let info = &k.chain[0].info;
    if k.inp.purpose != Purpose::Server || x.is_ca() || info.san.is_empty() {
        return;
    }
    for cn in x.subject().iter_common_name() {
        let Ok(cn) = cn.as_str() else { continue };
        let listed = info.san.dns.iter().any(|d| d == cn) || info.san.ip.iter().any(|i| i == cn);
        if cn.contains('.') && !listed {
            let detail = Detail::CnNotInSan {
                cn: cn.to_string(),
                sans: info.san.joined(),
            };
            out.push(Finding::new(Code::CnNotInSan, Some(k.chain[0].r()), detail));
        }
    }
}

/// Clients ignore the CN: a server certificate needs a DNS or IP SAN.
pub(super) fn server_without_san(k: &Checks, x: &X509Certificate<'_>) -> Option<Finding> {
    let info = &k.chain[0].info;
    let p = k.inp.purpose;
    let server_like = p == Purpose::Server
        || (p == Purpose::Any && info.extended_key_usage.iter().any(|e| e == "serverAuth"));
    let no_name = info.san.dns.is_empty() && info.san.ip.is_empty();
    (server_like && no_name && !x.is_ca())
        .then(|| Finding::new(Code::ServerWithoutSan, Some(k.chain[0].r()), Detail::None))
}

/// The form of a nameConstraints extension: only on CAs, not empty, DNS constraints
/// that are names.
pub(super) fn constraints_form(
    c: &Cert,
    x: &X509Certificate<'_>,
    nc: &NameConstraints<'_>,
    out: &mut Vec<Finding>,
) {
    let mut bad = |b: BadConstraints| {
        let detail = Detail::BadConstraints(b);
        out.push(Finding::new(
            Code::NameConstraintsInvalid,
            Some(c.r()),
            detail,
        ));
    };
    if c.depth == 0 && !x.is_ca() {
        bad(BadConstraints::OnLeaf);
    }
    let permitted = nc.permitted_subtrees.as_deref().unwrap_or_default();
    let excluded = nc.excluded_subtrees.as_deref().unwrap_or_default();
    if permitted.is_empty() && excluded.is_empty() {
        bad(BadConstraints::Empty);
    }
    for s in permitted.iter().chain(excluded) {
        if let GeneralName::DNSName(d) = &s.base
            && (d.starts_with('.') || !dns_constraint_ok(d))
        {
            bad(BadConstraints::DnsSyntax(d.to_string()));
        }
    }
}

/// A wildcard SAN may match names that an excluded subtree forbids: refuse it
/// (the defensive reading of RFC 5280 with RFC 9525, as CVE-2025-61727 shows).
pub(super) fn wildcards_vs_excluded(k: &Checks, out: &mut Vec<Finding>) {
    let Some(leaf) = k.chain[0].parsed() else {
        return;
    };
    let wildcards = wildcards_of(&leaf);
    if wildcards.is_empty() {
        return;
    }
    for c in k.chain.iter().skip(1) {
        let Some(x) = c.parsed() else { continue };
        let Ok(Some(nc)) = x.name_constraints() else {
            continue;
        };
        for s in nc.value.excluded_subtrees.iter().flatten() {
            let GeneralName::DNSName(base) = &s.base else {
                continue;
            };
            let base = base.trim_start_matches('.').to_ascii_lowercase();
            for w in wildcards.iter().filter(|w| wildcard_reaches(w, &base)) {
                let detail = Detail::WildcardExcluded {
                    wildcard: w.clone(),
                    excluded: base.clone(),
                    ca: c.r(),
                };
                let leaf = Some(k.chain[0].r());
                out.push(Finding::new(Code::NameConstraintsViolation, leaf, detail));
            }
        }
    }
}

/// The parents of the leaf's wildcard DNS SANs (`example.com` for `*.example.com`).
fn wildcards_of(leaf: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = leaf.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|g| match g {
            GeneralName::DNSName(d) => d.strip_prefix("*."),
            _ => None,
        })
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether `*.{parent}` may match a name the excluded `base` covers: `base` is `parent`
/// itself or any name under it (the conservative reading).
fn wildcard_reaches(parent: &str, base: &str) -> bool {
    let under = base
        .strip_suffix(parent)
        .and_then(|p| p.strip_suffix('.'))
        .is_some_and(|labels| !labels.is_empty());
    under || base == parent
}

fn label_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A DNS SAN: host name labels, optionally a whole '*' as the leftmost label.
pub(crate) fn dns_san_ok(d: &str) -> bool {
    let body = d.strip_prefix("*.").unwrap_or(d);
    !body.is_empty() && body.len() <= 253 && body.split('.').all(label_ok)
}

fn dns_constraint_ok(d: &str) -> bool {
    d.is_empty() || d.split('.').all(label_ok)
}

fn email_ok(m: &str) -> bool {
    let mut parts = m.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => !local.is_empty() && domain.split('.').all(label_ok),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_syntax_rules() {
        assert!(dns_san_ok("api.example.com"));
        assert!(dns_san_ok("*.example.com"));
        assert!(!dns_san_ok("f*.example.com"));
        assert!(!dns_san_ok("under_score.example.com"));
        assert!(!dns_san_ok("a..b"));
        assert!(email_ok("ops@example.com"));
        assert!(!email_ok("invalid@address@example.com"));
        assert!(!dns_constraint_ok("exa mple.com"));
        assert!(dns_constraint_ok(""));
    }

    #[test]
    fn a_wildcard_reaches_its_parent_and_the_names_below() {
        assert!(wildcard_reaches("example.com", "example.com"));
        assert!(wildcard_reaches("example.com", "secret.example.com"));
        assert!(wildcard_reaches("example.com", "a.b.example.com"));
        assert!(!wildcard_reaches("example.com", "notexample.com"));
        assert!(!wildcard_reaches("example.com", "other.org"));
    }
}
