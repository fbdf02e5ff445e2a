//! The reason codes: one enum whose names are the stable strings docs/verify.md lists and
//! JSON carries, each with its severity and a rank.

use serde::Serialize;

/// How bad a finding is: an error makes the path invalid, a warning does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// How specific a code is, to choose among several that apply to one certificate: the
/// catch-all verdicts rank below the named rules.
pub mod rank {
    /// OpenSSL rejected the path for a reason no code names.
    pub const CATCH_ALL: u8 = 0;
    /// A broad class of RFC 5280 rules.
    pub const BROAD: u8 = 1;
    /// One named rule.
    pub const SPECIFIC: u8 = 2;
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $severity:ident, $rank:ident; )*) => {
        /// A stable, machine-readable reason for a finding. Serialised as its
        /// [`as_str`](Code::as_str) name; new codes may be added.
        #[non_exhaustive]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in the order docs/verify.md lists them.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The snake_case name documented in docs/verify.md and carried by JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            pub const fn severity(self) -> Severity {
                match self {
                    $(Code::$variant => Severity::$severity,)*
                }
            }

            /// Higher is more specific (see [`rank`]).
            pub const fn rank(self) -> u8 {
                match self {
                    $(Code::$variant => rank::$rank,)*
                }
            }
        }
    };
}

