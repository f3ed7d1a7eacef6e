//! The page object: one Durable Object per (tenant, page), the authority for the page's
//! count. Each visit is decided in memory — within the client's budget or not, counted
//! or not, this visitor's first visit today or not — joins a write batch that stores the
//! new count, the visit's row and the visitor's hash in one transaction, and is answered
//! once that batch is written. An alarm copies buffered rows to D1 in batches and drops
//! them from the buffer only after D1 confirmed them; it also refreshes the tenant's
//! settings and drops the day's visitor hashes when the day ends.
//!
//! **Invariant:** the IP and user agent of a visit never reach this object: the Worker
//! sends the day's visitor hash instead, and the object stores only that (deleted when
//! the day ends).
//!
//! **Invariant:** a visit never waits for D1 once the page exists: the page, its tenant's
//! settings and today's visitors are all in the object's own storage.

use crate::config::{self, Config};
use crate::domain::agent::AgentClass;
use crate::domain::budget::{Budgets, Decision};
use crate::domain::client::ClientKey;
use crate::domain::flush;
use crate::domain::ids::TenantId;
use crate::domain::page::PageState;
use crate::domain::stats::site_hash;
use crate::domain::uniques::{DayUniques, Seen};
use crate::domain::views::TenantSettings;
use crate::domain::visit::{day_of, parse_visitor_hash, VisitRow, DAY_MS};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::respond;
use crate::http::{log, report};
use crate::objects::alarm::Alarm;
use crate::objects::batch::BatchWriter;
use crate::objects::page_protocol::{
    call_of, NotCounted, PageCall, PageView, VisitAnswer, Visitor,
};
use crate::objects::page_storage::{BatchWrite, PageStorage};
use crate::objects::transaction::atomically;
use crate::platform::now_ms;
use crate::shared_result::SharedResult;
use crate::store;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;
use worker::{DurableObject, Env, Request, Response, State};

/// Rows one alarm copies to D1 (in one statement); more re-arm at once.
const FLUSH_ROWS: u32 = 1_000;
/// How long tenant settings are trusted before the alarm reads them again.
const SETTINGS_TTL_MS: u64 = 60_000;
/// Stored visitors remembered in memory (16 bytes each, about 2 MB with the set's own
/// overhead).
const KNOWN_VISITORS: usize = 65_536;

struct Live {
    page: PageState,
    /// What storage holds; `page` is ahead only while a batch is open.
    persisted: PageState,
    pending: Vec<VisitRow>,
    /// Hashes of the open batch's new visitors (not in storage yet).
    pending_visitors: Vec<[u8; 16]>,
    /// Today's visitors known to be stored, so a returning visitor costs no lookup.
    /// Bounded: past `KNOWN_VISITORS` it starts over and storage answers again.
    known_visitors: HashSet<[u8; 16]>,
    uniques: DayUniques,
    persisted_uniques: DayUniques,
    settings: TenantSettings,
    settings_read_ms: u64,
    /// Clients' budgets: memory only.
    budgets: Budgets,
}

/// What a visit decided, before anything is written.
struct Decided {
    answer: VisitAnswer,
    /// False when the visit stores nothing (over budget, or Do Not Track).
    recorded: bool,
    budget: Option<Decision>,
}

#[worker::durable_object]
pub struct PageObject {
    state: State,
    env: Env,
    storage: Result<PageStorage, ApiError>,
    live: RefCell<Option<Live>>,
    batch: BatchWriter,
    alarm: Alarm,
    flush_failures: Cell<u32>,
    /// Set while the page is being deleted: visits wait for nothing and find no page.
    deleting: Cell<bool>,
    /// Counts deletions, so work that awaited across one can tell and store nothing.
    deletions: Cell<u64>,
    /// The flush in progress, which a deletion waits for.
    flushing: RefCell<Option<Rc<SharedResult<()>>>>,
}

