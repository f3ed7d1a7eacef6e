//! Tenant and managed administrator keys: `ck_{credential_id}.{secret}`, the secret 32
//! random bytes in base64url. Only the secret's SHA-256 is stored; a presented key is
//! checked against it in constant time, and only while the credential is neither revoked
//! nor expired.

use crate::domain::access::{Principal, Scopes};
use crate::domain::crypto::{base64url_decode, base64url_encode, constant_time_eq, hex, sha256};
use crate::domain::ids::TenantId;
use crate::domain::time::rfc3339;
use uuid::Uuid;

const PREFIX: &str = "ck_";
const SECRET_BYTES: usize = 32;

/// A credential as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: Uuid,
    /// `None` for a managed administrator key.
    pub tenant_id: Option<TenantId>,
    pub secret_hash: String,
    pub scopes: Scopes,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
    pub rotated_from: Option<Uuid>,
}

impl Credential {
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.revoked_ms.is_none() && self.expires_ms.is_none_or(|at| at > now_ms)
    }

    /// Who presenting `secret` is, or `None` when the secret is wrong or the credential
    /// is no longer live.
    pub fn verify(&self, secret: &str, now_ms: u64) -> Option<Principal> {
        let matches = constant_time_eq(hash_secret(secret).as_bytes(), self.secret_hash.as_bytes());
        if !matches || !self.is_live(now_ms) {
            return None;
        }
        Some(match self.tenant_id {
            None => Principal::Admin(self.id),
            Some(tenant) => Principal::Tenant {
                credential: self.id,
                tenant,
                scopes: self.scopes,
            },
        })
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex(&sha256(secret.as_bytes()))
}

/// A presented key split into its credential id and secret, if it has the key's shape.
pub fn parse_key(key: &str) -> Option<(Uuid, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    if id.len() != 36 {
        return None;
    }
    let decoded = base64url_decode(secret)?;
    (decoded.len() == SECRET_BYTES).then_some(())?;
    Some((Uuid::try_parse(id).ok()?, secret))
}

/// A new key for credential `id` from 32 random bytes: the key to show once, and the
/// hash to store.
pub fn new_key(id: &Uuid, random: [u8; SECRET_BYTES]) -> (String, String) {
    let secret = base64url_encode(&random);
    let key = format!("{PREFIX}{}.{secret}", id.hyphenated());
    (key, hash_secret(&secret))
}

/// A credential as listed: never a secret or its hash. Written by hand: every value is
/// a UUID, a scope name, a time or base64url (nothing to escape).
fn listed(out: &mut String, c: &Credential, api_key: Option<&str>) {
    use std::fmt::Write;
    let quoted = |v: Option<String>| v.map_or_else(|| "null".into(), |v| format!("\"{v}\""));
    out.push_str(&format!(r#"{{"credential_id":"{}""#, c.id.hyphenated()));
    if let Some(tenant) = c.tenant_id {
        let _ = write!(out, r#","tenant_id":"{tenant}""#);
    }
    if let Some(key) = api_key {
        let _ = write!(out, r#","api_key":"{key}""#);
    }
    let scopes: Vec<String> = match c.tenant_id {
        None => vec!["\"admin\"".into()],
        Some(_) => c.scopes.names().map(|n| format!("\"{n}\"")).collect(),
    };
    let _ = write!(
        out,
        r#","scopes":[{}],"created_at":"{}","expires_at":{},"revoked_at":{},"rotated_from":{}}}"#,
        scopes.join(","),
        rfc3339(c.created_ms),
        quoted(c.expires_ms.map(rfc3339)),
        quoted(c.revoked_ms.map(rfc3339)),
        quoted(c.rotated_from.map(|r| r.hyphenated().to_string())),
    );
}

/// The answer to an issue or a rotation: the only time the key is shown.
pub fn issued_json(c: &Credential, api_key: &str) -> String {
    let mut out = String::new();
    listed(&mut out, c, Some(api_key));
    out
}

/// `{credentials: [...]}`.
pub fn list_json(credentials: &[Credential]) -> String {
    let mut out = String::from(r#"{"credentials":["#);
    for (i, c) in credentials.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        listed(&mut out, c, None);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

    fn credential(secret_hash: String) -> Credential {
        Credential {
            id: Uuid::from_u128(5),
            tenant_id: Some(TenantId::parse(T).unwrap()),
            secret_hash,
            scopes: Scopes::of(&[crate::domain::access::Scope::CounterRead]),
            created_ms: 0,
            expires_ms: Some(1_000),
            revoked_ms: None,
            rotated_from: None,
        }
    }

    #[test]
    fn keys_round_trip_and_verify_only_while_live() {
        let id = Uuid::from_u128(5);
        let (key, hash) = new_key(&id, [7; 32]);
        assert!(key.starts_with("ck_00000000-0000-0000-0000-000000000005."));
        assert_eq!(key.len(), 3 + 36 + 1 + 43);
        let (parsed, secret) = parse_key(&key).unwrap();
        assert_eq!(parsed, id);
        let c = credential(hash);
        assert!(matches!(
            c.verify(secret, 999),
            Some(Principal::Tenant { .. })
        ));
        assert_eq!(c.verify(secret, 1_000), None, "expired");
        let (_, other) = new_key(&id, [8; 32]);
        let wrong = other.clone();
        assert_eq!(credential(wrong).verify(secret, 1), None, "another secret");
        let mut revoked = c.clone();
        revoked.revoked_ms = Some(5);
        assert_eq!(revoked.verify(secret, 1), None);
        let mut admin = c;
        admin.tenant_id = None;
        assert_eq!(admin.verify(secret, 1), Some(Principal::Admin(id)));
    }

    #[test]
    fn malformed_keys_are_not_keys() {
        let (key, _) = new_key(&Uuid::from_u128(5), [7; 32]);
        for bad in [
            "",
            "ck_",
            "s3cret",
            &key[1..],
            &key[..key.len() - 1],
            &key.replace('.', "_"),
            &format!("{key}A"),
            "ck_00000000-0000-0000-0000-000000000005.!!!!",
        ] {
            assert_eq!(parse_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn listings_never_show_a_secret() {
        let (key, hash) = new_key(&Uuid::from_u128(5), [7; 32]);
        let c = credential(hash.clone());
        let listed = list_json(std::slice::from_ref(&c));
        assert!(!listed.contains(&hash) && !listed.contains(&key[40..]));
        assert_eq!(
            listed,
            format!(
                r#"{{"credentials":[{{"credential_id":"00000000-0000-0000-0000-000000000005","tenant_id":"{T}","scopes":["counter:read"],"created_at":"1970-01-01T00:00:00.000Z","expires_at":"1970-01-01T00:00:01.000Z","revoked_at":null,"rotated_from":null}}]}}"#
            )
        );
        let issued: serde_json::Value = serde_json::from_str(&issued_json(&c, &key)).unwrap();
        assert_eq!(issued["api_key"], key.as_str());
        assert_eq!(issued["scopes"], serde_json::json!(["counter:read"]));
        let mut admin = c;
        admin.tenant_id = None;
        let issued: serde_json::Value = serde_json::from_str(&issued_json(&admin, &key)).unwrap();
        assert_eq!(issued["scopes"], serde_json::json!(["admin"]));
        assert!(issued.get("tenant_id").is_none());
    }
}
