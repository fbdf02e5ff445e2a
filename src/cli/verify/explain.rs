//! A finding in words: what it means and what to do, keyed by its code, from the data it
//! carries. The one place that words verification results, so the advice can name this
//! program's commands and flags.

use crate::pki::verify::{
    BadConstraints, BadSan, CertRef, Code, Detail, Finding, Purpose, WeakKey,
};
use crate::report::{rfc3339, sanitize};

/// What a finding means and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub message: String,
    pub fix: String,
}

/// Words `f`.
pub fn explain(f: &Finding) -> Explained {
    let w = Words::of(f);
    let (message, fix) = path(&w)
        .or_else(|| validity(&w))
        .or_else(|| revocation(&w))
        .or_else(|| names(&w))
        .or_else(|| usage(&w))
        .or_else(|| form(&w))
        .or_else(|| keys(&w))
        .or_else(|| profile(&w))
        .unwrap_or_else(|| {
            let m = format!("{} fails the rule {}", w.who, f.code);
            (m, "see docs/verify.md for this reason code".into())
        });
    Explained { message, fix }
}

/// OpenSSL's words for a finding that came from its verdict, as `error N at depth D: text`.
pub fn openssl_line(f: &Finding) -> Option<String> {
    f.openssl
        .as_ref()
        .map(|o| format!("error {} at depth {}: {}", o.code, o.depth, o.text))
}

/// What every sentence may draw on.
struct Words<'a> {
    f: &'a Finding,
    /// The certificate concerned, as "the leaf (CN=...)" or "the CA at depth 1 (CN=...)".
    who: String,
    /// Whether it is the leaf.
    leaf: bool,
    /// OpenSSL's text, when the finding came from its verdict.
    openssl: &'a str,
}

impl<'a> Words<'a> {
    fn of(f: &'a Finding) -> Words<'a> {
        Words {
            f,
            who: f.cert.as_ref().map(who).unwrap_or_default(),
            leaf: f.depth() == Some(0),
            openssl: f.openssl.as_ref().map_or("", |o| o.text.as_str()),
        }
    }

    fn subject(&self) -> &str {
        self.f.subject().unwrap_or_default()
    }
}

type Text = Option<(String, String)>;

fn who(c: &CertRef) -> String {
    let role = if c.depth == 0 {
        "the leaf".to_string()
    } else if c.self_signed {
        format!("the root at depth {}", c.depth)
    } else {
        format!("the CA at depth {}", c.depth)
    };
    format!("{role} ({})", c.subject)
}

/// The `--kind` that gives a leaf the purpose.
fn kind_flag(p: Purpose) -> &'static str {
    match p {
        Purpose::Server => "server",
        _ => "client",
    }
}

fn s(m: impl Into<String>, fix: impl Into<String>) -> Text {
    Some((m.into(), fix.into()))
}

