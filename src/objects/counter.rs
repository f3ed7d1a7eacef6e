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
use crate::http::router::path_and_query;
use crate::objects::counter_protocol::CounterCall;
use crate::objects::counter_storage::{CounterStorage, StoredCounter};
use crate::platform::{now_ms, random_bytes};
use crate::store;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use worker::{durable_object, DurableObject, Env, Request, Response, State};

/// What the Worker hands a new object: the record it just wrote to D1.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRecord {
    pub meta: CounterMeta,
    pub state: CounterState,
}

enum Slot {
    /// Not looked for yet in this object's lifetime.
    Unknown,
    /// Neither this object nor D1 knows the counter.
    Missing,
    Present(StoredCounter),
}

#[durable_object]
pub struct CounterObject {
    state: State,
    env: Env,
    storage: Result<CounterStorage, ApiError>,
    counter: RefCell<Slot>,
    /// Whether an alarm is pending, kept in memory so the hot path never reads it.
    /// `None` until first needed in this object's lifetime.
    alarm_armed: Cell<Option<bool>>,
    flush_failures: Cell<u32>,
}

impl DurableObject for CounterObject {
    fn new(state: State, env: Env) -> Self {
        let storage = CounterStorage::open(state.storage().sql());
        CounterObject {
            state,
            env,
            storage,
            counter: RefCell::new(Slot::Unknown),
            alarm_armed: Cell::new(None),
            flush_failures: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let url = req.inner().url();
        let (path, query) = path_and_query(&url);
        let answer = match CounterCall::parse(path, query) {
            Ok(CounterCall::Init) => self.init(&mut req).await,
            Ok(call) => self.serve(call).await,
            Err(e) => Err(e),
        };
        answer.or_else(|e| {
            if let ApiError::Internal(detail) = &e {
                log::failure("counter object", detail);
            }
            respond::error(&e)
        })
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
    fn storage(&self) -> ApiResult<&CounterStorage> {
        self.storage.as_ref().map_err(Clone::clone)
    }

    async fn init(&self, req: &mut Request) -> ApiResult<Response> {
        let record: InitRecord = req.json().await.or_internal("decoding an init record")?;
        self.adopt(&record.meta, &record.state)?;
        respond::json(201, "{}").or_internal("answering init")
    }

    async fn serve(&self, call: CounterCall) -> ApiResult<Response> {
        self.load().await?;
        let (body, changed) = {
            let mut slot = self.counter.borrow_mut();
            let Slot::Present(counter) = &mut *slot else {
                return Err(ApiError::CounterNotFound);
            };
            // A counter answers only under its own tenant; elsewhere it does not exist.
            if call.tenant().map(|t| t.to_string()).as_deref() != Some(&counter.meta.tenant_id) {
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
    fn mutate(&self, counter: &mut StoredCounter, call: &CounterCall) -> ApiResult<(String, bool)> {
        let storage = self.storage()?;
        let keyed = call
            .keyed()
            .map(|(key, fingerprint)| (key.to_string(), fingerprint));
        if let Some((key, fingerprint)) = &keyed {
            if let Replay::Replay(earlier) = replay_of(storage.answer_for(key)?, fingerprint)? {
                return Ok((
                    mutation_json(&counter.meta.counter_id, &earlier, true),
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
            CounterCall::Read { .. } | CounterCall::Init => return Err(ApiError::NotFound),
        };
        let mutation = Mutation {
            operation_id: OperationId::generate(now, random_bytes()?).to_string(),
            delta: next.value - counter.state.value,
            value: next.value,
            updated_ms: next.updated_ms,
        };
        storage.write_state(&next)?;
        if let Some((key, fingerprint)) = &keyed {
            storage.remember(key, fingerprint, &mutation, now)?;
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
        if let Some(counter) = self.storage()?.read()? {
            *self.counter.borrow_mut() = Slot::Present(counter);
            return Ok(());
        }
        let id = self.state.id().name().unwrap_or_default();
        let found = store::counters::find(&store::database(&self.env)?, &id).await?;
        // Another request may have loaded or created the counter while D1 answered.
        if !matches!(*self.counter.borrow(), Slot::Unknown) {
            return Ok(());
        }
        match found {
            Some((meta, state)) => self.adopt(&meta, &state),
            None => {
                *self.counter.borrow_mut() = Slot::Missing;
                Ok(())
            }
        }
    }

    fn adopt(&self, meta: &CounterMeta, state: &CounterState) -> ApiResult<()> {
        let storage = self.storage()?;
        storage.adopt(meta, state)?;
        if let Some(counter) = storage.read()? {
            *self.counter.borrow_mut() = Slot::Present(counter);
        }
        Ok(())
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
        let storage = self.storage()?;
        if let FlushPlan::Write { version } = flush::plan(snapshot.version, flushed) {
            let written = match store::database(&self.env) {
                Ok(db) => store::counters::write_value(&db, &id, &snapshot).await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                let failures = self.flush_failures.get().saturating_add(1);
                self.flush_failures.set(failures);
                let delay = flush::retry_delay_ms(config.flush_interval_ms, failures);
                self.set_alarm_in(delay).await?;
                return Err(e);
            }
            self.flush_failures.set(0);
            storage.record_flush(version)?;
            if let Slot::Present(c) = &mut *self.counter.borrow_mut() {
                c.flushed_version = c.flushed_version.max(version);
            }
        }
        let now = now_ms();
        let oldest_key = storage.prune_keys(now.saturating_sub(RETENTION_MS))?;
        if self.alarm_armed.get() == Some(true) {
            return Ok(());
        }
        let behind = matches!(&*self.counter.borrow(), Slot::Present(c) if c.state.version > c.flushed_version);
        let next = if behind {
            Some(config.flush_interval_ms)
        } else {
            oldest_key.map(|oldest| (oldest + RETENTION_MS).saturating_sub(now).max(1_000))
        };
        match next {
            Some(delay) => self.set_alarm_in(delay).await,
            None => Ok(()),
        }
    }

    async fn set_alarm_in(&self, delay_ms: u64) -> ApiResult<()> {
        self.alarm_armed.set(Some(true));
        self.state
            .storage()
            .set_alarm(delay_ms as i64)
            .await
            .or_internal("arming the alarm")
    }
}
