//! A finding: a reason code, the certificate it concerns and the data behind it. Findings
//! carry no sentences; the program that shows them words them.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::{Code, Purpose, Severity};
use crate::Kind;

/// A certificate of the path, as a finding names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRef {
    /// Position in the path (0 = the leaf).
    pub depth: usize,
    pub subject: String,
    pub self_signed: bool,
}

/// OpenSSL's own verdict, when a finding came from its verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpensslVerdict {
    /// The X509_V_ERR_* number.
    pub code: i32,
    /// The depth OpenSSL reported.
    pub depth: usize,
    /// OpenSSL's text for `code`.
    pub text: String,
}

/// Why a key is weak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeakKey {
    /// An RSA key under 2048 bits.
    RsaTooSmall {
        bits: u32,
    },
    /// An RSA key whose size is not a multiple of 8.
    RsaOddSize {
        bits: u32,
    },
    Dsa,
    /// An EC key on a curve other than P-256/P-384/P-521 (None: explicit parameters).
    EcCurve {
        curve: Option<String>,
    },
}

/// A SAN that is not well formed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadSan {
    Dns(String),
    Email(String),
    /// An IP address SAN of this many bytes (neither 4 nor 16).
    IpLength(usize),
}

/// What a name-constraints extension does wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadConstraints {
    /// A certificate that is not a CA carries them.
    OnLeaf,
    /// Neither permitted nor excluded subtrees.
    Empty,
    /// A DNS constraint that is not a name (a leading '.', say).
    DnsSyntax(String),
}

/// The data behind a finding, by kind of problem. `None` when the code and the
/// certificate say it all (or OpenSSL's verdict does).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    None,
    Expired {
        not_after: OffsetDateTime,
    },
    NotYetValid {
        not_before: OffsetDateTime,
    },
    ExpiresSoon {
        not_after: OffsetDateTime,
        days_left: i64,
    },
    /// The leaf ends after `ca` does.
    LeafOutlivesCa {
        leaf_not_after: OffsetDateTime,
        ca: CertRef,
        ca_not_after: OffsetDateTime,
    },
    /// The leaf's EKUs (`has`) lack the purpose.
    WrongEku {
        has: Vec<String>,
        purpose: Purpose,
    },
    /// The purpose the path was checked for (CA EKU, CA leaf, missing EKU).
    Purpose(Purpose),
    Revoked {
        serial: String,
    },
    /// The host name asked for and the DNS names the certificate holds.
    HostnameMismatch {
        hostname: String,
        dns: Vec<String>,
    },
    /// The address asked for and the IP addresses the certificate holds.
    IpMismatch {
        ip: Option<IpAddr>,
        ips: Vec<String>,
    },
    ChainTooLong {
        max_depth: Option<u32>,
    },
    /// The trusted CA at the top of the path is issued by `issuer`, which is missing.
    CaNotRoot {
        issuer: String,
    },
    /// The top of the path names `issuer`; `trusted` are the trusted CAs' subjects.
    /// `same_name`: a trusted CA has that name but another key.
    WrongCa {
        issuer: String,
        trusted: Vec<String>,
        same_name: bool,
    },
    MissingIntermediate {
        issuer: String,
        trusted: Vec<String>,
    },
    /// A CRL without a CRL number, by its issuer.
    CrlWithoutNumber {
        issuer: String,
    },
    /// A wildcard SAN (`*.{wildcard}`) that can match `excluded`, which `ca` excludes.
    WildcardExcluded {
        wildcard: String,
        excluded: String,
        ca: CertRef,
    },
    BadConstraints(BadConstraints),
    InvalidSan(BadSan),
    /// A host-like CN that is none of the SANs (`sans`, as `DNS:a, IP:b`).
    CnNotInSan {
        cn: String,
        sans: String,
    },
    /// The X.509 version (1, 2 or 3).
    Version(u32),
    /// An extension that does not parse, by OID.
    MalformedExtension {
        oid: String,
    },
    /// An authorityInfoAccess with no entry.
    EmptyAia,
    /// Why the key is weak; None when OpenSSL said it is too small.
    WeakKey(Option<WeakKey>),
    /// (workspace) names the profile asks for that the certificate lacks.
    ProfileSans {
        missing: Vec<String>,
        tenant: String,
        env: String,
        kind: Kind,
        /// The certificate came from an external CA (`import`): mtlsctl cannot reissue it.
        external: bool,
    },
    /// (workspace) the certificate's key algorithm and the profile's, with where the
    /// profile's came from.
    ProfileKey {
        has: String,
        wants: String,
        source: String,
        tenant: String,
        env: String,
        kind: Kind,
        /// The certificate came from an external CA (`import`).
        external: bool,
    },
}

/// One thing found about the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: Code,
    /// The certificate concerned; None when it concerns no single one (a CRL).
    pub cert: Option<CertRef>,
    pub detail: Detail,
    pub openssl: Option<OpensslVerdict>,
}

impl Finding {
    pub fn new(code: Code, cert: Option<CertRef>, detail: Detail) -> Finding {
        Finding {
            code,
            cert,
            detail,
            openssl: None,
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// Position in the path of the certificate concerned.
    pub fn depth(&self) -> Option<usize> {
        self.cert.as_ref().map(|c| c.depth)
    }

    pub fn subject(&self) -> Option<&str> {
        self.cert.as_ref().map(|c| c.subject.as_str())
    }
}

/// Puts findings in reporting order: one per (code, depth), the first kept; errors
/// first, in path order; at one depth, the most specific code first.
pub fn order(findings: &mut Vec<Finding>) {
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert((f.code, f.depth())));
    findings.sort_by_key(|f| {
        (
            f.severity(),
            f.depth().unwrap_or(usize::MAX),
            std::cmp::Reverse(f.code.rank()),
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(code: Code, depth: Option<usize>) -> Finding {
        let cert = depth.map(|depth| CertRef {
            depth,
            subject: format!("CN=d{depth}"),
            self_signed: false,
        });
        Finding::new(code, cert, Detail::None)
    }

    #[test]
    fn order_puts_errors_first_in_path_order_and_drops_repeats() {
        let mut v = vec![
            at(Code::ExpiresSoon, Some(0)),
            at(Code::CrlInvalid, None),
            at(Code::Expired, Some(1)),
            at(Code::WrongEku, Some(0)),
            at(Code::WrongEku, Some(0)),
        ];
        order(&mut v);
        let got: Vec<(Code, Option<usize>)> = v.iter().map(|f| (f.code, f.depth())).collect();
        assert_eq!(
            got,
            [
                (Code::WrongEku, Some(0)),
                (Code::Expired, Some(1)),
                (Code::CrlInvalid, None),
                (Code::ExpiresSoon, Some(0)),
            ]
        );
    }

    #[test]
    fn at_one_depth_a_named_rule_comes_before_the_catch_all() {
        let mut v = vec![at(Code::Rejected, Some(1)), at(Code::WeakCaKey, Some(1))];
        order(&mut v);
        assert_eq!(v[0].code, Code::WeakCaKey);
    }
}