impl DurableObject for PageObject {
    fn new(state: State, env: Env) -> Self {
        let storage = PageStorage::open(&state.storage());
        PageObject {
            state,
            env,
            storage,
            live: RefCell::new(None),
            batch: BatchWriter::default(),
            alarm: Alarm::default(),
            flush_failures: Cell::new(0),
            deleting: Cell::new(false),
            deletions: Cell::new(0),
            flushing: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        report::entered_object(&self.env, &self.state);
        let url = req.inner().url();
        let answer = match call_of(&url) {
            Some(Some(call)) => self.serve(call).await,
            Some(None) => Err(ApiError::internal("a page call that does not parse")),
            None => Err(ApiError::NotFound),
        };
        respond::from_object("page object", answer)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        report::entered_object(&self.env, &self.state);
        self.alarm.fired();
        if let Err(e) = self.housekeeping().await {
            log::failure("page alarm", &e);
            let tenant = self
                .live
                .borrow()
                .as_ref()
                .map(|l| l.page.tenant_id.clone());
            let failures = self.flush_failures.get();
            report::flush_failed(&self.env, &self.state, "page flush", failures, tenant, &e);
            // Nothing re-armed itself: let the platform retry this alarm.
            if !self.alarm.is_armed() {
                return Err(worker::Error::RustError(e.to_string()));
            }
        }
        Response::ok("")
    }
}

impl PageObject {
    fn storage(&self) -> ApiResult<&PageStorage> {
        self.storage.as_ref().map_err(Clone::clone)
    }

    async fn serve(&self, call: PageCall) -> ApiResult<Response> {
        if self.deleting.get() {
            return Err(ApiError::PageNotFound);
        }
        let create = matches!(call, PageCall::Visit { .. });
        self.load(call.tenant(), call.page(), create).await?;
        match call {
            PageCall::Read { .. } => {
                self.batch.settled().await?;
                let today = day_of(now_ms());
                let answer = self.with_live(|live| PageView {
                    page_id: live.page.page_id.clone(),
                    count: live.page.count,
                    uniques_today: if live.uniques.day == today {
                        live.uniques.count()
                    } else {
                        0
                    },
                })?;
                answer_json(&answer, None)
            }
            PageCall::Visit { visitor, .. } => self.visit(&visitor).await,
            PageCall::Delete { tenant, page } => self.delete(&tenant, &page).await,
            PageCall::Add { count, key, .. } => self.add(count, &key).await,
        }
    }

    async fn visit(&self, visitor: &Visitor) -> ApiResult<Response> {
        let config = config::get(&self.env)?;
        let now = config.visit_clock(now_ms());
        let decided = {
            let mut slot = self.live.borrow_mut();
            let live = slot.as_mut().ok_or(ApiError::PageNotFound)?;
            decide(live, self.storage()?, &config, visitor, now)?
        };
        if decided.recorded {
            let gather = worker::Delay::from(Duration::ZERO);
            let leader = self.batch.join(gather, || self.write_pending()).await?;
            if leader {
                // The visit is stored: failing to arm the flush must not fail its answer.
                let due = now_ms() + config.flush_interval_ms;
                if let Err(e) = self.alarm.ensure_by(&self.state.storage(), due).await {
                    log::failure("arming a page flush", &e);
                }
            }
        } else {
            // The count it shows may include the open batch's visits.
            self.batch.settled().await?;
        }
        answer_json(&decided.answer, decided.budget)
    }

