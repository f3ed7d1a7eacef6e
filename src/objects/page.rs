//! The page object: one Durable Object per (tenant, page), the authority for the page's
//! count. Each visit is decided in memory (counted or not, unique or not), joins a write
//! batch that stores the new count and the visit's row in the object's storage, and is
//! answered once that batch is written. An alarm copies buffered rows to D1 in batches
//! and drops them from the buffer only after D1 confirmed them.
//!
//! **Invariant:** the IP and user agent of a visit exist only in memory, for the day's
//! visitor hash; neither is written anywhere.

use crate::config;
use crate::domain::flush;
use crate::domain::uniques::{DailyUniques, Uniques};
use crate::domain::views::TenantSettings;
use crate::domain::visit::{day_of, visitor_hash, AgentClass};
use crate::error::{ApiError, ApiResult};
use crate::http::log;
use crate::http::respond::{self, OrInternal};
use crate::objects::alarm::FlushAlarm;
use crate::objects::batch::BatchWriter;
use crate::objects::page_protocol::{PageCall, Visitor};
use crate::objects::page_storage::{PageState, PageStorage, VisitRow};
use crate::platform::now_ms;
use crate::store;
use std::cell::{Cell, RefCell};
use std::time::Duration;
use worker::{durable_object, DurableObject, Env, Request, Response, State};

/// Rows one alarm copies to D1; more re-arm at once.
const FLUSH_ROWS: u32 = 20 * store::pages::ROWS_PER_INSERT as u32;
/// How long tenant settings are trusted before they are read again.
const SETTINGS_TTL_MS: u64 = 60_000;

struct Live {
    page: PageState,
    /// What storage holds; `page` is ahead only while a batch is open.
    persisted: PageState,
    pending: Vec<VisitRow>,
    uniques: DailyUniques,
    uniques_changed: bool,
    settings: TenantSettings,
    settings_read_ms: u64,
}

#[durable_object]
pub struct PageObject {
    state: State,
    env: Env,
    storage: Result<PageStorage, ApiError>,
    live: RefCell<Option<Live>>,
    batch: BatchWriter,
    alarm: FlushAlarm,
    /// Today's salt: (day, salt), fetched from the salt keeper once a day.
    salt: RefCell<Option<(u64, String)>>,
    flush_failures: Cell<u32>,
}

impl DurableObject for PageObject {
    fn new(state: State, env: Env) -> Self {
        let storage = PageStorage::open(state.storage().sql());
        PageObject {
            state,
            env,
            storage,
            live: RefCell::new(None),
            batch: BatchWriter::default(),
            alarm: FlushAlarm::default(),
            salt: RefCell::new(None),
            flush_failures: Cell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let answer = match req.json::<PageCall>().await {
            Ok(call) => self.serve(call).await,
            Err(e) => Err(ApiError::Internal(format!("decoding a page call: {e}"))),
        };
        respond::from_object("page object", answer)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        if let Err(e) = self.flush().await {
            log::failure("page flush", &e);
        }
        Response::ok("")
    }
}

impl PageObject {
    fn storage(&self) -> ApiResult<&PageStorage> {
        self.storage.as_ref().map_err(Clone::clone)
    }

    async fn serve(&self, call: PageCall) -> ApiResult<Response> {
        let create = matches!(call, PageCall::Visit { .. });
        self.load(call.tenant(), call.page(), create).await?;
        let now = now_ms();
        match call {
            PageCall::Read { .. } => {
                self.batch.settled().await?;
                let body = self.with_live(|live| {
                    serde_json::json!({
                        "page_id": live.page.page_id,
                        "count": live.page.count,
                        "uniques_today": live.uniques.count_on(day_of(now)),
                    })
                    .to_string()
                })?;
                respond::json(200, body).or_internal("answering")
            }
            PageCall::Visit { visitor, .. } => {
                self.refresh_settings(now).await?;
                if self.with_live(|l| visitor.dnt && l.settings.respect_dnt)? {
                    // The tenant honours Do Not Track: show the count, record nothing.
                    self.batch.settled().await?;
                    let body = self.with_live(|l| {
                        serde_json::json!({"page_id": l.page.page_id, "count": l.page.count, "unique": false})
                            .to_string()
                    })?;
                    return respond::json(200, body).or_internal("answering");
                }
                let salt = self.salt_for(day_of(now)).await;
                let body =
                    self.with_live(|live| record_visit(live, &visitor, salt.as_deref(), now))?;
                let gather = worker::Delay::from(Duration::ZERO);
                let leader = self.batch.join(gather, || self.write_pending()).await?;
                if leader && !self.alarm.is_armed() {
                    let interval = config::get(&self.env)?.flush_interval_ms;
                    self.alarm.ensure(&self.state.storage(), interval).await?;
                }
                respond::json(200, body).or_internal("answering")
            }
        }
    }

