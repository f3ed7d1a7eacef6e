//! The salt keeper: the one place daily visitor salts live. Asked for a day, it answers
//! that day's salt, making it on first request, and deletes every older one; an alarm
//! at the next UTC midnight deletes it even if nobody asks again — so once a day is over
//! its visitor hashes can never be recomputed. Worker isolates cache the current day's
//! salt (`today`), so this object is asked about once per isolate per day.

// The annex Worker builds the types and calls its callers need, not the class; what
// only the class uses is unused there. The edge's build checks this module in full.
#![cfg_attr(feature = "annex", allow(unused_imports, dead_code))]

use crate::domain::crypto::hex;
use crate::domain::visit::{day_of, DAY_MS};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::respond;
use crate::objects::schema::Schema;
use crate::platform::{now_ms, random_bytes};
use crate::rows;
use std::cell::RefCell;
use worker::{DurableObject, Env, Request, Response, SqlStorage, State};

thread_local! {
    /// This isolate's copy of today's salt: (day, salt).
    static TODAY: RefCell<Option<(u64, String)>> = const { RefCell::new(None) };
}

/// The salt of `day` (today), from this isolate's copy or the salt keeper. `None` if it
/// cannot be had: visits still count, but are not marked unique.
pub async fn today(env: &Env, day: u64) -> Option<String> {
    let cached = TODAY.with(|t| {
        t.borrow()
            .as_ref()
            .filter(|(d, _)| *d == day)
            .map(|(_, s)| s.clone())
    });
    if cached.is_some() {
        return cached;
    }
    let fetched = async {
        let stub = env.durable_object("SALTS")?.get_by_name("salts")?;
        let mut answer = stub
            .fetch_with_str(&format!("https://salts/day/{day}"))
            .await?;
        match answer.status_code() {
            200 => answer.text().await,
            other => Err(worker::Error::RustError(format!(
                "salt keeper answered {other}"
            ))),
        }
    };
    match fetched.await {
        Ok(salt) => {
            TODAY.with(|t| *t.borrow_mut() = Some((day, salt.clone())));
            Some(salt)
        }
        Err(e) => {
            crate::http::log::failure("salt unavailable", &e);
            None
        }
    }
}

/// The storage's versions (`objects::schema`). 1: as released in 0.1.0.
pub static SCHEMA: Schema = Schema {
    object: "salt keeper",
    steps: &["CREATE TABLE IF NOT EXISTS salts (day INTEGER PRIMARY KEY, salt TEXT NOT NULL)"],
    unversioned_repairs: &[],
};

// The classes live in the edge Worker; the annex reaches them through its bindings.
#[cfg_attr(not(feature = "annex"), worker::durable_object)]
pub struct SaltKeeper {
    state: State,
    sql: SqlStorage,
    /// Whether storage is at this code's schema: if not, no salt is read or made.
    schema: ApiResult<()>,
}

#[cfg(not(feature = "annex"))]
impl DurableObject for SaltKeeper {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        let schema = SCHEMA.apply(&state.storage());
        if let Err(e) = &schema {
            crate::http::log::failure("salt keeper schema", e);
        }
        SaltKeeper { state, sql, schema }
    }

    /// `/day/{n}` → the salt of day n, hex.
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let url = req.inner().url();
        let day = url.rsplit('/').next().and_then(|d| d.parse::<u64>().ok());
        let Some(day) = day else {
            return respond::error(&ApiError::NotFound);
        };
        if let Err(e) = &self.schema {
            return respond::error(e);
        }
        match self.salt_for(day) {
            Ok((salt, created)) => {
                if created {
                    let midnight = (day + 1) * DAY_MS;
                    self.state
                        .storage()
                        .set_alarm(midnight.saturating_sub(now_ms()).max(1) as i64)
                        .await?;
                }
                Response::ok(salt)
            }
            Err(e) => respond::error(&e),
        }
    }

    /// Midnight: yesterday's salt goes.
    async fn alarm(&self) -> worker::Result<Response> {
        let today = day_of(now_ms()) as i64;
        self.sql
            .exec("DELETE FROM salts WHERE day < ?", vec![today.into()])?;
        Response::ok("")
    }
}

impl SaltKeeper {
    /// The day's salt, and whether it was made just now.
    fn salt_for(&self, day: u64) -> ApiResult<(String, bool)> {
        let newest = rows::sql_first(
            self.sql.exec(
                "SELECT day, salt FROM salts ORDER BY day DESC LIMIT 1",
                None,
            ),
            "reading salts",
        )?;
        if let Some(mut row) = newest {
            let newest_day = row.uint(0)?;
            if newest_day == day {
                return Ok((row.text(1)?, false));
            }
            // A day that is over stays over: its salt is gone for good.
            if newest_day > day {
                return Err(ApiError::NotFound);
            }
        }
        let salt = hex(&random_bytes::<32>()?);
        self.sql
            .exec("DELETE FROM salts WHERE day < ?", vec![(day as i64).into()])
            .or_internal("forgetting old salts")?;
        self.sql
            .exec(
                "INSERT INTO salts (day, salt) VALUES (?, ?)",
                vec![(day as i64).into(), salt.clone().into()],
            )
            .or_internal("storing a salt")?;
        Ok((salt, true))
    }
}
