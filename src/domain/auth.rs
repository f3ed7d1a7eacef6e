//! Who is calling: the administrator key arrives as `X-API-Key` or a bearer token and is
//! compared in constant time against the configured secret.

use crate::domain::crypto::{constant_time_eq, sha256};

/// The key a request presents, from `X-API-Key` or `Authorization: Bearer`.
pub fn presented_key<'a>(
    x_api_key: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|h| {
        let (scheme, token) = h.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    x_api_key
        .map(str::trim)
        .or(bearer)
        .filter(|k| !k.is_empty())
}

/// True when `presented` is the admin key. Digests are compared so that neither the
/// length nor the content of the secret leaks through timing; no key configured means
/// no administrator.
pub fn is_admin(presented: Option<&str>, admin_key: Option<&str>) -> bool {
    match (presented, admin_key) {
        (Some(p), Some(a)) if !a.is_empty() => {
            constant_time_eq(&sha256(p.as_bytes()), &sha256(a.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_either_header() {
        assert_eq!(presented_key(Some("k1"), None), Some("k1"));
        assert_eq!(presented_key(None, Some("Bearer k2")), Some("k2"));
        assert_eq!(presented_key(None, Some("bearer   k2 ")), Some("k2"));
        assert_eq!(presented_key(Some("k1"), Some("Bearer k2")), Some("k1"));
        assert_eq!(presented_key(None, Some("Basic abc")), None);
        assert_eq!(presented_key(Some(""), None), None);
        assert_eq!(presented_key(None, Some("Bearer")), None);
    }

    #[test]
    fn only_the_configured_key_is_admin() {
        assert!(is_admin(Some("s3cret"), Some("s3cret")));
        assert!(!is_admin(Some("s3cret"), Some("s3cre")));
        assert!(!is_admin(Some("s3cre"), Some("s3cret")));
        assert!(!is_admin(None, Some("s3cret")));
        assert!(!is_admin(Some(""), Some("")));
        assert!(!is_admin(Some("x"), None));
    }
}
