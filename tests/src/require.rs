use std::path::{Path, PathBuf};

/// Paths of the MariaDB server programs the harness runs.
#[derive(Clone, Debug)]
pub struct MariaDbBinaries {
    /// `mariadbd`.
    pub server: PathBuf,
    /// `mariadb-install-db`.
    pub install_db: PathBuf,
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/usr/local/sbin",
                "/usr/local/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Locate `mariadbd` and `mariadb-install-db`, or explain exactly what to install.
pub fn mariadb_binaries() -> Result<MariaDbBinaries, String> {
    let server = find("mariadbd");
    let install_db = find("mariadb-install-db");
    match (server, install_db) {
        (Some(server), Some(install_db)) => Ok(MariaDbBinaries { server, install_db }),
        _ => Err(
            "MariaDB server not found: this test needs `mariadbd` and `mariadb-install-db` \
                  from Debian's `mariadb-server` package (run `apt-get install mariadb-server` \
                  as root, or scripts/test, which installs it)"
                .to_string(),
        ),
    }
}
