//! The counter object: one Durable Object per counter, named by the counter id. It is the
//! only writer of its counter's value. Every accepted mutation is written to the object's
//! SQLite storage before the response leaves (the output gate holds the response until
//! the write is durable); an alarm copies the value to D1 at most one flush interval
//! after a change.
//!
//! **Invariant:** memory and the `counter` row change together, in one synchronous step
//! with no await between the decision and the write, so concurrent requests can never
//! act on a stale value.

use crate::config;
use crate::domain::counter::{CounterMeta, CounterState, Mutation};
use crate::domain::flush::{self, FlushPlan};
use crate::domain::idempotency::{replay_of, Replay, RETENTION_MS};
use crate::domain::ids::OperationId;
use crate::domain::views::{counter_json, mutation_json};
use crate::error::{ApiError, ApiResult};
use crate::http::log;
use crate::http::respond::{self, OrInternal};
use crate::objects::counter_protocol::CounterCall;
use crate::platform::{now_ms, random_bytes};
use crate::store;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use worker::{
    durable_object, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State,
};

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

/// What the Worker hands a new object: the record it just wrote to D1.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRecord {
    pub meta: CounterMeta,
    pub state: CounterState,
}

struct Counter {
    meta: CounterMeta,
    state: CounterState,
    /// The version D1 holds (as far as this object knows).
    flushed_version: u64,
}

enum Slot {
    Unknown,
    Missing,
    Present(Counter),
}

#[durable_object]
pub struct CounterObject {
    state: State,
    env: Env,
    counter: RefCell<Slot>,
    /// Whether an alarm is pending, kept in memory so the hot path never reads it.
    alarm_armed: Cell<Option<bool>>,
    flush_failures: Cell<u32>,
}

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

