//! The JSON shapes clients see, built from domain values. Pinned by golden tests: the
//! contract's field names and types must never drift.

use crate::domain::counter::{CounterMeta, CounterState, Mutation};
use crate::domain::time::rfc3339;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub tenant_id: String,
    pub label: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub settings: TenantSettings,
    /// Origins whose pages may call the public routes; `None` defers to
    /// `CORS_ALLOWED_ORIGINS`.
    pub allowed_origins: Option<Vec<String>>,
}

/// What a tenant decides about its pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TenantSettings {
    /// A page's first visit creates it.
    pub page_auto_create: bool,
    /// Visits from bots count in `count` too.
    pub count_bots: bool,
    /// A visit from a browser that sends `DNT: 1` is neither counted nor logged.
    pub respect_dnt: bool,
}

impl TenantSettings {
    /// Reads what `serde_json::to_string` wrote.
    pub fn from_json(v: &serde_json::Value) -> Option<TenantSettings> {
        let flag = |name| v.get(name).and_then(serde_json::Value::as_bool);
        Some(TenantSettings {
            page_auto_create: flag("page_auto_create")?,
            count_bots: flag("count_bots")?,
            respect_dnt: flag("respect_dnt")?,
        })
    }
}

#[derive(Serialize)]
struct TenantView<'a> {
    tenant_id: &'a str,
    label: &'a str,
    created_at: String,
    updated_at: String,
    page_auto_create: bool,
    count_bots: bool,
    respect_dnt: bool,
    allowed_origins: Option<&'a [String]>,
}

pub fn tenant_json(t: &Tenant) -> String {
    json(&TenantView {
        tenant_id: &t.tenant_id,
        label: &t.label,
        created_at: rfc3339(t.created_ms),
        updated_at: rfc3339(t.updated_ms),
        page_auto_create: t.settings.page_auto_create,
        count_bots: t.settings.count_bots,
        respect_dnt: t.settings.respect_dnt,
        allowed_origins: t.allowed_origins.as_deref(),
    })
}

#[derive(Serialize)]
pub struct CounterView<'a> {
    counter_id: &'a str,
    tenant_id: &'a str,
    label: Option<&'a str>,
    value: i64,
    max_delta: i64,
    created_at: String,
    updated_at: String,
}

impl<'a> CounterView<'a> {
    pub fn new(meta: &'a CounterMeta, state: &CounterState) -> Self {
        CounterView {
            counter_id: &meta.counter_id,
            tenant_id: &meta.tenant_id,
            label: meta.label.as_deref(),
            value: state.value,
            max_delta: meta.max_delta,
            created_at: rfc3339(meta.created_ms),
            updated_at: rfc3339(state.updated_ms),
        }
    }
}

pub fn counter_json(meta: &CounterMeta, state: &CounterState) -> String {
    json(&CounterView::new(meta, state))
}

/// `{counters: [...], next_cursor}`.
pub fn counter_page_json(
    counters: &[(CounterMeta, CounterState)],
    next_cursor: Option<String>,
) -> String {
    #[derive(Serialize)]
    struct Page<'a> {
        counters: Vec<CounterView<'a>>,
        next_cursor: Option<String>,
    }
    json(&Page {
        counters: counters
            .iter()
            .map(|(m, s)| CounterView::new(m, s))
            .collect(),
        next_cursor,
    })
}

pub fn mutation_json(counter_id: &str, m: &Mutation, replayed: bool) -> String {
    #[derive(Serialize)]
    struct MutationView<'a> {
        operation_id: &'a str,
        counter_id: &'a str,
        delta: i64,
        value: i64,
        replayed: bool,
        updated_at: String,
    }
    json(&MutationView {
        operation_id: &m.operation_id,
        counter_id,
        delta: m.delta,
        value: m.value,
        replayed,
        updated_at: rfc3339(m.updated_ms),
    })
}

fn json(value: &impl Serialize) -> String {
    // Serializing these plain structs cannot fail: no maps with non-string keys.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> CounterMeta {
        CounterMeta {
            counter_id: "c1".into(),
            tenant_id: "t1".into(),
            label: Some("likes".into()),
            max_delta: 50,
            created_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn golden_shapes() {
        let t = Tenant {
            tenant_id: "t1".into(),
            label: "acme".into(),
            created_ms: 0,
            updated_ms: 1,
            settings: TenantSettings {
                page_auto_create: true,
                count_bots: false,
                respect_dnt: false,
            },
            allowed_origins: None,
        };
        assert_eq!(
            tenant_json(&t),
            r#"{"tenant_id":"t1","label":"acme","created_at":"1970-01-01T00:00:00.000Z","updated_at":"1970-01-01T00:00:00.001Z","page_auto_create":true,"count_bots":false,"respect_dnt":false,"allowed_origins":null}"#
        );
        let s = CounterState {
            value: 3,
            version: 2,
            updated_ms: 1_700_000_000_500,
        };
        assert_eq!(
            counter_json(&meta(), &s),
            r#"{"counter_id":"c1","tenant_id":"t1","label":"likes","value":3,"max_delta":50,"created_at":"2023-11-14T22:13:20.000Z","updated_at":"2023-11-14T22:13:20.500Z"}"#
        );
        let m = Mutation {
            operation_id: "op".into(),
            delta: 2,
            value: 5,
            updated_ms: 0,
        };
        assert_eq!(
            mutation_json("c1", &m, true),
            r#"{"operation_id":"op","counter_id":"c1","delta":2,"value":5,"replayed":true,"updated_at":"1970-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(
            counter_page_json(&[], None),
            r#"{"counters":[],"next_cursor":null}"#
        );
    }

    #[test]
    fn settings_round_trip() {
        let s = TenantSettings {
            page_auto_create: true,
            count_bots: false,
            respect_dnt: true,
        };
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(TenantSettings::from_json(&json), Some(s));
        assert_eq!(TenantSettings::from_json(&serde_json::json!({})), None);
    }

    #[test]
    fn unlabelled_counters_show_null() {
        let mut m = meta();
        m.label = None;
        let s = CounterState {
            value: 0,
            version: 0,
            updated_ms: 0,
        };
        assert!(counter_json(&m, &s).contains(r#""label":null"#));
    }
}
