//! Daily backups, when an R2 bucket is bound as `BACKUPS` (off otherwise): each tenant's
//! export, visit log included (`routes::export::lines`), gzipped by the runtime's
//! `CompressionStream` and written to `backups/{tenant}/{YYYY-MM-DD}.ndjson.gz`; copies
//! older than `BACKUP_KEEP_DAYS` are deleted. Memory stays flat: the export streams, and
//! a backup larger than one 8 MiB part goes up as an R2 multipart upload, a part at a
//! time. A tenant whose copy of the day exists is skipped, so a run cut short is taken
//! up again by the next one. Restoring is one import of the file (README).

use crate::config;
use crate::domain::time::rfc3339;
use crate::domain::visit::DAY_MS;
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::log;
use crate::platform::now_ms;
use crate::store;
use futures_util::StreamExt;
use wasm_bindgen::JsCast;
use worker::{js_sys, Bucket, ByteStream, Env, Response};

/// R2 takes parts of at least 5 MiB (but the last); a backup smaller than one part is a
/// single put.
const PART_BYTES: usize = 8 << 20;

/// One run, logged; a failure (of the run, or of any tenant's copy) is also handed back
/// for the error report.
pub async fn run(env: &Env) -> Result<(), String> {
    let Ok(bucket) = env.bucket("BACKUPS") else {
        return Ok(());
    };
    match back_up(env, &bucket).await {
        Ok(Run {
            written,
            pruned,
            failed,
        }) => {
            log::job(
                "backup",
                serde_json::json!({"written": written, "pruned": pruned, "failed": failed.len()}),
            );
            match failed.first() {
                None => Ok(()),
                Some((tenant, e)) => Err(format!(
                    "{} tenants' backups failed; tenant {tenant}: {e}",
                    failed.len()
                )),
            }
        }
        Err(e) => {
            log::failure("backup", &e);
            Err(e.to_string())
        }
    }
}

struct Run {
    written: u64,
    pruned: u64,
    /// Tenants whose copy failed, with why.
    failed: Vec<(String, ApiError)>,
}

async fn back_up(env: &Env, bucket: &Bucket) -> ApiResult<Run> {
    let config = config::get(env)?;
    let db = store::database(env)?;
    let now = now_ms();
    let today = &rfc3339(now)[..10];
    // Today's copy is one of the days kept.
    let oldest_kept = &rfc3339(now.saturating_sub((config.backup_keep_days - 1) * DAY_MS))[..10];
    let (mut written, mut pruned, mut failed) = (0, 0, Vec::new());
    let mut after = String::new();
    loop {
        let tenants = store::tenants::ids_after(&db, &after).await?;
        let Some(last) = tenants.last() else { break };
        after = last.clone();
        for tenant in tenants {
            // One tenant's failure is logged; the others still get their backups.
            match back_up_tenant(env, bucket, &tenant, today, oldest_kept, now).await {
                Ok((w, p)) => {
                    written += w;
                    pruned += p;
                }
                Err(e) => {
                    log::failure("backup of a tenant", &format!("{tenant}: {e}"));
                    failed.push((tenant, e));
                }
            }
        }
    }
    Ok(Run {
        written,
        pruned,
        failed,
    })
}

/// Today's copy of one tenant (unless it exists), then its old copies pruned.
async fn back_up_tenant(
    env: &Env,
    bucket: &Bucket,
    tenant: &str,
    today: &str,
    oldest_kept: &str,
    now: u64,
) -> ApiResult<(u64, u64)> {
    let key = format!("backups/{tenant}/{today}.ndjson.gz");
    let exists = bucket
        .head(key.clone())
        .await
        .or_internal("looking a backup up")?;
    let written = if exists.is_none() {
        write(env, bucket, tenant, &key, now).await?;
        1
    } else {
        0
    };
    Ok((written, prune(bucket, tenant, oldest_kept).await?))
}

