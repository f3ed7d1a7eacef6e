//! Request bodies, parsed once into typed values. Malformed JSON is INVALID_JSON; a body
//! that parses but says the wrong thing (unknown fields, wrong types, out-of-range
//! numbers) is INVALID_PARAMETER or COUNTER_OVERFLOW, naming the field.

use crate::domain::access::{Scope, Scopes};
use crate::domain::counter::{check_label, check_value, DEFAULT_MAX_DELTA, MAX_SAFE};
use crate::domain::views::TenantSettings;
use crate::error::{ApiError, ApiResult};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub label: String,
    pub settings: TenantSettings,
    pub allowed_origins: Option<Vec<String>>,
}

/// `PATCH /tenants/{id}`: only what is given changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChanges {
    pub label: Option<String>,
    pub page_auto_create: Option<bool>,
    pub count_bots: Option<bool>,
    pub respect_dnt: Option<bool>,
    /// `Some(None)` clears the list (back to `CORS_ALLOWED_ORIGINS`).
    pub allowed_origins: Option<Option<Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCounter {
    pub label: Option<String>,
    pub initial_value: i64,
    pub max_delta: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewValue {
    pub value: i64,
}

const TENANT_FIELDS: [&str; 5] = [
    "label",
    "page_auto_create",
    "count_bots",
    "respect_dnt",
    "allowed_origins",
];
/// Origins one tenant may list.
pub const MAX_ALLOWED_ORIGINS: usize = 20;

impl NewTenant {
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let fields = Fields::parse(body, &TENANT_FIELDS)?;
        let label = fields.string("label")?.ok_or_else(|| missing("label"))?;
        let settings = TenantSettings {
            page_auto_create: fields.boolean("page_auto_create")?.unwrap_or(false),
            count_bots: fields.boolean("count_bots")?.unwrap_or(false),
            respect_dnt: fields.boolean("respect_dnt")?.unwrap_or(false),
        };
        let allowed_origins = fields.origins("allowed_origins")?.flatten();
        Ok(NewTenant {
            label: check_label(label)?,
            settings,
            allowed_origins,
        })
    }
}

impl TenantChanges {
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let fields = Fields::parse(body, &TENANT_FIELDS)?;
        let changes = TenantChanges {
            label: fields.string("label")?.map(check_label).transpose()?,
            page_auto_create: fields.boolean("page_auto_create")?,
            count_bots: fields.boolean("count_bots")?,
            respect_dnt: fields.boolean("respect_dnt")?,
            allowed_origins: fields.origins("allowed_origins")?,
        };
        if changes == TenantChanges::default() {
            return Err(ApiError::InvalidParameter(format!(
                "give at least one of {}",
                TENANT_FIELDS.join(", ")
            )));
        }
        Ok(changes)
    }
}

impl NewCounter {
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let fields = Fields::parse(body, &["label", "initial_value", "max_delta"])?;
        let label = fields.string("label")?.map(check_label).transpose()?;
        let initial_value = match fields.integer("initial_value")? {
            Some(v) => check_value(v)?,
            None => 0,
        };
        let max_delta = fields.integer("max_delta")?.unwrap_or(DEFAULT_MAX_DELTA);
        if !(1..=MAX_SAFE).contains(&max_delta) {
            return Err(ApiError::InvalidParameter(format!(
                "max_delta must be an integer from 1 to {MAX_SAFE}"
            )));
        }
        Ok(NewCounter {
            label,
            initial_value,
            max_delta,
        })
    }
}

impl NewValue {
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let fields = Fields::parse(body, &["value"])?;
        let value = fields.integer("value")?.ok_or_else(|| missing("value"))?;
        Ok(NewValue {
            value: check_value(value)?,
        })
    }
}

/// `POST …/credentials`: the scopes (tenant keys only) and an optional expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub scopes: Scopes,
    pub expires_ms: Option<u64>,
}

impl NewCredential {
    /// A tenant key's request: unknown scopes and a past expiry are refused; no scopes
    /// given means the default ones.
    pub fn parse(body: &[u8], now_ms: u64) -> ApiResult<Self> {
        let fields = Fields::parse(body, &["scopes", "expires_at"])?;
        let invalid = || {
            let names: Vec<_> = Scope::ALL.iter().map(|s| s.name()).collect();
            ApiError::InvalidParameter(format!("scopes must be a list of: {}", names.join(", ")))
        };
        let scopes = match fields.get("scopes") {
            None => Scopes::DEFAULT,
            Some(Value::Array(items)) if items.len() <= Scope::ALL.len() * 2 => Scopes::of(
                &items
                    .iter()
                    .map(|v| v.as_str().and_then(Scope::parse).ok_or_else(invalid))
                    .collect::<ApiResult<Vec<_>>>()?,
            ),
            Some(_) => return Err(invalid()),
        };
        Ok(NewCredential {
            scopes,
            expires_ms: fields.expiry("expires_at", now_ms)?,
        })
    }

