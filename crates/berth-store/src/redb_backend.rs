use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use crate::backend::{Backend, Quarantined, Record, StoreError};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// Records that could not be read back: key -> `{"reason": ..., "value": ...}`.
const QUARANTINE: TableDefinition<&str, &[u8]> = TableDefinition::new("quarantine");
/// The store's own figures: `revision`, the revision of the last write, so that a
/// revision is never reused across restarts (agents compare them).
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";

/// The embedded store: one redb file. Every write is one fsynced transaction.
pub struct RedbBackend {
    database: Database,
    path: PathBuf,
}

impl RedbBackend {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let error = |message: String| StoreError::Backend {
            path: path.display().to_string(),
            message,
        };
        // The store holds environment values: only its owner may read it. Create the
        // file private before redb opens it, and tighten one an older berth made.
        restrict_to_owner(path).map_err(|e| error(format!("cannot make it private: {e}")))?;
        // A small page cache: berth's state is small and `berth dev` must stay light.
        let database = Database::builder()
            .set_cache_size(4 * 1024 * 1024)
            .create(path)
            .map_err(|e| error(e.to_string()))?;
        let backend = RedbBackend {
            database,
            path: path.to_path_buf(),
        };
        // Make sure the tables exist so the first read finds them.
        let revision = backend.revision_if_stored()?.unwrap_or(0);
        backend.write(&[], revision)?;
        Ok(backend)
    }

    /// The stored revision, or `None` before the first write made the table.
    fn revision_if_stored(&self) -> Result<Option<u64>, StoreError> {
        let transaction = self.database.begin_read().map_err(|e| self.error(e))?;
        let table = match transaction.open_table(META) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(error) => return Err(self.error(error)),
        };
        let revision = table.get(REVISION).map_err(|e| self.error(e))?;
        Ok(revision.map(|r| r.value()))
    }

    fn error(&self, message: impl ToString) -> StoreError {
        StoreError::Backend {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

impl Backend for RedbBackend {
    fn write(&self, records: &[Record], revision: u64) -> Result<(), StoreError> {
        let transaction = self.database.begin_write().map_err(|e| self.error(e))?;
        {
            let mut meta = transaction.open_table(META).map_err(|e| self.error(e))?;
            meta.insert(REVISION, revision).map_err(|e| self.error(e))?;
            let mut table = transaction.open_table(RECORDS).map_err(|e| self.error(e))?;
            for record in records {
                match &record.value {
                    Some(value) => {
                        table
                            .insert(record.key.as_str(), value.as_slice())
                            .map_err(|e| self.error(e))?;
                    }
                    None => {
                        table
                            .remove(record.key.as_str())
                            .map_err(|e| self.error(e))?;
                    }
                }
            }
        }
        transaction.commit().map_err(|e| self.error(e))
    }

    fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let transaction = self.database.begin_read().map_err(|e| self.error(e))?;
        let table = transaction.open_table(RECORDS).map_err(|e| self.error(e))?;
        let mut records = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            records.push((key.value().to_string(), value.value().to_vec()));
        }
        Ok(records)
    }

    fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.revision_if_stored()?.unwrap_or(0))
    }

    fn quarantine(&self, record: &Quarantined) -> Result<(), StoreError> {
        let kept = serde_json::to_vec(&serde_json::json!({
            "reason": record.reason,
            "value": String::from_utf8_lossy(&record.value),
        }))
        .map_err(|e| self.error(e))?;
        let transaction = self.database.begin_write().map_err(|e| self.error(e))?;
        {
            let mut quarantine = transaction
                .open_table(QUARANTINE)
                .map_err(|e| self.error(e))?;
            quarantine
                .insert(record.key.as_str(), kept.as_slice())
                .map_err(|e| self.error(e))?;
            let mut records = transaction.open_table(RECORDS).map_err(|e| self.error(e))?;
            records
                .remove(record.key.as_str())
                .map_err(|e| self.error(e))?;
        }
        transaction.commit().map_err(|e| self.error(e))
    }
}

impl RedbBackend {
    /// The records moved aside because they could not be read: key and reason.
    pub fn quarantined(&self) -> Result<Vec<(String, String)>, StoreError> {
        let transaction = self.database.begin_read().map_err(|e| self.error(e))?;
        let table = match transaction.open_table(QUARANTINE) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        let mut kept = Vec::new();
        for entry in table.iter().map_err(|e| self.error(e))? {
            let (key, value) = entry.map_err(|e| self.error(e))?;
            let reason = serde_json::from_slice::<serde_json::Value>(value.value())
                .ok()
                .and_then(|v| v["reason"].as_str().map(str::to_string))
                .unwrap_or_default();
            kept.push((key.value().to_string(), reason));
        }
        Ok(kept)
    }
}
