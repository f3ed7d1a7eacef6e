//! What the Worker asks a counter object, and how it travels: a path and query the
//! Worker writes and the object reads back into the same typed call. A client's budget
//! key travels as the day's hash of the address, never the address: the platform's
//! invocation logs record an object request's URL. Pure, so the round trip is tested
//! natively.

use crate::domain::budget::Decision;
use crate::domain::client::ClientKey;
use crate::domain::counter::{check_value, Delta};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::ids::TenantId;
use crate::domain::ledger::{Actor, Requested};
use crate::error::{ApiError, ApiResult};
use uuid::Uuid;

/// What a counter's answer to a read (or a counting badge's increment) shows, read back
/// by the Worker: its label and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub label: Option<String>,
    pub value: i64,
}

impl Shown {
    pub fn from_answer(body: &str) -> Option<Shown> {
        let v: serde_json::Value = serde_json::from_str(body).ok()?;
        Some(Shown {
            label: v.get("label")?.as_str().map(str::to_string),
            value: v.get("value")?.as_i64()?,
        })
    }
}

/// Where a batch of increments goes: the body holds one `/inc` call path per line, the
/// answer one [`Answered`] per line, in the same order (`routes::increments`).
pub const BATCH_PATH: &str = "/incs";

/// One call's answer within a batch: what the object would have answered it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub status: u16,
    pub budget: Option<Decision>,
    /// Compact JSON: one line.
    pub body: String,
}

impl Answered {
    pub fn error(e: &ApiError) -> Answered {
        Answered {
            status: e.status(),
            budget: None,
            body: e.body(),
        }
    }
}

/// A batch's answers, a line each: `status budget body`, the budget `-` or
/// `{a|r}limit,remaining,retry` (allowed or refused).
pub fn encode_answers(answers: &[Answered]) -> String {
    let mut out = String::new();
    for a in answers {
        let budget = a.budget.map_or("-".into(), |d| {
            let verdict = if d.allowed { 'a' } else { 'r' };
            format!(
                "{verdict}{},{},{}",
                d.limit, d.remaining, d.retry_after_seconds
            )
        });
        out += &format!("{} {budget} {}\n", a.status, a.body);
    }
    out
}

