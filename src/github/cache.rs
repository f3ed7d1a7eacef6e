//! The KV side of the GitHub cache: a cached path's body with its ETags and fetch time as
//! metadata; one small shared record of when each path was last confirmed unchanged; the
//! precomputed top-N views; and the proxy's copies.
//!
//! KV is a cache here, never the only place an answer lives: a failed read is a miss and
//! a failed write is logged, and either way the request is answered.

use crate::domain::crypto::{hex, sha256};
use crate::domain::github::ranking::ViewField;
use crate::error::{ApiError, ApiResult};
use crate::http::log;
use crate::platform::call_binding;
use serde::Serialize;
use serde_json::Value;
use worker::js_sys::{Reflect, Uint8Array, JSON};
use worker::wasm_bindgen::JsValue;
use worker::Env;

pub const BINDING: &str = "GITHUB_CACHE";
/// KV metadata is limited to 1,024 bytes.
const METADATA_LIMIT: usize = 1_000;
/// When each cached path was last confirmed unchanged: one key for all paths, so a
/// refresh that finds nothing new costs one write, not one per path.
const CONFIRMED_KEY: &str = "gh:confirmed";

#[derive(Debug, Clone, Default, Serialize)]
pub struct EntryMeta {
    /// When this body was fetched.
    pub fetched_ms: u64,
    pub etags: Vec<String>,
}

