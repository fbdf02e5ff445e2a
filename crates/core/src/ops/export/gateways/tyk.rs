//! Tyk: the certificate IDs Tyk gives our certificates and the static mTLS allow-list.

use serde_json::json;

use super::{File, Findings, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::{Vars, json};
use crate::pki::text::rfc3339;

pub struct Tyk;

impl Gateway for Tyk {
    about!("tyk", "Tyk");

    fn vars(&self, m: &Material) -> Vars {
        let note = if m.tyk_org_id.is_empty() {
            ", none given: prefix your org ID, or export again with --tyk-org-id"
        } else {
            ""
        };
        m.vars()
            .with("org_id", &m.tyk_org_id)
            .with("org_note", note)
    }

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let ca_ids: Vec<String> = m
            .cas
            .iter()
            .map(|ca| format!("{}{}", m.tyk_org_id, ca.entry.fingerprints.sha256_hex))
            .collect();
        let mut ids = json!({
            "org_id": m.tyk_org_id,
            "client_certificate_id": m.tyk_certificate_id,
            "client_sha256": m.client.entry.fingerprints.sha256_hex,
            "ca_certificate_ids": ca_ids,
        });
        let all: Vec<String> = m
            .pinned()
            .iter()
            .map(|c| format!("{}{}", m.tyk_org_id, c.entry.fingerprints.sha256_hex))
            .collect();
        if let Some(s) = &m.staged {
            ids["staged_client_certificate_id"] = json!(format!(
                "{}{}",
                m.tyk_org_id, s.entry.fingerprints.sha256_hex
            ));
            ids["staged_client_sha256"] = json!(s.entry.fingerprints.sha256_hex);
        }
        let api = json!({
            "use_mutual_tls_auth": true,
            "client_certificates": all,
        });
        Ok(vec![
            File::new(
                "certificate-ids.json",
                "tyk-ids: the IDs Tyk gives these certificates once uploaded",
                json(&ids),
            ),
            File::new(
                "api-definition-snippet.json",
                "tyk-api-definition: static mTLS allow-list fields",
                json(&api),
            ),
        ])
    }

    fn check_limits(&self, m: &Material, out: &mut Findings) {
        let not_after = m.client.info.not_after;
        out.check(
            "client certificate not expired (Tyk refuses expired uploads)",
            not_after > m.now,
            format!("notAfter {}", rfc3339(not_after)),
        );
    }
}
