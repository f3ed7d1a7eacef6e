//! The service's one error type. Every failure a client can see is a variant here, and
//! this is the only place that knows its status and code. Internal failures keep their
//! detail for the log and answer with a generic message.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    TenantNotFound,
    TenantLabelExists,
    CounterNotFound,
    CounterLabelExists,
    PageNotFound,
    CredentialNotFound,
    PageLimitReached {
        limit: u64,
    },
    RateLimitExceeded {
        retry_after_seconds: u64,
    },
    Unauthorized,
    Forbidden(String),
    InvalidJson(String),
    InvalidParameter(String),
    InvalidDelta(String),
    InvalidUuid(String),
    InvalidCursor,
    DeltaExceedsMaximum {
        max_delta: i64,
    },
    CounterOverflow,
    IdempotencyKeyRequired,
    InvalidIdempotencyKey,
    IdempotencyKeyReused,
    MethodNotAllowed {
        allow: Vec<&'static str>,
    },
    PayloadTooLarge {
        limit: usize,
    },
    /// A line of an import that cannot be applied; data lines before `applied` (of the
    /// file, counted from 1) were applied and stay (an import goes in chunks).
    InvalidImport {
        line: u64,
        reason: String,
        applied: u64,
    },
    NotFound,
    /// GitHub failed or timed out and no copy young enough could stand in.
    UpstreamUnavailable {
        timeout: bool,
    },
    /// A failure of ours or of a platform service; the detail is logged, never shown.
    Internal(String),
}

