//! What a visit row may keep: the referrer's host, a two-letter country, a coarse
//! user-agent class (`agent`) — and for unique counting, a keyed hash of the visitor that is
//! useless once the day's salt is gone. Never the IP or the user agent itself.

use crate::domain::crypto::hmac_sha256;
use serde::Serialize;

pub const DAY_MS: u64 = 86_400_000;

/// One visit, as the log keeps it: no IP, no user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitRow {
    pub seq: u64,
    pub ts: u64,
    pub referrer_host: Option<String>,
    pub country: Option<String>,
    pub agent: String,
    pub counted: u8,
    pub is_unique: u8,
    /// A first visit's site-wide visitor hash (`domain::stats::site_hash`): it goes to
    /// the tenant's set of the day, never into the visit log.
    pub site: Option<i64>,
}

/// Rows as one JSON array of arrays, `[seq, ts, referrer_host, country, agent, counted,
/// is_unique, site]` each: how a batch of rows crosses into SQLite (object storage and D1)
/// in one bound value, unpacked there with `json_each`.
pub fn rows_json(rows: &[VisitRow]) -> String {
    let tuples: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.seq,
                r.ts,
                r.referrer_host.as_deref(),
                r.country.as_deref(),
                r.agent.as_str(),
                r.counted,
                r.is_unique,
                r.site,
            )
        })
        .collect();
    serde_json::to_string(&tuples).unwrap_or_else(|_| "[]".into())
}

/// The host of a `Referer` header, lower-cased; nothing for anything that is not an
/// http(s) URL with a plausible host.
pub fn referrer_host(referer: Option<&str>) -> Option<String> {
    let rest = referer?.trim();
    let rest = rest
        .strip_prefix("https://")
        .or_else(|| rest.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().map(|h| format!("{h}]"))?
    } else {
        host_port.split(':').next()?.to_string()
    };
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    ok.then(|| host.to_ascii_lowercase())
}

/// ISO 3166 alpha-2 from the request's `cf.country`, or nothing.
pub fn country(raw: Option<&str>) -> Option<String> {
    raw.filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
}

/// The UTC day a moment falls on, counted from 1970-01-01.
pub fn day_of(unix_ms: u64) -> u64 {
    unix_ms / DAY_MS
}

/// The visitor's identity for one day: HMAC(daily salt, IP, user agent), truncated.
/// Without the salt, which lives only for its day, it cannot be recomputed. The Worker
/// computes it, so the address and user agent never leave the Worker.
pub fn visitor_hash(salt: &[u8], ip: &str, user_agent: &str) -> [u8; 16] {
    let mut message = Vec::with_capacity(ip.len() + user_agent.len() + 1);
    message.extend_from_slice(ip.as_bytes());
    message.push(0);
    message.extend_from_slice(user_agent.as_bytes());
    let mac = hmac_sha256(salt, &message);
    let mut out = [0u8; 16];
    out.copy_from_slice(&mac[..16]);
    out
}

/// A client's budget key for one day: HMAC(daily salt, "client", key), as hex. What
/// travels to an object in place of the address, so no address appears in a request to
/// an object (nor in the platform's logs of it), and nothing links it across days.
pub fn client_hash(salt: &[u8], client_key: &str) -> String {
    let mut message = Vec::with_capacity(client_key.len() + 7);
    message.extend_from_slice(b"client\0");
    message.extend_from_slice(client_key.as_bytes());
    crate::domain::crypto::hex(&hmac_sha256(salt, &message)[..12])
}

/// A visitor hash as it travels (hex), back to bytes.
pub fn parse_visitor_hash(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_cross_as_one_json_array() {
        let row = |seq, referrer: Option<&str>| VisitRow {
            seq,
            ts: 1_700_000_000_000,
            referrer_host: referrer.map(str::to_string),
            country: None,
            agent: "browser".into(),
            counted: 1,
            is_unique: 0,
            site: None,
        };
        assert_eq!(
            rows_json(&[row(7, Some("news.example")), row(8, None)]),
            r#"[[7,1700000000000,"news.example",null,"browser",1,0,null],[8,1700000000000,null,null,"browser",1,0,null]]"#
        );
        assert_eq!(rows_json(&[]), "[]");
    }

    #[test]
    fn keeps_only_the_referrer_host() {
        assert_eq!(
            referrer_host(Some("https://News.Example.com/a/b?q=1")).as_deref(),
            Some("news.example.com")
        );
        assert_eq!(
            referrer_host(Some("http://user:pw@host.example:8080/x")).as_deref(),
            Some("host.example")
        );
        assert_eq!(
            referrer_host(Some("https://[2001:db8::1]:443/")).as_deref(),
            Some("[2001:db8::1]")
        );
        for bad in [
            "",
            "android-app://x",
            "javascript:alert(1)",
            "https://",
            "https://ex ample.com/",
            "https://<script>/",
        ] {
            assert_eq!(referrer_host(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(referrer_host(None), None);
    }

    #[test]
    fn countries_and_days() {
        assert_eq!(country(Some("de")).as_deref(), Some("DE"));
        assert_eq!(country(Some("XXX")), None);
        assert_eq!(country(Some("T1")), None);
        assert_eq!(day_of(DAY_MS - 1), 0);
        assert_eq!(day_of(DAY_MS), 1);
    }

    #[test]
    fn client_hashes_are_per_day_and_not_the_address() {
        let a = client_hash(b"day-1", "203.0.113.1");
        assert_eq!(a, client_hash(b"day-1", "203.0.113.1"));
        assert_ne!(a, client_hash(b"day-2", "203.0.113.1"));
        assert_ne!(a, client_hash(b"day-1", "203.0.113.2"));
        assert_eq!(a.len(), 24);
        assert!(!a.contains("203"));
    }

    #[test]
    fn visitor_hashes_travel_as_hex() {
        let h = visitor_hash(b"s", "203.0.113.1", "ua");
        assert_eq!(parse_visitor_hash(&crate::domain::crypto::hex(&h)), Some(h));
        assert_eq!(parse_visitor_hash("zz"), None);
        assert_eq!(parse_visitor_hash(&"g".repeat(32)), None);
    }

    #[test]
    fn visitor_hashes_depend_on_salt_ip_and_agent() {
        let a = visitor_hash(b"salt-1", "203.0.113.1", "ua");
        assert_eq!(a, visitor_hash(b"salt-1", "203.0.113.1", "ua"));
        assert_ne!(a, visitor_hash(b"salt-2", "203.0.113.1", "ua"));
        assert_ne!(a, visitor_hash(b"salt-1", "203.0.113.2", "ua"));
        assert_ne!(a, visitor_hash(b"salt-1", "203.0.113.1", "ub"));
        // The separator keeps (ip, ua) pairs from colliding by concatenation.
        assert_ne!(
            visitor_hash(b"s", "1.2.3.4", "5"),
            visitor_hash(b"s", "1.2.3.45", "")
        );
    }
}