/// Building the path: the issuer, the trust anchor, signatures, CA status and depth.
fn path(w: &Words) -> Text {
    let who = &w.who;
    match (w.f.code, &w.f.detail) {
        (Code::CaNotRoot, Detail::CaNotRoot { issuer }) => s(
            format!(
                "the trusted CA {} is an intermediate (issued by '{issuer}'); like most gateways, the verifier needs the chain up to a self-signed root",
                w.subject()
            ),
            "add the root CA certificate to --ca (keep the intermediate in --ca or --untrusted); give gateways the full CA chain too",
        ),
        (
            Code::WrongCa,
            Detail::WrongCa {
                issuer,
                same_name: true,
                ..
            },
        ) => s(
            format!(
                "{who} names '{issuer}' as issuer, but the trusted CA of that name has a different key (it was re-created or replaced)"
            ),
            "give the CA certificate that actually signed it, or reissue the certificate from the current CA",
        ),
        (
            Code::WrongCa,
            Detail::WrongCa {
                issuer, trusted, ..
            },
        ) => s(
            format!(
                "{who} was issued by '{issuer}', not by the trusted CA ({}); this CA signs leaves directly, so no intermediate is missing",
                trusted.join("; ")
            ),
            "verify against the CA that issued it (another environment's CA?), or get a certificate from this CA",
        ),
        (Code::MissingIntermediate, Detail::MissingIntermediate { issuer, trusted }) => s(
            format!(
                "{who} was issued by '{issuer}', which is neither a trusted CA ({}) nor among the intermediates given",
                trusted.join("; ")
            ),
            "give the intermediate CA certificate(s) with --untrusted FILE or append them to the certificate file (gateways need the full chain too); if there is no intermediate, the certificate comes from a different CA",
        ),
        (Code::SelfSignedLeaf, _) => s(
            format!("{who} is self-signed and is not one of the trusted CAs"),
            "use a certificate issued by the CA the peer trusts, or add this certificate to --ca if it is meant to be trusted directly",
        ),
        (Code::UntrustedRoot, _) => s(
            format!(
                "the chain ends at the root {} which is not among the trusted CAs",
                w.subject()
            ),
            "pass that root with --ca if you trust it, or get a certificate from the CA you trust",
        ),
        (Code::BadSignature, _) => s(
            format!("the signature on {who} does not verify with its issuer's key"),
            "the certificate was altered or the CA was replaced by one with the same name: get the certificate again from its CA",
        ),
        (Code::PathLengthExceeded, _) => s(
            format!("{who} sits below more CAs than a pathLenConstraint above it allows"),
            "issue from a CA higher up (or directly from the root), or re-create the CA with a larger path_length",
        ),
        (Code::ChainTooLong, Detail::ChainTooLong { max_depth }) => s(
            match max_depth {
                Some(n) => format!(
                    "the path has more intermediate CAs than the {n} allowed (--max-depth); a gateway with that verify depth rejects it"
                ),
                None => "the path is longer than the verifier allows".into(),
            },
            "issue from a CA closer to the root, or raise the gateway's verify depth (nginx ssl_verify_depth)",
        ),
        (Code::NotACa, _) => s(
            format!(
                "{who} signed another certificate but is not a CA (basicConstraints CA:TRUE is missing)"
            ),
            "the certificate was issued by a leaf: get one issued by the real CA, and give the right intermediates",
        ),
        (Code::CaKeyUsage, _) => s(
            format!("{who} signs certificates but its keyUsage lacks keyCertSign"),
            "re-create the CA with keyUsage keyCertSign (and cRLSign)",
        ),
        _ => None,
    }
}

/// Validity periods.
fn validity(w: &Words) -> Text {
    let who = &w.who;
    match (w.f.code, &w.f.detail) {
        (Code::Expired, Detail::Expired { not_after }) => s(
            format!("{who} expired at {}", rfc3339(*not_after)),
            if w.leaf {
                "issue a new certificate (`mtlsctl renew` or `mtlsctl issue`) and deploy it"
            } else {
                "renew this CA and reissue the certificates below it"
            },
        ),
        (Code::NotYetValid, Detail::NotYetValid { not_before }) => s(
            format!("{who} is not valid before {}", rfc3339(*not_before)),
            "check the clock of the machine that verifies (and of the one that issued); wait until notBefore or reissue",
        ),
        (
            Code::ExpiresSoon,
            Detail::ExpiresSoon {
                not_after,
                days_left,
            },
        ) => s(
            format!(
                "{who} expires at {} ({days_left} days left), within the renewal window",
                rfc3339(*not_after)
            ),
            if w.leaf {
                "renew it now: `mtlsctl renew`"
            } else {
                "plan the CA's renewal and the gateway hand-off"
            },
        ),
        (
            Code::LeafOutlivesCa,
            Detail::LeafOutlivesCa {
                leaf_not_after,
                ca,
                ca_not_after,
            },
        ) => s(
            format!(
                "the leaf is valid until {} but {} expires at {}: it stops working then",
                rfc3339(*leaf_not_after),
                self::who(ca),
                rfc3339(*ca_not_after)
            ),
            "renew the CA before then, or issue leaves that end with it (clip_to_ca)",
        ),
        _ => None,
    }
}

