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
use wasm_bindgen::JsValue;
use worker::{D1Database, Env};

pub fn database(env: &Env) -> Result<D1Database, ApiError> {
    env.d1("DB")
        .map_err(|e| ApiError::Internal(format!("D1 binding DB: {e}")))
}

/// Integers cross into D1 as JavaScript numbers; every stored integer is within the
/// safe range, so the conversion is exact.
pub fn int(n: impl Into<i128>) -> JsValue {
    JsValue::from_f64(n.into() as f64)
}

/// Rows a statement changed, as D1 reports it (0 when it does not say).
pub fn changes(result: Option<&worker::D1Result>) -> u64 {
    result
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0) as u64
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
