//! Error reports to Sentry, when `SENTRY_DSN` is set: a request answered 5xx, a flush
//! that keeps failing, a failed cron job, a panic. The envelope is built by
//! `domain::sentry`; this posts it. Posting never delays an answer: `send` starts the
//! request and hands back a future for the caller's `waitUntil`. Without a DSN nothing
//! is built and nothing is sent.
//!
//! A panic aborts the WebAssembly instance (workers-rs starts a fresh one for the next
//! event), so it cannot wait for anything: the panic hook starts the post itself and
//! hands it to the `waitUntil` of the last event that entered this isolate.

use crate::config::Config;
use crate::domain::sentry::{event_id, Event, Kind, Sender};
use crate::platform::{new_uuid_value, now_ms};
use std::cell::RefCell;
use std::future::Future;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Function, Object, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;

/// Sends `event` if a DSN is configured; the answer is a future to hand to `waitUntil`.
pub fn send(config: &Config, event: Event) -> Option<impl Future<Output = ()> + 'static> {
    let promise = post(config, &event)?;
    Some(async move {
        // A report that cannot be delivered is not worth a second failure report.
        if let Err(e) = JsFuture::from(promise).await {
            super::log::failure("sending an error report", &format!("{e:?}"));
        }
    })
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
    env: &worker::Env,
    state: &worker::State,
    context: &str,
    failures: u32,
    tenant_id: Option<String>,
    error: &crate::error::ApiError,
) {
    if !crate::domain::flush::worth_reporting(failures) {
        return;
    }
    let Ok(config) = crate::config::get(env) else {
        return;
    };
    let event = Event {
        kind: Kind::Flush,
        context: context.into(),
        message: format!("{error} ({failures} failures in a row)"),
        request_id: None,
        tenant_id,
    };
    if let Some(sending) = send(&config, event) {
        state.wait_until(sending);
    }
}

/// A scheduled job failed; `wait_until` is the cron event's.
pub fn job_failed(
    env: &worker::Env,
    job: &str,
    failure: String,
    wait_until: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()>>>),
) {
    let Ok(config) = crate::config::get(env) else {
        return;
    };
    let event = Event {
        kind: Kind::Job,
        context: job.into(),
        message: failure,
        request_id: None,
        tenant_id: None,
    };
    if let Some(sending) = send(&config, event) {
        wait_until(Box::pin(sending));
    }
}

/// Enters an object's event (request or alarm) for the panic hook.
pub fn entered_object(env: &worker::Env, state: &worker::State) {
    if let Ok(config) = crate::config::get(env) {
        entered(&config, state.as_raw());
    }
}

thread_local! {
    /// The configuration and the event context (anything with `waitUntil`) of the
    /// last event to enter this isolate, for the panic hook.
    static LAST_EVENT: RefCell<Option<(std::rc::Rc<Config>, JsValue)>> = const { RefCell::new(None) };
}

/// Called as an event enters (a request, an object's request or alarm): with a DSN set,
/// panics from here on are reported, kept alive by this event's `waitUntil`.
pub fn entered(config: &std::rc::Rc<Config>, event_context: &JsValue) {
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
    LAST_EVENT.with(|last| *last.borrow_mut() = Some((config.clone(), event_context.clone())));
}

fn report_panic(message: &str) {
    let Some((config, context)) = LAST_EVENT.with(|last| last.borrow().clone()) else {
        return;
    };
    let event = Event {
        kind: Kind::Panic,
        context: "panic".into(),
        message: message.into(),
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
