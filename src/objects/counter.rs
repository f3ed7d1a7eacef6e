//! The counter object: one Durable Object per counter, named by the counter id. It is the
//! only writer of its counter's value. Every accepted mutation is written to the object's
//! SQLite storage before the response leaves (the output gate holds the response until
//! the write is durable); an alarm copies the value to D1 at most one flush interval
//! after a change.
//!
//! Mutations are decided in memory, synchronously, so concurrent requests never act on a
//! stale value. Requests that change the counter while a write batch is open share that
//! batch's single storage write (and so one commit); none answers before the batch is
//! written, and reads wait for it too, so nothing not yet durable is ever shown.
//!
//! **Invariant:** `persisted` is what storage holds; `stored.state` may be ahead of it
//! only while a batch is open, and every change ahead of it belongs to that batch.

// The annex Worker builds the types and calls its callers need, not the class; what
// only the class uses is unused there. The edge's build checks this module in full.
#![cfg_attr(feature = "annex", allow(unused_imports, dead_code))]

use crate::config::{self, Fault};
use crate::domain::budget::{Budgets, Decision};
use crate::domain::counter::{CounterMeta, CounterState, Mutation};
use crate::domain::flush::{self, FlushPlan};
use crate::domain::ids::uuid_v7;
use crate::domain::ledger::{self, replay_of, Operation, OperationKind};
use crate::domain::views::{counter_json, mutation_json};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::respond;
use crate::http::router::path_and_query;
use crate::http::{log, report};
use crate::objects::alarm::Alarm;
use crate::objects::batch::BatchWriter;
use crate::objects::counter_protocol::{encode_answers, Answered, CounterCall, BATCH_PATH};
use crate::objects::counter_storage::{CounterStorage, Pruned, StoredCounter};
use crate::objects::transaction::atomically;
use crate::platform::{now_ms, random_bytes};
use crate::store;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::time::Duration;
use worker::{DurableObject, Env, Request, Response, State};

/// What the Worker hands a new object: the record it just wrote to D1, and who made it
/// (the creation's `actor_id`).
#[derive(Debug, Serialize)]
pub struct InitRecord {
    pub meta: CounterMeta,
    pub state: CounterState,
    pub actor: Option<String>,
}

impl InitRecord {
    fn from_json(v: &serde_json::Value) -> Option<InitRecord> {
        Some(InitRecord {
            meta: CounterMeta::from_json(v.get("meta")?)?,
            state: CounterState::from_json(v.get("state")?)?,
            actor: v.get("actor").and_then(|a| a.as_str()).map(str::to_string),
        })
    }
}

enum Slot {
    /// Not looked for yet in this object's lifetime.
    Unknown,
    /// Neither this object nor D1 knows the counter.
    Missing,
    Present(Box<Live>),
}

/// The counter in memory: the latest state, what storage holds, the operations waiting
/// for the open batch's write, and its clients' budgets (memory only: an evicted object
/// forgets them, in the clients' favour).
struct Live {
    stored: StoredCounter,
    persisted: CounterState,
    pending: Vec<Operation>,
    budgets: Budgets,
}

impl Live {
    fn new(stored: StoredCounter) -> Self {
        Live {
            persisted: stored.state,
            stored,
            pending: Vec::new(),
            budgets: Budgets::default(),
        }
    }
}

/// What a call decided, before anything is written.
enum Decided {
    Answer {
        body: String,
        changed: bool,
        budget: Option<Decision>,
    },
    /// Over the client's budget: nothing changes.
    OverBudget(Decision),
}

// The classes live in the edge Worker; the annex reaches them through its bindings.
#[cfg_attr(not(feature = "annex"), worker::durable_object)]
pub struct CounterObject {
    state: State,
    env: Env,
    storage: Result<CounterStorage, ApiError>,
    counter: RefCell<Slot>,
    batch: BatchWriter,
    alarm: Alarm,
    flush_failures: Cell<u32>,
}

