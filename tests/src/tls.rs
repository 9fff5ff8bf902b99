//! Test certificates made with `openssl`: a CA, per-node server certificates, and an
//! unrelated CA for negative tests.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files of a test PKI.
#[derive(Clone, Debug)]
pub struct TestPki {
    /// The CA that signed the server certificates.
    pub ca: PathBuf,
    /// A CA that signed nothing here (verification against it must fail).
    pub other_ca: PathBuf,
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("run openssl: {e} (install the `openssl` package)"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn new_ca(dir: &Path, name: &str) -> Result<PathBuf, String> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.pem"),
        ],
    )?;
    Ok(dir.join(format!("{name}.pem")))
}

impl TestPki {
    /// Create a CA and an unrelated CA in `dir`.
    pub fn create(dir: &Path) -> Result<TestPki, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        Ok(TestPki {
            ca: new_ca(dir, "ca")?,
            other_ca: new_ca(dir, "other-ca")?,
            dir: dir.to_path_buf(),
        })
    }

    /// A server certificate and key for `name` valid for IP address `san`, signed by the CA.
    /// Returns (certificate, key).
    pub fn server_cert(&self, name: &str, san: Ipv4Addr) -> Result<(PathBuf, PathBuf), String> {
        let (key, csr, cert, ext) = (
            format!("{name}-key.pem"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(self.dir.join(&ext), format!("subjectAltName=IP:{san}\n"))
            .map_err(|e| e.to_string())?;
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
        )?;
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        )?;
        Ok((self.dir.join(cert), self.dir.join(key)))
    }
}
