use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder};

use super::template::render;
use super::*;

fn x509(
    subject: &[(&str, &str)],
    issuer: Option<(&X509, &PKey<Private>)>,
) -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    for (k, v) in subject {
        name.append_entry_by_text(k, v).unwrap();
    }
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(0x1234_5678)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    let (issuer_name, signer) = match issuer {
        Some((c, k)) => (c.subject_name().to_owned().unwrap(), k.clone()),
        None => (name.to_owned().unwrap(), key.clone()),
    };
    b.set_issuer_name(&issuer_name).unwrap();
    if issuer.is_some() {
        let san = SubjectAlternativeName::new()
            .dns("client.example")
            .uri("spiffe://platform/tenant/acme/prod")
            .email("ops@example.com")
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(san).unwrap();
    }
    b.sign(&signer, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// Material for a tenant whose subject needs escaping, from a throwaway CA: every
/// placeholder of every gateway has a value.
pub(crate) fn sample_material() -> Material {
    let (ca, ca_key) = x509(&[("O", "Example"), ("CN", "Example prod mTLS CA")], None);
    let (client, _) = x509(
        &[
            ("O", "Example"),
            ("OU", "Globex, Intl <R&D>"),
            ("CN", "acme-prod-client"),
        ],
        Some((&ca, &ca_key)),
    );
    let now = OffsetDateTime::now_utc();
    let ca = Cert::from_x509(&ca).unwrap();
    let client = Cert::from_x509(&client).unwrap();
    let crl_pem = "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n".to_string();
    Material {
        staged: None,
        rollover: None,
        tenant: "acme".into(),
        env: "prod".into(),
        tyk_org_id: "org42".into(),
        now,
        tyk_certificate_id: format!("org42{}", client.entry.fingerprints.sha256_hex),
        chain_pem: crate::pki::pem("CERTIFICATE", &ca.der),
        client_pem: crate::pki::pem("CERTIFICATE", &client.der),
        crls: vec![CrlEntry {
            issuer: ca.entry.subject.clone(),
            crl_number: Some("01".into()),
            this_update: now,
            next_update: Some(now + time::Duration::days(7)),
            revoked: 0,
        }],
        crl_pem,
        depth: 2,
        client,
        cas: vec![ca],
        warnings: Vec::new(),
    }
}

#[test]
fn formats_round_trip() {
    for f in Format::all() {
        assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
    }
    let err = "bogus".parse::<Format>().unwrap_err();
    assert!(err.contains("unknown export format 'bogus'") && err.ends_with(", or all"));
    assert_eq!(Format::default_format().as_str(), "pem");
}

#[test]
fn registry_names_are_unique_folder_names() {
    let mut seen = BTreeSet::new();
    for g in REGISTRY {
        let n = g.name();
        assert!(seen.insert(n), "{n} is registered twice");
        assert!(n != "all" && !n.is_empty());
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{n} is not a plain folder name"
        );
        assert!(!g.title().is_empty());
    }
}

/// Every template under templates/export, rendered with the values its gateway (or, at
/// the top, the material) gives: no placeholder is left, and no folder is orphaned.
#[test]
fn every_template_renders_completely() {
    let m = sample_material();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/export");
    let mut folders = BTreeSet::new();
    let mut rendered = 0;
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (vars, files) = if p.is_dir() {
            let g = REGISTRY
                .iter()
                .find(|g| g.name() == name)
                .unwrap_or_else(|| panic!("templates/export/{name} belongs to no gateway"));
            folders.insert(name.clone());
            let files = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path());
            (g.vars(&m), files.collect::<Vec<_>>())
        } else {
            (m.vars(), vec![p.clone()])
        };
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let out = render(&text, &vars);
            assert!(
                !out.contains("{{"),
                "{} leaves a placeholder:\n{out}",
                f.display()
            );
            rendered += 1;
        }
    }
    let names: BTreeSet<String> = REGISTRY.iter().map(|g| g.name().to_string()).collect();
    assert_eq!(folders, names, "every gateway has its templates folder");
    assert!(rendered > REGISTRY.len());
}

#[test]
fn every_gateway_writes_complete_public_files() {
    let m = sample_material();
    for g in REGISTRY {
        let steps = g.readme_steps(&m);
        assert!(
            steps.ends_with('\n') && !steps.contains("{{"),
            "{}",
            g.name()
        );
        let mut paths = BTreeSet::new();
        for f in g.files(&m).unwrap() {
            assert!(
                paths.insert(f.path.clone()),
                "{}/{} twice",
                g.name(),
                f.path
            );
            assert!(
                f.role.contains(": "),
                "{}/{}: role {}",
                g.name(),
                f.path,
                f.role
            );
            let text = String::from_utf8_lossy(&f.bytes);
            assert!(!text.contains("{{"), "{}/{}:\n{text}", g.name(), f.path);
            assert!(!text.contains("PRIVATE KEY"), "{}/{}", g.name(), f.path);
        }
    }
}

#[test]
fn iis_mapping_uses_the_parsed_subject() {
    let m = sample_material();
    let iis = REGISTRY.iter().find(|g| g.name() == "iis").unwrap();
    let files = iis.files(&m).unwrap();
    let xml = files.iter().find(|f| f.path == "web.config.xml").unwrap();
    let xml = String::from_utf8_lossy(&xml.bytes);
    assert!(
        xml.contains("certificateSubField=\"OU\" matchCriteria=\"Globex, Intl &lt;R&amp;D&gt;\""),
        "{xml}"
    );
    assert!(xml.contains("certificateSubField=\"O\" matchCriteria=\"Example\""));
}

#[test]
fn zip_is_deterministic() {
    let mut m = BTreeMap::new();
    m.insert("b.txt".to_string(), ("r".to_string(), b"two".to_vec()));
    m.insert("a/x.txt".to_string(), ("r".to_string(), b"one".to_vec()));
    let a = zip_bytes(&m).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = zip_bytes(&m).unwrap();
    assert_eq!(a, b);
}

#[test]
fn pem_has_64_column_lines() {
    let p = crate::pki::pem("CERTIFICATE", &[0u8; 100]);
    assert!(p.starts_with("-----BEGIN CERTIFICATE-----\n"));
    assert!(p.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
}