#[cfg(not(feature = "annex"))]
impl DurableObject for CounterObject {
    fn new(state: State, env: Env) -> Self {
        let storage = CounterStorage::open(&state.storage());
        CounterObject {
            state,
            env,
            storage,
            counter: RefCell::new(Slot::Unknown),
            batch: BatchWriter::default(),
            alarm: Alarm::default(),
            flush_failures: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        report::entered_object(&self.env, &self.state);
        let url = req.inner().url();
        let (path, query) = path_and_query(&url);
        let answer = match CounterCall::parse(path, query) {
            Ok(CounterCall::Init) => self.init(&mut req).await,
            Ok(CounterCall::Export {
                tenant,
                after,
                upto,
            }) => self.export(&tenant.to_string(), after, upto).await,
            Ok(CounterCall::Import { tenant }) => self.import(&mut req, &tenant.to_string()).await,
            Err(_) if path == BATCH_PATH => self.serve_batch(&mut req).await,
            Ok(call) => self.serve(call).await,
            Err(e) => Err(e),
        };
        respond::from_object("counter object", answer)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        report::entered_object(&self.env, &self.state);
        self.alarm.fired();
        if let Err(e) = self.housekeeping().await {
            log::failure("counter flush", &e);
            let tenant = match &*self.counter.borrow() {
                Slot::Present(c) => Some(c.stored.meta.tenant_id.clone()),
                _ => None,
            };
            let failures = self.flush_failures.get();
            report::flush_failed(
                &self.env,
                &self.state,
                "counter flush",
                failures,
                tenant,
                &e,
            );
            // Nothing re-armed itself: let the platform retry this alarm.
            if !self.alarm.is_armed() {
                return Err(worker::Error::RustError(e.to_string()));
            }
        }
        Response::ok("")
    }
}

impl CounterObject {
    fn storage(&self) -> ApiResult<&CounterStorage> {
        self.storage.as_ref().map_err(Clone::clone)
    }

    async fn init(&self, req: &mut Request) -> ApiResult<Response> {
        let text = req.text().await.or_internal("reading an init record")?;
        let record = serde_json::from_str(&text)
            .ok()
            .as_ref()
            .and_then(InitRecord::from_json)
            .ok_or_else(|| ApiError::internal("an init record that does not parse"))?;
        let actor = record.actor.as_deref().unwrap_or("admin");
        self.adopt(&record.meta, &record.state, actor)?;
        respond::json(201, "{}").or_internal("answering init")
    }

    async fn serve(&self, call: CounterCall) -> ApiResult<Response> {
        self.load().await?;
        let decided = self.decide(&call)?;
        self.settle([&decided]).await?;
        let a = answered(decided);
        respond::budgeted(a.status, a.body, a.budget.as_ref()).or_internal("answering")
    }

    /// A batch of increments the Worker gathered (`BATCH_PATH`): each decided in turn as
    /// if it came alone, all stored in one write, each answered on its own line. A
    /// failed write fails them all: none of their changes is kept.
    async fn serve_batch(&self, req: &mut Request) -> ApiResult<Response> {
        let text = req.text().await.or_internal("reading a batch")?;
        if text.lines().count() > crate::lanes::MAX_BATCH {
            return Err(ApiError::internal("a batch over its size"));
        }
        self.load().await?;
        let decided: Vec<ApiResult<Decided>> = text
            .lines()
            .map(|line| {
                let (path, query) = path_and_query(line);
                match CounterCall::parse(path, query)? {
                    call @ CounterCall::Increment { .. } => self.decide(&call),
                    _ => Err(ApiError::internal("a batch holds increments only")),
                }
            })
            .collect();
        self.settle(decided.iter().flatten()).await?;
        let answers: Vec<Answered> = decided
            .into_iter()
            .map(|d| {
                d.map_or_else(
                    |e| {
                        if let ApiError::Internal(detail) = &e {
                            log::failure("counter batch call", detail);
                        }
                        Answered::error(&e)
                    },
                    answered,
                )
            })
            .collect();
        respond::json(200, encode_answers(&answers)).or_internal("answering a batch")
    }

    /// Decides one call against the counter in memory. Synchronous: no other request
    /// interleaves.
    fn decide(&self, call: &CounterCall) -> ApiResult<Decided> {
        let mut slot = self.counter.borrow_mut();
        let Slot::Present(live) = &mut *slot else {
            return Err(ApiError::CounterNotFound);
        };
        // A counter answers only under its own tenant; elsewhere it does not exist.
        let meta = &live.stored.meta;
        let reconcile = *call == CounterCall::Reconcile;
        if !reconcile && call.tenant().map(|t| t.to_string()).as_deref() != Some(&meta.tenant_id) {
            return Err(ApiError::CounterNotFound);
        }
        let answer = |body| Decided::Answer {
            body,
            changed: false,
            budget: None,
        };
        Ok(match call {
            CounterCall::Read { .. } => answer(counter_json(meta, &live.stored.state)),
            CounterCall::History { limit, before, .. } => {
                answer(self.history(meta, *limit, *before)?)
            }
            CounterCall::Reconcile => {
                answer(self.reconcile(&meta.counter_id, live.persisted.value)?)
            }
            _ => self.mutate(live, call)?,
        })
    }

