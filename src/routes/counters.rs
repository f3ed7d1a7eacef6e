//! Counter routes: create and list (D1), read, increment and set (the counter's object).

use crate::domain::counter::{CounterMeta, CounterState, Delta};
use crate::domain::cursor::page_limit;
use crate::domain::idempotency::{fingerprint, IdempotencyKey};
use crate::domain::ids::{CounterId, TenantId};
use crate::domain::input::{NewCounter, NewValue};
use crate::domain::ledger;
use crate::domain::views::{counter_json, counter_page_json};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::body::read_limited;
use crate::http::context::Ctx;
use crate::http::respond;
use crate::objects::counter::InitRecord;
use crate::objects::counter_protocol::CounterCall;
use crate::platform::{now_ms, random_bytes};
use crate::routes::creation::{commit_once, reply};
use crate::store::{self, counters, idempotency::Answer, tenants};
use worker::{Env, Response};

pub const PAGE_DEFAULT: u32 = 20;
pub const PAGE_MAX: u32 = 100;

pub async fn create(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let new = NewCounter::parse(&read_limited(&mut ctx.req).await?)?;
    let keyed = ctx.idempotency_key()?.map(|k| {
        let (value, max_delta) = (new.initial_value.to_string(), new.max_delta.to_string());
        let label = new
            .label
            .as_deref()
            .map_or(String::from("\u{0}"), |l| format!("={l}"));
        (
            k,
            fingerprint(&[
                "create counter",
                &tenant.to_string(),
                &label,
                &value,
                &max_delta,
            ]),
        )
    });
    let db = store::database(ctx.env)?;
    let now = now_ms();
    let record = InitRecord {
        meta: CounterMeta {
            counter_id: CounterId::generate(now, random_bytes()?).to_string(),
            tenant_id: tenant.to_string(),
            label: new.label,
            max_delta: new.max_delta,
            created_ms: now,
        },
        state: CounterState {
            value: new.initial_value,
            version: 0,
            updated_ms: now,
        },
        actor: Some(ctx.actor().id()),
    };
    let answer = Answer {
        status: 201,
        body: counter_json(&record.meta, &record.state),
    };
    let insert = counters::insert(&db, &record.meta, &record.state, &ctx.actor().id())?;
    let outcome = commit_once(&db, keyed, vec![insert], answer, now).await?;
    if outcome.created {
        // The object would adopt the D1 record on its first request anyway; handing it
        // over now spares that request a D1 read.
        if let Err(e) = init_object(ctx.env, &record).await {
            crate::http::log::failure("counter init deferred to first use", &e);
        }
    }
    reply(&outcome)
}

pub async fn list(ctx: &mut Ctx<'_>, tenant: TenantId) -> ApiResult<Response> {
    let limit = page_limit(ctx.query("limit")?.as_deref(), PAGE_DEFAULT, PAGE_MAX)?;
    let cursor_key = ctx.config.cursor_key();
    let after = match ctx.query("cursor")? {
        Some(c) => Some(CounterId::from_uuid(
            cursor_key.decode(tenant.as_uuid(), &c)?,
        )),
        None => None,
    };
    let db = store::database(ctx.env)?;
    if tenants::find(&db, &tenant).await?.is_none() {
        return Err(ApiError::TenantNotFound);
    }
    let mut page = counters::page(&db, &tenant, after.as_ref(), limit + 1).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor = match (more, page.last()) {
        (true, Some((meta, _))) => Some(cursor_key.encode(
            tenant.as_uuid(),
            CounterId::parse(&meta.counter_id)?.as_uuid(),
        )),
        _ => None,
    };
    respond::json(200, counter_page_json(&page, next_cursor)).or_internal("answering")
}

pub async fn read(ctx: &mut Ctx<'_>, tenant: TenantId, counter: CounterId) -> ApiResult<Response> {
    call_object(ctx.env, counter, &CounterCall::Read { tenant }).await
}

