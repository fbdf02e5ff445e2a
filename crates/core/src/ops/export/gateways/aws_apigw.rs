//! AWS API Gateway: the truststore PEM for S3, checked against AWS's documented limits.

use super::{File, Findings, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;

/// AWS API Gateway accepts truststore chains of at most this many certificates.
pub const AWS_MAX_CHAIN: usize = 4;

pub struct AwsApigw;

impl Gateway for AwsApigw {
    about!("aws-apigw", "AWS API Gateway");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        Ok(vec![File::new(
            "truststore.pem",
            "aws-truststore: upload to S3 and reference as truststoreUri",
            m.chain_pem.clone(),
        )])
    }

    fn check_limits(&self, m: &Material, out: &mut Findings) {
        // the longest path from a client certificate to its root
        let n = m.depth;
        out.check(
            "chain length at most 4",
            n <= AWS_MAX_CHAIN,
            format!("{n} certificates from the client certificate to the root"),
        );
        let expired: Vec<&str> = m
            .cas
            .iter()
            .filter(|c| c.entry.not_after <= m.now)
            .map(|c| c.entry.subject.as_str())
            .collect();
        out.check(
            "no expired certificate in the truststore",
            expired.is_empty(),
            if expired.is_empty() {
                "every CA certificate is within its validity".into()
            } else {
                format!("expired: {}", expired.join("; "))
            },
        );
        let weak: Vec<String> = m
            .cas
            .iter()
            .chain(std::iter::once(&m.client))
            .map(|c| &c.info)
            .filter(|i| {
                let k = &i.key.algorithm;
                let sig = i.signature_algorithm.to_ascii_lowercase();
                !(k.starts_with("ecdsa-") || (k.starts_with("rsa-") && i.key.bits >= 2048))
                    || sig.contains("sha1")
                    || sig.contains("md5")
            })
            .map(|i| {
                format!(
                    "{} ({}, {})",
                    i.subject, i.key.algorithm, i.signature_algorithm
                )
            })
            .collect();
        if !weak.is_empty() {
            out.warn(format!(
                "API Gateway documents SHA-256 or stronger with RSA-2048+ or ECDSA-256+ keys; these may raise truststoreWarnings: {}",
                weak.join("; ")
            ));
        }
    }
}
