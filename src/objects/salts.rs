//! The salt keeper: the one place daily visitor salts live. Asked for a day, it answers
//! that day's salt, making it on first request, and deletes every older one; an alarm
//! at the next UTC midnight deletes it even if nobody asks again — so once a day is over
//! its visitor hashes can never be recomputed. Page objects cache the
//! current day's salt, so this object is asked about once per page per day.

use crate::domain::crypto::hex;
use crate::domain::visit::{day_of, DAY_MS};
use crate::error::{ApiError, ApiResult};
use crate::http::respond::{self, OrInternal};
use crate::platform::{now_ms, random_bytes};
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

#[durable_object]
pub struct SaltKeeper {
    state: State,
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct Row {
    day: u64,
    salt: String,
}

impl DurableObject for SaltKeeper {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(
            "CREATE TABLE IF NOT EXISTS salts (day INTEGER PRIMARY KEY, salt TEXT NOT NULL)",
            None,
        ) {
            crate::http::log::failure("salt keeper schema", &e);
        }
        SaltKeeper { state, sql }
    }

    /// `/day/{n}` → the salt of day n, hex.
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let url = req.inner().url();
        let day = url.rsplit('/').next().and_then(|d| d.parse::<u64>().ok());
        let Some(day) = day else {
            return respond::error(&ApiError::NotFound);
        };
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
        let newest: Vec<Row> = self
            .sql
            .exec(
                "SELECT day, salt FROM salts ORDER BY day DESC LIMIT 1",
                None,
            )
            .and_then(|c| c.to_array())
            .or_internal("reading salts")?;
        match newest.into_iter().next() {
            Some(row) if row.day == day => return Ok((row.salt, false)),
            // A day that is over stays over: its salt is gone for good.
            Some(row) if row.day > day => return Err(ApiError::NotFound),
            _ => {}
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
