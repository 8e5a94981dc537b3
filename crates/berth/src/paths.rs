//! Where berth keeps its files, and the connection file `berth dev` writes for clients.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The data directory: the flag, else `$XDG_DATA_HOME/berth` (~/.local/share/berth).
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    match flag {
        Some(path) => path.to_path_buf(),
        None => dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("berth"),
    }
}

/// What a client needs to reach a `berth dev`: written to `<data dir>/connection.json`
/// (mode 0600, it holds the secret key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The certificate to trust for an `https` endpoint (the one `berth dev` generated
    /// or was given); absent for plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
}

pub fn connection_file(data_dir: &Path) -> PathBuf {
    data_dir.join("connection.json")
}

pub fn read_connection(data_dir: &Path) -> anyhow::Result<Connection> {
    let path = connection_file(data_dir);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Creates the data directory (and its parents) readable by its owner only, and
/// tightens one an older berth made: the store in it holds environment values.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    berth_server::private_files::create_private_dir(path).with_context(|| {
        format!(
            "cannot create the data directory {} readable by its owner only",
            path.display()
        )
    })
}

/// Writes a file only its owner may read (mode 0600), whole or not at all.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    berth_server::private_files::write_private(path, contents)
        .with_context(|| format!("writing {}", path.display()))
}
