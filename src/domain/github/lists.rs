//! Paginated lists: following `Link`, numbering pages for conditional refreshes, and
//! merging pages into one public copy.

use crate::domain::github::answers::strip_token_fields;
use crate::error::{ApiError, ApiResult};
use serde_json::Value;

/// Lists are asked for in GitHub's largest pages.
pub const PER_PAGE: usize = 100;

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: Option<&str>) -> Option<String> {
    link?.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// Page `n` (from 1) of a list whose first page is `first` (which carries `?per_page`).
pub fn page_url(first: &str, n: usize) -> String {
    if n <= 1 {
        first.to_string()
    } else {
        format!("{first}&page={n}")
    }
}

/// The items of one page; a page that is not a JSON array is an upstream error.
pub fn page_items(page: &[u8]) -> ApiResult<Vec<Value>> {
    match serde_json::from_slice::<Value>(page) {
        Ok(Value::Array(items)) => Ok(items),
        _ => Err(ApiError::Internal(
            "upstream list page is not a JSON array".into(),
        )),
    }
}

/// The pages' items as one JSON array, keeping those `keep` accepts (and may trim).
pub fn merge_pages(pages: &[Vec<Value>], keep: impl Fn(&mut Value) -> bool) -> ApiResult<String> {
    let mut all = Vec::new();
    for page in pages {
        all.extend(
            page.iter()
                .cloned()
                .filter_map(|mut item| keep(&mut item).then_some(item)),
        );
    }
    serde_json::to_string(&all).map_err(ApiError::internal)
}

/// A repository as anyone may see it: a private or internal one is left out (a token
/// that can read it must not publish it), and the token's own permissions on it and
/// admin-only settings are removed.
pub fn public_repo(repo: &mut Value) -> bool {
    let hidden = repo.get("private").and_then(Value::as_bool) == Some(true)
        || matches!(
            repo.get("visibility").and_then(Value::as_str),
            Some("private" | "internal")
        );
    strip_token_fields(repo);
    !hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn follows_next_links() {
        let link = r#"<https://api.example/orgs/a/repos?page=2>; rel="next", <https://api.example/orgs/a/repos?page=3>; rel="last""#;
        assert_eq!(
            next_link(Some(link)).as_deref(),
            Some("https://api.example/orgs/a/repos?page=2")
        );
        let last = r#"<https://api.example/x?page=1>; rel="prev", <https://api.example/x?page=1>; rel="first""#;
        assert_eq!(next_link(Some(last)), None);
        assert_eq!(next_link(None), None);
        assert_eq!(next_link(Some("garbage")), None);
        assert_eq!(page_url("/o?per_page=100", 1), "/o?per_page=100");
        assert_eq!(page_url("/o?per_page=100", 4), "/o?per_page=100&page=4");
    }

    #[test]
    fn merges_pages_and_refuses_non_lists() {
        let pages = vec![page_items(b"[1,2]").unwrap(), page_items(b"[3]").unwrap()];
        assert_eq!(merge_pages(&pages, |_| true).unwrap(), "[1,2,3]");
        assert!(page_items(b"{\"message\":\"x\"}").is_err());
        assert!(page_items(b"not json").is_err());
    }

    #[test]
    fn private_repositories_never_reach_the_copy() {
        let page = vec![vec![
            json!({"full_name": "a/open", "private": false, "visibility": "public", "permissions": {"admin": true}}),
            json!({"full_name": "a/secret", "private": true}),
            json!({"full_name": "a/inner", "private": false, "visibility": "internal"}),
        ]];
        let merged: Value =
            serde_json::from_str(&merge_pages(&page, public_repo).unwrap()).unwrap();
        assert_eq!(
            merged,
            json!([{"full_name": "a/open", "private": false, "visibility": "public"}])
        );
    }
}
