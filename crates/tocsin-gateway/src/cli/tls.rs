//! The command line's TLS side: `init --tls-self-signed HOST` (a self-signed pair for
//! a firm's LAN, where no public CA can vouch for `gateway.cabinet.lan` or
//! `192.168.1.10`: clients check its fingerprint instead). SIGHUP, which asks the
//! running gateway to read its certificate again, is in `signals.rs`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Args;

use crate::config::tls_config_text;
use crate::listener::tls::fingerprint;

/// Where `init` writes the pair, relative to the data dir (and so in `[tls]`).
const CERT_FILE: &str = "tls/cert.pem";
/// The key's file, readable by the gateway's user only.
const KEY_FILE: &str = "tls/key.pem";
/// Five years. Clients pin a self-signed certificate by its fingerprint, so each
/// renewal means confirming a new fingerprint on every device: a short life buys
/// nothing here. The expiry warning starts 14 days before the end.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
/// Backdated by a day: a client whose clock is a little behind still accepts it.
const BACKDATE: Duration = Duration::from_secs(24 * 3600);

/// Flags of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Also create a self-signed TLS certificate for HOST (a DNS name or an IP
    /// address, as clients will type it; repeat the flag or separate with commas for
    /// several) in tls/, and turn [tls] on in config.toml.
    #[arg(long = "tls-self-signed", value_name = "HOST", value_delimiter = ',')]
    pub tls_self_signed: Vec<String>,
}

/// A pair `init` wrote.
#[derive(Debug)]
pub struct SelfSignedFiles {
    /// The names it is valid for, first one in the URL.
    hosts: Vec<String>,
    /// The leaf's SHA-256 fingerprint.
    fingerprint: String,
}

impl SelfSignedFiles {
    /// The `[tls]` section pointing at the pair.
    pub fn config_text(&self) -> String {
        tls_config_text(CERT_FILE, KEY_FILE)
    }

    /// Tells the administrator what clients must check, and where they connect.
    pub fn print(&self, data_dir: &Path, listen: SocketAddr) {
        let host = match self.hosts[0].parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => self.hosts[0].clone(),
        };
        eprintln!(
            "wrote a self-signed TLS certificate for {} to {} (key: {}); clients must trust it: \
             have each one check this fingerprint when it first connects",
            self.hosts.join(", "),
            data_dir.join(CERT_FILE).display(),
            data_dir.join(KEY_FILE).display(),
        );
        if listen.ip().is_loopback() && self.hosts.iter().any(|host| !is_loopback(host)) {
            eprintln!(
                "listen is {listen}: other machines cannot reach it; set listen = \"0.0.0.0:{}\" in config.toml",
                listen.port()
            );
        }
        println!("SHA-256 fingerprint: {}", self.fingerprint);
        println!("https://{host}:{}", listen.port());
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// With `--tls-self-signed`: checks the hosts, then writes the pair (never over an
/// existing file). Runs before config.toml is written, so a refusal leaves nothing
/// half done.
pub fn self_signed_for_init(
    data_dir: &Path,
    args: &InitArgs,
) -> anyhow::Result<Option<SelfSignedFiles>> {
    if args.tls_self_signed.is_empty() {
        return Ok(None);
    }
    let mut hosts = Vec::new();
    for raw in &args.tls_self_signed {
        let host = parse_host(raw)?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    let (cert_pem, key_pem, fingerprint) = generate(&hosts, SystemTime::now())?;
    let cert_path = data_dir.join(CERT_FILE);
    let key_path = data_dir.join(KEY_FILE);
    for path in [&cert_path, &key_path] {
        anyhow::ensure!(
            !path.exists(),
            "{} already exists: remove it, or leave out --tls-self-signed and set [tls] in config.toml to use it",
            path.display()
        );
    }
    if let Some(dir) = cert_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_new(&key_path, &key_pem, 0o600)?;
    write_new(&cert_path, &cert_pem, 0o644)?;
    Ok(Some(SelfSignedFiles { hosts, fingerprint }))
}

/// A host as clients will type it: an IP address or a DNS name (lower-cased).
fn parse_host(raw: &str) -> anyhow::Result<String> {
    let host = raw.trim();
    let unbracketed = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    anyhow::ensure!(
        host.len() <= 253 && host.split('.').all(label_ok),
        "--tls-self-signed takes a host name or an IP address as clients will type it \
         (e.g. gateway.cabinet.lan or 192.168.1.10), not {raw:?}"
    );
    Ok(host.to_ascii_lowercase())
}

/// A self-signed ECDSA P-256 pair for `hosts`: (certificate PEM, key PEM,
/// fingerprint).
fn generate(hosts: &[String], now: SystemTime) -> anyhow::Result<(String, String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, hosts[0].as_str());
    name.push(
        rcgen::DnType::OrganizationName,
        "Tocsin gateway (self-signed)",
    );
    params.distinguished_name = name;
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + SELF_SIGNED_VALIDITY).into();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    // No keyUsage extension: OpenSSL only takes a self-signed certificate as its own
    // issuer when keyUsage allows certificate signing or is absent.
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem(), fingerprint(cert.der())))
}

/// Creates `path` with `mode` from the start (a key is never readable by others, not
/// even for a moment).
fn write_new(path: &PathBuf, contents: &str, mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(path)
        .map_err(|err| anyhow::anyhow!("cannot create {}: {err}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listener::Tls;

    #[test]
    fn hosts_are_names_or_addresses() {
        assert_eq!(parse_host("192.168.1.10").expect("v4"), "192.168.1.10");
        assert_eq!(parse_host("[::1]").expect("v6"), "::1");
        assert_eq!(
            parse_host("Gateway.Cabinet.lan").expect("dns"),
            "gateway.cabinet.lan"
        );
        for bad in [
            "https://gateway.lan",
            "gateway.lan:7850",
            "",
            "a..b",
            "-a.lan",
        ] {
            let err = parse_host(bad).expect_err(bad).to_string();
            assert!(err.contains("--tls-self-signed takes"), "{err}");
        }
    }

    #[test]
    fn the_generated_pair_loads_and_names_every_host() {
        let hosts = vec!["127.0.0.1".to_owned(), "gateway.cabinet.lan".to_owned()];
        let (cert, key, printed) = generate(&hosts, SystemTime::now()).expect("generated");
        let dir = tempfile::tempdir().expect("a temp dir");
        let paths = crate::listener::tls::CertPaths {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&paths.cert, &cert).expect("cert");
        std::fs::write(&paths.key, &key).expect("key");
        let tls = Tls::load(paths, None, crate::clock::Clock::system()).expect("loads");
        assert_eq!(tls.fingerprint(), printed);
        assert_eq!(tls.expiry_warning(), None);
        let der = x509_parser::pem::parse_x509_pem(cert.as_bytes())
            .expect("PEM")
            .1
            .contents;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).expect("X.509");
        let names = format!("{:?}", parsed.subject_alternative_name());
        assert!(
            names.contains("127.0.0.1") || names.contains("[127, 0, 0, 1]"),
            "{names}"
        );
        assert!(names.contains("gateway.cabinet.lan"), "{names}");
    }

    #[cfg(unix)]
    #[test]
    fn init_writes_the_key_for_the_owner_only_and_never_over_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let args = InitArgs {
            tls_self_signed: vec!["localhost".to_owned()],
        };
        let files = self_signed_for_init(dir.path(), &args)
            .expect("written")
            .expect("asked for");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(files.config_text().contains("cert = \"tls/cert.pem\""));
        let again = self_signed_for_init(dir.path(), &args).expect_err("files exist");
        assert!(again.to_string().contains("already exists"), "{again}");
    }
}
