//! What the Worker asks a page object, and what a visit answers. Calls travel as JSON
//! bodies: page ids are free text, and a visit carries what the object needs to decide —
//! the reader's address and user agent among them, which must never appear in a URL
//! (the platform's invocation logs record object requests' URLs).

use crate::domain::agent::AgentClass;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visitor {
    /// Used for the day's visitor hash, in memory only; never stored.
    pub ip: String,
    /// Likewise.
    pub user_agent: String,
    pub referrer_host: Option<String>,
    pub country: Option<String>,
    pub agent: AgentClass,
    /// The browser sent `DNT: 1`.
    #[serde(default)]
    pub dnt: bool,
    /// Whose budget the visit spends (`domain::client::ClientKey`, as it travels).
    pub client: String,
    /// Count the visit whatever its agent: the migration routes count every client, as
    /// the services they replace did.
    #[serde(default)]
    pub count_all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl PageCall {
    pub fn tenant(&self) -> &str {
        match self {
            PageCall::Visit { tenant, .. }
            | PageCall::Read { tenant, .. }
            | PageCall::Delete { tenant, .. } => tenant,
        }
    }

    pub fn page(&self) -> &str {
        match self {
            PageCall::Visit { page, .. }
            | PageCall::Read { page, .. }
            | PageCall::Delete { page, .. } => page,
        }
    }
}

/// Why a visit did not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotCounted {
    Bot,
    Dnt,
    Budget,
}

/// A page object's answer to a visit, exactly as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageView {
    pub page_id: String,
    pub count: u64,
    pub uniques_today: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

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
