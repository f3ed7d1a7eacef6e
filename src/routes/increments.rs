//! Increments, coalesced: while one call to a counter's object is in flight, later
//! increments of the same counter in this isolate queue in its lane (`crate::lanes`) and
//! leave together in the next call, one object request for many clients. The object
//! decides each in turn as if it came alone (budget, limits, its Idempotency-Key, which
//! it checks against the operations pending beside it too) and stores them in one
//! write; each client gets its own answer.
//!
//! Requests share only memory here, never code: the runtime refuses I/O made on another
//! request's behalf, and every request's Rust tasks share one executor, so a task woken
//! by another request's code may run in that request's turn. So the flight runs in the
//! turn of the member that departs it (kept alive past its answer by `waitUntil`), which
//! it wakes when it lands; the others look for their answer on timers of their own.

use crate::domain::ids::{CounterId, TenantId};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::context::Ctx;
use crate::http::respond;
use crate::lanes::Lanes;
use crate::objects::counter_protocol::{parse_answers, Answered, CounterCall, BATCH_PATH};
use crate::platform::now_ms;
use crate::routes::counters::{call_object, counter_stub, tenant_exists};
use crate::shared_result::SharedResult;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use worker::{Env, Response};

/// A waiting member looks at its lane after 1 ms, then at doubling intervals up to this.
const TICK_MAX_MS: u64 = 8;
/// A member whose flight has not answered by then gives up (the outcome is unknown).
const GIVE_UP_MS: u64 = 60_000;
/// A queued member that has not looked at its lane for this long has gone (its client
/// hung up, or it gave up): the next flight leaves it behind, uncounted.
const GONE_MS: u64 = 5_000;

struct Member {
    call: String,
    answer: RefCell<Option<ApiResult<Answered>>>,
    carried: Cell<bool>,
    /// When it last looked at its lane; 0 once it gave up.
    seen: Cell<u64>,
}

thread_local! {
    static LANES: RefCell<Lanes<Rc<Member>>> = RefCell::default();
}

pub async fn increment(
    ctx: &Ctx<'_>,
    tenant: TenantId,
    counter: CounterId,
    call: &CounterCall,
) -> ApiResult<Response> {
    let lane = format!("{tenant}/{counter}");
    let me = Rc::new(Member {
        call: call.path(),
        answer: RefCell::new(None),
        carried: Cell::new(false),
        seen: Cell::new(now_ms()),
    });
    if !LANES.with(|l| l.borrow_mut().enter(&lane, me.clone())) {
        return call_object(ctx.env, counter, call).await;
    }
    let started = now_ms();
    let mut tick = 1;
    loop {
        let answer = me.answer.borrow_mut().take();
        if let Some(answer) = answer {
            let a = answer?;
            return respond::budgeted(a.status, a.body, a.budget.as_ref()).or_internal("answering");
        }
        let now = now_ms();
        if now.saturating_sub(started) > GIVE_UP_MS {
            // Not yet carried, it never will be: a client's retry cannot count twice.
            me.seen.set(0);
            return Err(ApiError::internal("a coalesced increment got no answer"));
        }
        me.seen.set(now);
        let departing = match me.carried.get() {
            true => None,
            false => LANES.with(|l| l.borrow_mut().depart(&lane, now)),
        };
        if let Some((flight, mut members)) = departing {
            members.retain(|m| now.saturating_sub(m.seen.get()) < GONE_MS);
            for m in &members {
                m.carried.set(true);
            }
            // The flight outlives this request if its client leaves: the others it
            // carries still get their answers.
            let landed = SharedResult::new();
            let f = fly(
                ctx.env.clone(),
                lane.clone(),
                flight,
                tenant,
                counter,
                members,
            );
            let done = landed.clone();
            ctx.waits.wait_until(async move {
                f.await;
                done.set(());
            });
            landed.wait().await;
        } else {
            worker::Delay::from(std::time::Duration::from_millis(tick)).await;
            tick = (tick * 2).min(TICK_MAX_MS);
        }
    }
}

/// Carries a flight's members to the object, hands each its answer, and frees the lane
/// for the members queued meanwhile (the first to look departs next).
async fn fly(
    env: Env,
    lane: String,
    flight: u64,
    tenant: TenantId,
    counter: CounterId,
    members: Vec<Rc<Member>>,
) {
    let calls: Vec<&str> = members.iter().map(|m| m.call.as_str()).collect();
    let answers = send(&env, tenant, counter, &calls.join("\n")).await;
    for (i, m) in members.iter().enumerate() {
        let answer = match &answers {
            Ok(all) => all
                .get(i)
                .cloned()
                .ok_or_else(|| ApiError::internal("a batch answered short")),
            Err(e) => Err(e.clone()),
        };
        *m.answer.borrow_mut() = Some(answer);
    }
    LANES.with(|l| l.borrow_mut().landed(&lane, flight));
}

async fn send(
    env: &Env,
    tenant: TenantId,
    counter: CounterId,
    calls: &str,
) -> ApiResult<Vec<Answered>> {
    let stub = counter_stub(env, counter)?;
    let url = format!("https://counter{BATCH_PATH}");
    let request = crate::platform::request("POST", &url, None, Some(calls))
        .or_internal("building a batch")?;
    let mut answer = stub
        .fetch_with_request(request)
        .await
        .or_internal("calling a counter object")?;
    if answer.status_code() != 200 {
        return Err(ApiError::Internal(format!(
            "counter object answered a batch {}",
            answer.status_code()
        )));
    }
    let text = answer.text().await.or_internal("reading a batch answer")?;
    let answers = parse_answers(&text)
        .ok_or_else(|| ApiError::internal("a batch answer that does not parse"))?;
    if answers.iter().any(|a| a.status == 404) {
        tenant_exists(env, &tenant).await?;
    }
    Ok(answers)
}