    /// Waits until what the decisions show is stored: one batch write when any changed
    /// the counter, else the open batch (an answer may show its changes). A refusal
    /// waits for nothing.
    async fn settle<'d>(&self, decided: impl IntoIterator<Item = &'d Decided>) -> ApiResult<()> {
        let (mut changed, mut shown) = (false, false);
        for d in decided {
            if let Decided::Answer { changed: c, .. } = d {
                changed |= *c;
                shown = true;
            }
        }
        match (changed, shown) {
            (true, _) => self.write_in_batch().await,
            (false, true) => self.batch.settled().await,
            (false, false) => Ok(()),
        }
    }

    /// Decides one mutation in memory, or replays the answer to its idempotency key.
    /// Synchronous: no other request can interleave. A replay or a refusal spends no
    /// budget; an accepted change spends one.
    fn mutate(&self, live: &mut Live, call: &CounterCall) -> ApiResult<Decided> {
        let counter_id = &live.stored.meta.counter_id;
        let keyed = call.keyed();
        if let Some((key, requested)) = &keyed {
            let key = key.as_uuid();
            let earlier = match live.pending.iter().find(|op| op.id == *key) {
                Some(op) => Some(op.clone()),
                None => self.storage()?.operation(key)?,
            };
            if let Some(earlier) = replay_of(earlier, *requested)? {
                return Ok(Decided::Answer {
                    body: mutation_json(counter_id, &answer_of(&earlier), true),
                    changed: false,
                    budget: None,
                });
            }
        }
        let now = now_ms();
        let state = &live.stored.state;
        let (next, kind, actor) = match call {
            CounterCall::Increment { delta, actor, .. } => (
                state.increment(&live.stored.meta, *delta, now)?,
                OperationKind::Increment,
                actor,
            ),
            CounterCall::Set { value, actor, .. } => {
                (state.set(*value, now)?, OperationKind::SetAdjustment, actor)
            }
            _ => return Err(ApiError::NotFound),
        };
        let view = matches!(call, CounterCall::Increment { view: true, .. });
        let budget = match call.client() {
            Some(client) => {
                let config = config::get(&self.env)?;
                let policy = config.budget_for(client);
                let decision = policy
                    .is_enabled()
                    .then(|| live.budgets.admit(client, now, policy));
                match decision {
                    Some(d) if !d.allowed && view => {
                        return Ok(Decided::Answer {
                            body: counter_json(&live.stored.meta, state),
                            changed: false,
                            budget: Some(d),
                        })
                    }
                    Some(d) if !d.allowed => return Ok(Decided::OverBudget(d)),
                    other => other,
                }
            }
            None => None,
        };
        let operation = Operation {
            id: match &keyed {
                Some((key, _)) => *key.as_uuid(),
                None => uuid_v7(now, random_bytes()?),
            },
            kind,
            delta: next.value - state.value,
            value_after: next.value,
            actor: actor.id(),
            created_ms: next.updated_ms,
            // Set when the batch is written.
            completed_ms: next.updated_ms,
            metadata: None,
        };
        let body = if view {
            counter_json(&live.stored.meta, &next)
        } else {
            mutation_json(counter_id, &answer_of(&operation), false)
        };
        live.pending.push(operation);
        live.stored.state = next;
        Ok(Decided::Answer {
            body,
            changed: true,
            budget,
        })
    }

