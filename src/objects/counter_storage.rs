//! What a counter object keeps in its SQLite storage, and the only code that reads or
//! writes it. Every call is synchronous: writes join the object's implicit transaction
//! and are committed (and the response released) by the runtime's output gate.

use crate::domain::counter::{CounterMeta, CounterState, Mutation};
use crate::error::{ApiResult, OrInternal};
use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counter (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  meta TEXT NOT NULL,
  value INTEGER NOT NULL,
  version INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  flushed_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  mutation TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_ms);
";

/// A counter as stored: what it is, where it stands, and what D1 has seen.
pub struct StoredCounter {
    pub meta: CounterMeta,
    pub state: CounterState,
    pub flushed_version: u64,
}

#[derive(Clone)]
pub struct CounterStorage(SqlStorage);

/// What one pruning step left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    /// Expired keys remain: prune again soon.
    More,
    /// When the oldest remaining key was made, if any.
    OldestLeft(Option<u64>),
}

/// Keys one pruning step deletes: bounded work per alarm.
const PRUNE_BATCH: u64 = 1_000;

#[derive(Deserialize)]
struct CounterRow {
    meta: String,
    value: i64,
    version: u64,
    updated_ms: u64,
    flushed_version: u64,
}

#[derive(Deserialize)]
struct IdempotencyRow {
    fingerprint: String,
    mutation: String,
}

#[derive(Deserialize)]
struct Oldest {
    oldest: Option<u64>,
}

impl CounterStorage {
    pub fn open(sql: SqlStorage) -> ApiResult<Self> {
        sql.exec(SCHEMA, None)
            .or_internal("creating the counter schema")?;
        Ok(CounterStorage(sql))
    }

    pub fn read(&self) -> ApiResult<Option<StoredCounter>> {
        let rows: Vec<CounterRow> = self
            .0
            .exec(
                "SELECT meta, value, version, updated_ms, flushed_version FROM counter",
                None,
            )
            .and_then(|c| c.to_array())
            .or_internal("reading the counter row")?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(StoredCounter {
            meta: serde_json::from_str(&row.meta).or_internal("decoding counter meta")?,
            state: CounterState {
                value: row.value,
                version: row.version,
                updated_ms: row.updated_ms,
            },
            flushed_version: row.flushed_version,
        }))
    }

    /// Takes on a counter that D1 already holds at `state` (so D1 is up to date). Does
    /// nothing if this object already has a counter: its own state is the authority.
    pub fn adopt(&self, meta: &CounterMeta, state: &CounterState) -> ApiResult<()> {
        let meta = serde_json::to_string(meta).or_internal("encoding counter meta")?;
        self.0
            .exec(
                "INSERT OR IGNORE INTO counter (singleton, meta, value, version, updated_ms, flushed_version)
                 VALUES (1, ?, ?, ?, ?, ?)",
                vec![
                    meta.into(),
                    state.value.into(),
                    int(state.version),
                    int(state.updated_ms),
                    int(state.version),
                ],
            )
            .map(drop)
            .or_internal("adopting a counter")
    }

    pub fn write_state(&self, state: &CounterState) -> ApiResult<()> {
        self.0
            .exec(
                "UPDATE counter SET value = ?, version = ?, updated_ms = ? WHERE singleton = 1",
                vec![
                    state.value.into(),
                    int(state.version),
                    int(state.updated_ms),
                ],
            )
            .map(drop)
            .or_internal("writing a counter")
    }

    pub fn record_flush(&self, version: u64) -> ApiResult<()> {
        self.0
            .exec(
                "UPDATE counter SET flushed_version = MAX(flushed_version, ?) WHERE singleton = 1",
                vec![int(version)],
            )
            .map(drop)
            .or_internal("recording a flush")
    }

    /// The fingerprint and answer stored under an idempotency key.
    pub fn answer_for(&self, key: &str) -> ApiResult<Option<(String, Mutation)>> {
        let rows: Vec<IdempotencyRow> = self
            .0
            .exec(
                "SELECT fingerprint, mutation FROM idempotency WHERE key = ?",
                vec![key.into()],
            )
            .and_then(|c| c.to_array())
            .or_internal("reading an idempotency key")?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let mutation =
            serde_json::from_str(&row.mutation).or_internal("decoding a stored mutation")?;
        Ok(Some((row.fingerprint, mutation)))
    }

    pub fn remember(
        &self,
        key: &str,
        fingerprint: &str,
        mutation: &Mutation,
        now_ms: u64,
    ) -> ApiResult<()> {
        let stored = serde_json::to_string(mutation).or_internal("encoding a mutation")?;
        self.0
            .exec(
                "INSERT INTO idempotency (key, fingerprint, mutation, created_ms) VALUES (?, ?, ?, ?)",
                vec![key.into(), fingerprint.into(), stored.into(), int(now_ms)],
            )
            .map(drop)
            .or_internal("remembering an idempotency key")
    }

    /// Forgets up to `PRUNE_BATCH` keys older than `before_ms`.
    pub fn prune_keys(&self, before_ms: u64) -> ApiResult<Pruned> {
        self.0
            .exec(
                "DELETE FROM idempotency WHERE key IN
                   (SELECT key FROM idempotency WHERE created_ms < ? ORDER BY created_ms LIMIT ?)",
                vec![int(before_ms), int(PRUNE_BATCH)],
            )
            .or_internal("pruning idempotency keys")?;
        let oldest = self
            .0
            .exec("SELECT MIN(created_ms) AS oldest FROM idempotency", None)
            .and_then(|c| c.one::<Oldest>())
            .map(|o| o.oldest)
            .or_internal("finding the oldest idempotency key")?;
        Ok(match oldest {
            Some(at) if at < before_ms => Pruned::More,
            other => Pruned::OldestLeft(other),
        })
    }
}

/// SQLite integers cross as JavaScript numbers; ours stay within the safe range.
fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(n as i64)
}