/// Revocation and CRLs.
fn revocation(w: &Words) -> Text {
    let who = &w.who;
    match (w.f.code, &w.f.detail) {
        (Code::Revoked, Detail::Revoked { serial }) => s(
            format!("{who} (serial {serial}) is revoked by its CA's CRL"),
            if w.leaf {
                "issue a new certificate for this tenant (`mtlsctl issue`) and deploy it"
            } else {
                "this CA is revoked: move to a new CA and reissue what it signed"
            },
        ),
        (Code::CrlMissing, _) => s(
            format!(
                "no CRL from the issuer of {who} was given, and CRL checking covers every certificate of the path"
            ),
            "pass the issuer's current CRL with --crl FILE (one per CA in the chain), as a gateway with CRL checking would need",
        ),
        (Code::CrlExpired, _) => s(
            format!(
                "the CRL covering {who} is past its nextUpdate: a gateway that checks CRLs will reject every certificate of this CA"
            ),
            "re-sign the CRL (`mtlsctl crl --env ENV`) and hand the new one to the gateway; schedule it well before nextUpdate",
        ),
        (Code::CrlNotYetValid, _) => s(
            format!("the CRL covering {who} has a thisUpdate in the future"),
            "check the clocks of the CA host and of the verifier, then re-sign the CRL",
        ),
        (Code::CrlBadSignature, _) => s(
            format!("the CRL covering {who} is not signed by its issuer"),
            "fetch the CRL again from the CA that issued the certificate",
        ),
        (Code::CrlInvalid, Detail::CrlWithoutNumber { issuer }) => s(
            format!("the CRL issued by {issuer} has no CRL number, which RFC 5280 requires"),
            "re-sign the CRL with a cRLNumber extension (`mtlsctl crl` always adds one)",
        ),
        (Code::CrlInvalid, _) => s(
            format!("the CRL covering {who} cannot be used: {}", w.openssl),
            "give the CRL the issuing CA itself signed (its key must allow cRLSign)",
        ),
        _ => None,
    }
}

/// Host names, IP addresses, SAN syntax and name constraints.
fn names(w: &Words) -> Text {
    let who = &w.who;
    match (w.f.code, &w.f.detail) {
        (Code::HostnameMismatch, Detail::HostnameMismatch { hostname, dns }) => {
            let names = if dns.is_empty() {
                "it has no DNS name in its subjectAltName (the CN is not used)".to_string()
            } else {
                format!("its DNS names are {}", dns.join(", "))
            };
            s(
                format!("{who} is not valid for '{hostname}': {names}"),
                "reissue it with the name clients use (`--dns NAME`, or san.dns in the profile), or connect with a name it holds",
            )
        }
        (Code::IpMismatch, Detail::IpMismatch { ip, ips }) => {
            let ips = if ips.is_empty() {
                "it has no IP address in its subjectAltName".to_string()
            } else {
                format!("its IP addresses are {}", ips.join(", "))
            };
            let ip = ip.map(|i| i.to_string()).unwrap_or_default();
            s(
                format!("{who} is not valid for {ip}: {ips}"),
                "reissue it with that address (`--ip ADDR`), or connect by a name it holds",
            )
        }
        (Code::InvalidSan, Detail::InvalidSan(bad)) => invalid_san(bad),
        (Code::CnNotInSan, Detail::CnNotInSan { cn, sans }) => s(
            format!(
                "the leaf's common name '{}' looks like a host name but is not one of its subjectAltNames ({sans})",
                sanitize(cn)
            ),
            "clients that still read the CN may disagree with those that read SANs: reissue with the CN equal to one of the DNS names",
        ),
        (Code::ServerWithoutSan, _) => s(
            "the server certificate has no DNS or IP subjectAltName; clients ignore the CN and will reject it",
            "reissue with --dns NAME (or san.dns in the profile)",
        ),
        (
            Code::NameConstraintsViolation,
            Detail::WildcardExcluded {
                wildcard,
                excluded,
                ca,
            },
        ) => s(
            format!(
                "the leaf's wildcard '*.{wildcard}' can match '{excluded}', which {} excludes",
                self::who(ca)
            ),
            "reissue the leaf without the wildcard, naming only hosts outside the excluded names",
        ),
        (Code::NameConstraintsViolation, _) => s(
            format!(
                "{who} carries a name that a CA above it may not certify ({})",
                w.openssl
            ),
            "request a certificate only for names inside the CA's permitted name constraints",
        ),
        (Code::NameConstraintsInvalid, Detail::BadConstraints(b)) => bad_constraints(who, b),
        (Code::NameConstraintsInvalid, _) => s(
            format!(
                "name constraints in the path cannot be processed ({})",
                w.openssl
            ),
            "the CA's nameConstraints extension is malformed or unsupported: have the CA reissued",
        ),
        _ => None,
    }
}

fn invalid_san(bad: &BadSan) -> Text {
    match bad {
        BadSan::Dns(d) => s(
            format!(
                "the leaf's DNS name '{}' is not a valid host name",
                sanitize(d)
            ),
            "reissue with host names made of letters, digits and '-', with at most a whole '*' as the leftmost label",
        ),
        BadSan::Email(m) => s(
            format!(
                "the leaf's email name '{}' is not a valid address",
                sanitize(m)
            ),
            "reissue with a single valid address (local@domain)",
        ),
        BadSan::IpLength(n) => s(
            format!("the leaf has an IP address SAN of {n} bytes"),
            "reissue with IPv4 (4 bytes) or IPv6 (16 bytes) addresses",
        ),
    }
}

