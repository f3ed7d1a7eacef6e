//! The salt keeper: the one place daily visitor salts live. Asked for a day, it answers
//! that day's salt, making it on first request, and deletes every older one — so once a
//! day is over its visitor hashes can never be recomputed. Page objects cache the
//! current day's salt, so this object is asked about once per page per day.

use crate::domain::crypto::hex;
use crate::error::{ApiError, ApiResult};
use crate::http::respond::{self, OrInternal};
use crate::platform::random_bytes;
use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, SqlStorage, State};

#[durable_object]
pub struct SaltKeeper {
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
        SaltKeeper { sql }
    }

    /// `/day/{n}` → the salt of day n, hex.
    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let url = req.inner().url();
        let day = url.rsplit('/').next().and_then(|d| d.parse::<u64>().ok());
        match day.ok_or(ApiError::NotFound).and_then(|d| self.salt_for(d)) {
            Ok(salt) => Response::ok(salt),
            Err(e) => respond::error(&e),
        }
    }
}

impl SaltKeeper {
    fn salt_for(&self, day: u64) -> ApiResult<String> {
        let newest: Vec<Row> = self
            .sql
            .exec(
                "SELECT day, salt FROM salts ORDER BY day DESC LIMIT 1",
                None,
            )
            .and_then(|c| c.to_array())
            .or_internal("reading salts")?;
        match newest.into_iter().next() {
            Some(row) if row.day == day => return Ok(row.salt),
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
        Ok(salt)
    }
}
