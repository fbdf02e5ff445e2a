//! OAuth 2.0 mutual TLS (RFC 8705): client metadata for `tls_client_auth`, the SAN
//! alternatives to the subject DN, and the `cnf` claim of certificate-bound tokens.

use serde_json::json;

use super::{File, Gateway};
use crate::ops::Result;
use crate::ops::export::Material;
use crate::ops::export::template::json;

pub struct Rfc8705;

impl Gateway for Rfc8705 {
    about!("rfc8705", "OAuth 2.0 mutual TLS (RFC 8705)");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let c = &m.client.entry;
        let meta = json!({
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": c.subject,
        });
        let mut alt = serde_json::Map::new();
        for (k, vals) in [
            ("tls_client_auth_san_dns", &c.san.dns),
            ("tls_client_auth_san_uri", &c.san.uri),
            ("tls_client_auth_san_ip", &c.san.ip),
            ("tls_client_auth_san_email", &c.san.email),
        ] {
            if let Some(first) = vals.first() {
                alt.insert(k.into(), first.clone().into());
            }
        }
        let cnf = json!({ "cnf": { "x5t#S256": c.fingerprints.x5t_s256 } });
        Ok(vec![
            File::new(
                "client-metadata.json",
                "rfc8705-metadata: client registration with tls_client_auth_subject_dn",
                json(&meta),
            ),
            File::new(
                "san-alternatives.json",
                "rfc8705-alternatives: use exactly one of these instead of the subject DN",
                json(&alt.into()),
            ),
            File::new(
                "cnf.json",
                "rfc8705-cnf: the confirmation claim of tokens bound to this certificate",
                json(&cnf),
            ),
        ])
    }
}