    fn with_live<T>(&self, f: impl FnOnce(&mut Live) -> T) -> ApiResult<T> {
        let mut live = self.live.borrow_mut();
        let live = live.as_mut().ok_or(ApiError::PageNotFound)?;
        Ok(f(live))
    }

    /// Writes the batch's rows, count and unique state synchronously; on failure memory
    /// falls back to what storage holds.
    fn write_pending(&self) -> ApiResult<()> {
        let mut slot = self.live.borrow_mut();
        let Some(live) = slot.as_mut() else {
            return Ok(());
        };
        let rows = std::mem::take(&mut live.pending);
        let uniques = live
            .uniques_changed
            .then(|| (live.uniques.day, live.uniques.uniques.to_bytes()));
        let written = self.storage().and_then(|s| {
            s.write(
                &live.page,
                &rows,
                uniques.as_ref().map(|(d, b)| (*d, b.as_slice())),
            )
        });
        match written {
            Ok(()) => {
                live.persisted = live.page.clone();
                live.uniques_changed = false;
            }
            Err(_) => {
                live.page = live.persisted.clone();
                // The unique state may hold visitors whose visits were not kept: reload.
                let day = live.uniques.day;
                live.uniques = self.stored_uniques(day);
                live.uniques_changed = false;
            }
        }
        written
    }

    fn stored_uniques(&self, day: u64) -> DailyUniques {
        let uniques = self
            .storage()
            .and_then(|s| s.uniques(day))
            .ok()
            .flatten()
            .and_then(|b| Uniques::from_bytes(&b))
            .unwrap_or_default();
        DailyUniques { day, uniques }
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
        let stored = match self.storage()?.read()? {
            Some(found) => found,
            None => self.adopt_from_d1(tenant, page, create).await?,
        };
        if self.live.borrow().is_some() {
            return Ok(());
        }
        let db = store::database(&self.env)?;
        let tenant_row =
            crate::store::tenants::find(&db, &crate::domain::ids::TenantId::parse(tenant)?).await?;
        let settings = tenant_row.map(|t| t.settings).unwrap_or_default();
        if self.live.borrow().is_some() {
            return Ok(());
        }
        let uniques = self.stored_uniques(day_of(now_ms()));
        *self.live.borrow_mut() = Some(Live {
            persisted: stored.clone(),
            page: stored,
            pending: Vec::new(),
            uniques,
            uniques_changed: false,
            settings,
            settings_read_ms: now_ms(),
        });
        Ok(())
    }

    async fn adopt_from_d1(&self, tenant: &str, page: &str, create: bool) -> ApiResult<PageState> {
        let db = store::database(&self.env)?;
        let config = config::get(&self.env)?;
        if create {
            store::pages::create_if_allowed(
                &db,
                tenant,
                page,
                now_ms(),
                config.max_pages_per_tenant,
            )
            .await?;
        }
        if let Some(found) = store::pages::find(&db, tenant, page).await? {
            let storage = self.storage()?;
            storage.adopt(&found)?;
            return storage
                .read()?
                .ok_or_else(|| ApiError::internal("adopted page vanished"));
        }
        // Why it does not exist: no tenant, no auto-creation, or the cap.
        let tenant_id = crate::domain::ids::TenantId::parse(tenant)?;
        match crate::store::tenants::find(&db, &tenant_id).await? {
            None => Err(ApiError::TenantNotFound),
            Some(t) if create && t.settings.page_auto_create => Err(ApiError::PageLimitReached {
                limit: config.max_pages_per_tenant,
            }),
            Some(_) => Err(ApiError::PageNotFound),
        }
    }

