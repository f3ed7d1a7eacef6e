//! Each object's storage schema as numbered steps, and its version kept in the object:
//! step `i` takes storage from version `i` to `i + 1`. An object runs the steps its
//! storage lacks when it opens, so an object written by an older release is migrated on
//! load. Steps are append-only: a released step is never edited (the storage golden
//! tests pin the current version's tables and 0.1.0's: `tests/storage.test.mjs`,
//! `tests/upgrades.test.mjs`).
//!
//! Version 0 is storage without the version table: a new object, or one written by
//! 0.1.0, whose schema is step 1 (written with `IF NOT EXISTS`, so it fits both).

use crate::error::{ApiError, ApiResult, OrInternal};
use crate::objects::transaction::atomically;
use crate::rows;
use worker::{SqlStorage, SqlStorageValue, Storage};

pub struct Schema {
    /// Names the object in errors.
    pub object: &'static str,
    pub steps: &'static [&'static str],
    /// Run on version-0 storage before the steps, failures ignored: repairs older than
    /// the version table (a column 0.1.0 itself added where it was missing).
    pub unversioned_repairs: &'static [&'static str],
}

impl Schema {
    pub fn version(&self) -> u64 {
        self.steps.len() as u64
    }

    /// Brings the object's storage to this schema's version, in one transaction: the
    /// steps and the new version are stored together or not at all. Runs in the
    /// object's constructor, before any event, so nothing sees storage half-migrated.
    pub fn apply(&'static self, storage: &Storage) -> ApiResult<()> {
        let sql = storage.sql();
        atomically(storage, move || self.migrate(&sql))
    }

    fn migrate(&self, sql: &SqlStorage) -> ApiResult<()> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS schema_version (
               singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
               version INTEGER NOT NULL)",
            None,
        )
        .or_internal("creating the schema version")?;
        let stored = rows::sql_first(
            sql.exec("SELECT version FROM schema_version", None),
            "reading the schema version",
        )?
        .map(|row| row.uint(0))
        .transpose()?
        .unwrap_or(0);
        let steps = pending(stored, self.steps.len())
            .map_err(|e| ApiError::internal(format!("{} storage: {e}", self.object)))?;
        if stored == 0 {
            for repair in self.unversioned_repairs {
                // Fails where the repair is not needed (or the table is new): fine.
                let _ = sql.exec(repair, None);
            }
        }
        for step in steps {
            sql.exec(self.steps[step], None)
                .or_internal("migrating object storage")?;
        }
        if stored != self.version() {
            sql.exec(
                "INSERT INTO schema_version (singleton, version) VALUES (1, ?)
                 ON CONFLICT (singleton) DO UPDATE SET version = excluded.version",
                vec![SqlStorageValue::Integer(self.version() as i64)],
            )
            .or_internal("recording the schema version")?;
        }
        Ok(())
    }
}

/// The steps to run for storage at version `stored` when there are `latest` steps. A
/// newer version than this code knows is refused: reading it could lose what it holds.
pub fn pending(stored: u64, latest: usize) -> Result<std::ops::Range<usize>, String> {
    let stored = usize::try_from(stored).map_err(|_| "a version out of range".to_string())?;
    if stored > latest {
        return Err(format!(
            "written by a newer release (schema version {stored}; this code knows {latest})"
        ));
    }
    Ok(stored..latest)
}

#[cfg(test)]
mod tests {
    use super::pending;

    #[test]
    fn only_missing_steps_run_and_newer_storage_is_refused() {
        assert_eq!(pending(0, 2), Ok(0..2));
        assert_eq!(pending(1, 2), Ok(1..2));
        assert_eq!(pending(2, 2), Ok(2..2));
        assert!(pending(3, 2).unwrap_err().contains("newer release"));
    }
}
