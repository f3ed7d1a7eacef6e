//! D1 access, typed. Queries live here and nowhere else; callers get domain values and
//! `ApiError`s, never SQL errors.

pub mod counters;
pub mod credentials;
pub mod idempotency;
pub mod pages;
pub mod stats;
pub mod tenants;
pub mod transfer;

use crate::error::ApiError;
use crate::platform::call_binding;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Array, Reflect};
use worker::{D1Database, D1PreparedStatement, Env};

pub fn database(env: &Env) -> Result<D1Database, ApiError> {
    env.d1("DB")
        .map_err(|e| ApiError::Internal(format!("D1 binding DB: {e}")))
}

/// Integers cross into D1 as JavaScript numbers; every stored integer is within the
/// safe range, so the conversion is exact.
pub fn int(n: impl Into<i128>) -> JsValue {
    JsValue::from_f64(n.into() as f64)
}

/// Runs statements as one D1 batch (one transaction) and gives the rows each changed, as
/// D1 reports them (0 when it does not say). workers-rs reads a result's `meta` through
/// `serde_wasm_bindgen`, a generic decoder (and the float formatting its messages reach)
/// brought into the bundle for one number; this reads the number itself.
pub async fn changed(
    db: &D1Database,
    statements: Vec<D1PreparedStatement>,
    what: &str,
) -> Result<Vec<u64>, ApiError> {
    let failed = |message: String| ApiError::Internal(format!("{what}: {message}"));
    let field = |object: &JsValue, name: &str| Reflect::get(object, &JsValue::from_str(name));
    let statements: Array = statements.iter().map(|s| s.inner().clone()).collect();
    let results = call_binding(db.as_ref(), "batch", &[&statements])
        .await
        .map_err(failed)?;
    let results: Array = results
        .dyn_into()
        .map_err(|_| failed("a batch answer that is not a list".into()))?;
    Ok(results
        .iter()
        .map(|result| {
            field(&result, "meta")
                .and_then(|meta| field(&meta, "changes"))
                .ok()
                .and_then(|n| n.as_f64())
                .map_or(0, |n| n as u64)
        })
        .collect())
}

/// Which uniqueness rule a failed write broke, if that was the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    TenantLabel,
    CounterLabel,
    IdempotencyKey,
    MissingTenant,
}

pub fn violation(message: &str) -> Option<Violation> {
    if message.contains("UNIQUE constraint failed: tenants.label") {
        Some(Violation::TenantLabel)
    } else if message.contains("UNIQUE constraint failed: counters.tenant_id, counters.label") {
        Some(Violation::CounterLabel)
    } else if message.contains("UNIQUE constraint failed: idempotency_keys.key") {
        Some(Violation::IdempotencyKey)
    } else if message.contains("FOREIGN KEY constraint failed") {
        Some(Violation::MissingTenant)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_sqlite_constraint_messages() {
        let m = "D1_ERROR: UNIQUE constraint failed: tenants.label: SQLITE_CONSTRAINT";
        assert_eq!(violation(m), Some(Violation::TenantLabel));
        let m = "UNIQUE constraint failed: counters.tenant_id, counters.label";
        assert_eq!(violation(m), Some(Violation::CounterLabel));
        assert_eq!(
            violation("FOREIGN KEY constraint failed"),
            Some(Violation::MissingTenant)
        );
        assert_eq!(violation("no such table: counters"), None);
    }
}
