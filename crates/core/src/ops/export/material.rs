//! What every gateway's files are made from: the environment's CA chain, its CRLs and the
//! tenant's current client certificate, read from the workspace once and checked.

use openssl::x509::{X509, X509Crl};
use time::OffsetDateTime;

use super::template::Vars;
use super::{CertEntry, CrlEntry, Prints, Request};
use crate::ops::{CertNeed, OpError, Result};
use crate::pki::inspect::{self, CertInfo};
use crate::pki::text::rfc3339;
use crate::pki::{Kind, PkiError, fingerprint, pem};
use crate::profile::Profiles;
use crate::workspace::{Workspace, fsutil};

/// One certificate of the hand-off: as the manifest describes it, as parsed, and its DER.
#[derive(Clone, Debug)]
pub struct Cert {
    pub entry: CertEntry,
    pub info: CertInfo,
    pub der: Vec<u8>,
}

/// The trust material of one tenant/env hand-off, in the forms the gateways start from.
#[derive(Clone, Debug)]
pub struct Material {
    pub tenant: String,
    pub env: String,
    /// Tyk organisation ID (empty: none given).
    pub tyk_org_id: String,
    pub now: OffsetDateTime,
    /// The tenant's current client certificate.
    pub client: Cert,
    /// Tyk certificate ID of the client certificate: org ID + lowercase hex SHA-256.
    pub tyk_certificate_id: String,
    /// Every CA a gateway must trust, issuing CA first, root last.
    pub cas: Vec<Cert>,
    /// One current CRL per CA, in the order of `cas`.
    pub crls: Vec<CrlEntry>,
    /// `ca-chain.pem`: the CA certificates in PEM, in the order of `cas`.
    pub chain_pem: String,
    /// `crl.pem`: the CRLs in PEM, in the order of `cas`.
    pub crl_pem: String,
    /// `client.pem`.
    pub client_pem: String,
    /// The verify depth to configure: the longest path's certificates, leaf and trust
    /// anchor included (2 in one tier, 3 in two, 4 during a root rotation's overlap).
    pub depth: usize,
    /// What the operator should know about the material itself (expiring CRL, ...).
    pub warnings: Vec<String>,
}

fn pki(e: openssl::error::ErrorStack) -> OpError {
    PkiError::from(e).into()
}

fn prints(x: &X509, der: &[u8]) -> Result<Prints> {
    let s256 = fingerprint::sha256(der);
    let s1 = fingerprint::sha1(der)?;
    let spki = x
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .map_err(pki)?;
    Ok(Prints {
        sha256_hex: fingerprint::hex(&s256),
        sha256_colon: fingerprint::colon_hex(&s256),
        sha1_hex: fingerprint::hex(&s1),
        sha1_colon: fingerprint::colon_hex(&s1),
        x5t_s256: fingerprint::base64url(&s256),
        spki_sha256_base64: fingerprint::base64(&fingerprint::sha256(&spki)),
    })
}

impl Cert {
    pub fn from_x509(x: &X509) -> Result<Cert> {
        let der = x.to_der().map_err(pki)?;
        let info = inspect::cert_info(&der)?;
        let entry = CertEntry {
            subject: info.subject.clone(),
            issuer: info.issuer.clone(),
            serial: info.serial.clone(),
            not_before: info.not_before,
            not_after: info.not_after,
            key: info.key.algorithm.clone(),
            signature_algorithm: info.signature_algorithm.clone(),
            self_signed: info.self_signed,
            san: info.san.clone(),
            fingerprints: prints(x, &der)?,
            role: None,
            status: None,
        };
        Ok(Cert { entry, info, der })
    }
}

