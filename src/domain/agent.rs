//! What kind of client a user agent is, coarsely: a browser, a bot (crawlers, scripts,
//! tools, AI agents), an image proxy that fetches for every viewer (GitHub's camo), or
//! something else. Bots come from a maintained list — isbot's patterns
//! (`bot_patterns`, generated), which the edge matches with the runtime's own regular
//! expressions — plus the AI agents below; the class is all a visit row keeps.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentClass {
    Browser,
    Bot,
    /// An image proxy: one address and one user agent for all its viewers.
    Proxy,
    Other,
}

/// GitHub's image proxy, which fetches a README's images for every reader, sends
/// `github-camo (<hex>)` from GitHub's own network. The user agent alone is anyone's to
/// send; the network is not.
const GITHUB_CAMO: &str = "github-camo";
/// GitHub's autonomous system (Cloudflare's `cf.asn` of the request).
pub const GITHUB_ASN: u32 = 36_459;

/// Agents that fetch for AI products, some of which never say "bot" (lower case; a
/// user agent containing any of them is a bot). isbot already knows most; these are
/// kept here so that a change upstream cannot start counting them.
pub const AI_AGENTS: [&str; 23] = [
    "chatgpt-user",
    "gptbot",
    "oai-searchbot",
    "bytespider",
    "anthropic-ai",
    "claudebot",
    "claude-web",
    "claude-user",
    "claude-searchbot",
    "perplexitybot",
    "perplexity-user",
    "ccbot",
    "google-extended",
    "googleother",
    "applebot-extended",
    "cohere-ai",
    "meta-externalagent",
    "meta-externalfetcher",
    "amazonbot",
    "duckassistbot",
    "mistralai-user",
    "diffbot",
    "youbot",
];

impl AgentClass {
    /// Classifies a user agent sent from network `asn`; `in_bot_list` answers whether
    /// isbot's patterns match.
    pub fn of(
        user_agent: Option<&str>,
        asn: Option<u32>,
        in_bot_list: impl FnOnce(&str) -> bool,
    ) -> AgentClass {
        let Some(ua) = user_agent.map(str::trim).filter(|ua| !ua.is_empty()) else {
            return AgentClass::Other;
        };
        let lower = ua.to_ascii_lowercase();
        if lower.starts_with(GITHUB_CAMO) && asn == Some(GITHUB_ASN) {
            AgentClass::Proxy
        } else if AI_AGENTS.iter().any(|a| lower.contains(a)) || in_bot_list(ua) {
            AgentClass::Bot
        } else if lower.starts_with("mozilla/") {
            AgentClass::Browser
        } else {
            AgentClass::Other
        }
    }

    pub fn from_name(name: &str) -> Option<AgentClass> {
        [
            AgentClass::Browser,
            AgentClass::Bot,
            AgentClass::Proxy,
            AgentClass::Other,
        ]
        .into_iter()
        .find(|a| a.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AgentClass::Browser => "browser",
            AgentClass::Bot => "bot",
            AgentClass::Proxy => "proxy",
            AgentClass::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

    #[test]
    fn the_bot_list_decides_for_ordinary_agents() {
        assert_eq!(
            AgentClass::of(Some(CHROME), None, |_| false),
            AgentClass::Browser
        );
        assert_eq!(
            AgentClass::of(Some(CHROME), None, |_| true),
            AgentClass::Bot
        );
        assert_eq!(
            AgentClass::of(Some("curl/8.4.0"), None, |_| true),
            AgentClass::Bot
        );
        assert_eq!(
            AgentClass::of(Some("SomeApp/1.0"), None, |_| false),
            AgentClass::Other
        );
    }

    #[test]
    fn no_user_agent_is_other_and_asks_nothing() {
        for none in [None, Some(""), Some("   ")] {
            assert_eq!(
                AgentClass::of(none, None, |_| panic!("not asked")),
                AgentClass::Other
            );
        }
    }

    #[test]
    fn ai_agents_are_bots_whatever_the_list_says() {
        for ua in [
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; +https://openai.com/bot",
            "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
            "anthropic-ai",
            "Claude-User/1.0",
            "Perplexity-User/1.0",
            "Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)",
        ] {
            assert_eq!(AgentClass::of(Some(ua), None, |_| false), AgentClass::Bot, "{ua}");
        }
    }

    #[test]
    fn githubs_image_proxy_is_its_own_class_only_from_githubs_network() {
        let camo = Some("github-camo (876de43e)");
        assert_eq!(
            AgentClass::of(camo, Some(GITHUB_ASN), |_| true),
            AgentClass::Proxy
        );
        // Anyone can send the user agent: from elsewhere it is what isbot says it is.
        assert_eq!(
            AgentClass::of(camo, Some(13_335), |_| true),
            AgentClass::Bot
        );
        assert_eq!(AgentClass::of(camo, None, |_| true), AgentClass::Bot);
        assert_eq!(AgentClass::Proxy.as_str(), "proxy");
    }
}
