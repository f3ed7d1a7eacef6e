//! Identifiers: tenants, counters and credentials are UUIDv7 strings. Parsing happens once
//! at the edge; everything past it holds a typed id that cannot be malformed.

use crate::error::{ApiError, ApiResult};
use uuid::Uuid;

/// Parses a UUID in its canonical hyphenated form (any case) and answers in lower case,
/// so one id has exactly one spelling in storage and in object names.
pub fn parse_uuid(raw: &str, what: &str) -> ApiResult<Uuid> {
    if raw.len() != 36 {
        return Err(ApiError::InvalidUuid(format!("{what} must be a UUID")));
    }
    Uuid::try_parse(raw).map_err(|_| ApiError::InvalidUuid(format!("{what} must be a UUID")))
}

macro_rules! uuid_id {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn parse(raw: &str) -> ApiResult<Self> {
                parse_uuid(raw, $what).map(Self)
            }

            pub fn generate(unix_ms: u64, random: [u8; 10]) -> Self {
                Self(uuid_v7(unix_ms, random))
            }

            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(TenantId, "tenant_id");
uuid_id!(CounterId, "counter_id");
uuid_id!(CredentialId, "credential_id");

/// A UUIDv7 from an injected clock and randomness, so ids are testable without either.
pub fn uuid_v7(unix_ms: u64, random: [u8; 10]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_version_7_and_time_ordered() {
        let a = CounterId::generate(1_700_000_000_000, [0xff; 10]);
        let b = CounterId::generate(1_700_000_000_001, [0x00; 10]);
        let text = a.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "7");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"));
        assert!(a < b, "ids sort by creation time");
        assert!(a.to_string() < b.to_string(), "and so do their strings");
        assert_eq!(CounterId::parse(&text).unwrap(), a);
    }

    #[test]
    fn parsing_normalises_case_and_rejects_other_forms() {
        let upper = "0190A6B2-3C4D-7E8F-9A0B-1C2D3E4F5A6B";
        assert_eq!(
            TenantId::parse(upper).unwrap().to_string(),
            "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"
        );
        for bad in [
            "",
            "not-a-uuid",
            "0190a6b23c4d7e8f9a0b1c2d3e4f5a6b",
            "{0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b}",
            "urn:uuid:0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b",
            "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6g",
            "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6\u{e9}",
        ] {
            let err = TenantId::parse(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_UUID", "{bad:?}");
        }
    }
}
