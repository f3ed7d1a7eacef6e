//! Which browser origins may call the public routes.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    Exactly(Vec<String>),
}

impl AllowedOrigins {
    /// `*`, or exact origins separated by commas (`https://a.example,https://b.example`).
    /// Empty allows none.
    pub fn parse(raw: &str) -> Self {
        let origins: Vec<String> = raw
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.iter().any(|o| o == "*") {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::Exactly(origins)
        }
    }

    /// A tenant's validated list.
    pub fn from_list(origins: &[String]) -> Self {
        if origins.iter().any(|o| o == "*") {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::Exactly(origins.to_vec())
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::Exactly(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

/// One origin as a tenant may list it: `scheme://host[:port]`, http or https, or `*`.
pub fn parse_origin(raw: &str) -> Option<String> {
    let origin = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    if origin == "*" {
        return Some(origin);
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))?;
    let ok = !rest.is_empty()
        && rest.len() <= 253
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then_some(origin)
}

/// The origin of the page a `Referer` names (`https://blog.example/post?x` →
/// `https://blog.example`); nothing for anything that is not an http(s) URL.
pub fn referer_origin(referer: &str) -> Option<String> {
    let referer = referer.trim();
    let scheme_end = referer.find("://")? + 3;
    let authority_end = referer[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(referer.len(), |i| scheme_end + i);
    parse_origin(&referer[..authority_end]).filter(|o| o != "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referers_reduce_to_their_origin() {
        assert_eq!(
            referer_origin("https://Blog.Example/posts/1?x=2#y").as_deref(),
            Some("https://blog.example")
        );
        assert_eq!(
            referer_origin("http://localhost:8080").as_deref(),
            Some("http://localhost:8080")
        );
        for bad in [
            "",
            "blog.example/x",
            "android-app://x/y",
            "https://",
            "https://a b/",
        ] {
            assert_eq!(referer_origin(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn exact_lists_and_wildcards() {
        let list = AllowedOrigins::parse(" https://blog.example , http://localhost:8080/ ");
        assert!(list.allows("https://blog.example"));
        assert!(list.allows("HTTPS://BLOG.EXAMPLE"));
        assert!(list.allows("http://localhost:8080"));
        assert!(!list.allows("https://blog.example.evil"));
        assert!(!list.allows("http://blog.example"));
        assert!(!list.allows("null"));
        assert!(AllowedOrigins::parse("https://a.example,*").allows("https://x.example"));
        assert!(!AllowedOrigins::parse("").allows("https://a.example"));
    }

    #[test]
    fn tenant_origins() {
        assert_eq!(
            parse_origin("https://Blog.Example/").as_deref(),
            Some("https://blog.example")
        );
        assert_eq!(
            parse_origin("http://localhost:8080").as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(parse_origin("*").as_deref(), Some("*"));
        for bad in [
            "",
            "blog.example",
            "ftp://x",
            "https://x/path",
            "https://",
            "https://a b",
        ] {
            assert_eq!(parse_origin(bad), None, "{bad:?}");
        }
    }
}
