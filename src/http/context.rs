//! What a route handler works with: the request, the environment, the configuration, and
//! what it learns along the way for the log line.

use crate::config::Config;
use crate::domain::access::Principal;
use crate::domain::agent::AgentClass;
use crate::domain::client::ClientKey;
use crate::domain::history::HistoryRange;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::ledger::Actor;
use crate::domain::visit::{client_hash, day_of};
use crate::error::{ApiError, ApiResult};
use std::rc::Rc;
use worker::{Context, Env, Request};

pub struct Ctx<'a> {
    pub req: Request,
    /// The raw path, as in the URL.
    pub path: String,
    /// The raw query string, decoded only when a handler asks for a parameter.
    pub query: Option<String>,
    pub env: &'a Env,
    /// The request's context, for work that must outlive the answer (`waitUntil`).
    pub waits: &'a Context,
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
    /// Who is calling, verified.
    pub principal: Principal,
}

impl Ctx<'_> {
    /// Whom this request's changes are attributed to.
    pub fn actor(&self) -> Actor {
        self.principal.actor()
    }

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

    /// The key of the budget a counting request spends, as it travels to the object:
    /// GitHub's image proxy, one address for all its readers, shares one per counted
    /// object; anyone else is their address hashed with today's salt (`salt`; without
    /// it, this isolate's secret) — never the address itself, which the platform would
    /// log with the object request.
    pub fn budget_client(&self, salt: Option<&str>) -> ClientKey {
        match self.agent {
            AgentClass::Proxy => ClientKey::proxy(),
            _ => {
                let secret = crate::platform::isolate_secret();
                let salt = salt.map_or(&secret[..], str::as_bytes);
                ClientKey::from_wire(&client_hash(salt, self.client.as_str()))
            }
        }
    }

    /// Today's visitor salt (cached per isolate), or `None` if the salt keeper cannot
    /// be reached.
    pub async fn salt(&self) -> Option<String> {
        crate::objects::salts::today(self.env, day_of(crate::platform::now_ms())).await
    }

    /// `from`, `to` and `granularity`, as history and stats take them.
    pub fn history_range(&self) -> ApiResult<HistoryRange> {
        HistoryRange::parse(
            self.query("from")?.as_deref(),
            self.query("to")?.as_deref(),
            self.query("granularity")?.as_deref(),
            crate::platform::now_ms(),
        )
    }

    pub fn idempotency_key(&self) -> ApiResult<Option<IdempotencyKey>> {
        IdempotencyKey::from_header(self.header("Idempotency-Key").as_deref())
    }
}