impl EntryMeta {
    /// Metadata as `put` wrote it; anything unreadable counts as fetched at 0 (stale).
    fn from_json(v: &Value) -> EntryMeta {
        EntryMeta {
            fetched_ms: v.get("fetched_ms").and_then(Value::as_u64).unwrap_or(0),
            etags: v
                .get("etags")
                .and_then(Value::as_array)
                .map(|tags| {
                    tags.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub body: String,
    pub meta: EntryMeta,
}

/// KV key → when upstream last confirmed that key's copy (a 304, or the same body), in
/// milliseconds. Kept as a JSON map: the bundle already parses JSON into values.
pub type Confirmations = serde_json::Map<String, Value>;

impl Entry {
    /// When upstream last vouched for this copy: fetched, or confirmed since.
    pub fn confirmed_ms(&self, key: &str, confirmations: &Confirmations) -> u64 {
        confirmations
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .max(self.meta.fetched_ms)
    }
}

/// The cache's KV namespace, read and written through the binding itself: workers-rs
/// encodes options and decodes metadata generically, which pulled float formatting and
/// `serde_wasm_bindgen`'s codec into the bundle for values that are always text or bytes.
pub struct Kv {
    raw: JsValue,
}

pub fn store(env: &Env) -> ApiResult<Kv> {
    match Reflect::get(env, &JsValue::from_str(BINDING)) {
        Ok(raw) if raw.is_object() => Ok(Kv { raw }),
        _ => Err(ApiError::internal("KV binding GITHUB_CACHE")),
    }
}

pub async fn get(kv: &Kv, key: &str) -> Option<Entry> {
    match get_with_metadata(kv, key).await {
        Ok(entry) => entry,
        Err(e) => {
            log::failure("reading the GitHub cache", &format!("{key}: {e}"));
            None
        }
    }
}

/// Reads go to the binding itself, like writes: workers-rs encodes a read's options and
/// decodes metadata through `serde_wasm_bindgen`, whose generic codec (and the float
/// formatting its messages reach) these few reads would otherwise bring into the bundle.
/// `method` is `get` or `getWithMetadata`; `kind` is how the value is returned.
async fn read(kv: &Kv, method: &str, key: &str, kind: &str) -> Result<JsValue, String> {
    let args = [&JsValue::from_str(key), &JsValue::from_str(kind)];
    call_binding(&kv.raw, method, &args).await
}

/// A cached path's body with its metadata (our own small JSON object, crossing as text).
async fn get_with_metadata(kv: &Kv, key: &str) -> Result<Option<Entry>, String> {
    let read = read(kv, "getWithMetadata", key, "text").await?;
    let field = |name: &str| Reflect::get(&read, &JsValue::from_str(name)).ok();
    let Some(body) = field("value").and_then(|v| v.as_string()) else {
        return Ok(None);
    };
    let meta = field("metadata")
        .filter(|m| m.is_object())
        .and_then(|m| JSON::stringify(&m).ok())
        .and_then(|text| text.as_string())
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|m| EntryMeta::from_json(&m))
        .unwrap_or_default();
    Ok(Some(Entry { body, meta }))
}

/// The ETags an entry keeps: all, or none when they would not fit KV's metadata (the
/// next refresh is then unconditional, never wrong).
pub fn storable_etags(etags: Vec<String>) -> Vec<String> {
    let size: usize = etags.iter().map(|e| e.len() + 8).sum();
    if size + 40 > METADATA_LIMIT {
        Vec::new()
    } else {
        etags
    }
}

/// Writes an entry; false (and logged) when KV refused.
pub async fn put(kv: &Kv, key: &str, entry: &Entry) -> bool {
    let meta = EntryMeta {
        fetched_ms: entry.meta.fetched_ms,
        etags: storable_etags(entry.meta.etags.clone()),
    };
    let json = serde_json::to_string(&meta).unwrap_or_default();
    let value = JsValue::from_str(&entry.body);
    put_raw(kv, key, &value, &format!(r#"{{"metadata":{json}}}"#)).await
}

pub async fn confirmations(kv: &Kv) -> Confirmations {
    match read(kv, "get", CONFIRMED_KEY, "text").await {
        Ok(text) => match text.as_string().map(|t| serde_json::from_str(&t)) {
            Some(Ok(Value::Object(map))) => map,
            _ => Confirmations::new(),
        },
        Err(e) => {
            log::failure("reading the GitHub cache", &e);
            Confirmations::new()
        }
    }
}

pub async fn put_confirmations(kv: &Kv, confirmations: &Confirmations) -> bool {
    let text = Value::Object(confirmations.clone()).to_string();
    put_raw(kv, CONFIRMED_KEY, &JsValue::from_str(&text), "{}").await
}

/// One proxied answer as it was served: kept with its status and GitHub's headers, so a
/// HIT answers exactly as the MISS did.
#[derive(Debug, Clone)]
pub struct ProxyMeta {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub stored_ms: u64,
}

impl ProxyMeta {
    /// As JSON values (the bundle already parses and prints those; a derived codec for
    /// this one record would add its own).
    fn encode(&self) -> String {
        let headers: Vec<Value> = self
            .headers
            .iter()
            .map(|(n, v)| Value::from(vec![n.as_str(), v.as_str()]))
            .collect();
        serde_json::json!({"status": self.status, "stored_ms": self.stored_ms, "headers": headers})
            .to_string()
    }

    fn decode(line: &[u8]) -> Option<ProxyMeta> {
        let value: Value = serde_json::from_slice(line).ok()?;
        let pair = |h: &Value| {
            Some((
                h.get(0)?.as_str()?.to_string(),
                h.get(1)?.as_str()?.to_string(),
            ))
        };
        Some(ProxyMeta {
            status: u16::try_from(value.get("status")?.as_u64()?).ok()?,
            stored_ms: value.get("stored_ms")?.as_u64()?,
            headers: value
                .get("headers")?
                .as_array()?
                .iter()
                .map(pair)
                .collect::<Option<_>>()?,
        })
    }
}

/// The proxy's key for a canonical target: hashed, as targets may be longer than a key.
pub fn proxy_key(target: &str) -> String {
    format!("gh:proxy:{}", hex(&sha256(target.as_bytes())))
}

/// A proxy copy is its metadata as one JSON line, then the body: no metadata size limit
/// applies, and one read returns both.
pub async fn proxy_get(kv: &Kv, key: &str) -> Option<(ProxyMeta, Vec<u8>)> {
    let mut stored = match read(kv, "get", key, "arrayBuffer").await {
        Ok(stored) if stored.is_null() => return None,
        Ok(stored) => Uint8Array::new(&stored).to_vec(),
        Err(e) => {
            log::failure("reading the GitHub proxy cache", &e);
            return None;
        }
    };
    let split = stored.iter().position(|b| *b == b'\n')?;
    let meta = ProxyMeta::decode(&stored[..split])?;
    stored.drain(..=split);
    Some((meta, stored))
}

pub async fn proxy_put(
    kv: &Kv,
    key: &str,
    meta: &ProxyMeta,
    body: &[u8],
    ttl_seconds: u64,
) -> bool {
    let mut stored = meta.encode().into_bytes();
    stored.push(b'\n');
    stored.extend_from_slice(body);
    let value: JsValue = Uint8Array::from(stored.as_slice()).into();
    put_raw(
        kv,
        key,
        &value,
        &format!(r#"{{"expirationTtl":{ttl_seconds}}}"#),
    )
    .await
}

async fn put_raw(kv: &Kv, key: &str, value: &JsValue, options: &str) -> bool {
    let written = async {
        let options = JSON::parse(options).map_err(|e| format!("options: {e:?}"))?;
        call_binding(&kv.raw, "put", &[&JsValue::from_str(key), value, &options]).await
    };
    match written.await {
        Ok(_) => true,
        Err(e) => {
            log::failure("writing the GitHub cache", &format!("{key}: {e}"));
            false
        }
    }
}

pub fn view_key(org: &str, field: ViewField) -> String {
    format!("gh:view:{}:{}", org.to_ascii_lowercase(), field.name())
}
