//! The KV side of the GitHub cache: a cached path's body with its ETags and fetch time
//! as metadata, and the precomputed top-N views. Writes happen only when content changed.

use crate::domain::github::ViewField;
use crate::error::ApiResult;
use crate::http::respond::OrInternal;
use serde::{Deserialize, Serialize};
use worker::js_sys::{Function, Reflect, JSON};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{Env, KvStore};

pub const BINDING: &str = "GITHUB_CACHE";
/// KV metadata is limited to 1,024 bytes; ETags beyond it are dropped (the next refresh
/// is then unconditional, never wrong).
const METADATA_LIMIT: usize = 1_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EntryMeta {
    pub fetched_ms: u64,
    #[serde(default)]
    pub etags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub body: String,
    pub meta: EntryMeta,
}

/// The cache's KV namespace: read through workers-rs, written through the binding
/// itself (workers-rs's put serializes values generically, which pulled float formatting
/// into the bundle for a value that is always text).
pub struct Kv {
    store: KvStore,
    raw: JsValue,
}

pub fn store(env: &Env) -> ApiResult<Kv> {
    let raw = Reflect::get(env, &JsValue::from_str(BINDING))
        .map_err(|_| crate::error::ApiError::internal("KV binding GITHUB_CACHE"))?;
    Ok(Kv {
        store: env.kv(BINDING).or_internal("KV binding GITHUB_CACHE")?,
        raw,
    })
}

pub async fn get(kv: &Kv, key: &str) -> ApiResult<Option<Entry>> {
    let (body, meta) = kv
        .store
        .get(key)
        .text_with_metadata::<EntryMeta>()
        .await
        .or_internal("reading the GitHub cache")?;
    Ok(body.map(|body| Entry {
        body,
        meta: meta.unwrap_or_default(),
    }))
}

pub async fn put(kv: &Kv, key: &str, entry: &Entry) -> ApiResult<()> {
    let mut meta = entry.meta.clone();
    let mut json = serde_json::to_string(&meta).or_internal("encoding cache metadata")?;
    if json.len() > METADATA_LIMIT {
        meta.etags.clear();
        json = serde_json::to_string(&meta).or_internal("encoding cache metadata")?;
    }
    let options = JSON::parse(&format!(r#"{{"metadata":{json}}}"#))
        .map_err(|e| crate::error::ApiError::Internal(format!("cache metadata: {e:?}")))?;
    let put: Function = Reflect::get(&kv.raw, &JsValue::from_str("put"))
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| crate::error::ApiError::internal("KV binding has no put"))?;
    let written = put
        .call3(
            &kv.raw,
            &JsValue::from_str(key),
            &JsValue::from_str(&entry.body),
            &options,
        )
        .map_err(|e| {
            crate::error::ApiError::Internal(format!("writing the GitHub cache: {e:?}"))
        })?;
    worker::wasm_bindgen_futures::JsFuture::from(worker::js_sys::Promise::from(written))
        .await
        .map(drop)
        .map_err(|e| crate::error::ApiError::Internal(format!("writing the GitHub cache: {e:?}")))
}

pub fn view_key(org: &str, field: ViewField) -> String {
    format!("gh:view:{}:{}", org.to_ascii_lowercase(), field.name())
}