impl Material {
    /// Reads and checks the material of `req`: refuses a missing CA, a missing client
    /// certificate, and a CRL file without a current CRL of every CA.
    pub fn load(ws: &Workspace, profiles: &Profiles, req: &Request<'_>) -> Result<Material> {
        let env = req.env;
        if let Some(rec) = ws.current_leaf(req.tenant, env, Kind::Client)?
            && rec.meta.origin == "import"
        {
            return Material::customer(req, &rec);
        }
        // refuses a ca.crt that is not the CA recorded at creation (a substituted CA is
        // never handed to a gateway)
        let ca = crate::ops::ca::open_for(ws, profiles, env, Some(req.tenant), Kind::Client)?;
        if ca.trust.is_empty() {
            return Err(OpError::NoCaCert {
                env: env.to_string(),
            });
        }
        let client = current_client(ws, req, &ca)?;
        let mut warnings = Vec::new();
        let mut cas = Vec::new();
        let mut crls = Vec::new();
        let mut crl_pem = String::new();
        // every CA a gateway must trust now (old and new during a rotation), each with
        // the current CRL from its own folder
        for (der, loc) in ca.trust.iter().zip(&ca.trust_locs) {
            let x = X509::from_der(der).map_err(pki)?;
            let mut cert = Cert::from_x509(&x)?;
            if let Some(v) = ca.set.by_loc(loc) {
                cert.entry.role = Some(v.entry.role.as_str());
                cert.entry.status = Some(v.entry.status.as_str());
            }
            let crl_path = ws.crl(loc);
            let crl_ders = crl_file(&crl_path, env)?;
            let der = crl_of(&x, &cert.entry.subject, &crl_ders, &crl_path, env)?;
            crls.push(crl_entry(
                &der,
                &cert.entry,
                &client.entry,
                req,
                &mut warnings,
            )?);
            crl_pem.push_str(&pem("X509 CRL", &der));
            if cert.info.not_after <= req.now {
                warnings.push(format!("the CA '{}' has expired", cert.entry.subject));
            }
            cas.push(cert);
        }
        client_warnings(&client, &cas[0], req.now, &mut warnings);
        Ok(Material {
            tenant: req.tenant.to_string(),
            env: env.to_string(),
            tyk_org_id: req.tyk_org_id.to_string(),
            now: req.now,
            tyk_certificate_id: format!(
                "{}{}",
                req.tyk_org_id, client.entry.fingerprints.sha256_hex
            ),
            chain_pem: cas.iter().map(|c| pem("CERTIFICATE", &c.der)).collect(),
            client_pem: pem("CERTIFICATE", &client.der),
            // the longest path a gateway must accept, leaf and trust anchor included:
            // 2 in one tier, 3 in two, 4 while a cross-certificate carries a new root
            depth: ca.verify_depth + 2,
            client,
            cas,
            crls,
            crl_pem,
            warnings,
        })
    }

    /// The material of a certificate an external CA signed (`import`): the customer's
    /// chain stored with it is the trust anchor, handed over as it is, never our CA
    /// (also where the environment has one for its other tenants). The customer runs
    /// its CA's CRL: crl.pem is empty.
    fn customer(
        req: &Request<'_>,
        rec: &crate::workspace::inventory::LeafRecord,
    ) -> Result<Material> {
        let path = rec.cert_path();
        let der = inspect::certificates(&fsutil::read_nofollow(&path)?)
            .map_err(|e| OpError::input(&path, e))?
            .into_iter()
            .next()
            .expect("at least one");
        let client = Cert::from_x509(&X509::from_der(&der).map_err(pki)?)?;
        let chain_path = rec.chain_path();
        let chain = if chain_path.is_file() {
            inspect::certificates(&fsutil::read_nofollow(&chain_path)?)
                .map_err(|e| OpError::input(&chain_path, e))?
        } else {
            Vec::new()
        };
        let cas = chain
            .iter()
            .map(|d| Cert::from_x509(&X509::from_der(d).map_err(pki)?))
            .collect::<Result<Vec<Cert>>>()?;
        if !cas.last().is_some_and(|c| c.entry.self_signed) {
            return Err(OpError::NoTrustAnchor {
                ca_cert: chain_path.clone(),
                chain: chain_path,
            });
        }
        let mut warnings = vec![format!(
            "the certificate of {} was signed by its external CA: the hand-off carries that CA's chain as stored at import, and no CRL (the customer publishes its own)",
            req.tenant
        )];
        for c in &cas {
            if c.info.not_after <= req.now {
                warnings.push(format!("the CA '{}' has expired", c.entry.subject));
            }
        }
        client_warnings(&client, &cas[0], req.now, &mut warnings);
        Ok(Material {
            tenant: req.tenant.to_string(),
            env: req.env.to_string(),
            tyk_org_id: req.tyk_org_id.to_string(),
            now: req.now,
            tyk_certificate_id: format!(
                "{}{}",
                req.tyk_org_id, client.entry.fingerprints.sha256_hex
            ),
            chain_pem: cas.iter().map(|c| pem("CERTIFICATE", &c.der)).collect(),
            client_pem: pem("CERTIFICATE", &client.der),
            depth: cas.len() + 1,
            client,
            cas,
            crls: Vec::new(),
            crl_pem: String::new(),
            warnings,
        })
    }

    /// `mtls-<tenant>-<env>`: the name of the Kubernetes objects and gateway entries.
    pub fn object_name(&self) -> String {
        format!("mtls-{}-{}", self.tenant, self.env)
    }

    /// The earliest nextUpdate of the CRLs, RFC 3339.
    pub fn next_update(&self) -> String {
        self.crls
            .iter()
            .filter_map(|c| c.next_update)
            .min()
            .map(rfc3339)
            .unwrap_or_else(|| "(none)".into())
    }

    /// Whether the chain ends in a self-signed root.
    pub fn root_included(&self) -> bool {
        self.cas.last().is_some_and(|c| c.entry.self_signed)
    }

