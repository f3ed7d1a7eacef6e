//! Page ids: any 1..=512 bytes of UTF-8 without control characters, percent-encoded in
//! the path (so `/posts/hello` travels as `%2Fposts%2Fhello`).

use crate::error::{ApiError, ApiResult};
use serde::Serialize;

pub const MAX_PAGE_ID_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageId(String);

impl PageId {
    /// From a path segment as it appears in the URL.
    pub fn from_segment(encoded: &str) -> ApiResult<PageId> {
        let bytes = percent_decode(encoded)
            .ok_or_else(|| invalid("page_id has a malformed percent-encoding"))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid("page_id must be UTF-8"))?;
        PageId::new(text)
    }

    pub fn new(text: String) -> ApiResult<PageId> {
        if text.is_empty() || text.len() > MAX_PAGE_ID_BYTES {
            return Err(invalid("page_id must be 1 to 512 bytes"));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid("page_id must not contain control characters"));
        }
        Ok(PageId(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the page's object: unique per tenant and page, and unambiguous
    /// because the tenant id has a fixed length.
    pub fn object_name(&self, tenant: &str) -> String {
        format!("page:{tenant}:{}", self.0)
    }
}

/// A page as stored. `seq` numbers every visit (counted or not); D1 has seen visits up
/// to `flushed_seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageState {
    pub tenant_id: String,
    pub page_id: String,
    pub count: u64,
    pub seq: u64,
    pub flushed_seq: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

fn invalid(why: &str) -> ApiError {
    ApiError::InvalidParameter(why.into())
}

/// Strict percent-decoding: `%` must be followed by two hex digits.
pub fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-encodes everything but unreserved characters, for URLs the service writes.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_paths_and_unicode() {
        assert_eq!(
            PageId::from_segment("%2Fposts%2Fhello").unwrap().as_str(),
            "/posts/hello"
        );
        assert_eq!(PageId::from_segment("caf%C3%A9").unwrap().as_str(), "café");
        assert_eq!(
            PageId::from_segment("plain-id").unwrap().as_str(),
            "plain-id"
        );
        let long = "a".repeat(512);
        assert!(PageId::from_segment(&long).is_ok());
        let text = "/blog/😀 ünïcode?&#";
        assert_eq!(
            PageId::from_segment(&percent_encode(text))
                .unwrap()
                .as_str(),
            text
        );
    }

    #[test]
    fn refuses_what_the_contract_excludes() {
        for bad in [
            "",
            "%",
            "%2",
            "%zz",
            "%C3",
            "a%00b",
            "%0A",
            "%7F",
            "tab%09",
            &"a".repeat(513),
            &"%C3%A9".repeat(257),
        ] {
            assert_eq!(
                PageId::from_segment(bad).unwrap_err().code(),
                "INVALID_PARAMETER",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn object_names_separate_tenants() {
        let p = PageId::new("x".into()).unwrap();
        assert_ne!(p.object_name("t1"), p.object_name("t2"));
    }
}
