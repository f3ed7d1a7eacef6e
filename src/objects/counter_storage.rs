//! What a counter object keeps in its SQLite storage, and the only code that reads or
//! writes it. Every call is synchronous: writes join the object's implicit transaction
//! and are committed (and the response released) by the runtime's output gate.

use crate::domain::counter::{CounterMeta, CounterState};
use crate::domain::ledger::{rows_json, LedgerSums, Operation, OperationKind, FOLD_BATCH};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::objects::schema::Schema;
use crate::rows::{self, Row};
use uuid::Uuid;
use worker::{SqlStorage, SqlStorageValue, Storage};

/// The storage's versions (`objects::schema`). 1: as released in 0.1.0.
pub static SCHEMA: Schema = Schema {
    object: "counter",
    steps: &[V1],
    unversioned_repairs: &[],
};

const V1: &str = "
CREATE TABLE IF NOT EXISTS counter (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  meta TEXT NOT NULL,
  value INTEGER NOT NULL,
  version INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  flushed_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operations (
  seq INTEGER PRIMARY KEY,
  id BLOB NOT NULL UNIQUE,
  kind INTEGER NOT NULL,
  delta INTEGER NOT NULL,
  value_after INTEGER NOT NULL,
  actor TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  completed_ms INTEGER NOT NULL,
  metadata TEXT
);
DROP TABLE IF EXISTS idempotency;
";

/// Operations one export page carries.
pub const EXPORT_OPS: u64 = 1_000;

/// An operation's columns, read back with its id as hex.
const OPERATION: &str =
    "SELECT hex(id) AS id, kind, delta, value_after, actor, created_ms, completed_ms, metadata FROM operations";

/// A counter as stored: what it is, where it stands, and what D1 has seen.
pub struct StoredCounter {
    pub meta: CounterMeta,
    pub state: CounterState,
    pub flushed_version: u64,
}

#[derive(Clone)]
pub struct CounterStorage(SqlStorage);

/// What one retention step left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    /// Expired operations remain: fold again soon.
    More,
    /// When the oldest operation a later step may fold was made, if any.
    OldestLeft(Option<u64>),
}

/// An operation from the columns of `OPERATION`.
fn operation_of(mut row: Row) -> ApiResult<Operation> {
    Ok(Operation {
        id: Uuid::try_parse(&row.text(0)?)
            .map_err(|_| ApiError::internal("an operation id that is not a UUID"))?,
        kind: OperationKind::from_code(row.int(1)?)
            .ok_or_else(|| ApiError::internal("an operation of unknown kind"))?,
        delta: row.int(2)?,
        value_after: row.int(3)?,
        actor: row.text(4)?,
        created_ms: row.uint(5)?,
        completed_ms: row.uint(6)?,
        metadata: row.opt_text(7)?,
    })
}

impl CounterStorage {
    pub fn open(storage: &Storage) -> ApiResult<Self> {
        SCHEMA.apply(storage)?;
        Ok(CounterStorage(storage.sql()))
    }

