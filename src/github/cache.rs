//! The KV side of the GitHub cache: a cached path's body with its ETags and fetch time
//! as metadata, and the precomputed top-N views. Writes happen only when content changed.

use crate::domain::github::ViewField;
use crate::error::ApiResult;
use crate::http::respond::OrInternal;
use serde::{Deserialize, Serialize};
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

pub fn store(env: &Env) -> ApiResult<KvStore> {
    env.kv(BINDING).or_internal("KV binding GITHUB_CACHE")
}

pub async fn get(kv: &KvStore, key: &str) -> ApiResult<Option<Entry>> {
    let (body, meta) = kv
        .get(key)
        .text_with_metadata::<EntryMeta>()
        .await
        .or_internal("reading the GitHub cache")?;
    Ok(body.map(|body| Entry {
        body,
        meta: meta.unwrap_or_default(),
    }))
}

pub async fn put(kv: &KvStore, key: &str, entry: &Entry) -> ApiResult<()> {
    let mut meta = entry.meta.clone();
    if serde_json::to_string(&meta).map_or(true, |m| m.len() > METADATA_LIMIT) {
        meta.etags.clear();
    }
    kv.put(key, entry.body.as_str())
        .or_internal("writing the GitHub cache")?
        .metadata(meta)
        .or_internal("writing the GitHub cache")?
        .execute()
        .await
        .or_internal("writing the GitHub cache")
}

pub fn view_key(org: &str, field: ViewField) -> String {
    format!("gh:view:{}:{}", org.to_ascii_lowercase(), field.name())
}
