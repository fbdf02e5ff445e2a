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
    /// Its staged successor (staged rollover for pinning gateways): while there is one,
    /// every pin lists both.
    pub staged: Option<Cert>,
    /// With a staged successor: add the new pin by, the platform switches on, remove
    /// the old pin after (from the renewal and the tenant's `handoff.overlap`).
    pub rollover: Option<[OffsetDateTime; 3]>,
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
        let (staged, rollover) = match ws.staged_leaf(req.tenant, env, Kind::Client)? {
            Some(rec) => {
                let path = rec.cert_path();
                let der = inspect::certificates(&fsutil::read_nofollow(&path)?)
                    .map_err(|e| OpError::input(&path, e))?
                    .into_iter()
                    .next()
                    .expect("at least one");
                let cert = Cert::from_x509(&X509::from_der(&der).map_err(pki)?)?;
                let overlap = profiles
                    .handoff(req.tenant)
                    .unwrap_or_default()
                    .overlap
                    .to_time();
                let from = rec.meta.issued_at;
                let switch = from + overlap;
                (
                    Some(cert),
                    Some([from + overlap / 2, switch, switch + overlap]),
                )
            }
            None => (None, None),
        };
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
            staged,
            rollover,
            cas,
            crls,
            crl_pem,
            warnings,
        })
    }

    /// The client certificates a pinning gateway must accept now: the current one, and
    /// its staged successor while there is one.
    pub fn pinned(&self) -> Vec<&Cert> {
        std::iter::once(&self.client).chain(&self.staged).collect()
    }

    /// The README's staged-rollover section (empty without a staged successor).
    pub fn rollover_text(&self) -> String {
        let (Some(s), Some([add, switch, remove])) = (&self.staged, &self.rollover) else {
            return String::new();
        };
        format!(
            "\nStaged rollover (your gateway pins our certificate)\n---------------------------------------------------\nThis hand-off carries two client certificates: the current one ({}) and its\nsuccessor ({}, client-staged.pem). Every pin file lists both.\n- add the new pin by        {}\n- we switch to the new one on {}\n- remove the old pin after  {}\nSHA-256 of the successor   {}\nSHA-1 of the successor     {}\n",
            self.client.entry.serial,
            s.entry.serial,
            rfc3339(*add),
            rfc3339(*switch),
            rfc3339(*remove),
            s.entry.fingerprints.sha256_colon,
            s.entry.fingerprints.sha1_colon,
        )
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
            staged: None,
            rollover: None,
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

    /// The revocation pointers of the client certificate and the CAs above it.
    pub fn revocation(&self) -> super::RevocationEntry {
        let mut crl_urls: Vec<String> = Vec::new();
        for u in std::iter::once(&self.client.info)
            .chain(self.cas.iter().map(|c| &c.info))
            .filter_map(|i| i.revocation.crl.clone())
        {
            if !crl_urls.contains(&u) {
                crl_urls.push(u);
            }
        }
        super::RevocationEntry {
            ocsp_url: self.client.info.revocation.ocsp.clone(),
            crl_urls,
        }
    }

    /// Whether the chain ends in a self-signed root.
    pub fn root_included(&self) -> bool {
        self.cas.last().is_some_and(|c| c.entry.self_signed)
    }

    /// The placeholders every template may use.
    pub fn vars(&self) -> Vars {
        let c = &self.client.entry;
        let rev = self.revocation();
        let crl_urls = if rev.crl_urls.is_empty() {
            "(none)".to_string()
        } else {
            rev.crl_urls.join(" ")
        };
        let freshness = if rev.crl_urls.is_empty() {
            format!(
                "Our certificates name no CRL distribution point: crl.pem is a static file.\nWe send a fresh one before its next update ({}); install it and reload.",
                self.next_update()
            )
        } else {
            format!(
                "We re-sign each CRL well before its next update and publish it at the\nURL each certificate names (CRL distribution point): {crl_urls}\nA gateway that fetches CRLs from there stays current on its own; one that\nloads crl.pem as a file needs the fresh file before {}.",
                self.next_update()
            )
        };
        let ocsp = match &rev.ocsp_url {
            Some(u) => format!("Our client certificate names an OCSP responder: {u}"),
            None => "Our certificates name no OCSP responder.".to_string(),
        };
        let nginx_ocsp = match &rev.ocsp_url {
            Some(u) => format!(
                "# Revocation by OCSP (nginx 1.19+): asks our responder about each client\n# certificate; with it, ssl_crl above can go.\nssl_ocsp               on;\n# ssl_ocsp_responder   {u};   # the URL the certificates name is used by default\n# ssl_ocsp_cache       shared:mtls_ocsp:1m;\n# resolver             127.0.0.53;   # needed when the responder's URL names a host"
            ),
            None => "# Revocation by OCSP (nginx 1.19+) once our certificates name a responder:\n# ssl_ocsp               on;".to_string(),
        };
        let azure = match &rev.ocsp_url {
            Some(u) => format!(
                "3. Application Gateway checks revocation by OCSP only, not by CRL. Our client\n   certificate names the OCSP responder {u}: in the SSL profile's\n   Client Authentication, turn on revocation checking (OCSP;
   verifyClientRevocation: OCSP in ARM and the CLI). It works once\n   that responder is reachable from the gateway's subnet; a revoked\n   certificate is then refused without any file from us."
            ),
            None => "3. Application Gateway checks revocation by OCSP only, not by CRL: our certificates\n   carry no OCSP responder, so a revoked certificate is NOT refused by the gateway.\n   Ask us to remove access another way (for example the backend's credentials).".to_string(),
        };
        let f5 = match (&rev.ocsp_url, rev.crl_urls.first()) {
            (_, Some(u)) => format!(
                "4. Instead of re-importing crl.pem, let the BIG-IP fetch it: a CRLDP\n   configuration object (Local Traffic > Profiles > Authentication > CRLDP)\n   pointing at the distribution point in our certificates ({u}),\n   used by a client-cert authentication profile; or an OCSP responder object{}.\n   With a static CRL file, re-import the fresh one we send before {}.",
                rev.ocsp_url
                    .as_ref()
                    .map(|o| format!(" for {o}"))
                    .unwrap_or_default(),
                self.next_update()
            ),
            (Some(o), None) => format!(
                "4. Instead of a static CRL, an OCSP responder object for {o}, used by a\n   client-cert authentication profile. With crl.pem, re-import the fresh one we\n   send before {}.",
                self.next_update()
            ),
            (None, None) => format!(
                "4. The CRL is a static file: re-import the fresh one we send before {}.",
                self.next_update()
            ),
        };
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
            .with("crl_urls", crl_urls)
            .with(
                "ocsp_url",
                rev.ocsp_url.clone().unwrap_or_else(|| "(none)".into()),
            )
            .with("crl_freshness", freshness)
            .with("ocsp_note", ocsp)
            .with("nginx_ocsp", nginx_ocsp)
            .with("azure_revocation", azure)
            .with("f5_revocation", f5)
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