fn bad_constraints(who: &str, b: &BadConstraints) -> Text {
    match b {
        BadConstraints::OnLeaf => s(
            format!("{who} is not a CA but carries name constraints"),
            "have it reissued without nameConstraints (only CAs may carry them)",
        ),
        BadConstraints::Empty => s(
            format!(
                "{who} has a nameConstraints extension with neither permitted nor excluded names"
            ),
            "have the CA reissued with a meaningful nameConstraints, or without it",
        ),
        BadConstraints::DnsSyntax(d) => s(
            format!("{who} has a malformed DNS name constraint '{d}'"),
            "have the CA reissued: DNS constraints are names like example.com, without a leading '.'",
        ),
    }
}

/// What the leaf may be used for.
fn usage(w: &Words) -> Text {
    let who = &w.who;
    match (w.f.code, &w.f.detail) {
        (Code::WrongEku, Detail::WrongEku { has, purpose }) => wrong_eku(has, *purpose),
        (Code::CaEkuMismatch, Detail::Purpose(p)) => s(
            format!(
                "{who} restricts its extended key usage and does not allow {} authentication",
                p.as_str()
            ),
            "use a CA whose extendedKeyUsage includes the purpose, or none at all",
        ),
        (Code::LeafIsCa, Detail::Purpose(p)) => s(
            "the leaf is a CA certificate (basicConstraints CA:TRUE); a client or server must present an end-entity certificate",
            format!(
                "issue an end-entity certificate from this CA (`mtlsctl issue --kind {}`)",
                kind_flag(*p)
            ),
        ),
        (Code::NoEku, Detail::Purpose(p)) => s(
            "the leaf has no extendedKeyUsage; some gateways require clientAuth or serverAuth explicitly",
            format!("reissue with --kind {}", kind_flag(*p)),
        ),
        _ => None,
    }
}

fn wrong_eku(has: &[String], purpose: Purpose) -> Text {
    let listed = if has.is_empty() {
        "no purpose".to_string()
    } else {
        has.join(", ")
    };
    let (wanted, peer) = match purpose {
        Purpose::Server => ("serverAuth", "a client connecting to this server"),
        _ => ("clientAuth", "a gateway that asks for a client certificate"),
    };
    let only = if has.len() == 1 {
        format!("the leaf allows {listed} only")
    } else {
        format!("the leaf allows {listed} but not {wanted}")
    };
    s(
        format!("{only}; {peer} will refuse it"),
        format!(
            "reissue with --kind {} (extendedKeyUsage {wanted})",
            kind_flag(purpose)
        ),
    )
}

/// The form of a certificate: version, extensions, and OpenSSL's strict rules.
fn form(w: &Words) -> Text {
    let who = &w.who;
    match (w.f.code, &w.f.detail) {
        (Code::UnsupportedVersion, Detail::Version(v)) => s(
            format!(
                "{who} is an X.509 v{v} certificate; only v3 may carry the extensions a chain needs"
            ),
            "have it reissued as an X.509 v3 certificate",
        ),
        (Code::MalformedExtension, Detail::EmptyAia) => s(
            format!("{who} has an authorityInfoAccess extension with no entry"),
            "have the certificate reissued without the empty extension",
        ),
        (Code::MalformedExtension, Detail::MalformedExtension { oid }) => s(
            format!("{who} has a malformed extension ({oid})"),
            "have the certificate reissued; its encoding is broken",
        ),
        (Code::AkiWithoutKeyId, _) => s(
            format!("{who} has an authorityKeyIdentifier without a keyIdentifier"),
            "have the certificate reissued with keyIdentifier in its authorityKeyIdentifier (RFC 5280 4.2.1.1)",
        ),
        (Code::SanCritical, _) => s(
            format!("{who} marks subjectAltName critical although its subject is not empty"),
            "have it reissued with a non-critical subjectAltName (RFC 5280 4.2.1.6)",
        ),
        (Code::UnknownCriticalExtension, _) => s(
            format!("{who} has a critical extension the verifier does not know"),
            "reissue the certificate without that extension, or mark it non-critical",
        ),
        (Code::NonconformingCaAccepted, _) => s(
            format!(
                "{who} breaks an RFC 5280 rule that strict verifiers enforce ({}); taken as it is (import --accept-nonconforming-ca)",
                w.openssl
            ),
            "a strict gateway may refuse it: ask the customer for a conforming CA when they next renew it",
        ),
        (Code::Nonconforming, _) => s(
            format!(
                "{who} breaks an RFC 5280 rule that strict verifiers enforce: {}",
                w.openssl
            ),
            "have the CA reissue the certificate in a conforming form",
        ),
        (Code::Rejected, _) => s(
            format!("{who} was rejected: {}", w.openssl),
            "see the OpenSSL reason above; `mtlsctl inspect` shows the certificate's fields",
        ),
        _ => None,
    }
}

