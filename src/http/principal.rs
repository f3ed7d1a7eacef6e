//! Who presents a key: the administrator secret (compared in constant time), or a
//! credential from D1, verified in the Worker. Credentials are cached per isolate for
//! `CACHE_MS`, so the hot path reads D1 once a minute per key at most; a revocation is
//! dropped from the revoking isolate's cache at once and reaches every other isolate
//! within `CACHE_MS`. A made-up key costs at most one D1 read: each refusal charges the
//! client's refusal brake, and a client the brake stopped gets no D1 read at all. Unknown
//! ids are cached only while the cache is less than half full, so a flood of them cannot
//! push real keys out.

use crate::config::Config;
use crate::domain::access::Principal;
use crate::domain::auth::is_admin;
use crate::domain::client::ClientKey;
use crate::domain::credentials::{parse_key, Credential};
use crate::error::{ApiError, ApiResult};
use crate::http::brake;
use crate::platform::now_ms;
use crate::store;
use std::cell::RefCell;
use std::collections::HashMap;
use uuid::Uuid;
use worker::Env;

/// How long a credential read from D1 is trusted: the contract's revocation bound.
pub const CACHE_MS: u64 = 60_000;

/// Credentials one isolate keeps at most; past it the cache starts over.
const CACHE_MAX: usize = 10_000;

thread_local! {
    static CACHE: RefCell<HashMap<Uuid, (Option<Credential>, u64)>> = RefCell::new(HashMap::new());
}

/// The principal a presented key (if any) stands for; a key that does not verify is 401.
pub async fn resolve(
    env: &Env,
    config: &Config,
    presented: Option<&str>,
    client: &ClientKey,
) -> ApiResult<Principal> {
    let Some(key) = presented else {
        return Ok(Principal::Anonymous);
    };
    if is_admin(Some(key), config.admin_api_key.as_deref()) {
        return Ok(Principal::AdminSecret);
    }
    let (id, secret) = parse_key(key).ok_or(ApiError::Unauthorized)?;
    let now = now_ms();
    let credential = match cached(&id, now) {
        Some(found) => found,
        None => {
            if brake::stopped(client, now) {
                return Err(brake::stop());
            }
            let found = store::credentials::find(&store::database(env)?, &id).await?;
            remember(id, found.clone(), now);
            found
        }
    };
    credential
        .and_then(|c| c.verify(secret, now))
        .ok_or(ApiError::Unauthorized)
}

fn cached(id: &Uuid, now: u64) -> Option<Option<Credential>> {
    CACHE.with(|c| {
        c.borrow()
            .get(id)
            .filter(|(_, at)| now.saturating_sub(*at) < CACHE_MS)
            .map(|(found, _)| found.clone())
    })
}

fn remember(id: Uuid, found: Option<Credential>, now: u64) {
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if found.is_none() && cache.len() >= CACHE_MAX / 2 {
            return;
        }
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(id, (found, now));
    });
}

/// Drops a credential from this isolate's cache (it was just revoked or created).
pub fn forget(id: &Uuid) {
    CACHE.with(|c| c.borrow_mut().remove(id));
}
