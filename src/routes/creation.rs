//! Creating something exactly once: a creation's rows and, when the request carries an
//! Idempotency-Key, the record of its answer, committed in one D1 transaction. A retry
//! gets the stored answer; a race between two retries is settled by the key's primary
//! key, and the loser replays the winner's answer.

use crate::domain::idempotency::{replay_of, IdempotencyKey, Replay};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::store::idempotency::{self, Answer};
use crate::store::{violation, Violation};
use worker::{D1Database, D1PreparedStatement};

pub struct Outcome {
    pub answer: Answer,
    /// False when this request replayed an earlier one and created nothing.
    pub created: bool,
}

pub async fn commit_once(
    db: &D1Database,
    keyed: Option<(IdempotencyKey, String)>,
    mut statements: Vec<D1PreparedStatement>,
    answer: Answer,
    now_ms: u64,
) -> ApiResult<Outcome> {
    if let Some((key, fingerprint)) = &keyed {
        if let Some(earlier) = replay(db, key, fingerprint).await? {
            return Ok(Outcome {
                answer: earlier,
                created: false,
            });
        }
        statements.push(idempotency::insert(db, key, fingerprint, &answer, now_ms)?);
        statements.push(idempotency::prune(db, now_ms)?);
    }
    match db.batch(statements).await {
        Ok(_) => Ok(Outcome {
            answer,
            created: true,
        }),
        Err(e) => {
            let message = e.to_string();
            // A keyed retry that lost a race to its twin may hit any of the creation's
            // unique rules (the label before the key): if the twin's answer is stored
            // under the key, this retry replays it.
            if let (Some(_), Some((key, fingerprint))) = (violation(&message), &keyed) {
                if let Some(answer) = replay(db, key, fingerprint).await? {
                    return Ok(Outcome {
                        answer,
                        created: false,
                    });
                }
            }
            match violation(&message) {
                Some(Violation::TenantLabel) => Err(ApiError::TenantLabelExists),
                Some(Violation::CounterLabel) => Err(ApiError::CounterLabelExists),
                Some(Violation::MissingTenant) => Err(ApiError::TenantNotFound),
                _ => Err(ApiError::Internal(format!("creating: {message}"))),
            }
        }
    }
}

async fn replay(
    db: &D1Database,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> ApiResult<Option<Answer>> {
    let stored = idempotency::find(db, key).await?;
    match replay_of(stored, fingerprint)? {
        Replay::Fresh => Ok(None),
        Replay::Replay(answer) => Ok(Some(answer)),
    }
}

pub fn reply(outcome: &Outcome) -> ApiResult<worker::Response> {
    let response = crate::http::respond::json(outcome.answer.status, outcome.answer.body.clone())
        .or_internal("answering")?;
    if !outcome.created {
        response
            .headers()
            .set("Idempotent-Replayed", "true")
            .or_internal("answering")?;
    }
    Ok(response)
}