/// Keys and signature algorithms.
fn keys(w: &Words) -> Text {
    let who = &w.who;
    let ca_fix =
        "use a CA with an RSA key of 2048 bits or more (a multiple of 8), or ECDSA P-256/P-384";
    match (w.f.code, &w.f.detail) {
        (Code::WeakCaKey, Detail::WeakKey(Some(k))) => s(
            format!(
                "{who} has {}; a CA key like that cannot be trusted",
                weak(k)
            ),
            ca_fix,
        ),
        (Code::WeakCaKey, _) => s(format!("{who} has a key too small to be trusted"), ca_fix),
        (Code::WeakRsaKey, Detail::WeakKey(Some(k))) => s(
            format!(
                "the leaf has {}; many gateways and clients refuse such keys",
                weak(k)
            ),
            "reissue with a stronger key (key: ecdsa-p256 or rsa-2048 and up in the profile)",
        ),
        (Code::WeakAlgorithm, _) => s(
            format!("{who} is signed with a digest too weak to be trusted"),
            "reissue it with SHA-256 or better",
        ),
        (Code::Sha1Signature, _) => s(
            format!("{who} is signed with SHA-1, which current clients and gateways refuse"),
            "reissue it with SHA-256 or better",
        ),
        _ => None,
    }
}

fn weak(k: &WeakKey) -> String {
    match k {
        WeakKey::RsaTooSmall { bits } => format!("an RSA key of {bits} bits (under 2048)"),
        WeakKey::RsaOddSize { bits } => {
            format!("an RSA key of {bits} bits (not a multiple of 8)")
        }
        WeakKey::Dsa => "a DSA key (no longer accepted)".into(),
        WeakKey::EcCurve { curve } => format!(
            "an EC key on curve {}",
            curve.as_deref().unwrap_or("with explicit parameters")
        ),
    }
}

