//! Which certificate authorities the client trusts: the `ca_file` setting.
//!
//! Three sources, chosen with numbers (`bench/tls.sh`, bench/README.md "TLS trust store"):
//!
//! - **bundled** (no `ca_file`, the default): Mozilla's roots compiled into the binary
//!   (webpki-roots, already parsed), so an event pays nothing to load them. They change only
//!   with a pagerpipe release, which is what the public incident services need.
//! - **`system`** (`ca_file: system`): the operating system's store, as OpenSSL finds it: the
//!   files named by `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the distribution's bundle
//!   file (`/etc/ssl/certs/ca-certificates.crt` on Debian), read with `rustls-native-certs`
//!   (`load_system` says why not the directory too). For a CA that `update-ca-certificates`
//!   installs company-wide. Read and parsed by every event that is delivered: about 1 ms more
//!   than the bundled roots here (bench/README.md, "TLS trust store").
//! - **a PEM file** (`ca_file: /etc/pagerpipe/ca.pem`): only the certificates in that file: a
//!   private CA, or the CA of a TLS-inspecting proxy. A relative path is relative to the
//!   handler's working directory; write `./system` for a file that is called `system`.
//!
//! Errors here are configuration errors (exit 78): an unreadable file, a file without a single
//! PEM certificate, an empty system store.

use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, PemItem, RootCerts};

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Mozilla's roots, compiled in (the default).
    Bundled,
    /// The operating system's store (`ca_file: system`).
    System,
    /// The certificates of one PEM file (`ca_file: PATH`).
    File(PathBuf),
}

impl Trust {
    /// From the `ca_file` setting: absent → [`Trust::Bundled`], the word `system` →
    /// [`Trust::System`], anything else → [`Trust::File`].
    pub fn from_setting(ca_file: Option<&Path>) -> Trust {
        match ca_file {
            None => Trust::Bundled,
            Some(p) if p.as_os_str() == "system" => Trust::System,
            Some(p) => Trust::File(p.to_path_buf()),
        }
    }

    /// The roots for ureq. Errors (exit 78): unreadable `ca_file`, no PEM certificate in it,
    /// no certificate in the system store.
    pub fn root_certs(&self) -> anyhow::Result<RootCerts> {
        match self {
            Trust::Bundled => Ok(RootCerts::WebPki),
            Trust::File(path) => {
                let pem = read_ca_file(path)?;
                let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    anyhow::bail!("ca_file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)", path.display());
                }
                Ok(RootCerts::new_with_certs(&certs))
            }
            Trust::System => {
                let found = load_system();
                if found.certs.is_empty() {
                    let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                    anyhow::bail!(
                        "ca_file system: no CA certificate found in the system trust store{why} \
                         (install ca-certificates, or set SSL_CERT_FILE, or name a PEM file in ca_file)"
                    );
                }
                Ok(found.certs.into_iter().map(|der| Certificate::from_der(der.as_ref()).to_owned()).collect::<Vec<_>>().into())
            }
        }
    }

    /// What to do when the server's certificate is signed by a CA this trust does not hold.
    pub fn untrusted_hint(&self) -> String {
        match self {
            Trust::Bundled => "set ca_file to the PEM file of the CA that signed it (a private CA, or a \
                               TLS-inspecting proxy's), or to `system` for the OS trust store"
                .into(),
            Trust::System => "the system trust store does not hold the CA that signed it: add it there \
                              (update-ca-certificates) or name its PEM file in ca_file"
                .into(),
            Trust::File(p) => format!("ca_file {} does not hold the CA that signed it", p.display()),
        }
    }
}

/// Largest `ca_file` read: 4 MiB (Mozilla's whole bundle is about 220 KB).
pub const MAX_CA_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The bytes of the PEM file `ca_file` names, at most [`MAX_CA_FILE_BYTES`]
/// ([`crate::files::read_configured`]: a FIFO or a device is refused without blocking).
///
/// Errors (exit 78): one line naming the file and what is wrong with it.
pub(crate) fn read_ca_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    crate::files::read_configured(path, MAX_CA_FILE_BYTES).map_err(|why| match why {
        crate::files::NotReadable::Io(e) => anyhow::anyhow!("cannot read ca_file {}: {e}; fix ca_file / --ca-file", path.display()),
        why => anyhow::anyhow!("ca_file {} {why}; give a PEM file in ca_file / --ca-file", path.display()),
    })
}

/// The system store as OpenSSL finds it, without reading the same certificates twice:
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` when either is set (both, when both are); else the
/// distribution's bundle file alone when there is one (`/etc/ssl/certs/ca-certificates.crt` on
/// Debian, `/etc/pki/tls/certs/ca-bundle.crt` on RHEL; `update-ca-certificates` /
/// `update-ca-trust` write every trusted CA into it), else the hashed directory. Reading the
/// directory too, as `rustls_native_certs::load_native_certs` does, parses every certificate a
/// second time from ~300 small files: +3.5 ms per event for nothing (bench/README.md).
pub(crate) fn load_system() -> rustls_native_certs::CertificateResult {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
        return rustls_native_certs::load_native_certs();
    }
    match openssl_probe::probe().cert_file {
        Some(bundle) => rustls_native_certs::load_certs_from_paths(Some(&bundle), None),
        None => rustls_native_certs::load_native_certs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_words() {
        assert_eq!(Trust::from_setting(None), Trust::Bundled);
        assert_eq!(Trust::from_setting(Some(Path::new("system"))), Trust::System);
        assert_eq!(Trust::from_setting(Some(Path::new("./system"))), Trust::File("./system".into()));
        assert_eq!(Trust::from_setting(Some(Path::new("/etc/ca.pem"))), Trust::File("/etc/ca.pem".into()));
    }

    #[test]
    fn a_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\nnot a certificate\n").unwrap();
        let e = Trust::File(p.clone()).root_certs().unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate") && e.contains(&p.display().to_string()), "{e}");
        let e = Trust::File(dir.path().join("missing.pem")).root_certs().unwrap_err().to_string();
        assert!(e.starts_with("cannot read ca_file") && e.contains("missing.pem"), "{e}");
        let e = Trust::File(dir.path().to_path_buf()).root_certs().unwrap_err().to_string();
        assert!(e.contains("is a directory, not a regular file"), "{e}");
    }
}
