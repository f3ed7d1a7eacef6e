//! The runtime's clock and randomness, handed to the domain as plain values.

use crate::domain::ids::uuid_v7;
use crate::error::{ApiError, ApiResult};

pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

pub fn random_bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(bytes)
}

/// A fresh UUIDv7 string, for request ids where a typed id is not needed.
pub fn new_uuid() -> ApiResult<String> {
    Ok(uuid_v7(now_ms(), random_bytes()?).hyphenated().to_string())
}