/// A workspace certificate against its profile.
fn profile(w: &Words) -> Text {
    match (w.f.code, &w.f.detail) {
        (
            Code::ProfileSanMismatch,
            Detail::ProfileSans {
                missing,
                tenant,
                env,
                kind,
                external,
            },
        ) => s(
            format!(
                "the profile asks for the names {} but the certificate does not carry them",
                missing.join(", ")
            ),
            if *external {
                // never advise `issue --force`: it would discard the imported certificate
                format!(
                    "have the external CA sign a request with those names: `mtlsctl csr --tenant {tenant} --env {env} --kind {kind}` (the request carries the profile's names), then `mtlsctl import`"
                )
            } else {
                format!(
                    "reissue it from the current profile: `mtlsctl issue --tenant {tenant} --env {env} --kind {kind} --force`"
                )
            },
        ),
        (
            Code::ProfileKeyMismatch,
            Detail::ProfileKey {
                has,
                wants,
                source,
                tenant,
                env,
                kind,
                external,
            },
        ) => s(
            format!(
                "the certificate's key is {has} but the profile now asks for {wants} ({source})"
            ),
            if *external {
                format!(
                    "switch keys with a new request to the external CA: `mtlsctl renew --tenant {tenant} --env {env} --force` makes it, then `mtlsctl import`"
                )
            } else {
                format!(
                    "renew to switch keys: `mtlsctl issue --tenant {tenant} --env {env} --kind {kind} --force`"
                )
            },
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::Kind;
    use crate::pki::verify::OpensslVerdict;

    fn cert(depth: usize, self_signed: bool) -> CertRef {
        CertRef {
            depth,
            subject: format!("CN=c{depth}"),
            self_signed,
        }
    }

    /// The data each code usually comes with.
    fn usual(code: Code) -> Detail {
        let t = time::macros::datetime!(2027-01-31 12:00 UTC);
        let names = || vec!["CN=CA".to_string()];
        match code {
            Code::Expired => Detail::Expired { not_after: t },
            Code::NotYetValid => Detail::NotYetValid { not_before: t },
            Code::ExpiresSoon => Detail::ExpiresSoon {
                not_after: t,
                days_left: 3,
            },
            Code::LeafOutlivesCa => Detail::LeafOutlivesCa {
                leaf_not_after: t,
                ca: cert(1, true),
                ca_not_after: t,
            },
            Code::WrongEku => Detail::WrongEku {
                has: vec!["serverAuth".into()],
                purpose: Purpose::Client,
            },
            Code::CaEkuMismatch | Code::LeafIsCa | Code::NoEku => Detail::Purpose(Purpose::Server),
            Code::Revoked => Detail::Revoked {
                serial: "ab".into(),
            },
            Code::HostnameMismatch => Detail::HostnameMismatch {
                hostname: "h".into(),
                dns: vec![],
            },
            Code::IpMismatch => Detail::IpMismatch {
                ip: None,
                ips: vec![],
            },
            Code::ChainTooLong => Detail::ChainTooLong { max_depth: Some(1) },
            Code::CaNotRoot => Detail::CaNotRoot {
                issuer: "CN=R".into(),
            },
            Code::WrongCa => Detail::WrongCa {
                issuer: "CN=X".into(),
                trusted: names(),
                same_name: false,
            },
            Code::MissingIntermediate => Detail::MissingIntermediate {
                issuer: "CN=X".into(),
                trusted: names(),
            },
            Code::InvalidSan => Detail::InvalidSan(BadSan::Dns("a_b".into())),
            Code::NameConstraintsInvalid => Detail::BadConstraints(BadConstraints::Empty),
            Code::CnNotInSan => Detail::CnNotInSan {
                cn: "a.example".into(),
                sans: "DNS:b.example".into(),
            },
            Code::UnsupportedVersion => Detail::Version(1),
            Code::MalformedExtension => Detail::EmptyAia,
            Code::WeakCaKey | Code::WeakRsaKey => Detail::WeakKey(Some(WeakKey::Dsa)),
            Code::ProfileSanMismatch => Detail::ProfileSans {
                missing: vec!["x".into()],
                tenant: "acme".into(),
                env: "prod".into(),
                kind: Kind::Client,
                external: false,
            },
            Code::ProfileKeyMismatch => Detail::ProfileKey {
                has: "ecdsa-p256".into(),
                wants: "rsa-2048".into(),
                source: "tenant profile".into(),
                tenant: "acme".into(),
                env: "prod".into(),
                kind: Kind::Client,
                external: false,
            },
            _ => Detail::None,
        }
    }

    #[test]
    fn every_code_has_its_own_words() {
        for &code in Code::ALL {
            let f = Finding::new(code, Some(cert(0, false)), usual(code));
            let e = explain(&f);
            assert!(
                !e.fix.contains("docs/verify.md") && !e.message.is_empty(),
                "{code} has no words of its own: {e:?}"
            );
        }
    }

    #[test]
    fn certificates_are_named_by_their_place_in_the_path() {
        assert_eq!(who(&cert(0, false)), "the leaf (CN=c0)");
        assert_eq!(who(&cert(1, false)), "the CA at depth 1 (CN=c1)");
        assert_eq!(who(&cert(2, true)), "the root at depth 2 (CN=c2)");
    }

    #[test]
    fn wrong_eku_says_what_the_leaf_allows_and_which_kind_to_issue() {
        let f = Finding::new(Code::WrongEku, Some(cert(0, false)), usual(Code::WrongEku));
        assert_eq!(
            explain(&f),
            Explained {
                message: "the leaf allows serverAuth only; a gateway that asks for a client certificate will refuse it".into(),
                fix: "reissue with --kind client (extendedKeyUsage clientAuth)".into(),
            }
        );
    }

    #[test]
    fn openssl_verdicts_keep_their_words() {
        let mut f = Finding::new(Code::Rejected, Some(cert(1, false)), Detail::None);
        f.openssl = Some(OpensslVerdict {
            code: 55,
            depth: 1,
            text: "path loop".into(),
        });
        assert_eq!(
            explain(&f).message,
            "the CA at depth 1 (CN=c1) was rejected: path loop"
        );
        assert_eq!(openssl_line(&f).unwrap(), "error 55 at depth 1: path loop");
    }
}
