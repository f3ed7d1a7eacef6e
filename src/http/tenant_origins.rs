//! Which origins a tenant lets call its public routes, cached per isolate for a minute:
//! only browser requests (an `Origin`) and counting badges (a `Referer`) ask, and at most
//! once a minute per tenant. A lookup that misses the cache costs a D1 read, so it passes
//! the client's read brake first: made-up tenant ids cannot buy unlimited D1 reads. A
//! change through this isolate's PATCH applies at once; other isolates see it within the
//! minute.

use crate::domain::client::ClientKey;
use crate::domain::cors::AllowedOrigins;
use crate::domain::ids::TenantId;
use crate::error::ApiResult;
use crate::http::{brake, log};
use crate::platform::now_ms;
use crate::store;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::Env;

const TTL_MS: u64 = 60_000;
const MAX_ENTRIES: usize = 10_000;

thread_local! {
    static CACHE: RefCell<HashMap<TenantId, (u64, Option<AllowedOrigins>)>> = RefCell::new(HashMap::new());
}

/// The tenant's own list, or `None` when it defers to `CORS_ALLOWED_ORIGINS` (or is
/// unknown, or D1 could not say). Refused only by the read brake.
pub async fn of(
    env: &Env,
    tenant: &TenantId,
    client: &ClientKey,
) -> ApiResult<Option<AllowedOrigins>> {
    let now = now_ms();
    let cached = CACHE.with(|c| {
        c.borrow()
            .get(tenant)
            .filter(|(at, _)| now.saturating_sub(*at) < TTL_MS)
            .cloned()
    });
    if let Some((_, origins)) = cached {
        return Ok(origins);
    }
    brake::check_read(env, client).await?;
    let found = match store::database(env) {
        Ok(db) => store::tenants::find(&db, tenant).await,
        Err(e) => Err(e),
    };
    let origins = match found {
        Ok(tenant) => tenant
            .and_then(|t| t.allowed_origins)
            .map(|list| AllowedOrigins::from_list(&list)),
        Err(e) => {
            log::failure("tenant origins", &e);
            return Ok(None);
        }
    };
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(*tenant, (now, origins.clone()));
    });
    Ok(origins)
}

pub fn forget(tenant: &TenantId) {
    CACHE.with(|c| c.borrow_mut().remove(tenant));
}
