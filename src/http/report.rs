//! Error reports to Sentry, when `SENTRY_DSN` is set: a request answered 5xx, a flush
//! that keeps failing, a failed cron job, a panic. The envelope is built by
//! `domain::sentry`; this posts it. Posting never delays an answer: `send` starts the
//! request and hands back a future for the caller's `waitUntil`. Without a DSN nothing
//! is built and nothing is sent.
//!
//! A panic aborts the WebAssembly instance (workers-rs starts a fresh one for the next
//! event), so it cannot wait for anything: the panic hook starts the post itself and
//! hands it to the `waitUntil` of the last event that entered this isolate.

use crate::config::{self, Config};
use crate::domain::sentry::{event_id, panic_summary, Event, Kind, Sender, Throttle};
use crate::platform::{new_uuid_value, now_ms};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Function, Object, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

/// What sends a report on: an event's `waitUntil`, fed the post to wait for.
pub type WaitUntil<'a> = &'a dyn Fn(Pin<Box<dyn Future<Output = ()>>>);

/// Reports `event` when a DSN is configured and this isolate has not sent its
/// `REPORTS_PER_MINUTE`: the post starts now and `wait_until` keeps it alive past the
/// answer.
pub fn report(env: &Env, event: Event, wait_until: WaitUntil) {
    let Ok(config) = config::get(env) else {
        return;
    };
    if config.sentry.is_none() || !THROTTLE.with(|t| t.borrow_mut().admit(now_ms())) {
        return;
    }
    let Some(promise) = post(&config, &event) else {
        return;
    };
    wait_until(Box::pin(async move {
        // A report that cannot be delivered is not worth a second failure report.
        if let Err(e) = JsFuture::from(promise).await {
            super::log::failure("sending an error report", &format!("{e:?}"));
        }
    }));
}

/// Starts the POST of `event`'s envelope; `None` without a DSN or when the runtime
/// refused to start it.
fn post(config: &Config, event: &Event) -> Option<Promise> {
    let sentry = config.sentry.as_ref()?;
    let sender = Sender {
        dsn: &sentry.dsn,
        release: env!("CARGO_PKG_VERSION"),
        environment: &sentry.environment,
    };
    let id = event_id(&new_uuid_value().ok()?);
    let envelope = sender.envelope(event, &id, now_ms());
    let client = concat!("edgecount/", env!("CARGO_PKG_VERSION"));
    let headers = Object::new();
    let init = Object::new();
    let set = |target: &Object, key: &str, value: &str| {
        Reflect::set(target, &key.into(), &value.into()).is_ok()
    };
    let ready = set(&headers, "Content-Type", "application/x-sentry-envelope")
        && set(&headers, "X-Sentry-Auth", &sentry.dsn.auth_header(client))
        && set(&init, "method", "POST")
        && set(&init, "body", &envelope)
        && Reflect::set(&init, &"headers".into(), &headers).is_ok();
    if !ready {
        return None;
    }
    let global = js_sys::global();
    let fetch: Function = Reflect::get(&global, &"fetch".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let url = JsValue::from(sentry.dsn.envelope_url());
    fetch.call2(&global, &url, &init).ok()?.dyn_into().ok()
}

/// A flush to D1 failed again, `failures` times in a row: reported at the third and
/// then as the streak doubles (`flush::worth_reporting`), from an object's alarm.
pub fn flush_failed(
    env: &Env,
    state: &worker::State,
    context: &str,
    failures: u32,
    tenant_id: Option<String>,
    error: &crate::error::ApiError,
) {
    if !crate::domain::flush::worth_reporting(failures) {
        return;
    }
    let event = Event {
        kind: Kind::Flush,
        context: context.into(),
        message: format!("{error} ({failures} failures in a row)"),
        request_id: None,
        tenant_id,
    };
    report(env, event, &|sending| state.wait_until(sending));
}

/// Enters an object's event (request or alarm) for the panic hook.
pub fn entered_object(env: &Env, state: &worker::State) {
    if let Ok(config) = config::get(env) {
        entered(&config, state.as_raw());
    }
}

thread_local! {
    static THROTTLE: RefCell<Throttle> = RefCell::new(Throttle::default());
    /// The configuration and the event context (anything with `waitUntil`) of the
    /// last event to enter this isolate, for the panic hook.
    static LAST_EVENT: RefCell<Option<(Rc<Config>, JsValue)>> = const { RefCell::new(None) };
}

/// Called as an event enters (a request, an object's request or alarm): with a DSN set,
/// panics from here on are reported, kept alive by this event's `waitUntil`.
/// A cron run has no `waitUntil` to hand over (workers-rs keeps it): pass `undefined`,
/// and a panic's report is posted without one.
pub fn entered(config: &Rc<Config>, event_context: &JsValue) {
    if config.sentry.is_none() {
        return;
    }
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            report_panic(&info.to_string());
        }));
    });
    LAST_EVENT.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some((config.clone(), event_context.clone()));
        }
    });
}

fn report_panic(message: &str) {
    let last = LAST_EVENT.with(|last| last.try_borrow().ok().and_then(|l| l.clone()));
    let Some((config, context)) = last else {
        return;
    };
    let event = Event {
        kind: Kind::Panic,
        context: "panic".into(),
        message: panic_summary(message),
        request_id: None,
        tenant_id: None,
    };
    let Some(promise) = post(&config, &event) else {
        return;
    };
    // The event may have ended already; then the post runs as long as the isolate does.
    if let Ok(wait_until) = Reflect::get(&context, &"waitUntil".into()) {
        if let Ok(wait_until) = wait_until.dyn_into::<Function>() {
            let _ = wait_until.call1(&context, &promise);
        }
    }
}