impl ApiError {
    pub fn internal(detail: impl fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    pub fn status(&self) -> u16 {
        use ApiError::*;
        match self {
            TenantNotFound | CounterNotFound | PageNotFound | CredentialNotFound | NotFound => 404,
            TenantLabelExists | CounterLabelExists | IdempotencyKeyReused => 409,
            RateLimitExceeded { .. } => 429,
            Unauthorized => 401,
            Forbidden(_) | PageLimitReached { .. } => 403,
            MethodNotAllowed { .. } => 405,
            PayloadTooLarge { .. } => 413,
            Internal(_) => 500,
            UpstreamUnavailable { timeout: true } => 504,
            UpstreamUnavailable { timeout: false } => 502,
            InvalidJson(_)
            | InvalidParameter(_)
            | InvalidDelta(_)
            | InvalidUuid(_)
            | InvalidCursor
            | DeltaExceedsMaximum { .. }
            | CounterOverflow
            | IdempotencyKeyRequired
            | InvalidIdempotencyKey
            | InvalidImport { .. } => 400,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            TenantNotFound => "TENANT_NOT_FOUND",
            TenantLabelExists => "TENANT_LABEL_EXISTS",
            CounterNotFound => "COUNTER_NOT_FOUND",
            CounterLabelExists => "COUNTER_LABEL_EXISTS",
            PageNotFound => "PAGE_NOT_FOUND",
            CredentialNotFound => "CREDENTIAL_NOT_FOUND",
            PageLimitReached { .. } => "PAGE_LIMIT_REACHED",
            RateLimitExceeded { .. } => "RATE_LIMIT_EXCEEDED",
            Unauthorized => "UNAUTHORIZED",
            Forbidden(_) => "FORBIDDEN",
            InvalidJson(_) => "INVALID_JSON",
            InvalidParameter(_) => "INVALID_PARAMETER",
            InvalidDelta(_) => "INVALID_DELTA",
            InvalidUuid(_) => "INVALID_UUID",
            InvalidCursor => "INVALID_CURSOR",
            DeltaExceedsMaximum { .. } => "DELTA_EXCEEDS_MAXIMUM",
            CounterOverflow => "COUNTER_OVERFLOW",
            IdempotencyKeyRequired => "IDEMPOTENCY_KEY_REQUIRED",
            InvalidIdempotencyKey => "INVALID_IDEMPOTENCY_KEY",
            IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            InvalidImport { .. } => "INVALID_IMPORT",
            NotFound => "NOT_FOUND",
            UpstreamUnavailable { .. } => "UPSTREAM_UNAVAILABLE",
            Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// What the client reads. Never contains storage or upstream error text.
    pub fn message(&self) -> String {
        use ApiError::*;
        match self {
            TenantNotFound => "Tenant does not exist".into(),
            TenantLabelExists => "A tenant with this label already exists".into(),
            CounterNotFound => "Counter does not exist".into(),
            CounterLabelExists => "A counter with this label already exists in the tenant".into(),
            PageNotFound => "Page does not exist".into(),
            CredentialNotFound => "Credential does not exist".into(),
            PageLimitReached { limit } => {
                format!("The tenant has reached its limit of {limit} pages; no page was created")
            }
            RateLimitExceeded {
                retry_after_seconds,
            } => {
                format!("Too many requests; retry after {retry_after_seconds} s")
            }
            Unauthorized => {
                "A valid API key is required (X-API-Key or Authorization: Bearer)".into()
            }
            Forbidden(why) => why.clone(),
            InvalidJson(why) | InvalidParameter(why) | InvalidDelta(why) | InvalidUuid(why) => {
                why.clone()
            }
            InvalidCursor => "The cursor is not one this service issued".into(),
            DeltaExceedsMaximum { max_delta } => {
                format!("delta exceeds this counter's max_delta of {max_delta}")
            }
            CounterOverflow => {
                "The value would leave the range ±9007199254740991; nothing was changed".into()
            }
            IdempotencyKeyRequired => "This route requires an Idempotency-Key header".into(),
            InvalidIdempotencyKey => "Idempotency-Key must be a UUID".into(),
            IdempotencyKeyReused => {
                "This Idempotency-Key was already used with different request data".into()
            }
            MethodNotAllowed { allow } => format!("Method not allowed; use {}", allow.join(", ")),
            PayloadTooLarge { limit } => format!("Request body exceeds {limit} bytes"),
            InvalidImport {
                line,
                reason,
                applied: 0,
            } => {
                format!("line {line}: {reason}; nothing was imported")
            }
            InvalidImport {
                line,
                reason,
                applied,
            } => format!(
                "line {line}: {reason}; the first {applied} data lines were imported before it \
                 (importing the corrected file again skips what is already there)"
            ),
            NotFound => "No such route".into(),
            UpstreamUnavailable { timeout: true } => {
                "GitHub did not answer in time and no recent copy is cached".into()
            }
            UpstreamUnavailable { timeout: false } => {
                "GitHub is unavailable or rate-limited and no recent copy is cached".into()
            }
            Internal(_) => "Internal error".into(),
        }
    }

    /// An error an object answered, read back from the contract's shape: the one place
    /// that turns a code into a variant, so no caller matches on code strings. Errors
    /// with details a caller acts on are the plain ones; anything else is internal.
    pub fn from_answer(status: u16, body: &str) -> ApiError {
        use ApiError::*;
        let plain = [
            TenantNotFound,
            CounterNotFound,
            PageNotFound,
            CredentialNotFound,
            CounterOverflow,
            InvalidCursor,
            IdempotencyKeyReused,
            NotFound,
        ];
        let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let code = parsed
            .as_ref()
            .and_then(|v| v["errors"][0]["code"].as_str());
        plain
            .into_iter()
            .find(|e| Some(e.code()) == code)
            .unwrap_or_else(|| Internal(format!("an object answered {status}: {body}")))
    }

    /// The contract's one error shape: `{"errors": [{"code", "message"}]}`.
    pub fn body(&self) -> String {
        use ApiError::*;
        let mut error = serde_json::json!({"code": self.code(), "message": self.message()});
        if let InvalidImport { line, applied, .. } = self {
            error["line"] = (*line).into();
            error["applied_lines"] = (*applied).into();
        }
        serde_json::json!({ "errors": [error] }).to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Internal(detail) => write!(f, "INTERNAL_ERROR: {detail}"),
            other => write!(f, "{}: {}", other.code(), other.message()),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Runtime and binding failures carry detail that belongs in the log only.
pub trait OrInternal<T> {
    fn or_internal(self, context: &str) -> Result<T, ApiError>;
}

impl<T, E: std::fmt::Display> OrInternal<T> for Result<T, E> {
    fn or_internal(self, context: &str) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::Internal(format!("{context}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_answers_read_back_into_their_variant() {
        for e in [
            ApiError::TenantNotFound,
            ApiError::CounterNotFound,
            ApiError::CounterOverflow,
            ApiError::InvalidCursor,
        ] {
            assert_eq!(ApiError::from_answer(e.status(), &e.body()), e);
        }
        assert!(matches!(
            ApiError::from_answer(500, "oops"),
            ApiError::Internal(detail) if detail.contains("500")
        ));
    }

    #[test]
    fn body_has_the_contract_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::CounterNotFound.body()).unwrap();
        assert_eq!(body["errors"][0]["code"], "COUNTER_NOT_FOUND");
        assert_eq!(body["errors"][0]["message"], "Counter does not exist");
        assert_eq!(body["errors"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let e = ApiError::internal("D1_ERROR: no such table: counters");
        assert_eq!(e.status(), 500);
        assert!(!e.body().contains("no such table"));
        assert!(e.to_string().contains("no such table"));
    }

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(
            ApiError::RateLimitExceeded {
                retry_after_seconds: 3
            }
            .status(),
            429
        );
        assert_eq!(ApiError::IdempotencyKeyReused.status(), 409);
        assert_eq!(
            ApiError::MethodNotAllowed { allow: vec!["GET"] }.status(),
            405
        );
        assert_eq!(ApiError::PayloadTooLarge { limit: 16384 }.status(), 413);
        assert_eq!(ApiError::CounterOverflow.status(), 400);
    }
}
