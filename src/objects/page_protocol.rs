//! What the Worker asks a page object, and what a visit answers. A call travels as JSON
//! in the object's URL (no body to stream). A visit carries only what a visit row may
//! keep and two day-scoped hashes: the visitor's (HMAC of the day's salt, address and
//! user agent) and the budget key's — never the address or the user agent, which the
//! platform's invocation logs would record with the URL.

use crate::domain::agent::AgentClass;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visitor {
    /// The visitor's hash for today, hex (`domain::visit::visitor_hash`); `None` when
    /// today's salt could not be had (the visit then is not marked unique).
    pub visitor: Option<String>,
    pub referrer_host: Option<String>,
    pub country: Option<String>,
    pub agent: AgentClass,
    /// The browser sent `DNT: 1`.
    pub dnt: bool,
    /// Whose budget the visit spends (`Ctx::budget_client`: a day-scoped hash).
    pub client: String,
    /// Count the visit whatever its agent: the migration routes count every client, as
    /// the services they replace did.
    pub count_all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum PageCall {
    Visit {
        tenant: String,
        page: String,
        visitor: Visitor,
    },
    Read {
        tenant: String,
        page: String,
    },
    /// Remove the page, its visit log and its history.
    Delete {
        tenant: String,
        page: String,
    },
    /// An import's addition to the count, made once per `key` however often it is sent.
    Add {
        tenant: String,
        page: String,
        count: u64,
        key: String,
    },
}

impl PageCall {
    pub fn tenant(&self) -> &str {
        match self {
            PageCall::Visit { tenant, .. }
            | PageCall::Read { tenant, .. }
            | PageCall::Delete { tenant, .. }
            | PageCall::Add { tenant, .. } => tenant,
        }
    }

    pub fn page(&self) -> &str {
        match self {
            PageCall::Visit { page, .. }
            | PageCall::Read { page, .. }
            | PageCall::Delete { page, .. }
            | PageCall::Add { page, .. } => page,
        }
    }
}

/// Why a visit did not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotCounted {
    Bot,
    Dnt,
    Budget,
}

/// A page object's answer to a visit, exactly as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitAnswer {
    pub page_id: String,
    pub count: u64,
    /// This visitor's first visit of the page today.
    pub unique: bool,
    pub counted: bool,
    /// Why it did not count; `null` when it did.
    pub reason: Option<NotCounted>,
}

impl VisitAnswer {
    /// A visit that counted nothing, for `reason`.
    pub fn uncounted(page_id: &str, count: u64, reason: NotCounted) -> Self {
        VisitAnswer {
            page_id: page_id.to_string(),
            count,
            unique: false,
            counted: false,
            reason: Some(reason),
        }
    }
}

/// A page object's answer to a read, exactly as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageView {
    pub page_id: String,
    pub count: u64,
    pub uniques_today: u64,
}

/// How a call travels: JSON in the query of the object's URL.
pub fn call_url(call: &PageCall) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(call)?;
    let encoded: String = form_urlencoded::byte_serialize(json.as_bytes()).collect();
    Ok(format!("https://page/?c={encoded}"))
}

/// The call in an object's URL, if it carries one (`Some(None)`: a malformed call).
/// Read through `Value` rather than a derived decoder: one JSON reader serves every
/// record the service parses, which keeps the bundle small.
pub fn call_of(url: &str) -> Option<Option<PageCall>> {
    let query = url.split_once('?')?.1;
    let (_, json) = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "c")?;
    Some(
        serde_json::from_str::<Value>(&json)
            .ok()
            .and_then(|v| PageCall::from_json(&v)),
    )
}

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field)?.as_str().map(str::to_string)
}

fn opt_text(v: &Value, field: &str) -> Option<Option<String>> {
    match v.get(field) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    }
}

fn flag(v: &Value, field: &str) -> Option<bool> {
    match v.get(field) {
        None => Some(false),
        Some(b) => b.as_bool(),
    }
}

impl PageCall {
    fn from_json(v: &Value) -> Option<PageCall> {
        let (tenant, page) = (text(v, "tenant")?, text(v, "page")?);
        match v.get("call")?.as_str()? {
            "visit" => {
                let w = v.get("visitor")?;
                let visitor = Visitor {
                    visitor: opt_text(w, "visitor")?,
                    referrer_host: opt_text(w, "referrer_host")?,
                    country: opt_text(w, "country")?,
                    agent: AgentClass::from_name(w.get("agent")?.as_str()?)?,
                    dnt: flag(w, "dnt")?,
                    client: text(w, "client")?,
                    count_all: flag(w, "count_all")?,
                };
                Some(PageCall::Visit {
                    tenant,
                    page,
                    visitor,
                })
            }
            "read" => Some(PageCall::Read { tenant, page }),
            "delete" => Some(PageCall::Delete { tenant, page }),
            "add" => Some(PageCall::Add {
                tenant,
                page,
                count: v.get("count")?.as_u64()?,
                key: text(v, "key")?,
            }),
            _ => None,
        }
    }
}

impl VisitAnswer {
    pub fn from_json(v: &Value) -> Option<VisitAnswer> {
        let reason = match v.get("reason") {
            None | Some(Value::Null) => None,
            Some(r) => Some(match r.as_str()? {
                "bot" => NotCounted::Bot,
                "dnt" => NotCounted::Dnt,
                "budget" => NotCounted::Budget,
                _ => return None,
            }),
        };
        Some(VisitAnswer {
            page_id: text(v, "page_id")?,
            count: v.get("count")?.as_u64()?,
            unique: v.get("unique")?.as_bool()?,
            counted: v.get("counted")?.as_bool()?,
            reason,
        })
    }
}

impl PageView {
    pub fn from_json(v: &Value) -> Option<PageView> {
        Some(PageView {
            page_id: text(v, "page_id")?,
            count: v.get("count")?.as_u64()?,
            uniques_today: v.get("uniques_today")?.as_u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_through_the_url() {
        let call = PageCall::Visit {
            tenant: "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b".into(),
            page: "/posts/héllo?x=1&y=2#z".into(),
            visitor: Visitor {
                visitor: Some("00112233445566778899aabbccddeeff".into()),
                referrer_host: Some("news.example".into()),
                country: None,
                agent: AgentClass::Browser,
                dnt: true,
                client: "0a1b2c3d4e5f60718293a4b5".into(),
                count_all: false,
            },
        };
        let url = call_url(&call).unwrap();
        assert!(url.is_ascii());
        assert_eq!(call_of(&url).unwrap().unwrap(), call);
        assert!(call_of("https://page/").is_none());
        let add = PageCall::Add {
            tenant: "t".into(),
            page: "/a".into(),
            count: 9_007_199_254_740_991,
            key: "k".into(),
        };
        assert_eq!(call_of(&call_url(&add).unwrap()).unwrap().unwrap(), add);
    }

    /// What clients read: pinned.
    #[test]
    fn answers_have_the_contract_shape() {
        let counted = VisitAnswer {
            page_id: "p".into(),
            count: 2,
            unique: true,
            counted: true,
            reason: None,
        };
        assert_eq!(
            serde_json::to_string(&counted).unwrap(),
            r#"{"page_id":"p","count":2,"unique":true,"counted":true,"reason":null}"#
        );
        assert_eq!(
            serde_json::to_string(&VisitAnswer::uncounted("p", 2, NotCounted::Budget)).unwrap(),
            r#"{"page_id":"p","count":2,"unique":false,"counted":false,"reason":"budget"}"#
        );
    }
}