pub fn parse_answers(text: &str) -> Option<Vec<Answered>> {
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let status = parts.next()?.parse().ok()?;
            let budget = match parts.next()? {
                "-" => None,
                b => {
                    let allowed = match b.get(..1)? {
                        "a" => true,
                        "r" => false,
                        _ => return None,
                    };
                    let mut n = b[1..].split(',');
                    let mut next = || n.next()?.parse::<u64>().ok();
                    Some(Decision {
                        allowed,
                        limit: u32::try_from(next()?).ok()?,
                        remaining: u32::try_from(next()?).ok()?,
                        retry_after_seconds: next()?,
                    })
                }
            };
            let body = parts.next()?.to_string();
            Some(Answered {
                status,
                budget,
                body,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterCall {
    /// Create the object's state from a record the Worker just wrote to D1.
    Init,
    Read {
        tenant: TenantId,
    },
    Increment {
        tenant: TenantId,
        delta: Delta,
        key: Option<IdempotencyKey>,
        /// Whose budget the increment spends; `None` spends none (an administrator's).
        client: Option<ClientKey>,
        /// Answer with the counter itself (label and value) instead of the mutation —
        /// also when the budget refuses the increment: a badge always shows the count.
        view: bool,
        actor: Actor,
    },
    Set {
        tenant: TenantId,
        value: i64,
        key: Option<IdempotencyKey>,
        actor: Actor,
    },
    /// A page of the counter's operations, newest first, older than `before`.
    History {
        tenant: TenantId,
        limit: u32,
        before: Option<Uuid>,
    },
    /// The operator's check of the ledger against the value, under any tenant.
    Reconcile,
    /// A page of the export: the counter's line first (`after` 0), then its operations
    /// with `seq` in `(after, upto]`; `upto` 0 fixes it at the last operation now.
    Export {
        tenant: TenantId,
        after: u64,
        upto: u64,
    },
    /// Operations from an import, in the request's body (`objects::counter_import`).
    Import {
        tenant: TenantId,
    },
}

impl CounterCall {
    pub fn path(&self) -> String {
        let key = |k: &Option<IdempotencyKey>| k.map(|k| format!("&k={k}")).unwrap_or_default();
        let actor = |a: &Actor| match a {
            Actor::Anonymous => String::new(),
            other => format!("&a={}", other.id()),
        };
        match self {
            CounterCall::Init => "/init".into(),
            CounterCall::Reconcile => "/reconcile".into(),
            CounterCall::Read { tenant } => format!("/read?t={tenant}"),
            CounterCall::Increment {
                tenant,
                delta,
                key: k,
                client,
                view,
                actor: a,
            } => {
                let client = client
                    .as_ref()
                    .map(|c| format!("&b={}", c.as_str()))
                    .unwrap_or_default();
                let view = if *view { "&v=1" } else { "" };
                format!(
                    "/inc?t={tenant}&d={}{}{client}{view}{}",
                    delta.get(),
                    key(k),
                    actor(a)
                )
            }
            CounterCall::Set {
                tenant,
                value,
                key: k,
                actor: a,
            } => format!("/set?t={tenant}&v={value}{}{}", key(k), actor(a)),
            CounterCall::History {
                tenant,
                limit,
                before,
            } => {
                let before = before.map(|b| format!("&c={b}")).unwrap_or_default();
                format!("/ops?t={tenant}&l={limit}{before}")
            }
            CounterCall::Export {
                tenant,
                after,
                upto,
            } => format!("/export?t={tenant}&s={after}&u={upto}"),
            CounterCall::Import { tenant } => format!("/import?t={tenant}"),
        }
    }

    pub fn parse(path: &str, query: Option<&str>) -> ApiResult<CounterCall> {
        let param = |name: &str| {
            query
                .unwrap_or("")
                .split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
        };
        let tenant = || TenantId::parse(param("t").unwrap_or(""));
        let key = || IdempotencyKey::from_header(param("k"));
        let actor = || match param("a") {
            None => Ok(Actor::Anonymous),
            Some(a) => Actor::parse(a).ok_or_else(|| ApiError::internal("unknown actor")),
        };
        match path {
            "/init" => Ok(CounterCall::Init),
            "/reconcile" => Ok(CounterCall::Reconcile),
            "/ops" => Ok(CounterCall::History {
                tenant: tenant()?,
                limit: param("l")
                    .and_then(|l| l.parse().ok())
                    .filter(|l| (1..=crate::domain::ledger::PAGE_MAX).contains(l))
                    .ok_or_else(|| ApiError::internal("history limit out of range"))?,
                before: match param("c") {
                    Some(c) => Some(Uuid::try_parse(c).map_err(|_| ApiError::InvalidCursor)?),
                    None => None,
                },
            }),
            "/read" => Ok(CounterCall::Read { tenant: tenant()? }),
            "/export" => {
                let seq = |name| param(name).and_then(|s| s.parse().ok());
                Ok(CounterCall::Export {
                    tenant: tenant()?,
                    after: seq("s").ok_or_else(|| ApiError::internal("export without s"))?,
                    upto: seq("u").ok_or_else(|| ApiError::internal("export without u"))?,
                })
            }
            "/import" => Ok(CounterCall::Import { tenant: tenant()? }),
            "/inc" => Ok(CounterCall::Increment {
                tenant: tenant()?,
                delta: Delta::parse(param("d"))?,
                key: key()?,
                client: param("b").map(ClientKey::from_wire),
                view: param("v") == Some("1"),
                actor: actor()?,
            }),
            "/set" => {
                let value = param("v")
                    .and_then(|v| v.parse::<i64>().ok())
                    .ok_or_else(|| ApiError::InvalidParameter("value must be an integer".into()))?;
                Ok(CounterCall::Set {
                    tenant: tenant()?,
                    value: check_value(value)?,
                    key: key()?,
                    actor: actor()?,
                })
            }
            _ => Err(ApiError::NotFound),
        }
    }

    /// The tenant a call is made under; `Init` carries its tenant in its record, and
    /// reconciliation is the operator's, across tenants.
    pub fn tenant(&self) -> Option<&TenantId> {
        match self {
            CounterCall::Init | CounterCall::Reconcile => None,
            CounterCall::Read { tenant }
            | CounterCall::Increment { tenant, .. }
            | CounterCall::Set { tenant, .. }
            | CounterCall::History { tenant, .. }
            | CounterCall::Export { tenant, .. }
            | CounterCall::Import { tenant } => Some(tenant),
        }
    }

    /// The client whose budget a call spends, if any.
    pub fn client(&self) -> Option<&ClientKey> {
        match self {
            CounterCall::Increment { client, .. } => client.as_ref(),
            _ => None,
        }
    }

    /// The idempotency key of a mutation, with what makes two requests "the same". The
    /// counter is implied: keys are scoped to their counter.
    pub fn keyed(&self) -> Option<(IdempotencyKey, Requested)> {
        match self {
            CounterCall::Increment {
                delta,
                key: Some(k),
                ..
            } => Some((
                *k,
                Requested::Increment {
                    delta: i64::try_from(delta.get()).unwrap_or(i64::MAX),
                },
            )),
            CounterCall::Set {
                value,
                key: Some(k),
                ..
            } => Some((*k, Requested::Set { value: *value })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
    const K: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6d";

    fn round_trip(call: CounterCall) {
        let path = call.path();
        let (p, q) = path
            .split_once('?')
            .map_or((path.as_str(), None), |(p, q)| (p, Some(q)));
        assert_eq!(CounterCall::parse(p, q).unwrap(), call, "{path}");
        assert!(!path.contains("2001:db8"), "no client address in {path}");
    }

    #[test]
    fn every_call_round_trips() {
        let tenant = TenantId::parse(T).unwrap();
        let key = IdempotencyKey::from_header(Some(K)).unwrap();
        round_trip(CounterCall::Init);
        round_trip(CounterCall::Read { tenant });
        round_trip(CounterCall::Increment {
            tenant,
            delta: Delta::ONE,
            key: None,
            client: None,
            view: false,
            actor: Actor::Anonymous,
        });
        round_trip(CounterCall::Increment {
            tenant,
            delta: Delta::parse(Some("42")).unwrap(),
            key,
            client: Some(ClientKey::from_wire(&crate::domain::visit::client_hash(
                b"salt",
                ClientKey::from_header(Some("2001:db8::1")).as_str(),
            ))),
            view: false,
            actor: Actor::Credential(Uuid::from_u128(7)),
        });
        round_trip(CounterCall::Increment {
            tenant,
            delta: Delta::ONE,
            key: None,
            client: Some(ClientKey::proxy()),
            view: true,
            actor: Actor::Anonymous,
        });
        round_trip(CounterCall::Set {
            tenant,
            value: -9_007_199_254_740_991,
            key,
            actor: Actor::Admin,
        });
        round_trip(CounterCall::Set {
            tenant,
            value: 0,
            key: None,
            actor: Actor::Anonymous,
        });
        round_trip(CounterCall::Reconcile);
        round_trip(CounterCall::Export {
            tenant,
            after: 0,
            upto: 0,
        });
        round_trip(CounterCall::Export {
            tenant,
            after: 1_000,
            upto: 2_000_000,
        });
        round_trip(CounterCall::Import { tenant });
        round_trip(CounterCall::History {
            tenant,
            limit: 1,
            before: None,
        });
        round_trip(CounterCall::History {
            tenant,
            limit: 100,
            before: Some(Uuid::from_u128(42)),
        });
    }

    #[test]
    fn keys_carry_what_the_request_asked() {
        let tenant = TenantId::parse(T).unwrap();
        let key = IdempotencyKey::from_header(Some(K)).unwrap();
        let inc = |d: &str| CounterCall::Increment {
            tenant,
            delta: Delta::parse(Some(d)).unwrap(),
            key,
            client: None,
            view: false,
            actor: Actor::Anonymous,
        };
        let k = key.unwrap();
        assert_eq!(
            inc("2").keyed(),
            Some((k, Requested::Increment { delta: 2 }))
        );
        let set = CounterCall::Set {
            tenant,
            value: 2,
            key,
            actor: Actor::Admin,
        };
        assert_eq!(set.keyed(), Some((k, Requested::Set { value: 2 })));
        assert_eq!(CounterCall::Read { tenant }.keyed(), None);
    }

    #[test]
    fn counter_answers_read_back() {
        use crate::domain::counter::{CounterMeta, CounterState};
        let meta = CounterMeta {
            counter_id: "c".into(),
            tenant_id: "t".into(),
            label: None,
            max_delta: 5,
            created_ms: 0,
        };
        let state = CounterState {
            value: -4,
            version: 1,
            updated_ms: 0,
        };
        let body = crate::domain::views::counter_json(&meta, &state);
        assert_eq!(
            Shown::from_answer(&body),
            Some(Shown {
                label: None,
                value: -4
            })
        );
        assert_eq!(Shown::from_answer("{}"), None);
    }

    #[test]
    fn batch_answers_round_trip() {
        let answers = vec![
            Answered {
                status: 200,
                budget: Some(Decision {
                    allowed: true,
                    limit: 10,
                    remaining: 9,
                    retry_after_seconds: 0,
                }),
                body: r#"{"counter_id":"c","value":1}"#.into(),
            },
            Answered {
                status: 429,
                budget: Some(Decision {
                    allowed: false,
                    limit: 10,
                    remaining: 0,
                    retry_after_seconds: 42,
                }),
                body: ApiError::RateLimitExceeded {
                    retry_after_seconds: 42,
                }
                .body(),
            },
            Answered::error(&ApiError::DeltaExceedsMaximum { max_delta: 5 }),
            Answered {
                status: 200,
                budget: None,
                body: r#"{"label":"a b  c"}"#.into(),
            },
        ];
        assert_eq!(parse_answers(&encode_answers(&answers)), Some(answers));
        assert_eq!(parse_answers(""), Some(vec![]));
        for bad in [
            "200",
            "x - {}",
            "200 q1,2,3 {}",
            "200 a1,2 {}",
            "200 a1,2,x {}",
        ] {
            assert_eq!(parse_answers(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_calls_are_refused() {
        assert_eq!(
            CounterCall::parse("/read", None).unwrap_err().code(),
            "INVALID_UUID"
        );
        assert_eq!(
            CounterCall::parse("/drop", None).unwrap_err().code(),
            "NOT_FOUND"
        );
        let q = format!("t={T}&l=101");
        assert!(CounterCall::parse("/ops", Some(&q)).is_err());
        let q = format!("t={T}&l=5&c=nope");
        assert_eq!(
            CounterCall::parse("/ops", Some(&q)).unwrap_err().code(),
            "INVALID_CURSOR"
        );
        let q = format!("t={T}&v=1.5");
        assert_eq!(
            CounterCall::parse("/set", Some(&q)).unwrap_err().code(),
            "INVALID_PARAMETER"
        );
    }
}