    async fn refresh_settings(&self, now: u64) -> ApiResult<()> {
        let stale = self.with_live(|l| now.saturating_sub(l.settings_read_ms) > SETTINGS_TTL_MS)?;
        if !stale {
            return Ok(());
        }
        let tenant = self.with_live(|l| l.page.tenant_id.clone())?;
        let db = store::database(&self.env)?;
        let found =
            crate::store::tenants::find(&db, &crate::domain::ids::TenantId::parse(&tenant)?)
                .await?;
        self.with_live(|l| {
            if let Some(t) = found {
                l.settings = t.settings;
            }
            l.settings_read_ms = now;
        })
    }

    /// Today's salt, from memory or the salt keeper. `None` if it cannot be had: the
    /// visit still counts, but is not marked unique.
    async fn salt_for(&self, day: u64) -> Option<String> {
        if let Some((d, salt)) = self.salt.borrow().as_ref() {
            if *d == day {
                return Some(salt.clone());
            }
        }
        let fetched = async {
            let stub = self.env.durable_object("SALTS")?.get_by_name("salts")?;
            let mut answer = stub
                .fetch_with_str(&format!("https://salts/day/{day}"))
                .await?;
            match answer.status_code() {
                200 => answer.text().await,
                other => Err(worker::Error::RustError(format!(
                    "salt keeper answered {other}"
                ))),
            }
        };
        match fetched.await {
            Ok(salt) => {
                *self.salt.borrow_mut() = Some((day, salt.clone()));
                Some(salt)
            }
            Err(e) => {
                log::failure("salt unavailable", &e);
                None
            }
        }
    }

    /// Copies buffered rows and the written count to D1; drops rows from the buffer only
    /// once D1 has them. Re-arms itself after a failure or when rows remain.
    async fn flush(&self) -> ApiResult<()> {
        let Some(page) = self.storage()?.read()? else {
            return Ok(());
        };
        let rows = self.storage()?.buffered(FLUSH_ROWS)?;
        let config = config::get(&self.env)?;
        if rows.is_empty() && page.seq <= page.flushed_seq {
            return Ok(());
        }
        let db = store::database(&self.env)?;
        let written = match store::pages::flush_statements(&db, &page, &rows) {
            Ok(statements) => db
                .batch(statements)
                .await
                .or_internal("flushing visits to D1")
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let failures = self.flush_failures.get().saturating_add(1);
            self.flush_failures.set(failures);
            self.alarm
                .set_in(
                    &self.state.storage(),
                    flush::retry_delay_ms(config.flush_interval_ms, failures),
                )
                .await?;
            return Err(e);
        }
        self.flush_failures.set(0);
        let confirmed = rows.last().map_or(page.seq, |r| r.seq);
        self.storage()?.confirm(confirmed)?;
        let remaining = !self.storage()?.buffered(1)?.is_empty();
        if remaining && !self.alarm.is_armed() {
            self.alarm.set_in(&self.state.storage(), 1).await?;
        }
        Ok(())
    }
}

/// Decides one visit in memory and answers `{page_id, count, unique}`.
fn record_visit(live: &mut Live, visitor: &Visitor, salt: Option<&str>, now: u64) -> String {
    let counted = visitor.agent != AgentClass::Bot || live.settings.count_bots;
    let unique = match salt {
        Some(salt) if counted => {
            let hash = visitor_hash(salt.as_bytes(), &visitor.ip, &visitor.user_agent);
            let new = live.uniques.observe(day_of(now), hash);
            live.uniques_changed |= new;
            new
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
    });
    serde_json::json!({"page_id": page.page_id, "count": page.count, "unique": unique}).to_string()
}
