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

    pub fn allows(&self, origin: &str) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::Exactly(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