    /// The placeholders every template may use.
    pub fn vars(&self) -> Vars {
        let c = &self.client.entry;
        let title = format!(
            "mTLS hand-off for tenant {}, environment {}",
            self.tenant, self.env
        );
        Vars::default()
            .with("underline", "=".repeat(title.len()))
            .with("title", title)
            .with("tenant", &self.tenant)
            .with("env", &self.env)
            .with("name", self.object_name())
            .with("depth", self.depth)
            .with("next_update", self.next_update())
            .with("ca_count", self.cas.len())
            .with("subject", &c.subject)
            .with("issuer", &c.issuer)
            .with("serial", &c.serial)
            .with("not_before", rfc3339(c.not_before))
            .with("not_after", rfc3339(c.not_after))
            .with("sha256_colon", &c.fingerprints.sha256_colon)
            .with("sha1_colon", &c.fingerprints.sha1_colon)
            .with("sha1_hex", &c.fingerprints.sha1_hex)
            .with("x5t_s256", &c.fingerprints.x5t_s256)
    }
}

/// The tenant's current client certificate, once the doctor's hand-off checks pass: it
/// chains to the environment's CA, and the CRL is not older than the last one signed.
fn current_client(ws: &Workspace, req: &Request<'_>, ca: &crate::ops::ca::EnvCa) -> Result<Cert> {
    let (tenant, env) = (req.tenant, req.env);
    let rec =
        ws.current_leaf(tenant, env, Kind::Client)?
            .ok_or_else(|| OpError::NoCurrentCert {
                tenant: tenant.to_string(),
                env: env.to_string(),
                kind: Some(Kind::Client),
                need: CertNeed::Handoff,
            })?;
    crate::ops::doctor::check_handoff(ws, ca, &rec)?;
    let path = rec.cert_path();
    let der = inspect::certificates(&fsutil::read_nofollow(&path)?)
        .map_err(|e| OpError::input(&path, e))?
        .into_iter()
        .next()
        .expect("at least one");
    Cert::from_x509(&X509::from_der(&der).map_err(pki)?)
}

/// The CRLs of a CA's CRL file, DER.
fn crl_file(path: &std::path::Path, env: &str) -> Result<Vec<Vec<u8>>> {
    if !path.is_file() {
        return Err(OpError::CrlMissing {
            path: path.to_path_buf(),
            env: env.to_string(),
        });
    }
    Ok(inspect::blocks(&fsutil::read_nofollow(path)?)
        .map_err(|e| OpError::input(path, e))?
        .into_iter()
        .filter(|b| b.label == "X509 CRL" || b.label == "DER")
        .map(|b| b.der)
        .collect())
}

/// The first CRL of `crls` issued and signed by `ca`.
fn crl_of(
    ca: &X509,
    subject: &str,
    crls: &[Vec<u8>],
    path: &std::path::Path,
    env: &str,
) -> Result<Vec<u8>> {
    let key = ca.public_key().map_err(pki)?;
    let signed_by_ca = |d: &Vec<u8>| {
        X509Crl::from_der(d).is_ok_and(|crl| {
            let same_issuer = crl
                .issuer_name()
                .try_cmp(ca.subject_name())
                .is_ok_and(|o| o.is_eq());
            same_issuer && crl.verify(&key).unwrap_or(false)
        })
    };
    crls.iter()
        .find(|d| signed_by_ca(d))
        .cloned()
        .ok_or_else(|| OpError::CrlNotSigned {
            path: path.to_path_buf(),
            subject: subject.to_string(),
            env: env.to_string(),
        })
}

/// The manifest entry of a CA's CRL; refuses one past its nextUpdate.
fn crl_entry(
    der: &[u8],
    ca: &CertEntry,
    client: &CertEntry,
    req: &Request<'_>,
    warnings: &mut Vec<String>,
) -> Result<CrlEntry> {
    let env = req.env;
    let ci = inspect::crl_info(der)?;
    match ci.next_update {
        Some(nu) if nu <= req.now => {
            return Err(OpError::CrlExpired {
                subject: ca.subject.clone(),
                next_update: nu,
                env: env.to_string(),
            });
        }
        Some(nu) if nu - req.now < time::Duration::days(2) => warnings.push(format!(
            "the CRL of '{}' expires on {}: re-sign it soon with `mtlsctl crl --env {env}` and send it again",
            ca.subject,
            rfc3339(nu)
        )),
        _ => {}
    }
    if ci.revoked.iter().any(|r| r.serial == client.serial) && ca.subject == client.issuer {
        warnings.push(format!(
            "the tenant's current certificate {} is listed in the CRL: issue a new one before handing off",
            client.serial
        ));
    }
    Ok(CrlEntry {
        issuer: ci.issuer,
        crl_number: ci.crl_number,
        this_update: ci.this_update,
        next_update: ci.next_update,
        revoked: ci.revoked.len(),
    })
}

fn client_warnings(client: &Cert, issuing: &Cert, now: OffsetDateTime, out: &mut Vec<String>) {
    let c = &client.entry;
    if client.info.not_after <= now {
        out.push(format!(
            "the tenant's certificate {} expired on {}: renew it",
            c.serial,
            rfc3339(client.info.not_after)
        ));
    }
    if c.issuer != issuing.entry.subject {
        out.push(format!(
            "the tenant's certificate is issued by '{}', not by the environment CA '{}'",
            c.issuer, issuing.entry.subject
        ));
    }
}
