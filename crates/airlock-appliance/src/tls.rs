//! The appliance's own TLS material, created by `airlockd init`: a local certificate authority
//! and a server certificate it signed (ECDSA P-256, rcgen) for `airlockd serve --tls`.
//!
//! ```text
//! DATA/tls/ca.pem        the CA certificate: give it to the rack's trust stores
//!                        (k3s registries.yaml `configs.<host>.tls.ca_file`, podman certs.d)
//! DATA/tls/ca.key        the CA key (0600); only needed to issue a new server certificate
//! DATA/tls/server.pem    server certificate followed by the CA certificate
//! DATA/tls/server.key    the server key (0600)
//! ```
//!
//! The server certificate names (subject alternative names) are configurable
//! (`airlockd init --tls-name`); IP addresses become IP SANs. Defaults: [`default_names`].

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::ApplianceError;

/// `localhost`, `127.0.0.1`, `::1` and this machine's host name.
pub fn default_names() -> Vec<String> {
    let mut v = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() && h != "localhost" {
            v.push(h.to_string());
        }
    }
    v
}

fn err(e: rcgen::Error) -> ApplianceError {
    ApplianceError::Usage(format!("creating the appliance TLS certificates: {e}"))
}

/// The calendar year now (UTC), from the same civil-date conversion as every timestamp.
fn year_now() -> i32 {
    airlock_core::time::format_rfc3339(airlock_core::time::now())[..4]
        .parse()
        .unwrap_or(1970)
}

/// Creates `DATA/tls/` (refusing to overwrite an existing CA) with a CA valid for 10 years and
/// a server certificate for `names` valid for 2 years.
pub fn create(root: &Path, names: &[String]) -> Result<(), ApplianceError> {
    if names.is_empty() {
        return Err(ApplianceError::Usage(
            "at least one TLS name is needed for the server certificate".into(),
        ));
    }
    let dir = root.join("tls");
    fs::create_dir_all(&dir).map_err(crate::io(&dir, "create directory"))?;
    if dir.join("ca.pem").exists() {
        return Err(ApplianceError::Usage(format!(
            "{} exists; not replacing the appliance CA",
            dir.join("ca.pem").display()
        )));
    }
    let y = year_now();
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name
        .push(DnType::CommonName, "airlock appliance CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "airlock");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
    ca.not_after = rcgen::date_time_ymd(y + 10, 1, 1);
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

    let mut sp = CertificateParams::new(names.to_vec()).map_err(err)?;
    sp.distinguished_name.push(DnType::CommonName, &names[0]);
    sp.is_ca = IsCa::ExplicitNoCa;
    sp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    sp.not_before = rcgen::date_time_ymd(y - 1, 1, 1);
    sp.not_after = rcgen::date_time_ymd(y + 2, 1, 1);
    let key = KeyPair::generate().map_err(err)?;
    let cert = sp.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;

    write_new(
        &dir.join("ca.key"),
        ca_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_new(
        &dir.join("server.key"),
        key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_new(
        &dir.join("server.pem"),
        format!("{}{}", cert.pem(), ca_cert.pem()).as_bytes(),
        0o644,
    )?;
    // The CA certificate last: its presence marks the set complete.
    write_new(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), ApplianceError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(crate::io(path, "create"))?;
    f.write_all(data).map_err(crate::io(path, "write"))?;
    f.sync_all().map_err(crate::io(path, "sync"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_ca_and_server_cert_once() {
        let d = tempfile::tempdir().unwrap();
        create(d.path(), &["airlock.local".into(), "10.0.0.5".into()]).unwrap();
        for f in ["ca.pem", "ca.key", "server.pem", "server.key"] {
            assert!(d.path().join("tls").join(f).exists(), "{f}");
        }
        let chain = fs::read_to_string(d.path().join("tls/server.pem")).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(create(d.path(), &["x".into()]).is_err());
    }
}