    /// A managed administrator key's request: an expiry only.
    pub fn parse_admin(body: &[u8], now_ms: u64) -> ApiResult<Self> {
        let fields = Fields::parse(body, &["expires_at"])?;
        Ok(NewCredential {
            scopes: Scopes::default(),
            expires_ms: fields.expiry("expires_at", now_ms)?,
        })
    }
}

fn missing(field: &str) -> ApiError {
    ApiError::InvalidParameter(format!("{field} is required"))
}

/// A JSON object body with a known set of fields; an empty body is `{}`.
struct Fields(Map<String, Value>);

impl Fields {
    fn parse(body: &[u8], known: &[&str]) -> ApiResult<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Fields(Map::new()));
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::InvalidJson(format!("Body is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::InvalidJson("Body must be a JSON object".into()));
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::InvalidParameter(format!(
                "unknown field {unknown:?}; expected {}",
                known.join(", ")
            )));
        }
        Ok(Fields(map))
    }

    /// Absent and `null` both mean "not given".
    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    /// Absent: `None`; `null`: `Some(None)`; a list of origins: `Some(Some(list))`.
    fn origins(&self, field: &str) -> ApiResult<Option<Option<Vec<String>>>> {
        let invalid = || {
            ApiError::InvalidParameter(format!(
                "{field} must be null or a list of up to {MAX_ALLOWED_ORIGINS} origins like https://blog.example"
            ))
        };
        match self.0.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::Array(items)) if items.len() <= MAX_ALLOWED_ORIGINS => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .and_then(crate::domain::cors::parse_origin)
                        .ok_or_else(invalid)
                })
                .collect::<ApiResult<Vec<_>>>()
                .map(|list| Some(Some(list))),
            Some(_) => Err(invalid()),
        }
    }

    /// An RFC 3339 time in the future.
    fn expiry(&self, field: &str, now_ms: u64) -> ApiResult<Option<u64>> {
        let Some(raw) = self.string(field)? else {
            return Ok(None);
        };
        match crate::domain::time::parse_rfc3339(raw) {
            Some(at) if at > now_ms => Ok(Some(at)),
            _ => Err(ApiError::InvalidParameter(format!(
                "{field} must be an RFC 3339 time in the future"
            ))),
        }
    }

    fn boolean(&self, field: &str) -> ApiResult<Option<bool>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::InvalidParameter(format!(
                "{field} must be true or false"
            ))),
        }
    }

    fn string(&self, field: &str) -> ApiResult<Option<&str>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::InvalidParameter(format!(
                "{field} must be a string"
            ))),
        }
    }

    /// An integer; a number too large for the range is COUNTER_OVERFLOW.
    fn integer(&self, field: &str) -> ApiResult<Option<i64>> {
        let Some(value) = self.get(field) else {
            return Ok(None);
        };
        let not_integer = || ApiError::InvalidParameter(format!("{field} must be an integer"));
        let Value::Number(n) = value else {
            return Err(not_integer());
        };
        if let Some(i) = n.as_i64() {
            return Ok(Some(i));
        }
        if n.as_u64().is_some() {
            return Err(ApiError::CounterOverflow);
        }
        match n.as_f64() {
            Some(f) if f.is_finite() && f.fract() == 0.0 => {
                if f.abs() > MAX_SAFE as f64 {
                    Err(ApiError::CounterOverflow)
                } else {
                    Ok(Some(f as i64))
                }
            }
            _ => Err(not_integer()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T: std::fmt::Debug>(r: ApiResult<T>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn new_credentials() {
        let now = 1_700_000_000_000;
        let c = NewCredential::parse(b"", now).unwrap();
        assert_eq!(c.scopes, Scopes::DEFAULT);
        assert_eq!(c.expires_ms, None);
        let c = NewCredential::parse(
            br#"{"scopes":["counter:adjust","tenant:read"],"expires_at":"2030-01-01T00:00:00Z"}"#,
            now,
        )
        .unwrap();
        assert_eq!(
            c.scopes,
            Scopes::of(&[Scope::CounterAdjust, Scope::TenantRead])
        );
        assert_eq!(c.expires_ms, Some(1_893_456_000_000));
        for bad in [
            &br#"{"scopes":["counter:delete"]}"#[..],
            br#"{"scopes":"counter:read"}"#,
            br#"{"scopes":[1]}"#,
            br#"{"expires_at":"2001-01-01T00:00:00Z"}"#,
            br#"{"expires_at":"tomorrow"}"#,
            br#"{"expires_at":5}"#,
            br#"{"scope":["counter:read"]}"#,
        ] {
            assert_eq!(code(NewCredential::parse(bad, now)), "INVALID_PARAMETER");
        }
        assert_eq!(code(NewCredential::parse(b"{", now)), "INVALID_JSON");
        assert_eq!(
            code(NewCredential::parse_admin(br#"{"scopes":[]}"#, now)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            NewCredential::parse_admin(b"{}", now).unwrap().scopes,
            Scopes::default()
        );
    }

    #[test]
    fn tenant_bodies() {
        assert_eq!(
            NewTenant::parse(br#"{"label":"acme"}"#).unwrap().label,
            "acme"
        );
        assert_eq!(code(NewTenant::parse(b"")), "INVALID_PARAMETER");
        assert_eq!(code(NewTenant::parse(b"{")), "INVALID_JSON");
        assert_eq!(code(NewTenant::parse(b"[1]")), "INVALID_JSON");
        assert_eq!(code(NewTenant::parse(b"\"acme\"")), "INVALID_JSON");
        assert_eq!(
            code(NewTenant::parse(br#"{"label":5}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewTenant::parse(br#"{"label":""}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewTenant::parse(br#"{"label":"a","x":1}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(code(NewTenant::parse(&[0xff, 0xfe])), "INVALID_JSON");
    }

    #[test]
    fn tenant_settings_and_changes() {
        let t = NewTenant::parse(br#"{"label":"a","page_auto_create":true}"#).unwrap();
        assert_eq!(
            t.settings,
            TenantSettings {
                page_auto_create: true,
                count_bots: false,
                respect_dnt: false
            }
        );
        let o = NewTenant::parse(br#"{"label":"a","allowed_origins":["https://Blog.example/"]}"#)
            .unwrap();
        assert_eq!(
            o.allowed_origins,
            Some(vec!["https://blog.example".to_string()])
        );
        assert_eq!(
            code(NewTenant::parse(
                br#"{"label":"a","allowed_origins":["blog.example"]}"#
            )),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewTenant::parse(
                br#"{"label":"a","allowed_origins":"https://a.example"}"#
            )),
            "INVALID_PARAMETER"
        );
        let cleared = TenantChanges::parse(br#"{"allowed_origins":null}"#).unwrap();
        assert_eq!(cleared.allowed_origins, Some(None));
        assert_eq!(
            code(NewTenant::parse(br#"{"label":"a","count_bots":"yes"}"#)),
            "INVALID_PARAMETER"
        );
        let c = TenantChanges::parse(br#"{"count_bots":true}"#).unwrap();
        assert_eq!(
            c,
            TenantChanges {
                count_bots: Some(true),
                ..TenantChanges::default()
            }
        );
        assert_eq!(code(TenantChanges::parse(b"{}")), "INVALID_PARAMETER");
        assert_eq!(
            code(TenantChanges::parse(br#"{"label":""}"#)),
            "INVALID_PARAMETER"
        );
    }

    #[test]
    fn counter_bodies() {
        let c = NewCounter::parse(b"").unwrap();
        assert_eq!(
            c,
            NewCounter {
                label: None,
                initial_value: 0,
                max_delta: 50
            }
        );
        let c =
            NewCounter::parse(br#"{"label":"likes","initial_value":-7,"max_delta":3}"#).unwrap();
        assert_eq!(
            c,
            NewCounter {
                label: Some("likes".into()),
                initial_value: -7,
                max_delta: 3
            }
        );
        assert_eq!(NewCounter::parse(br#"{"label":null}"#).unwrap().label, None);
        assert_eq!(
            NewCounter::parse(br#"{"initial_value":1e3}"#)
                .unwrap()
                .initial_value,
            1000
        );
        assert_eq!(
            code(NewCounter::parse(br#"{"max_delta":0}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewCounter::parse(br#"{"max_delta":-1}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewCounter::parse(br#"{"max_delta":"5"}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewCounter::parse(br#"{"initial_value":1.5}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewCounter::parse(br#"{"initial_value":true}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewCounter::parse(br#"{"initial_value":9007199254740992}"#)),
            "COUNTER_OVERFLOW"
        );
        assert_eq!(
            code(NewCounter::parse(
                br#"{"initial_value":18446744073709551616}"#
            )),
            "COUNTER_OVERFLOW"
        );
        assert_eq!(
            code(NewCounter::parse(br#"{"initial_value":-1e300}"#)),
            "COUNTER_OVERFLOW"
        );
    }

    #[test]
    fn value_bodies() {
        assert_eq!(
            NewValue::parse(br#"{"value":-9007199254740991}"#)
                .unwrap()
                .value,
            -9007199254740991
        );
        assert_eq!(code(NewValue::parse(b"{}")), "INVALID_PARAMETER");
        assert_eq!(
            code(NewValue::parse(br#"{"value":null}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewValue::parse(br#"{"value":"1"}"#)),
            "INVALID_PARAMETER"
        );
        assert_eq!(
            code(NewValue::parse(br#"{"value":9007199254740992}"#)),
            "COUNTER_OVERFLOW"
        );
    }
}
