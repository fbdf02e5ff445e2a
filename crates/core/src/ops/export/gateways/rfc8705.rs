//! OAuth 2.0 mutual TLS (RFC 8705): client metadata for both client authentication
//! methods, `tls_client_auth` (our CA is trusted; the subject DN or one SAN names the
//! client) and `self_signed_tls_client_auth` (the certificate itself is registered, in a
//! JWK Set), with certificate-bound access tokens, and the `cnf` claim of those tokens.

use openssl::bn::{BigNum, BigNumContext};
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::X509;
use serde_json::{Value, json};

use super::{File, Gateway};
use crate::ops::export::Material;
use crate::ops::export::template::json;
use crate::ops::{OpError, Result};
use crate::pki::{PkiError, fingerprint};

/// Stands for the ID the authorization server gives the client.
const CLIENT_ID: &str = "CLIENT_ID";

pub struct Rfc8705;

impl Gateway for Rfc8705 {
    about!("rfc8705", "OAuth 2.0 mutual TLS (RFC 8705)");

    fn files(&self, m: &Material) -> Result<Vec<File>> {
        let c = &m.client.entry;
        let meta = json!({
            "client_id": CLIENT_ID,
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": c.subject,
            "tls_client_certificate_bound_access_tokens": true,
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
        let jwks = json!({ "keys": [jwk(&m.client.der, &c.fingerprints.x5t_s256)?] });
        let self_signed = json!({
            "client_id": CLIENT_ID,
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "tls_client_certificate_bound_access_tokens": true,
            "jwks": jwks,
        });
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
                "client-metadata-self-signed.json",
                "rfc8705-metadata-self-signed: registration with self_signed_tls_client_auth and the certificate in jwks",
                json(&self_signed),
            ),
            File::new(
                "jwks.json",
                "rfc8705-jwks: the same JWK Set, to publish at a jwks_uri instead",
                json(&jwks),
            ),
            File::new(
                "cnf.json",
                "rfc8705-cnf: the confirmation claim of tokens bound to this certificate",
                json(&cnf),
            ),
        ])
    }
}

fn pki(e: openssl::error::ErrorStack) -> OpError {
    PkiError::from(e).into()
}

/// The client certificate as a JWK (RFC 7517): its public key, `x5c` (standard base64 of
/// the DER, RFC 7517 section 4.7) and `x5t#S256` (base64url SHA-256 of the DER).
fn jwk(der: &[u8], x5t_s256: &str) -> Result<Value> {
    let key = X509::from_der(der)
        .and_then(|x| x.public_key())
        .map_err(pki)?;
    let mut k = public_jwk(&key)?;
    k["kid"] = x5t_s256.into();
    k["x5c"] = json!([fingerprint::base64(der)]);
    k["x5t#S256"] = x5t_s256.into();
    Ok(k)
}

fn public_jwk(key: &PKey<Public>) -> Result<Value> {
    let b64 = |b: &[u8]| fingerprint::base64url(b);
    match key.id() {
        Id::EC => {
            let ec = key.ec_key().map_err(pki)?;
            let group = ec.group();
            let crv = match group.curve_name().and_then(|n| n.short_name().ok()) {
                Some("prime256v1") => "P-256",
                Some("secp384r1") => "P-384",
                Some("secp521r1") => "P-521",
                other => return Err(unsupported(other.unwrap_or("an unnamed curve"))),
            };
            let mut x = BigNum::new().map_err(pki)?;
            let mut y = BigNum::new().map_err(pki)?;
            let mut ctx = BigNumContext::new().map_err(pki)?;
            ec.public_key()
                .affine_coordinates(group, &mut x, &mut y, &mut ctx)
                .map_err(pki)?;
            let len = group.degree().div_ceil(8) as i32;
            Ok(json!({
                "kty": "EC",
                "crv": crv,
                "x": b64(&x.to_vec_padded(len).map_err(pki)?),
                "y": b64(&y.to_vec_padded(len).map_err(pki)?),
            }))
        }
        Id::RSA => {
            let rsa = key.rsa().map_err(pki)?;
            Ok(json!({ "kty": "RSA", "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec()) }))
        }
        Id::ED25519 => {
            let raw = key.raw_public_key().map_err(pki)?;
            Ok(json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&raw) }))
        }
        _ => Err(unsupported("this key type")),
    }
}

fn unsupported(what: &str) -> OpError {
    OpError::NoJwk {
        what: what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::rsa::Rsa;

    use super::*;

    fn public(private: PKey<openssl::pkey::Private>) -> PKey<Public> {
        PKey::public_key_from_der(&private.public_key_to_der().unwrap()).unwrap()
    }

    fn decoded_len(v: &Value) -> usize {
        let s = v.as_str().unwrap();
        assert!(
            !s.contains(['+', '/', '=']),
            "{s} is not unpadded base64url"
        );
        let mut b = s.replace('-', "+").replace('_', "/");
        while !b.len().is_multiple_of(4) {
            b.push('=');
        }
        openssl::base64::decode_block(&b).unwrap().len()
    }

    #[test]
    fn every_key_type_we_issue_has_its_jwk() {
        let p384 = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let k = public_jwk(&public(
            PKey::from_ec_key(EcKey::generate(&p384).unwrap()).unwrap(),
        ))
        .unwrap();
        assert_eq!(
            (k["kty"].as_str(), k["crv"].as_str()),
            (Some("EC"), Some("P-384"))
        );
        assert_eq!((decoded_len(&k["x"]), decoded_len(&k["y"])), (48, 48));

        let rsa = Rsa::generate(2048).unwrap();
        let n = rsa.n().to_vec();
        let k = public_jwk(&public(PKey::from_rsa(rsa).unwrap())).unwrap();
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["e"], "AQAB");
        assert_eq!(k["n"], fingerprint::base64url(&n));
        assert_eq!(decoded_len(&k["n"]), 256);

        let k = public_jwk(&public(PKey::generate_ed25519().unwrap())).unwrap();
        assert_eq!(
            (k["kty"].as_str(), k["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert_eq!(decoded_len(&k["x"]), 32);
    }
}