    pub fn read(&self) -> ApiResult<Option<StoredCounter>> {
        let row = rows::sql_first(
            self.0.exec(
                "SELECT meta, value, version, updated_ms, flushed_version FROM counter",
                None,
            ),
            "reading the counter row",
        )?;
        let Some(mut row) = row else {
            return Ok(None);
        };
        Ok(Some(StoredCounter {
            meta: serde_json::from_str(&row.text(0)?)
                .ok()
                .as_ref()
                .and_then(CounterMeta::from_json)
                .ok_or_else(|| ApiError::internal("stored counter meta that does not parse"))?,
            state: CounterState {
                value: row.int(1)?,
                version: row.uint(2)?,
                updated_ms: row.uint(3)?,
            },
            flushed_version: row.uint(4)?,
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

    /// Appends a batch's operations in one statement.
    pub fn append(&self, ops: &[Operation]) -> ApiResult<()> {
        if ops.is_empty() {
            return Ok(());
        }
        self.0
            .exec(
                "INSERT INTO operations (id, kind, delta, value_after, actor, created_ms, completed_ms, metadata)
                 SELECT unhex(value ->> 0), value ->> 1, value ->> 2, value ->> 3, value ->> 4,
                        value ->> 5, value ->> 6, value ->> 7 FROM json_each(?)",
                vec![rows_json(ops).into()],
            )
            .map(drop)
            .or_internal("appending operations")
    }

    /// Gives a counter that has none its first operation: its creation (`kind`
    /// `initial_value`) or, for a counter stored before it had a ledger, a `baseline` of
    /// its value. Does nothing when the ledger already has operations.
    pub fn ensure_root(&self, kind: OperationKind, id: &Uuid, actor: &str) -> ApiResult<()> {
        self.0
            .exec(
                "INSERT INTO operations (id, kind, delta, value_after, actor, created_ms, completed_ms)
                 SELECT unhex(?), ?, value, value, ?, updated_ms, updated_ms FROM counter
                 WHERE NOT EXISTS (SELECT 1 FROM operations)",
                vec![
                    id.simple().to_string().into(),
                    kind.code().into(),
                    actor.into(),
                ],
            )
            .map(drop)
            .or_internal("recording a counter's first operation")
    }

    /// The operation with this id (an idempotency key, when the client sent one).
    pub fn operation(&self, id: &Uuid) -> ApiResult<Option<Operation>> {
        let rows = self.operations(
            &format!("{OPERATION} WHERE id = unhex(?)"),
            vec![id.simple().to_string().into()],
        )?;
        Ok(rows.into_iter().next())
    }

    /// Up to `limit` operations, newest first, older than the operation `before`.
    /// `None` when `before` names no kept operation.
    pub fn page(&self, before: Option<&Uuid>, limit: u32) -> ApiResult<Option<Vec<Operation>>> {
        let (filter, mut params) = match before {
            Some(id) => {
                let found = rows::sql_first(
                    self.0.exec(
                        "SELECT seq FROM operations WHERE id = unhex(?)",
                        vec![id.simple().to_string().into()],
                    ),
                    "finding a history cursor",
                )?;
                let Some(at) = found else {
                    return Ok(None);
                };
                ("WHERE seq < ?", vec![int(at.uint(0)?)])
            }
            None => ("", vec![]),
        };
        params.push(int(u64::from(limit)));
        let sql = format!("{OPERATION} {filter} ORDER BY seq DESC LIMIT ?");
        self.operations(&sql, params).map(Some)
    }

    fn operations(&self, sql: &str, params: Vec<SqlStorageValue>) -> ApiResult<Vec<Operation>> {
        rows::each(
            rows::sql(self.0.exec(sql, params), "reading operations")?,
            operation_of,
        )
    }

    /// The counter's export line (`domain::transfer::COUNTER`) and its last operation's
    /// `seq`, read together: the value is the one that operation reached.
    pub fn export_head(&self) -> ApiResult<(String, u64)> {
        let mut row = rows::sql_first(
            self.0.exec(
                "SELECT json_object('type', 'counter', 'id', meta ->> 'counter_id',
                   'label', meta ->> 'label', 'value', value, 'max_delta', meta ->> 'max_delta',
                   'created_ms', meta ->> 'created_ms', 'updated_ms', updated_ms),
                   (SELECT COALESCE(MAX(seq), 0) FROM operations)
                 FROM counter",
                None,
            ),
            "exporting a counter",
        )?
        .ok_or_else(|| ApiError::internal("exporting a counter that is not stored"))?;
        Ok((row.text(0)?, row.uint(1)?))
    }

    /// Up to `EXPORT_OPS` operations with `seq` in `(after, upto]`, oldest first, as
    /// export lines (each ending in a newline), and the `seq` of the last one when more
    /// may follow. The kind names are `OperationKind::name` by code (a round-trip test
    /// holds them together).
    pub fn export_ops(
        &self,
        counter_id: &str,
        after: u64,
        upto: u64,
    ) -> ApiResult<(String, Option<u64>)> {
        let rows = rows::sql(
            self.0.exec(
                "SELECT json_object('type', 'operation', 'counter', ?1, 'id',
                   lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' ||
                     substr(hex(id), 13, 4) || '-' || substr(hex(id), 17, 4) || '-' || substr(hex(id), 21)),
                   'kind', CASE kind WHEN 0 THEN 'initial_value' WHEN 1 THEN 'increment'
                     WHEN 2 THEN 'set_adjustment' WHEN 3 THEN 'import' ELSE 'baseline' END,
                   'delta', delta, 'value_after', value_after, 'actor', actor,
                   'created_ms', created_ms, 'completed_ms', completed_ms, 'metadata', json(metadata)),
                   seq
                 FROM operations WHERE seq > ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
                vec![counter_id.into(), int(after), int(upto), int(EXPORT_OPS)],
            ),
            "exporting operations",
        )?;
        let full = rows.len() as u64 == EXPORT_OPS;
        let mut text = String::new();
        let mut last = after;
        for mut row in rows {
            text.push_str(&row.text(0)?);
            text.push('\n');
            last = row.uint(1)?;
        }
        Ok((text, full.then_some(last)))
    }

    /// Whether the ledger has an operation with this id.
    pub fn has_operation(&self, id: &Uuid) -> ApiResult<bool> {
        let found = rows::sql_first(
            self.0.exec(
                "SELECT 1 FROM operations WHERE id = unhex(?)",
                vec![id.simple().to_string().into()],
            ),
            "looking an operation up",
        )?;
        Ok(found.is_some())
    }

    /// What reconciliation checks: one pass over the ledger.
    pub fn sums(&self) -> ApiResult<LedgerSums> {
        let row = rows::sql_first(
            self.0.exec(
                "SELECT COUNT(*), COALESCE(SUM(delta), 0), COALESCE(SUM(kind IN (?1, ?2)), 0),
                        (SELECT kind FROM operations ORDER BY seq LIMIT 1)
                 FROM operations",
                vec![
                    OperationKind::InitialValue.code().into(),
                    OperationKind::Baseline.code().into(),
                ],
            ),
            "summing operations",
        )?
        .ok_or_else(|| ApiError::internal("an aggregate without a row"))?;
        Ok(LedgerSums {
            operations: row.uint(0)?,
            sum_of_deltas: row.int(1)?,
            roots: row.uint(2)?,
            oldest_is_root: row
                .opt_int(3)?
                .and_then(OperationKind::from_code)
                .is_some_and(OperationKind::is_root),
        })
    }

    /// Folds up to `FOLD_BATCH` operations made before `before_ms` into one `baseline`
    /// (its delta the value they reach), so the deltas still sum to the value. A baseline
    /// keeps its id as it grows; `new_id` makes the first one's.
    pub fn fold(
        &self,
        before_ms: u64,
        new_id: impl FnOnce() -> ApiResult<Uuid>,
    ) -> ApiResult<Pruned> {
        // Operations are made in `seq` order at times that never go back, so the ones
        // past the retention are a prefix of the table: it is read by the primary key,
        // one batch at most, and not at all while the oldest is young enough.
        match self.oldest_foldable()? {
            Some(at) if at < before_ms => {}
            other => return Ok(Pruned::OldestLeft(other)),
        }
        let span = rows::sql_first(
            self.0.exec(
                "SELECT MIN(seq), MAX(seq), COUNT(*) FROM
                   (SELECT seq, created_ms FROM operations ORDER BY seq LIMIT ?)
                 WHERE created_ms < ?",
                vec![int(FOLD_BATCH), int(before_ms)],
            ),
            "finding operations to fold",
        )?
        .ok_or_else(|| ApiError::internal("an aggregate without a row"))?;
        let n = span.uint(2)?;
        if let (Some(first), Some(last), true) = (span.opt_uint(0)?, span.opt_uint(1)?, n > 1) {
            let root = self.operations(&format!("{OPERATION} WHERE seq = ?"), vec![int(first)])?;
            let id = match root.first() {
                Some(op) if op.kind == OperationKind::Baseline => op.id,
                _ => new_id()?,
            };
            self.0
                .exec("DELETE FROM operations WHERE seq < ?", vec![int(last)])
                .and_then(|_| {
                    self.0.exec(
                        "UPDATE operations SET id = unhex(?), kind = ?, delta = value_after,
                           actor = 'system', metadata = NULL WHERE seq = ?",
                        vec![
                            id.simple().to_string().into(),
                            OperationKind::Baseline.code().into(),
                            int(last),
                        ],
                    )
                })
                .or_internal("folding operations into the baseline")?;
            if n == FOLD_BATCH {
                return Ok(Pruned::More);
            }
        }
        Ok(Pruned::OldestLeft(self.oldest_foldable()?))
    }

    /// When the oldest operation after the root was made: the next one to fold.
    fn oldest_foldable(&self) -> ApiResult<Option<u64>> {
        let row = rows::sql_first(
            self.0.exec(
                "SELECT created_ms FROM operations ORDER BY seq LIMIT 1 OFFSET 1",
                None,
            ),
            "finding the oldest operation",
        )?;
        row.map(|r| r.uint(0)).transpose()
    }
}

/// SQLite integers cross as JavaScript numbers; ours stay within the safe range.
fn int(n: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(n as i64)
}
