//! The runtime's clock, randomness, regular expressions and binding calls, handed to the
//! rest as plain values and functions.

use crate::domain::ids::uuid_v7;
use crate::error::{ApiError, ApiResult};
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Array, Function, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

pub fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(bytes)
}

/// A fresh UUIDv7 string, for request ids where a typed id is not needed.
pub fn new_uuid() -> ApiResult<String> {
    Ok(new_uuid_value()?.hyphenated().to_string())
}

pub fn new_uuid_value() -> ApiResult<uuid::Uuid> {
    Ok(uuid_v7(now_ms(), random_bytes()?))
}

/// Calls `method` on a binding and awaits its answer. For the few platform calls made
/// without workers-rs, whose typed wrappers decode answers through generic codecs that
/// cost the bundle more than the calls (ARCHITECTURE.md, the bundle). A failure is the
/// thrown error's message.
pub async fn call_binding(
    binding: &JsValue,
    method: &str,
    args: &[&JsValue],
) -> Result<JsValue, String> {
    let message = |e: JsValue| {
        e.dyn_ref::<js_sys::Error>()
            .map_or_else(|| format!("{e:?}"), |e| String::from(e.message()))
    };
    let function: Function = Reflect::get(binding, &JsValue::from_str(method))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| format!("the binding has no {method}"))?;
    let args: Array = args.iter().copied().collect();
    let pending = Reflect::apply(&function, binding, &args).map_err(message)?;
    JsFuture::from(Promise::from(pending))
        .await
        .map_err(message)
}

thread_local! {
    /// isbot's pattern, compiled once per isolate by the runtime's own regular
    /// expression engine (the pattern needs look-behind).
    static BOT_LIST: js_sys::RegExp =
        js_sys::RegExp::new(crate::domain::bot_patterns::ISBOT_PATTERN, "i");
}

/// Whether isbot's maintained patterns match a user agent.
pub fn in_bot_list(user_agent: &str) -> bool {
    BOT_LIST.with(|pattern| pattern.test(user_agent))
}

/// A request to send to an object, built on the runtime's own `Request`: workers-rs's
/// `RequestInit` carries Cloudflare's image and cache options, whose conversion alone was
/// a few percent of the bundle, and edgecount sets none of them.
pub fn request(
    method: &str,
    url: &str,
    headers: Option<&worker::Headers>,
    body: Option<&str>,
) -> worker::Result<worker::Request> {
    let init = worker::web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(headers) = headers {
        init.set_headers(&headers.0);
    }
    if let Some(body) = body {
        init.set_body(&js_sys::JsString::from(body));
    }
    build(url, &init)
}

/// A GET to an upstream that hands back its redirects instead of following them: a
/// redirect may lead anywhere, and what waits there may be of any size.
pub fn get_unfollowed(url: &str, headers: &worker::Headers) -> worker::Result<worker::Request> {
    let init = worker::web_sys::RequestInit::new();
    init.set_method("GET");
    init.set_headers(&headers.0);
    js_sys::Reflect::set(&init, &"redirect".into(), &"manual".into())?;
    build(url, &init)
}

fn build(url: &str, init: &worker::web_sys::RequestInit) -> worker::Result<worker::Request> {
    let raw = worker::web_sys::Request::new_with_str_and_init(url, init)?;
    Ok(worker::Request::from(raw))
}

thread_local! {
    static ISOLATE_SECRET: [u8; 32] = random_bytes().unwrap_or([0; 32]);
}

/// A random secret of this isolate, for keyed hashes when the day's salt is out of reach.
pub fn isolate_secret() -> [u8; 32] {
    ISOLATE_SECRET.with(|s| *s)
}

/// Unicode capitals by the runtime's own `toUpperCase` (Rust's case tables are large).
pub fn to_upper(text: &str) -> String {
    String::from(js_sys::JsString::from(text).to_upper_case())
}