/// V1 increments are public and spend the client's budget; V2 increments need a key
/// with `counter:increment` and an Idempotency-Key, and spend no budget (the caller is
/// a known credential, not an anonymous reader).
pub async fn increment(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    counter: CounterId,
    v2: bool,
) -> ApiResult<Response> {
    let key = keyed(ctx, v2)?;
    let delta = Delta::parse(ctx.query("delta")?.as_deref())?;
    let client = match v2 {
        true => None,
        false => Some(ctx.budget_client(ctx.salt().await.as_deref())),
    };
    let call = CounterCall::Increment {
        tenant,
        delta,
        key,
        client,
        view: false,
        actor: ctx.actor(),
    };
    crate::routes::increments::increment(ctx, tenant, counter, &call).await
}

/// The request's Idempotency-Key; V2 requires one (an empty header is none).
fn keyed(ctx: &Ctx<'_>, required: bool) -> ApiResult<Option<IdempotencyKey>> {
    let blank = ctx
        .header("Idempotency-Key")
        .is_none_or(|k| k.trim().is_empty());
    if required && blank {
        return Err(ApiError::IdempotencyKeyRequired);
    }
    ctx.idempotency_key()
}

/// A page of the counter's operations, newest first, from its object's ledger.
pub async fn operations(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    counter: CounterId,
) -> ApiResult<Response> {
    let limit = page_limit(
        ctx.query("limit")?.as_deref(),
        ledger::PAGE_DEFAULT,
        ledger::PAGE_MAX,
    )?;
    let before = match ctx.query("cursor")? {
        Some(c) => Some(ctx.config.cursor_key().decode(counter.as_uuid(), &c)?),
        None => None,
    };
    let call = CounterCall::History {
        tenant,
        limit,
        before,
    };
    call_object(ctx.env, counter, &call).await
}

pub async fn set(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    counter: CounterId,
    v2: bool,
) -> ApiResult<Response> {
    let key = keyed(ctx, v2)?;
    let new = NewValue::parse(&read_limited(&mut ctx.req).await?)?;
    call_object(
        ctx.env,
        counter,
        &CounterCall::Set {
            tenant,
            value: new.value,
            key,
            actor: ctx.actor(),
        },
    )
    .await
}

/// Asks the counter's object and relays its answer, its budget decision
/// (`X-RateLimit-*`) included. A missing counter under a missing tenant is reported as the
/// tenant's absence (one D1 read, on the error path only).
pub(crate) async fn call_object(
    env: &Env,
    counter: CounterId,
    call: &CounterCall,
) -> ApiResult<Response> {
    let answer = counter_stub(env, counter)?
        .fetch_with_str(&format!("https://counter{}", call.path()))
        .await
        .or_internal("calling a counter object")?;
    let status = answer.status_code();
    if let (404, Some(tenant)) = (status, call.tenant()) {
        tenant_exists(env, tenant).await?;
    }
    if status >= 500 {
        return Err(ApiError::Internal(format!(
            "counter object answered {status}"
        )));
    }
    // The object's answer streams through, with its headers (its budget among them).
    respond::relay(answer)
}

pub(crate) fn counter_stub(env: &Env, counter: CounterId) -> ApiResult<worker::Stub> {
    env.durable_object("COUNTER")
        .and_then(|ns| ns.get_by_name(&counter.to_string()))
        .or_internal("reaching a counter object")
}

/// A counter object answers 404 for a counter it does not hold; under a tenant that does
/// not exist that is the tenant's absence (one D1 read, on the error path only).
pub(crate) async fn tenant_exists(env: &Env, tenant: &TenantId) -> ApiResult<()> {
    match tenants::find(&store::database(env)?, tenant).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::TenantNotFound),
    }
}

pub(crate) async fn init_object(env: &Env, record: &InitRecord) -> worker::Result<()> {
    let stub = env
        .durable_object("COUNTER")?
        .get_by_name(&record.meta.counter_id)?;
    let body = serde_json::to_string(record)?;
    let init = crate::platform::request("POST", "https://counter/init", None, Some(&body))?;
    let answer = stub.fetch_with_request(init).await?;
    match answer.status_code() {
        201 => Ok(()),
        other => Err(worker::Error::RustError(format!(
            "counter init answered {other}"
        ))),
    }
}
