//! Idempotency-Key rules: a key is a UUID; a retry of the same request returns the first
//! answer and changes nothing; the same key with other request data is a conflict.

use crate::domain::crypto::{hex, sha256};
use crate::error::{ApiError, ApiResult};

/// Keys are remembered at least this long (the contract promises 24 hours).
pub const RETENTION_MS: u64 = 48 * 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyKey(uuid::Uuid);

impl IdempotencyKey {
    /// `None` when the header is absent; an empty or malformed header is an error.
    pub fn from_header(raw: Option<&str>) -> ApiResult<Option<Self>> {
        let Some(raw) = raw else { return Ok(None) };
        let raw = raw.trim();
        if raw.len() != 36 {
            return Err(ApiError::InvalidIdempotencyKey);
        }
        uuid::Uuid::try_parse(raw)
            .map(|u| Some(IdempotencyKey(u)))
            .map_err(|_| ApiError::InvalidIdempotencyKey)
    }

    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What identifies "the same request": the operation and every input that shapes it.
pub fn fingerprint(parts: &[&str]) -> String {
    hex(&sha256(parts.join("\n").as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay<T> {
    /// Never seen: perform the request and remember its answer.
    Fresh,
    /// Seen with the same request: answer what was answered then.
    Replay(T),
}

/// Decides what a keyed request does, given what was stored under its key.
pub fn replay_of<T>(stored: Option<(String, T)>, fingerprint: &str) -> ApiResult<Replay<T>> {
    match stored {
        None => Ok(Replay::Fresh),
        Some((seen, answer)) if seen == fingerprint => Ok(Replay::Replay(answer)),
        Some(_) => Err(ApiError::IdempotencyKeyReused),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_uuids() {
        assert_eq!(IdempotencyKey::from_header(None).unwrap(), None);
        let k = IdempotencyKey::from_header(Some("0190A6B2-3C4D-7E8F-9A0B-1C2D3E4F5A6B")).unwrap();
        assert_eq!(
            k.unwrap().to_string(),
            "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"
        );
        for bad in [
            "",
            "abc",
            "0190a6b23c4d7e8f9a0b1c2d3e4f5a6b",
            &"a".repeat(300),
        ] {
            assert_eq!(
                IdempotencyKey::from_header(Some(bad)).unwrap_err(),
                ApiError::InvalidIdempotencyKey
            );
        }
    }

    #[test]
    fn replays_only_the_same_request() {
        let f = fingerprint(&["inc", "t", "c", "5"]);
        assert_ne!(f, fingerprint(&["inc", "t", "c", "6"]));
        assert_ne!(fingerprint(&["a", "bc"]), fingerprint(&["ab", "c"]));
        assert_eq!(replay_of::<u8>(None, &f).unwrap(), Replay::Fresh);
        assert_eq!(
            replay_of(Some((f.clone(), 9)), &f).unwrap(),
            Replay::Replay(9)
        );
        assert_eq!(
            replay_of(Some(("other".to_string(), 9)), &f).unwrap_err(),
            ApiError::IdempotencyKeyReused
        );
    }
}
