//! Opaque pagination cursors. A cursor names the last item of a page and carries a MAC
//! over it and its tenant, so a client can neither forge one nor reuse one elsewhere.

use crate::domain::crypto::{base64url_decode, base64url_encode, constant_time_eq, hmac_sha256};
use crate::error::{ApiError, ApiResult};
use uuid::Uuid;

const VERSION: u8 = 1;
const MAC_BYTES: usize = 12;

pub struct CursorKey(Vec<u8>);

impl CursorKey {
    /// Derived from a service secret, so cursors need no secret of their own.
    pub fn derive(secret: &str) -> Self {
        CursorKey(hmac_sha256(secret.as_bytes(), b"edgecount cursor v1").to_vec())
    }

    fn mac(&self, scope: &Uuid, after: &Uuid) -> [u8; MAC_BYTES] {
        let mut message = [0u8; 33];
        message[0] = VERSION;
        message[1..17].copy_from_slice(scope.as_bytes());
        message[17..].copy_from_slice(after.as_bytes());
        let full = hmac_sha256(&self.0, &message);
        let mut mac = [0u8; MAC_BYTES];
        mac.copy_from_slice(&full[..MAC_BYTES]);
        mac
    }

    pub fn encode(&self, scope: &Uuid, after: &Uuid) -> String {
        let mut bytes = Vec::with_capacity(1 + 16 + MAC_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(after.as_bytes());
        bytes.extend_from_slice(&self.mac(scope, after));
        base64url_encode(&bytes)
    }

    /// The item a page starts after, if this cursor was issued for this scope.
    pub fn decode(&self, scope: &Uuid, cursor: &str) -> ApiResult<Uuid> {
        let bytes = (cursor.len() <= 64)
            .then(|| base64url_decode(cursor))
            .flatten()
            .filter(|b| b.len() == 1 + 16 + MAC_BYTES && b[0] == VERSION)
            .ok_or(ApiError::InvalidCursor)?;
        let after = Uuid::from_slice(&bytes[1..17]).map_err(|_| ApiError::InvalidCursor)?;
        if !constant_time_eq(&bytes[17..], &self.mac(scope, &after)) {
            return Err(ApiError::InvalidCursor);
        }
        Ok(after)
    }
}

/// `?limit=`: absent gives the default; otherwise an integer in 1..=max.
pub fn page_limit(raw: Option<&str>, default: u32, max: u32) -> ApiResult<u32> {
    let Some(raw) = raw else { return Ok(default) };
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n) && raw.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            ApiError::InvalidParameter(format!("limit must be an integer from 1 to {max}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn round_trips_within_its_scope_only() {
        let key = CursorKey::derive("secret");
        let cursor = key.encode(&id(1), &id(2));
        assert_eq!(key.decode(&id(1), &cursor).unwrap(), id(2));
        assert_eq!(
            key.decode(&id(3), &cursor).unwrap_err(),
            ApiError::InvalidCursor
        );
        assert_eq!(
            CursorKey::derive("other")
                .decode(&id(1), &cursor)
                .unwrap_err(),
            ApiError::InvalidCursor
        );
    }

    #[test]
    fn forged_and_garbled_cursors_are_rejected() {
        let key = CursorKey::derive("secret");
        let good = key.encode(&id(1), &id(2));
        let mut tampered = base64url_decode(&good).unwrap();
        tampered[5] ^= 1;
        for bad in [
            String::new(),
            "abc".into(),
            "%%%".into(),
            base64url_encode(&tampered),
            base64url_encode(&[1; 29]),
            good[..good.len() - 1].to_string(),
            "A".repeat(1000),
        ] {
            assert_eq!(
                key.decode(&id(1), &bad).unwrap_err(),
                ApiError::InvalidCursor,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits() {
        assert_eq!(page_limit(None, 20, 100).unwrap(), 20);
        assert_eq!(page_limit(Some("100"), 20, 100).unwrap(), 100);
        assert_eq!(page_limit(Some("1"), 20, 100).unwrap(), 1);
        for bad in ["0", "101", "-1", "+5", "abc", "", "1.0", "99999999999"] {
            assert_eq!(
                page_limit(Some(bad), 20, 100).unwrap_err().code(),
                "INVALID_PARAMETER"
            );
        }
    }
}