impl DurableObject for CounterObject {
    fn new(state: State, env: Env) -> Self {
        if let Err(e) = state.storage().sql().exec(SCHEMA, None) {
            log::failure("counter object schema", &e);
        }
        CounterObject {
            state,
            env,
            counter: RefCell::new(Slot::Unknown),
            alarm_armed: Cell::new(None),
            flush_failures: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.url()?;
        let answer = match CounterCall::parse(url.path(), url.query()) {
            Ok(CounterCall::Init) => self.init(&mut req).await,
            Ok(call) => self.serve(call).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(response) => Ok(response),
            Err(e) => {
                if let ApiError::Internal(detail) = &e {
                    log::failure("counter object", detail);
                }
                respond::error(&e)
            }
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_armed.set(Some(false));
        if let Err(e) = self.flush().await {
            log::failure("counter flush", &e);
        }
        Response::ok("")
    }
}

impl CounterObject {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    async fn init(&self, req: &mut Request) -> ApiResult<Response> {
        let record: InitRecord = req.json().await.or_internal("decoding an init record")?;
        let meta = serde_json::to_string(&record.meta).or_internal("encoding counter meta")?;
        self.sql()
            .exec(
                "INSERT OR IGNORE INTO counter (singleton, meta, value, version, updated_ms, flushed_version)
                 VALUES (1, ?, ?, ?, ?, ?)",
                vec![
                    meta.into(),
                    record.state.value.into(),
                    sql_int(record.state.version),
                    sql_int(record.state.updated_ms),
                    sql_int(record.state.version),
                ],
            )
            .or_internal("initialising a counter")?;
        *self.counter.borrow_mut() = Slot::Unknown;
        self.load().await?;
        respond::json(201, "{}").or_internal("answering init")
    }

    async fn serve(&self, call: CounterCall) -> ApiResult<Response> {
        self.load().await?;
        let (body, changed) = {
            let mut slot = self.counter.borrow_mut();
            let Slot::Present(counter) = &mut *slot else {
                return Err(ApiError::CounterNotFound);
            };
            let tenant = match &call {
                CounterCall::Read { tenant }
                | CounterCall::Increment { tenant, .. }
                | CounterCall::Set { tenant, .. } => tenant.to_string(),
                CounterCall::Init => return Err(ApiError::NotFound),
            };
            // A counter answers only under its own tenant; elsewhere it does not exist.
            if counter.meta.tenant_id != tenant {
                return Err(ApiError::CounterNotFound);
            }
            match call {
                CounterCall::Read { .. } => (counter_json(&counter.meta, &counter.state), false),
                _ => self.mutate(counter, &call)?,
            }
        };
        if changed && self.alarm_armed.get() != Some(true) {
            self.arm_flush().await?;
        }
        respond::json(200, body).or_internal("answering")
    }

    /// Applies one mutation, or replays the answer to its idempotency key; true when the
    /// value changed. Synchronous from the key lookup to the write: no other request
    /// can interleave.
    fn mutate(&self, counter: &mut Counter, call: &CounterCall) -> ApiResult<(String, bool)> {
        let keyed = call.keyed();
        if let Some((key, fingerprint)) = &keyed {
            let stored = self
                .sql()
                .exec(
                    "SELECT fingerprint, mutation FROM idempotency WHERE key = ?",
                    vec![key.to_string().into()],
                )
                .and_then(|c| c.to_array::<IdempotencyRow>())
                .or_internal("reading an idempotency key")?
                .into_iter()
                .next()
                .map(|row| (row.fingerprint, row.mutation));
            if let Replay::Replay(mutation) = replay_of(stored, fingerprint)? {
                let mutation: Mutation =
                    serde_json::from_str(&mutation).or_internal("decoding a stored mutation")?;
                return Ok((
                    mutation_json(&counter.meta.counter_id, &mutation, true),
                    false,
                ));
            }
        }
        let now = now_ms();
        let next = match call {
            CounterCall::Increment { delta, .. } => {
                counter.state.increment(&counter.meta, *delta, now)?
            }
            CounterCall::Set { value, .. } => counter.state.set(*value, now)?,
            _ => return Err(ApiError::NotFound),
        };
        let mutation = Mutation {
            operation_id: OperationId::generate(now, random_bytes()?).to_string(),
            delta: next.value - counter.state.value,
            value: next.value,
            updated_ms: next.updated_ms,
        };
        let sql = self.sql();
        sql.exec(
            "UPDATE counter SET value = ?, version = ?, updated_ms = ? WHERE singleton = 1",
            vec![
                next.value.into(),
                sql_int(next.version),
                sql_int(next.updated_ms),
            ],
        )
        .or_internal("writing a counter")?;
        if let Some((key, fingerprint)) = keyed {
            let stored = serde_json::to_string(&mutation).or_internal("encoding a mutation")?;
            sql.exec(
                "INSERT INTO idempotency (key, fingerprint, mutation, created_ms) VALUES (?, ?, ?, ?)",
                vec![key.to_string().into(), fingerprint.into(), stored.into(), sql_int(now)],
            )
            .or_internal("remembering an idempotency key")?;
        }
        counter.state = next;
        Ok((
            mutation_json(&counter.meta.counter_id, &mutation, false),
            true,
        ))
    }

    /// Makes sure an alarm will flush the latest change. Reads the pending alarm once per
    /// object lifetime; afterwards memory knows.
    async fn arm_flush(&self) -> ApiResult<()> {
        let storage = self.state.storage();
        let interval = config::get(&self.env)?.flush_interval_ms;
        if self.alarm_armed.get().is_none() {
            // An alarm left by an earlier life of this object counts only if it is due
            // within the interval (the interval may have been shortened since).
            let due_by = (now_ms() + interval) as i64;
            let pending = storage.get_alarm().await.or_internal("reading the alarm")?;
            self.alarm_armed
                .set(Some(pending.is_some_and(|at| at <= due_by)));
        }
        if self.alarm_armed.get() == Some(true) {
            return Ok(());
        }
        self.alarm_armed.set(Some(true));
        storage
            .set_alarm(interval as i64)
            .await
            .or_internal("setting the flush alarm")
    }

    /// Loads the counter into memory: from the object's storage, or, for an object that
    /// has none yet, from the record in D1 (the creation wrote it there first).
    async fn load(&self) -> ApiResult<()> {
        if !matches!(*self.counter.borrow(), Slot::Unknown) {
            return Ok(());
        }
        if let Some(counter) = self.read_row()? {
            *self.counter.borrow_mut() = Slot::Present(counter);
            return Ok(());
        }
        let id = self.state.id().name().unwrap_or_default();
        let found = store::counters::find(&store::database(&self.env)?, &id).await?;
        // Another request may have loaded or created the counter while D1 answered.
        if !matches!(*self.counter.borrow(), Slot::Unknown) {
            return Ok(());
        }
        let Some((meta, state)) = found else {
            *self.counter.borrow_mut() = Slot::Missing;
            return Ok(());
        };
        let meta_json = serde_json::to_string(&meta).or_internal("encoding counter meta")?;
        self.sql()
            .exec(
                "INSERT OR IGNORE INTO counter (singleton, meta, value, version, updated_ms, flushed_version)
                 VALUES (1, ?, ?, ?, ?, ?)",
                vec![
                    meta_json.into(),
                    state.value.into(),
                    sql_int(state.version),
                    sql_int(state.updated_ms),
                    sql_int(state.version),
                ],
            )
            .or_internal("adopting a counter from D1")?;
        if let Some(counter) = self.read_row()? {
            *self.counter.borrow_mut() = Slot::Present(counter);
        }
        Ok(())
    }

    fn read_row(&self) -> ApiResult<Option<Counter>> {
        let rows: Vec<CounterRow> = self
            .sql()
            .exec(
                "SELECT meta, value, version, updated_ms, flushed_version FROM counter",
                None,
            )
            .and_then(|c| c.to_array())
            .or_internal("reading the counter row")?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let meta: CounterMeta =
            serde_json::from_str(&row.meta).or_internal("decoding counter meta")?;
        Ok(Some(Counter {
            meta,
            state: CounterState {
                value: row.value,
                version: row.version,
                updated_ms: row.updated_ms,
            },
            flushed_version: row.flushed_version,
        }))
    }

    /// The alarm's work: copy the value to D1 if D1 lacks it, prune old idempotency
    /// keys, and arm the next alarm if work remains. A failed D1 write arms a retry
    /// itself, because the platform drops an alarm that keeps failing.
    async fn flush(&self) -> ApiResult<()> {
        self.load().await?;
        let (id, snapshot, flushed) = match &*self.counter.borrow() {
            Slot::Present(c) => (c.meta.counter_id.clone(), c.state, c.flushed_version),
            _ => return Ok(()),
        };
        let config = config::get(&self.env)?;
        if let FlushPlan::Write { version } = flush::plan(snapshot.version, flushed) {
            let written = match store::database(&self.env) {
                Ok(db) => store::counters::write_value(&db, &id, &snapshot).await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                let failures = self.flush_failures.get().saturating_add(1);
                self.flush_failures.set(failures);
                let delay = flush::retry_delay_ms(config.flush_interval_ms, failures);
                self.alarm_armed.set(Some(true));
                self.state
                    .storage()
                    .set_alarm(delay as i64)
                    .await
                    .or_internal("re-arming after a failed flush")?;
                return Err(e);
            }
            self.flush_failures.set(0);
            self.sql()
                .exec(
                    "UPDATE counter SET flushed_version = MAX(flushed_version, ?) WHERE singleton = 1",
                    vec![sql_int(version)],
                )
                .or_internal("recording a flush")?;
            if let Slot::Present(c) = &mut *self.counter.borrow_mut() {
                c.flushed_version = c.flushed_version.max(version);
            }
        }
        let now = now_ms();
        let sql = self.sql();
        sql.exec(
            "DELETE FROM idempotency WHERE created_ms < ?",
            vec![sql_int(now.saturating_sub(RETENTION_MS))],
        )
        .or_internal("pruning idempotency keys")?;
        let behind = matches!(&*self.counter.borrow(), Slot::Present(c) if c.state.version > c.flushed_version);
        if self.alarm_armed.get() == Some(true) {
            return Ok(());
        }
        let next_delay = if behind {
            Some(config.flush_interval_ms)
        } else {
            sql.exec("SELECT MIN(created_ms) AS oldest FROM idempotency", None)
                .and_then(|c| c.one::<Oldest>())
                .or_internal("finding the oldest idempotency key")?
                .oldest
                .map(|oldest| (oldest + RETENTION_MS).saturating_sub(now).max(1_000))
        };
        if let Some(delay) = next_delay {
            self.alarm_armed.set(Some(true));
            self.state
                .storage()
                .set_alarm(delay as i64)
                .await
                .or_internal("re-arming the alarm")?;
        }
        Ok(())
    }
}

/// SQLite integers cross as JavaScript numbers; ours stay within the safe range.
fn sql_int(n: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(n as i64)
}