    /// An import's addition: the count grows by `count` once per `key`, with the key
    /// stored in the same transaction. It takes a sequence number, as a visit does, so
    /// the next flush carries the new count to D1.
    async fn add(&self, count: u64, key: &str) -> ApiResult<Response> {
        // Visits decided meanwhile wait in a batch of their own: written first, so this
        // builds on what storage holds and loses none of them.
        loop {
            self.batch.settled().await?;
            if self.with_live(|live| live.pending.is_empty())? {
                break;
            }
        }
        let storage = self.storage()?.clone();
        let added = !storage.imported(key)?;
        if added {
            let mut slot = self.live.borrow_mut();
            let live = slot.as_mut().ok_or(ApiError::PageNotFound)?;
            let mut page = live.persisted.clone();
            page.count = page.count.saturating_add(count);
            page.seq += 1;
            page.updated_ms = now_ms();
            let batch = BatchWrite {
                page: page.clone(),
                rows: Vec::new(),
                visitors: Vec::new(),
                uniques: None,
            };
            let key = key.to_string();
            atomically(&self.state.storage(), move || {
                storage.write(&batch)?;
                storage.record_import(&key)
            })?;
            live.page = page.clone();
            live.persisted = page;
        }
        if added {
            let due = now_ms() + config::get(&self.env)?.flush_interval_ms;
            self.alarm.ensure_by(&self.state.storage(), due).await?;
        }
        let count = self.with_live(|live| live.page.count)?;
        respond::json(200, format!(r#"{{"added":{added},"count":{count}}}"#))
            .or_internal("answering an import")
    }

    fn with_live<T>(&self, f: impl FnOnce(&mut Live) -> T) -> ApiResult<T> {
        let mut live = self.live.borrow_mut();
        let live = live.as_mut().ok_or(ApiError::PageNotFound)?;
        Ok(f(live))
    }

    /// Writes the batch's count, rows, visitors and day totals in one transaction; on
    /// failure nothing is stored and memory falls back to what storage holds.
    fn write_pending(&self) -> ApiResult<()> {
        let mut slot = self.live.borrow_mut();
        let Some(live) = slot.as_mut() else {
            return Ok(());
        };
        let uniques_changed =
            !live.pending_visitors.is_empty() || live.uniques != live.persisted_uniques;
        let visitors = std::mem::take(&mut live.pending_visitors);
        let batch = BatchWrite {
            page: live.page.clone(),
            rows: std::mem::take(&mut live.pending),
            visitors: visitors.clone(),
            uniques: uniques_changed.then(|| live.uniques.clone()),
        };
        let written = self
            .storage()
            .cloned()
            .and_then(|storage| atomically(&self.state.storage(), move || storage.write(&batch)));
        match written {
            Ok(()) => {
                live.persisted = live.page.clone();
                live.persisted_uniques = live.uniques.clone();
                remember_visitors(live, visitors);
            }
            Err(_) => {
                live.page = live.persisted.clone();
                live.uniques = live.persisted_uniques.clone();
            }
        }
        written
    }

    /// Loads the page: from this object's storage, else from D1 — creating it there first
    /// when `create` and the tenant allows it.
    async fn load(&self, tenant: &str, page: &str, create: bool) -> ApiResult<()> {
        if let Some(live) = self.live.borrow().as_ref() {
            // The object's name fixes its page; a call for another is a bug upstream.
            return if live.page.tenant_id == tenant && live.page.page_id == page {
                Ok(())
            } else {
                Err(ApiError::internal("page call reached the wrong object"))
            };
        }
        let epoch = self.deletions.get();
        let stored = match self.storage()?.read()? {
            Some(found) => found,
            None => self.adopt_from_d1(tenant, page, create, epoch).await?,
        };
        if self.live.borrow().is_some() {
            return Ok(());
        }
        let (settings, settings_read_ms) = match self.storage()?.settings()? {
            Some(known) => known,
            None => self.first_settings(tenant, epoch).await,
        };
        self.still_there(epoch)?;
        if self.live.borrow().is_some() {
            return Ok(());
        }
        let uniques = self
            .storage()?
            .day_uniques()?
            .unwrap_or_else(|| DayUniques::new(day_of(now_ms())));
        *self.live.borrow_mut() = Some(Live {
            persisted: stored.clone(),
            page: stored,
            pending: Vec::new(),
            pending_visitors: Vec::new(),
            known_visitors: HashSet::new(),
            persisted_uniques: uniques.clone(),
            uniques,
            settings,
            settings_read_ms,
            budgets: Budgets::default(),
        });
        Ok(())
    }

    /// The settings of a page that has none stored yet (new, or written before pages
    /// kept them): D1's, stored here from now on; if D1 cannot say, the defaults, which
    /// the next alarm replaces.
    async fn first_settings(&self, tenant: &str, epoch: u64) -> (TenantSettings, u64) {
        let now = now_ms();
        let found = async {
            let db = store::database(&self.env)?;
            store::tenants::find(&db, &TenantId::parse(tenant)?).await
        };
        match found.await {
            Ok(tenant) => {
                let settings = tenant.map(|t| t.settings).unwrap_or_default();
                let stored = self
                    .still_there(epoch)
                    .and_then(|()| self.storage()?.write_settings(&settings, now));
                if let Err(e) = stored {
                    log::failure("storing tenant settings", &e);
                }
                (settings, now)
            }
            Err(e) => {
                log::failure("reading tenant settings", &e);
                (TenantSettings::default(), 0)
            }
        }
    }

    /// Refuses when the page was deleted (or is being deleted) since `epoch`: whatever
    /// was read before must not be stored after.
    fn still_there(&self, epoch: u64) -> ApiResult<()> {
        if self.deleting.get() || self.deletions.get() != epoch {
            Err(ApiError::PageNotFound)
        } else {
            Ok(())
        }
    }

    async fn adopt_from_d1(
        &self,
        tenant: &str,
        page: &str,
        create: bool,
        epoch: u64,
    ) -> ApiResult<PageState> {
        let db = store::database(&self.env)?;
        let config = config::get(&self.env)?;
        let now = now_ms();
        if create {
            store::pages::create_if_allowed(&db, tenant, page, now, &config).await?;
        }
        if let Some(found) = store::pages::find(&db, tenant, page).await? {
            self.still_there(epoch)?;
            let storage = self.storage()?;
            storage.adopt(&found)?;
            return storage
                .read()?
                .ok_or_else(|| ApiError::internal("adopted page vanished"));
        }
        // Why it does not exist: no tenant, no auto-creation, the cap, or the hourly
        // creation budget.
        let tenant_id = TenantId::parse(tenant)?;
        match store::tenants::find(&db, &tenant_id).await? {
            None => Err(ApiError::TenantNotFound),
            Some(t) if create && t.settings.page_auto_create => {
                store::pages::why_not_created(&db, tenant, now, &config).await
            }
            Some(_) => Err(ApiError::PageNotFound),
        }
    }

    /// The alarm's work: flush buffered visits, drop the last day's visitors once the
    /// day is over, refresh the tenant's settings, and ask for the alarm again by
    /// whichever is due first.
    async fn housekeeping(&self) -> ApiResult<()> {
        if self.deleting.get() {
            return Ok(());
        }
        let config = config::get(&self.env)?;
        let flight = SharedResult::new();
        *self.flushing.borrow_mut() = Some(flight.clone());
        let flushed = self.flush().await;
        *self.flushing.borrow_mut() = None;
        flight.set(());
        let now = now_ms();
        let today = day_of(now);
        self.end_past_day(today)?;
        self.refresh_settings(now).await;
        let mut dues = Vec::with_capacity(2);
        match &flushed {
            Ok(true) => dues.push(now + 1),
            Ok(false) => {}
            Err(_) => dues.push(
                now + flush::retry_delay_ms(config.flush_interval_ms, self.flush_failures.get()),
            ),
        }
        // Today's visitor hashes go at midnight, visits or not.
        // Today's visitor hashes go at midnight, visits or not — also when this alarm
        // finds nothing in memory (after an eviction).
        let stored_today = match self.with_live(|l| l.uniques.clone()) {
            Ok(uniques) => Some(uniques),
            Err(_) => self.storage()?.day_uniques()?,
        };
        let has_visitors = stored_today.is_some_and(|u| u.day == today && u.count() > 0);
        if has_visitors {
            dues.push((today + 1) * DAY_MS);
        }
        for due in dues {
            self.alarm.ensure_by(&self.state.storage(), due).await?;
        }
        flushed.map(drop)
    }

    /// Copies buffered rows and the written count to D1; drops rows from the buffer only
    /// once D1 has them. True when rows remain for another round.
    async fn flush(&self) -> ApiResult<bool> {
        let Some(page) = self.storage()?.read()? else {
            return Ok(false);
        };
        let rows = self.storage()?.buffered(FLUSH_ROWS)?;
        let config = config::get(&self.env)?;
        if rows.is_empty() && page.seq <= page.flushed_seq {
            return Ok(false);
        }
        let db = store::database(&self.env)?;
        let written = match store::pages::flush_statements(
            &db,
            &page,
            &rows,
            day_of(config.visit_clock(now_ms())),
            config.stats_exact_visitors,
        ) {
            Ok(statements) => db
                .batch(statements)
                .await
                .or_internal("flushing visits to D1")
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            self.flush_failures
                .set(self.flush_failures.get().saturating_add(1));
            return Err(e);
        }
        self.flush_failures.set(0);
        let confirmed = rows.last().map_or(page.seq, |r| r.seq);
        self.storage()?.confirm(confirmed)?;
        Ok(!self.storage()?.buffered(1)?.is_empty())
    }

    /// Once a day is over, its visitor hashes go: without its salt they could never be
    /// matched again, and the privacy promise is that nothing links visits across days.
    fn end_past_day(&self, today: u64) -> ApiResult<()> {
        let mut slot = self.live.borrow_mut();
        let stored_day = match slot.as_ref() {
            Some(live) => Some(live.uniques.day),
            None => self.storage()?.day_uniques()?.map(|u| u.day),
        };
        if stored_day.is_some_and(|day| day < today) {
            self.storage()?.start_day(today)?;
            if let Some(live) = slot.as_mut() {
                live.uniques = DayUniques::new(today);
                live.persisted_uniques = DayUniques::new(today);
                live.pending_visitors.clear();
                live.known_visitors.clear();
            }
        }
        Ok(())
    }

    /// Reads the tenant's settings again when they are older than a minute. A failure
    /// keeps the last ones: a D1 hiccup must not change how visits count.
    async fn refresh_settings(&self, now: u64) {
        let stale = self.with_live(|l| {
            (
                now.saturating_sub(l.settings_read_ms) > SETTINGS_TTL_MS,
                l.page.tenant_id.clone(),
            )
        });
        let Ok((true, tenant)) = stale else {
            return;
        };
        let found = async {
            let db = store::database(&self.env)?;
            store::tenants::find(&db, &TenantId::parse(&tenant)?).await
        };
        match found.await {
            Ok(Some(t)) => {
                if let Err(e) = self
                    .storage()
                    .and_then(|s| s.write_settings(&t.settings, now))
                {
                    log::failure("storing tenant settings", &e);
                    return;
                }
                let _ = self.with_live(|l| {
                    l.settings = t.settings;
                    l.settings_read_ms = now;
                });
            }
            Ok(None) => {}
            Err(e) => log::failure("refreshing tenant settings", &e),
        }
    }

    /// Deletes the page: its rows in D1 first (visits, daily totals, the page), then
    /// everything this object stores. Visits during the deletion find no page; a failed
    /// deletion leaves the page as it was, to be deleted again.
    async fn delete(&self, tenant: &str, page: &str) -> ApiResult<Response> {
        self.deleting.set(true);
        self.deletions.set(self.deletions.get() + 1);
        let deleted = self.delete_everywhere(tenant, page).await;
        self.deleting.set(false);
        deleted?;
        Ok(Response::empty().or_internal("answering")?.with_status(204))
    }

    async fn delete_everywhere(&self, tenant: &str, page: &str) -> ApiResult<()> {
        let flight = self.flushing.borrow().clone();
        if let Some(flight) = flight {
            flight.wait().await;
        }
        self.batch.settled().await?;
        let db = store::database(&self.env)?;
        store::pages::delete(&db, tenant, page).await?;
        let storage = self.storage()?.clone();
        atomically(&self.state.storage(), move || storage.clear())?;
        *self.live.borrow_mut() = None;
        self.state
            .storage()
            .delete_alarm()
            .await
            .or_internal("deleting the page's alarm")?;
        self.alarm.fired();
        Ok(())
    }
}

/// Decides one visit in memory (and asks storage whether the visitor is known today).
/// Synchronous: no other request interleaves. Order: the client's budget, Do Not Track,
/// then whether it counts and whether it is the visitor's first visit today.
fn decide(
    live: &mut Live,
    storage: &PageStorage,
    config: &Config,
    visitor: &Visitor,
    now: u64,
) -> ApiResult<Decided> {
    let client = ClientKey::from_wire(&visitor.client);
    let policy = config.budget_for(&client);
    let budget = policy
        .is_enabled()
        .then(|| live.budgets.admit(&client, now, policy));
    let uncounted = |live: &Live, reason| Decided {
        answer: VisitAnswer::uncounted(&live.page.page_id, live.page.count, reason),
        recorded: false,
        budget,
    };
    if budget.is_some_and(|d| !d.allowed) {
        return Ok(uncounted(live, NotCounted::Budget));
    }
    if visitor.dnt && live.settings.respect_dnt {
        // The tenant honours Do Not Track: show the count, record nothing.
        return Ok(uncounted(live, NotCounted::Dnt));
    }
    let counted = visitor.count_all || visitor.agent != AgentClass::Bot || live.settings.count_bots;
    let today = day_of(now);
    if live.uniques.day != today {
        storage.start_day(today)?;
        live.uniques = DayUniques::new(today);
        live.persisted_uniques = DayUniques::new(today);
        live.pending_visitors.clear();
        live.known_visitors.clear();
    }
    let hash = visitor.visitor.as_deref().and_then(parse_visitor_hash);
    let unique = match hash {
        Some(hash) if counted => {
            let known =
                if live.known_visitors.contains(&hash) || live.pending_visitors.contains(&hash) {
                    true
                } else if storage.knows_visitor(&hash)? {
                    remember_visitors(live, [hash]);
                    true
                } else {
                    false
                };
            let seen = live.uniques.observe(&hash, known);
            if let Seen::New { remember: true } = seen {
                live.pending_visitors.push(hash);
            }
            seen.is_new()
        }
        _ => false,
    };
    let page = &mut live.page;
    page.seq += 1;
    if counted {
        page.count += 1;
    }
    page.updated_ms = now.max(page.updated_ms);
    live.pending.push(VisitRow {
        seq: page.seq,
        ts: now,
        referrer_host: visitor.referrer_host.clone(),
        country: visitor.country.clone(),
        agent: visitor.agent.as_str().to_string(),
        counted: u8::from(counted),
        is_unique: u8::from(unique),
        site: hash
            .filter(|_| unique)
            .map(|h| site_hash(&h, &page.tenant_id)),
    });
    let answer = VisitAnswer {
        page_id: page.page_id.clone(),
        count: page.count,
        unique,
        counted,
        reason: (!counted).then_some(NotCounted::Bot),
    };
    Ok(Decided {
        answer,
        recorded: true,
        budget,
    })
}

/// Remembers visitors known to be stored today, within the bound.
fn remember_visitors(live: &mut Live, visitors: impl IntoIterator<Item = [u8; 16]>) {
    for hash in visitors {
        if live.known_visitors.len() >= KNOWN_VISITORS {
            live.known_visitors.clear();
        }
        live.known_visitors.insert(hash);
    }
}

fn answer_json(answer: &impl serde::Serialize, budget: Option<Decision>) -> ApiResult<Response> {
    let body = serde_json::to_string(answer).or_internal("encoding a page answer")?;
    respond::budgeted(200, body, budget.as_ref()).or_internal("answering")
}