codes! {
    /// A certificate of the path is past its notAfter.
    Expired = "expired", Error, SPECIFIC;
    /// A certificate of the path is before its notBefore.
    NotYetValid = "not_yet_valid", Error, SPECIFIC;
    /// The leaf's extendedKeyUsage lacks the purpose.
    WrongEku = "wrong_eku", Error, SPECIFIC;
    /// A CA's own extendedKeyUsage excludes the purpose.
    CaEkuMismatch = "ca_eku_mismatch", Error, SPECIFIC;
    /// The top of the path was issued by another CA than the trusted one.
    WrongCa = "wrong_ca", Error, SPECIFIC;
    /// The issuer is neither trusted nor among the intermediates given.
    MissingIntermediate = "missing_intermediate", Error, SPECIFIC;
    /// The chain ends at a root that is not trusted.
    UntrustedRoot = "untrusted_root", Error, SPECIFIC;
    /// The trusted CA is an intermediate whose root is missing.
    CaNotRoot = "ca_not_root", Error, SPECIFIC;
    /// The leaf is self-signed and not trusted.
    SelfSignedLeaf = "self_signed_leaf", Error, SPECIFIC;
    /// A signature does not verify.
    BadSignature = "bad_signature", Error, SPECIFIC;
    /// The certificate is on its issuer's CRL.
    Revoked = "revoked", Error, SPECIFIC;
    /// No CRL for an issuer while CRL checking is on.
    CrlMissing = "crl_missing", Error, SPECIFIC;
    /// A CRL is past its nextUpdate.
    CrlExpired = "crl_expired", Error, SPECIFIC;
    /// A CRL's thisUpdate is in the future.
    CrlNotYetValid = "crl_not_yet_valid", Error, SPECIFIC;
    /// A CRL is not signed by its issuer.
    CrlBadSignature = "crl_bad_signature", Error, SPECIFIC;
    /// A CRL cannot be used (no CRL number, issuer without cRLSign, wrong scope...).
    CrlInvalid = "crl_invalid", Error, SPECIFIC;
    /// The host name asked for is not among the DNS SANs.
    HostnameMismatch = "hostname_mismatch", Error, SPECIFIC;
    /// The IP address asked for is not among the IP SANs.
    IpMismatch = "ip_mismatch", Error, SPECIFIC;
    /// More CAs below a CA than its pathLenConstraint allows.
    PathLengthExceeded = "path_length_exceeded", Error, SPECIFIC;
    /// The chain exceeds the verifier's depth.
    ChainTooLong = "chain_too_long", Error, SPECIFIC;
    /// A certificate that signed another is not a CA.
    NotACa = "not_a_ca", Error, SPECIFIC;
    /// A CA lacks keyCertSign.
    CaKeyUsage = "ca_key_usage", Error, SPECIFIC;
    /// The leaf is a CA certificate.
    LeafIsCa = "leaf_is_ca", Error, SPECIFIC;
    /// A name falls outside a CA's name constraints.
    NameConstraintsViolation = "name_constraints_violation", Error, SPECIFIC;
    /// Malformed or unsupported name constraints.
    NameConstraintsInvalid = "name_constraints_invalid", Error, SPECIFIC;
    /// A SAN is not a valid host name, email or IP address.
    InvalidSan = "invalid_san", Error, SPECIFIC;
    /// subjectAltName critical while the subject is not empty.
    SanCritical = "san_critical", Error, SPECIFIC;
    /// A non-root certificate is not X.509 v3.
    UnsupportedVersion = "unsupported_version", Error, SPECIFIC;
    /// An extension cannot be parsed or is empty.
    MalformedExtension = "malformed_extension", Error, SPECIFIC;
    /// A critical extension the verifier does not know.
    UnknownCriticalExtension = "unknown_critical_extension", Error, SPECIFIC;
    /// authorityKeyIdentifier without keyIdentifier.
    AkiWithoutKeyId = "aki_without_key_id", Error, SPECIFIC;
    /// A CA key too weak to be trusted.
    WeakCaKey = "weak_ca_key", Error, SPECIFIC;
    /// A signature digest too weak for OpenSSL.
    WeakAlgorithm = "weak_algorithm", Error, SPECIFIC;
    /// Another RFC 5280 rule OpenSSL's strict mode enforces.
    Nonconforming = "nonconforming", Error, BROAD;
    /// A customer CA that breaks a strict rule, taken as it is on purpose
    /// (`import --accept-nonconforming-ca`).
    NonconformingCaAccepted = "nonconforming_ca_accepted", Warning, SPECIFIC;
    /// Any other OpenSSL verdict.
    Rejected = "rejected", Error, CATCH_ALL;
    /// The profile asks for a name the certificate lacks.
    ProfileSanMismatch = "profile_san_mismatch", Error, SPECIFIC;
    /// A certificate of the path expires within the renewal window.
    ExpiresSoon = "expires_soon", Warning, SPECIFIC;
    /// Signed with SHA-1.
    Sha1Signature = "sha1_signature", Warning, SPECIFIC;
    /// The leaf's key is weak.
    WeakRsaKey = "weak_rsa_key", Warning, SPECIFIC;
    /// The leaf ends after a CA of its path.
    LeafOutlivesCa = "leaf_outlives_ca", Warning, SPECIFIC;
    /// A server certificate without a DNS or IP SAN.
    ServerWithoutSan = "server_without_san", Warning, SPECIFIC;
    /// The leaf has no extendedKeyUsage.
    NoEku = "no_eku", Warning, SPECIFIC;
    /// A host-like CN that is none of the SANs.
    CnNotInSan = "cn_not_in_san", Warning, SPECIFIC;
    /// The key algorithm differs from the profile's.
    ProfileKeyMismatch = "profile_key_mismatch", Warning, SPECIFIC;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = String;
    fn from_str(s: &str) -> Result<Code, String> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown reason code '{s}'"))
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = HashSet::new();
        for c in Code::ALL {
            let n = c.as_str();
            assert!(seen.insert(n), "{n} twice");
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{n}"
            );
            assert_eq!(n.parse::<Code>(), Ok(*c));
        }
    }

    #[test]
    fn serialises_as_its_name() {
        assert_eq!(
            serde_json::to_string(&Code::WrongEku).unwrap(),
            "\"wrong_eku\""
        );
        assert_eq!(
            serde_json::to_string(&Severity::Warning).unwrap(),
            "\"warning\""
        );
    }

    #[test]
    fn catch_alls_rank_below_named_rules() {
        assert!(Code::Rejected.rank() < Code::Nonconforming.rank());
        assert!(Code::Nonconforming.rank() < Code::WeakCaKey.rank());
        assert_eq!(Code::ExpiresSoon.severity(), Severity::Warning);
        assert_eq!(Code::Expired.severity(), Severity::Error);
    }
}
