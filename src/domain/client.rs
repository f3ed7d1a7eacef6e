//! Who a counting request comes from, for budgets: the `CF-Connecting-IP` address, with an
//! IPv6 address reduced to its /64 — one subscriber's network, which hands its devices
//! (and anyone who wants many budgets) 2^64 addresses. Image proxies that fetch for every
//! viewer from one address share one budget per counted object instead.

use std::net::{IpAddr, Ipv6Addr};

/// The budget key of a client. Never stored: budgets live in object memory only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey(String);

/// The one key every image-proxy request of a counted object shares.
pub const PROXY: &str = "proxy";

impl ClientKey {
    /// From the `CF-Connecting-IP` header. Locally (no Cloudflare edge) it may be absent:
    /// then every caller is the one client `unknown`.
    pub fn from_header(header: Option<&str>) -> ClientKey {
        let Some(raw) = header.map(str::trim) else {
            return ClientKey("unknown".into());
        };
        let key = match raw.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => network_64(&v6),
            },
            Err(_) => "malformed".into(),
        };
        ClientKey(key)
    }

    /// The shared key of image proxies.
    pub fn proxy() -> ClientKey {
        ClientKey(PROXY.into())
    }

    /// A key as it travelled to an object; anything unexpected becomes `malformed`.
    pub fn from_wire(raw: &str) -> ClientKey {
        let ok = !raw.is_empty()
            && raw.len() <= 48
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'/'));
        ClientKey(if ok { raw } else { "malformed" }.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_proxy(&self) -> bool {
        self.0 == PROXY
    }
}

fn network_64(v6: &Ipv6Addr) -> String {
    let s = v6.segments();
    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        ClientKey::from_header(Some(raw)).as_str().to_string()
    }

    #[test]
    fn ipv4_is_the_address() {
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key(" 203.0.113.7 "), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
    }

    #[test]
    fn ipv6_is_its_64_network() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_eq!(
            key("2001:0DB8:0001:0002::"),
            "2001:db8:1:2::/64",
            "one spelling per network"
        );
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }

    #[test]
    fn absent_and_malformed_headers() {
        assert_eq!(ClientKey::from_header(None).as_str(), "unknown");
        for bad in ["", "not an ip", "1.2.3.4.5", "203.0.113.7, 10.0.0.1", "::g"] {
            assert_eq!(key(bad), "malformed", "{bad:?}");
        }
    }

    #[test]
    fn keys_survive_the_wire_and_nothing_else_does() {
        for k in ["203.0.113.7", "2001:db8:1:2::/64", "unknown", PROXY] {
            assert_eq!(ClientKey::from_wire(k).as_str(), k);
        }
        assert_eq!(ClientKey::from_wire("a&b=c").as_str(), "malformed");
        assert_eq!(ClientKey::from_wire("").as_str(), "malformed");
        assert!(ClientKey::proxy().is_proxy());
    }
}
