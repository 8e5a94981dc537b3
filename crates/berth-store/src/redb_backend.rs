use std::path::{Path, PathBuf};

use redb::{Database, ReadableTable, TableDefinition};

use crate::backend::{Backend, Record, StoreError};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

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
        // A small page cache: berth's state is small and `berth dev` must stay light.
        let database = Database::builder()
            .set_cache_size(4 * 1024 * 1024)
            .create(path)
            .map_err(|e| error(e.to_string()))?;
        let backend = RedbBackend {
            database,
            path: path.to_path_buf(),
        };
        // Make sure the table exists so the first read finds it.
        backend.write(&[])?;
        Ok(backend)
    }

    fn error(&self, message: impl ToString) -> StoreError {
        StoreError::Backend {
            path: self.path.display().to_string(),
            message: message.to_string(),
        }
    }
}

impl Backend for RedbBackend {
    fn write(&self, records: &[Record]) -> Result<(), StoreError> {
        let transaction = self.database.begin_write().map_err(|e| self.error(e))?;
        {
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
}
