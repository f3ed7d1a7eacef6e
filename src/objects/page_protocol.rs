//! What the Worker asks a page object. Calls travel as JSON bodies: page ids are free
//! text, and a visit carries what the object needs to count it.

use crate::domain::visit::AgentClass;
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
}

impl PageCall {
    pub fn tenant(&self) -> &str {
        match self {
            PageCall::Visit { tenant, .. } | PageCall::Read { tenant, .. } => tenant,
        }
    }

    pub fn page(&self) -> &str {
        match self {
            PageCall::Visit { page, .. } | PageCall::Read { page, .. } => page,
        }
    }
}
