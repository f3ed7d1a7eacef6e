//! What a route handler works with: the request, the environment, the configuration, and
//! what it learns along the way for the log line.

use crate::config::Config;
use crate::domain::agent::AgentClass;
use crate::domain::client::ClientKey;
use crate::domain::idempotency::IdempotencyKey;
use crate::error::{ApiError, ApiResult};
use std::rc::Rc;
use worker::{Env, Request};

pub struct Ctx<'a> {
    pub req: Request,
    /// The raw path, as in the URL.
    pub path: String,
    /// The raw query string, decoded only when a handler asks for a parameter.
    pub query: Option<String>,
    pub env: &'a Env,
    pub config: Rc<Config>,
    /// Who is asking, for budgets.
    pub client: ClientKey,
    /// A `HEAD` request: answered like `GET`, it never counts or changes anything.
    pub head: bool,
    /// What kind of client this is (set for counting routes and badges).
    pub agent: AgentClass,
    /// The client's refusal brake stopped it: a badge renders without asking any object.
    pub braked: bool,
    /// Set by a handler whose object refused the client (a badge over budget, of a
    /// missing counter or page): the refusal brake is charged.
    pub refused: bool,
    /// Set by handlers once the tenant is known, for the request log.
    pub tenant_id: Option<String>,
}

impl Ctx<'_> {
    pub fn header(&self, name: &str) -> Option<String> {
        self.req.headers().get(name).ok().flatten()
    }

    /// A query parameter given at most once. Unknown parameters are ignored (pages add
    /// cache busters); a repeated known one is ambiguous and refused.
    pub fn query(&self, name: &str) -> ApiResult<Option<String>> {
        let raw = self.query.as_deref().unwrap_or("");
        let mut values = form_urlencoded::parse(raw.as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::InvalidParameter(format!(
                "{name} is given more than once"
            )));
        }
        Ok(first)
    }

    /// The client whose budget a counting request spends: image proxies, one address for
    /// all their readers, share one budget per counted object.
    pub fn budget_client(&self) -> ClientKey {
        match self.agent {
            AgentClass::Proxy => ClientKey::proxy(),
            _ => self.client.clone(),
        }
    }

    pub fn idempotency_key(&self) -> ApiResult<Option<IdempotencyKey>> {
        IdempotencyKey::from_header(self.header("Idempotency-Key").as_deref())
    }
}