/// One tenant's export, gzipped, to `key`.
async fn write(env: &Env, bucket: &Bucket, tenant: &str, key: &str, now: u64) -> ApiResult<()> {
    let lines = crate::routes::export::lines(env.clone(), tenant.to_string(), true, now);
    let mut gz = gzip(Response::from_stream(lines).or_internal("streaming a backup")?)?;
    let mut buffer = Vec::new();
    let mut upload = None;
    let mut parts = Vec::new();
    let mut end = false;
    while !end {
        match gz.next().await {
            Some(bytes) => buffer.extend_from_slice(&bytes.or_internal("compressing a backup")?),
            None => end = true,
        }
        if end && upload.is_none() {
            bucket
                .put(key, std::mem::take(&mut buffer))
                .execute()
                .await
                .or_internal("writing a backup")?;
            return Ok(());
        }
        // R2 wants every part but the last of one size: whole parts go up as they fill.
        while buffer.len() >= PART_BYTES || (end && !buffer.is_empty()) {
            let take = buffer.len().min(PART_BYTES);
            let part: Vec<u8> = buffer.drain(..take).collect();
            if upload.is_none() {
                upload = Some(
                    bucket
                        .create_multipart_upload(key)
                        .execute()
                        .await
                        .or_internal("starting a backup upload")?,
                );
            }
            if let Some(upload) = &upload {
                match upload.upload_part(parts.len() as u16 + 1, part).await {
                    Ok(uploaded) => parts.push(uploaded),
                    Err(e) => {
                        let _ = upload.abort().await;
                        return Err(ApiError::Internal(format!("uploading a backup part: {e}")));
                    }
                }
            }
        }
    }
    if let Some(upload) = upload {
        upload
            .complete(parts)
            .await
            .or_internal("completing a backup upload")?;
    }
    Ok(())
}

/// The body of `response` through the runtime's gzip `CompressionStream`.
fn gzip(response: Response) -> ApiResult<ByteStream> {
    let raw: worker::web_sys::Response = response.into();
    let body = raw
        .body()
        .ok_or_else(|| ApiError::internal("a backup without a body"))?;
    let global = js_sys::global();
    let compress = (|| {
        let class: js_sys::Function =
            js_sys::Reflect::get(&global, &"CompressionStream".into())?.dyn_into()?;
        let stream = js_sys::Reflect::construct(&class, &js_sys::Array::of1(&"gzip".into()))?;
        let pipe: js_sys::Function =
            js_sys::Reflect::get(&body, &"pipeThrough".into())?.dyn_into()?;
        let gzipped = pipe.call1(&body, &stream)?;
        worker::web_sys::Response::new_with_opt_readable_stream(Some(gzipped.unchecked_ref()))
    })()
    .map_err(|e| ApiError::Internal(format!("gzip: {e:?}")))?;
    Response::from(compress)
        .stream()
        .or_internal("reading a compressed backup")
}

/// Deletes the tenant's backups of days before `oldest_kept` (`YYYY-MM-DD`).
async fn prune(bucket: &Bucket, tenant: &str, oldest_kept: &str) -> ApiResult<u64> {
    let prefix = format!("backups/{tenant}/");
    let mut old = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut listing = bucket.list().prefix(prefix.clone());
        if let Some(c) = cursor.take() {
            listing = listing.cursor(c);
        }
        let listed = listing.execute().await.or_internal("listing backups")?;
        for object in listed.objects() {
            let key = object.key();
            let day = key.strip_prefix(&prefix).and_then(|k| k.get(..10));
            if day.is_some_and(|d| d < oldest_kept) {
                old.push(key);
            }
        }
        match (listed.truncated(), listed.cursor()) {
            (true, Some(c)) => cursor = Some(c),
            _ => break,
        }
    }
    if !old.is_empty() {
        bucket
            .delete_multiple(old.clone())
            .await
            .or_internal("deleting old backups")?;
    }
    Ok(old.len() as u64)
}
