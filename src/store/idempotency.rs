//! Idempotency records of creations: the first answer to a keyed request, kept so a
//! retry gets it again. Written in the same D1 batch (one transaction) as the creation,
//! so an answer is remembered exactly when its effect happened.

use crate::domain::idempotency::{IdempotencyKey, RETENTION_MS};
use crate::error::{ApiResult, OrInternal};
use crate::rows;
use crate::store::int;
use worker::{D1Database, D1PreparedStatement};

#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

pub async fn find(db: &D1Database, key: &IdempotencyKey) -> ApiResult<Option<(String, Answer)>> {
    let statement = db
        .prepare("SELECT fingerprint, status, body FROM idempotency_keys WHERE key = ?1")
        .bind(&[key.to_string().into()])
        .or_internal("binding an idempotency lookup")?;
    let Some(mut row) = rows::d1_first(statement, "reading an idempotency key").await? else {
        return Ok(None);
    };
    let status = u16::try_from(row.uint(1)?).or_internal("a stored status")?;
    let answer = Answer {
        status,
        body: row.text(2)?,
    };
    Ok(Some((row.text(0)?, answer)))
}

pub fn insert(
    db: &D1Database,
    key: &IdempotencyKey,
    fingerprint: &str,
    answer: &Answer,
    now_ms: u64,
) -> ApiResult<D1PreparedStatement> {
    db.prepare(
        "INSERT INTO idempotency_keys (key, fingerprint, status, body, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(&[
        key.to_string().into(),
        fingerprint.into(),
        int(answer.status),
        answer.body.as_str().into(),
        int(now_ms),
    ])
    .or_internal("binding an idempotency insert")
}

/// Forgets keys past their retention; runs with each new key, so the table stays small
/// without a scheduled job.
pub fn prune(db: &D1Database, now_ms: u64) -> ApiResult<D1PreparedStatement> {
    db.prepare("DELETE FROM idempotency_keys WHERE created_ms < ?1")
        .bind(&[int(now_ms.saturating_sub(RETENTION_MS))])
        .or_internal("binding an idempotency prune")
}
