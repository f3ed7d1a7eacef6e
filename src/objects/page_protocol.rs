//! What the Worker asks a page object, and what a visit answers. Calls travel as JSON
//! bodies: page ids are free text, and a visit carries what the object needs to decide.

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

/// A page object's answer to a visit or a read (`unique`, `counted`, `reason` for
/// visits; `uniques_today` for reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageAnswer {
    pub page_id: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<NotCounted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniques_today: Option<u64>,
}

impl PageAnswer {
    /// A visit that counted nothing, for `reason`.
    pub fn uncounted(page_id: &str, count: u64, reason: NotCounted) -> Self {
        PageAnswer {
            page_id: page_id.to_string(),
            count,
            unique: Some(false),
            counted: Some(false),
            reason: Some(reason),
            uniques_today: None,
        }
    }
}