    /// A page of operations as the contract shows it, with the cursor to the next.
    fn history(
        &self,
        meta: &CounterMeta,
        limit: u32,
        before: Option<uuid::Uuid>,
    ) -> ApiResult<String> {
        let mut ops = self
            .storage()?
            .page(before.as_ref(), limit + 1)?
            .ok_or(ApiError::InvalidCursor)?;
        let more = ops.len() > limit as usize;
        ops.truncate(limit as usize);
        let next = match (more, ops.last()) {
            (true, Some(last)) => {
                let scope = uuid::Uuid::try_parse(&meta.counter_id)
                    .map_err(|_| ApiError::internal("a counter id that is not a UUID"))?;
                let key = config::get(&self.env)?.cursor_key();
                format!("\"{}\"", key.encode(&scope, &last.id))
            }
            _ => "null".into(),
        };
        let mut body = String::from(r#"{"operations":["#);
        for (i, op) in ops.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            ledger::operation_json(&mut body, &meta.counter_id, op);
        }
        body.push_str(&format!(r#"],"next_cursor":{next}}}"#));
        Ok(body)
    }

    /// The counter's id, if it exists under `tenant`: elsewhere it does not exist.
    fn owned_by(&self, tenant: &str) -> ApiResult<String> {
        match &*self.counter.borrow() {
            Slot::Present(live) if live.stored.meta.tenant_id == tenant => {
                Ok(live.stored.meta.counter_id.clone())
            }
            _ => Err(ApiError::CounterNotFound),
        }
    }

    /// A page of the export: the counter's line and its first operations, or the next
    /// operations up to the last one the first page saw (`X-Upto`); `X-Next` is where the
    /// next page starts, absent on the last.
    async fn export(&self, tenant: &str, after: u64, upto: u64) -> ApiResult<Response> {
        self.load().await?;
        self.batch.settled().await?;
        let counter_id = self.owned_by(tenant)?;
        let storage = self.storage()?;
        let (mut text, upto) = match after {
            0 => {
                let (line, last) = storage.export_head()?;
                (line + "\n", last)
            }
            _ => (String::new(), upto),
        };
        let (ops, next) = storage.export_ops(&counter_id, after, upto)?;
        text.push_str(&ops);
        let response = Response::ok(text).or_internal("answering an export")?;
        let headers = response.headers();
        headers
            .set("X-Upto", &upto.to_string())
            .or_internal("answering an export")?;
        if let Some(next) = next {
            headers
                .set("X-Next", &next.to_string())
                .or_internal("answering an export")?;
        }
        Ok(response)
    }

    /// Operations an import brings (`{"counter": line or null, "operations": [...]}`),
    /// added after the ledger's last in one transaction (`ledger::extend`). A counter
    /// this object does not have yet is made from the `counter` line, with no operation
    /// of its own: the file's first operation is its root.
    async fn import(&self, req: &mut Request, tenant: &str) -> ApiResult<Response> {
        let text = req.text().await.or_internal("reading an import")?;
        let body: serde_json::Value =
            serde_json::from_str(&text).or_internal("an import that does not parse")?;
        let mut incoming = Vec::new();
        for record in body["operations"].as_array().into_iter().flatten() {
            incoming.push(
                ledger::Incoming::from_record(record).ok_or_else(|| {
                    ApiError::internal("an imported operation that does not parse")
                })?,
            );
        }
        let storage = self.storage()?.clone();
        let line = &body["counter"];
        // A counter this object has never stored is made from the file, not adopted from
        // D1 (whose copy the import may have written already): its ledger starts with the
        // file's first operation.
        self.batch.settled().await?;
        let stored = storage.read()?.is_some();
        if stored || !line.is_object() {
            self.load().await?;
            self.batch.settled().await?;
        }
        // From here on nothing awaits until the transaction is written: no other request
        // can interleave.
        let fresh = match (stored, line.is_object()) {
            (false, true) => Some(CounterMeta {
                counter_id: line["id"].as_str().unwrap_or_default().to_string(),
                tenant_id: tenant.to_string(),
                label: line["label"].as_str().map(str::to_string),
                max_delta: line["max_delta"].as_i64().unwrap_or(1),
                created_ms: line["created_ms"].as_u64().unwrap_or(0),
            }),
            _ => None,
        };
        let from = match &fresh {
            Some(meta) if Some(&meta.counter_id) != self.state.id().name().as_ref() => {
                return Err(ApiError::internal("an import reached the wrong counter"));
            }
            Some(_) => CounterState {
                value: 0,
                version: 0,
                updated_ms: 0,
            },
            None => {
                self.owned_by(tenant)?;
                match &*self.counter.borrow() {
                    Slot::Present(live) => live.persisted,
                    _ => return Err(ApiError::CounterNotFound),
                }
            }
        };
        let total = incoming.len();
        let mut known = std::collections::HashSet::new();
        for op in &incoming {
            if storage.has_operation(&op.op.id)? {
                known.insert(op.op.id);
            }
        }
        let (ops, value) = ledger::extend(from.value, incoming, |id| known.contains(id))
            .map_err(ApiError::InvalidParameter)?;
        let added = ops.len();
        if added > 0 {
            let state = CounterState {
                value,
                version: from.version + added as u64,
                updated_ms: line["updated_ms"].as_u64().unwrap_or_else(now_ms),
            };
            let store = storage.clone();
            atomically(&self.state.storage(), move || {
                if let Some(meta) = &fresh {
                    store.adopt(meta, &from)?;
                }
                store.write_state(&state)?;
                store.append(&ops)
            })?;
            if let Some(counter) = storage.read()? {
                *self.counter.borrow_mut() = Slot::Present(Box::new(Live::new(counter)));
            }
            if let Err(e) = self.arm_flush().await {
                log::failure("arming a counter flush", &e);
            }
        }
        respond::json(
            200,
            format!(
                r#"{{"added":{added},"unchanged":{},"value":{value}}}"#,
                total - added
            ),
        )
        .or_internal("answering an import")
    }

    /// What the operator's check reads: this counter's ledger against its value.
    fn reconcile(&self, counter_id: &str, value: i64) -> ApiResult<String> {
        let sums = self.storage()?.sums()?;
        Ok(format!(
            r#"{{"counter_id":"{counter_id}","value":{value},"sum_of_deltas":{},"operations":{},"ok":{}}}"#,
            sums.sum_of_deltas,
            sums.operations,
            sums.reconciles(value)
        ))
    }

    /// Joins the open write batch, or opens one and writes it after letting the requests
    /// already waiting at the object join; answers once the batch is written. Arming the
    /// flush afterwards cannot fail the request: its change is already stored.
    async fn write_in_batch(&self) -> ApiResult<()> {
        let gather = worker::Delay::from(Duration::ZERO);
        let leader = self.batch.join(gather, || self.write_pending()).await?;
        if leader {
            if let Err(e) = self.arm_flush().await {
                log::failure("arming a counter flush", &e);
            }
        }
        Ok(())
    }

    /// Writes the latest state and the batch's operations in one transaction. On failure
    /// nothing is stored and memory falls back to what storage holds, so no member's
    /// change survives.
    fn write_pending(&self) -> ApiResult<()> {
        let mut slot = self.counter.borrow_mut();
        let Slot::Present(live) = &mut *slot else {
            return Ok(());
        };
        let mut ops = std::mem::take(&mut live.pending);
        let state = live.stored.state;
        let now = now_ms();
        for op in &mut ops {
            op.completed_ms = now.max(op.created_ms);
        }
        let fault = config::get(&self.env)?.fault == Some(Fault::BatchWrite);
        let written = self.storage().cloned().and_then(|storage| {
            atomically(&self.state.storage(), move || {
                storage.write_state(&state)?;
                if fault {
                    return Err(ApiError::internal("injected fault: batch write"));
                }
                storage.append(&ops)
            })
        });
        match written {
            Ok(()) => live.persisted = live.stored.state,
            Err(_) => live.stored.state = live.persisted,
        }
        written
    }

    async fn arm_flush(&self) -> ApiResult<()> {
        let config = config::get(&self.env)?;
        let due = now_ms() + config.flush_interval_ms;
        let fault = config.fault == Some(Fault::ArmAlarm);
        self.alarm
            .ensure_by_or_fail(&self.state.storage(), due, fault)
            .await
    }

    /// Loads the counter into memory: from the object's storage, or, for an object that
    /// has none yet, from the record in D1 (the creation wrote it there first).
    async fn load(&self) -> ApiResult<()> {
        if !matches!(*self.counter.borrow(), Slot::Unknown) {
            return Ok(());
        }
        let storage = self.storage()?;
        if let Some(counter) = storage.read()? {
            // A counter stored before it had a ledger starts one from its value.
            let id = uuid_v7(now_ms(), random_bytes()?);
            storage.ensure_root(OperationKind::Baseline, &id, "system")?;
            *self.counter.borrow_mut() = Slot::Present(Box::new(Live::new(counter)));
            return Ok(());
        }
        let id = self.state.id().name().unwrap_or_default();
        let found = store::counters::find(&store::database(&self.env)?, &id).await?;
        // Another request may have loaded or created the counter while D1 answered.
        if !matches!(*self.counter.borrow(), Slot::Unknown) {
            return Ok(());
        }
        match found {
            Some((meta, state, created_by)) => {
                self.adopt(&meta, &state, created_by.as_deref().unwrap_or("anonymous"))
            }
            None => {
                *self.counter.borrow_mut() = Slot::Missing;
                Ok(())
            }
        }
    }

    /// Takes on a counter D1 holds, with its creation as the first operation.
    fn adopt(&self, meta: &CounterMeta, state: &CounterState, actor: &str) -> ApiResult<()> {
        let storage = self.storage()?;
        storage.adopt(meta, state)?;
        let id = uuid_v7(meta.created_ms, random_bytes()?);
        storage.ensure_root(OperationKind::InitialValue, &id, actor)?;
        if let Some(counter) = storage.read()? {
            *self.counter.borrow_mut() = Slot::Present(Box::new(Live::new(counter)));
        }
        Ok(())
    }

    /// The alarm's work: copy the value to D1 if D1 lacks it, fold operations past the
    /// retention into the baseline (a bounded number per alarm), and ask for the alarm
    /// again by whichever is due first. A failed D1 write arms its own retry, because the platform drops an
    /// alarm that keeps failing.
    async fn housekeeping(&self) -> ApiResult<()> {
        self.load().await?;
        let (id, snapshot, flushed) = match &*self.counter.borrow() {
            // Only what storage holds may reach D1.
            Slot::Present(c) => (
                c.stored.meta.counter_id.clone(),
                c.persisted,
                c.stored.flushed_version,
            ),
            _ => return Ok(()),
        };
        let config = config::get(&self.env)?;
        let storage = self.storage()?;
        let mut flushed_now = Ok(());
        let mut retry_at = None;
        if let FlushPlan::Write { version } = flush::plan(snapshot.version, flushed) {
            let written = match store::database(&self.env) {
                Ok(db) => store::counters::write_value(&db, &id, &snapshot).await,
                Err(e) => Err(e),
            };
            match written {
                Ok(()) => {
                    self.flush_failures.set(0);
                    storage.record_flush(version)?;
                    if let Slot::Present(c) = &mut *self.counter.borrow_mut() {
                        c.stored.flushed_version = c.stored.flushed_version.max(version);
                    }
                }
                Err(e) => {
                    let failures = self.flush_failures.get().saturating_add(1);
                    self.flush_failures.set(failures);
                    let delay = flush::retry_delay_ms(config.flush_interval_ms, failures);
                    retry_at = Some(now_ms() + delay);
                    flushed_now = Err(e);
                }
            }
        }
        let now = now_ms();
        let behind = matches!(&*self.counter.borrow(),
            Slot::Present(c) if c.persisted.version > c.stored.flushed_version);
        let flush_due = retry_at.or(behind.then_some(now + config.flush_interval_ms));
        let retention_ms = config.operation_retention_days * 86_400_000;
        let skewed = now.saturating_add_signed(config.clock_skew_ms);
        let new_id = || Ok(uuid_v7(now, random_bytes()?));
        let prune_due = match storage.fold(skewed.saturating_sub(retention_ms), new_id)? {
            Pruned::More => Some(now + 1_000),
            // A day's slack gathers folding into fewer, larger steps.
            Pruned::OldestLeft(oldest) => oldest.map(|at| {
                (at + retention_ms + 86_400_000).saturating_add_signed(-config.clock_skew_ms)
            }),
        };
        for due in [flush_due, prune_due].into_iter().flatten() {
            self.alarm.ensure_by(&self.state.storage(), due).await?;
        }
        flushed_now
    }
}

/// A decision as the client sees it: a refusal is the contract's 429 with the budget.
fn answered(decided: Decided) -> Answered {
    match decided {
        Decided::Answer { body, budget, .. } => Answered {
            status: 200,
            budget,
            body,
        },
        Decided::OverBudget(decision) => Answered {
            budget: Some(decision),
            ..Answered::error(&ApiError::RateLimitExceeded {
                retry_after_seconds: decision.retry_after_seconds,
            })
        },
    }
}

/// The answer a mutation gave, rebuilt from its operation for a replay.
fn answer_of(op: &Operation) -> Mutation {
    Mutation {
        operation_id: op.id.hyphenated().to_string(),
        delta: op.delta,
        value: op.value_after,
        updated_ms: op.created_ms,
    }
}
