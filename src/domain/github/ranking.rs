//! The top-N views: which fields rank repositories, and how they rank.

use crate::error::{ApiError, ApiResult};
use serde_json::Value;
use std::cmp::Ordering;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewField {
    Forks,
    LastUpdated,
    OpenIssues,
    Stars,
}

impl ViewField {
    pub const ALL: [ViewField; 4] = [
        ViewField::Forks,
        ViewField::LastUpdated,
        ViewField::OpenIssues,
        ViewField::Stars,
    ];

    pub fn parse(raw: &str) -> ApiResult<ViewField> {
        match raw {
            "forks" => Ok(ViewField::Forks),
            "last_updated" => Ok(ViewField::LastUpdated),
            "open_issues" => Ok(ViewField::OpenIssues),
            "stars" => Ok(ViewField::Stars),
            _ => Err(ApiError::InvalidParameter(
                "field must be one of forks, last_updated, open_issues, stars".into(),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ViewField::Forks => "forks",
            ViewField::LastUpdated => "last_updated",
            ViewField::OpenIssues => "open_issues",
            ViewField::Stars => "stars",
        }
    }

    fn source(self) -> &'static str {
        match self {
            ViewField::Forks => "forks_count",
            ViewField::LastUpdated => "updated_at",
            ViewField::OpenIssues => "open_issues_count",
            ViewField::Stars => "stargazers_count",
        }
    }
}

/// `N` of `/view/top/{N}/...`: an integer of at least 1; more than there are gives all.
pub fn parse_top_n(raw: &str) -> ApiResult<usize> {
    let invalid = || ApiError::InvalidParameter("N must be an integer of at least 1".into());
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match raw.trim_start_matches('0') {
        "" => Err(invalid()),
        digits => Ok(digits.parse().unwrap_or(usize::MAX)),
    }
}

/// Every repository ranked by `field`, highest first, ties by full name ascending:
/// `[["Org/repo", value], ...]`. Entries without a full name or a value of the right
/// type are left out rather than guessed.
pub fn rank(repos: &str, field: ViewField) -> ApiResult<Vec<(String, Value)>> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(repos) else {
        return Err(ApiError::Internal(
            "cached repository list is not a JSON array".into(),
        ));
    };
    let mut ranked: Vec<(String, Value)> = items
        .iter()
        .filter_map(|repo| {
            let name = repo.get("full_name")?.as_str()?.to_string();
            let value = repo.get(field.source())?;
            let valid = match field {
                ViewField::LastUpdated => value.as_str().is_some(),
                _ => value.as_u64().is_some(),
            };
            valid.then(|| (name, value.clone()))
        })
        .collect();
    ranked.sort_by(|(an, av), (bn, bv)| {
        let by_value = match field {
            // RFC 3339 UTC timestamps order as strings.
            ViewField::LastUpdated => bv.as_str().cmp(&av.as_str()),
            _ => bv.as_u64().cmp(&av.as_u64()),
        };
        match by_value {
            Ordering::Equal => an.cmp(bn),
            other => other,
        }
    });
    Ok(ranked)
}

/// How an upstream answer went.
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ranks_with_ties_by_name() {
        let repos = json!([
            {"full_name": "acme/b", "stargazers_count": 5, "forks_count": 1, "open_issues_count": 0, "updated_at": "2024-01-02T00:00:00Z"},
            {"full_name": "acme/a", "stargazers_count": 5, "forks_count": 9, "open_issues_count": 3, "updated_at": "2024-03-01T00:00:00Z"},
            {"full_name": "acme/c", "stargazers_count": 7, "forks_count": 1, "open_issues_count": 3, "updated_at": "2023-12-31T23:59:59Z"},
            {"full_name": "acme/broken", "stargazers_count": "many"},
            {"stargazers_count": 100}
        ])
        .to_string();
        let names = |f| {
            rank(&repos, f)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(ViewField::Stars), ["acme/c", "acme/a", "acme/b"]);
        assert_eq!(names(ViewField::Forks), ["acme/a", "acme/b", "acme/c"]);
        assert_eq!(names(ViewField::OpenIssues), ["acme/a", "acme/c", "acme/b"]);
        assert_eq!(
            names(ViewField::LastUpdated),
            ["acme/a", "acme/b", "acme/c"]
        );
        assert_eq!(rank(&repos, ViewField::Stars).unwrap()[0].1, json!(7));
        assert!(rank("{}", ViewField::Stars).is_err());
    }

    #[test]
    fn top_n_and_fields() {
        assert_eq!(parse_top_n("3").unwrap(), 3);
        assert_eq!(parse_top_n("99999999999999999999999").unwrap(), usize::MAX);
        for bad in ["0", "-1", "abc", "", "1.5", "+2", "00"] {
            assert_eq!(
                parse_top_n(bad).unwrap_err().code(),
                "INVALID_PARAMETER",
                "{bad:?}"
            );
        }
        assert_eq!(ViewField::parse("stars").unwrap(), ViewField::Stars);
        assert!(ViewField::parse("watchers").is_err());
    }
}
