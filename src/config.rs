//! The service's settings, read once per isolate from vars and secrets into typed values.
//! Parsing takes a lookup function, so every default and rejection is tested natively.

use crate::domain::budget::RatePolicy;
use crate::domain::client::ClientKey;
use crate::domain::cors::AllowedOrigins;
use crate::error::{ApiError, ApiResult};
use std::rc::Rc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub admin_api_key: Option<String>,
    pub flush_interval_ms: u64,
    /// Counting requests per client per counted object per window (`RATE_LIMIT_POST`,
    /// `RATE_LIMIT_WINDOW_SECONDS`; a window of 0 turns budgets off).
    pub budget: RatePolicy,
    /// Counted views per badge per window from image proxies, which fetch for every
    /// viewer from one address (`RATE_LIMIT_PROXY`).
    pub proxy_budget: RatePolicy,
    pub cors: AllowedOrigins,
    /// Which requests get a JSON log line (`REQUEST_LOG`).
    pub request_log: LogMode,
    /// A request slower than this is logged as slow (`SLOW_REQUEST_MS`).
    pub slow_request_ms: u64,
    /// Pages a tenant may create by visiting them (`MAX_PAGES_PER_TENANT`).
    pub max_pages_per_tenant: u64,
    /// Pages a tenant may create by visiting them per hour (`PAGE_CREATE_PER_HOUR`).
    pub page_create_per_hour: u64,
    /// Expired visit rows one retention step moves into daily totals
    /// (`RETENTION_BATCH_ROWS`).
    pub retention_batch_rows: u64,
    /// How long one retention run may work before leaving the rest to the next
    /// (`RETENTION_RUN_SECONDS`; 0: one step per run).
    pub retention_run_seconds: u64,
    /// Visit rows older than this are deleted by the scheduled cleanup.
    pub visit_retention_days: u64,
    /// Site-wide visitors a tenant's day counts exactly before it samples
    /// (`STATS_EXACT_VISITORS`, default 100,000, at least 100).
    pub stats_exact_visitors: u64,
    /// Counter operations older than this are folded into a baseline
    /// (`OPERATION_RETENTION_DAYS`, at least 2: keys replay for 48 hours).
    pub operation_retention_days: u64,
    /// Added to the clock that decides which operations are past their retention, and to
    /// the time visits are recorded at (`visit_clock`), so tests can age a ledger and
    /// record visits on past days (`EDGECOUNT_CLOCK_SKEW_MS`; never set in production).
    pub clock_skew_ms: i64,
    /// The tenant the migration routes act on (`DEFAULT_TENANT_LABEL`).
    pub default_tenant_label: String,
    pub github: GitHubConfig,
    /// The cron expression that runs retention and backups; every other cron refreshes
    /// GitHub.
    pub retention_cron: String,
    /// Days of daily backups kept in the `BACKUPS` bucket (`BACKUP_KEEP_DAYS`).
    pub backup_keep_days: u64,
    /// A failure to inject, so tests can prove through the real runtime what happens
    /// when storage fails (`EDGECOUNT_FAULT`; never set in production).
    pub fault: Option<Fault>,
    /// Where error reports go (`SENTRY_DSN`, a secret); none without it.
    pub sentry: Option<SentryConfig>,
}

/// Error reports' destination and the environment they are filed under
/// (`SENTRY_ENVIRONMENT`, "production" unless set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentryConfig {
    pub dsn: crate::domain::sentry::Dsn,
    pub environment: String,
}

/// Failures the test suite injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A write batch fails after its first statement.
    BatchWrite,
    /// Arming an object's alarm fails.
    ArmAlarm,
    /// Every POST panics in the Worker, so a test sees a panic reported.
    Panic,
}

/// Which requests the Worker writes a JSON line for. The platform's invocation log
/// (`[observability]`) already records every request; a line of ours costs a log event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogMode {
    /// Errors (5xx), refusals worth seeing (401, 403, 429) and slow requests.
    Notable,
    /// Every request.
    All,
    /// Errors only.
    Errors,
}

impl LogMode {
    /// Whether a request that answered `status` after `duration_ms` gets a line.
    pub fn wants(self, status: u16, duration_ms: u64, slow_ms: u64) -> bool {
        let error = status >= 500;
        let refusal = matches!(status, 401 | 403 | 429);
        match self {
            LogMode::All => true,
            LogMode::Notable => error || refusal || duration_ms >= slow_ms,
            LogMode::Errors => error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubConfig {
    /// Empty: the GitHub cache is off and its routes answer 404.
    pub orgs: Vec<String>,
    pub api_url: String,
    pub token: Option<String>,
    pub stale_max_seconds: u64,
    /// A cached copy younger than this is served as is; an older one is revalidated
    /// with GitHub first (`GITHUB_FRESH_SECONDS`, default two refresh periods).
    pub fresh_seconds: u64,
    pub timeout_ms: u64,
    /// A proxied answer larger than this is refused (`GITHUB_PROXY_MAX_BYTES`).
    pub proxy_max_bytes: usize,
    /// How long a proxied answer is served from the cache (`GITHUB_PROXY_CACHE_SECONDS`).
    pub proxy_cache_seconds: u64,
    /// KV writes the proxy may make per UTC day (`GITHUB_PROXY_WRITES_PER_DAY`); past
    /// them answers are relayed without a KV copy.
    pub proxy_writes_per_day: u64,
}

impl GitHubConfig {
    pub fn enabled(&self) -> bool {
        !self.orgs.is_empty()
    }
}

pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 2_000;

impl Config {
    /// The time a visit is recorded at: the clock, shifted by `clock_skew_ms`.
    pub fn visit_clock(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add_signed(self.clock_skew_ms)
    }

    /// The key that signs pagination cursors, derived from the administrator secret.
    pub fn cursor_key(&self) -> crate::domain::cursor::CursorKey {
        crate::domain::cursor::CursorKey::derive(self.admin_api_key.as_deref().unwrap_or(""))
    }

    /// The budget a client spends: image proxies share the proxy budget.
    pub fn budget_for(&self, client: &ClientKey) -> RatePolicy {
        if client.is_proxy() {
            self.proxy_budget
        } else {
            self.budget
        }
    }

    /// `lookup(name)` answers a var or secret. A malformed number is an error naming the
    /// variable: a typo in configuration should stop the service loudly, not quietly
    /// fall back to a default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let number =
            |name: &str, default: u64, max: u64| -> Result<u64, String> {
                match lookup(name).map(|v| v.trim().to_string()) {
                    None => Ok(default),
                    Some(v) if v.is_empty() => Ok(default),
                    Some(v) => v.parse::<u64>().ok().filter(|n| *n <= max).ok_or_else(|| {
                        format!("{name} must be an integer from 0 to {max}, got {v:?}")
                    }),
                }
            };
        let window_ms = number("RATE_LIMIT_WINDOW_SECONDS", 60, 86_400)? * 1000;
        let policy = |name: &str, default: u64| -> Result<RatePolicy, String> {
            Ok(RatePolicy {
                limit: number(name, default, 1_000_000_000)? as u32,
                window_ms,
            })
        };
        let flush_interval_ms = number("FLUSH_INTERVAL_MS", DEFAULT_FLUSH_INTERVAL_MS, 3_600_000)?;
        if flush_interval_ms == 0 {
            return Err("FLUSH_INTERVAL_MS must be at least 1".into());
        }
        Ok(Config {
            admin_api_key: lookup("ADMIN_API_KEY").filter(|k| !k.trim().is_empty()),
            flush_interval_ms,
            budget: policy("RATE_LIMIT_POST", 10)?,
            proxy_budget: policy("RATE_LIMIT_PROXY", 600)?,
            request_log: match lookup("REQUEST_LOG").as_deref().map(str::trim) {
                None | Some("") | Some("notable") => LogMode::Notable,
                Some("all") | Some("on") => LogMode::All,
                Some("errors") | Some("off") => LogMode::Errors,
                Some(other) => {
                    return Err(format!(
                        "REQUEST_LOG must be notable, all or errors, got {other:?}"
                    ))
                }
            },
            slow_request_ms: number("SLOW_REQUEST_MS", 1_000, 600_000)?,
            max_pages_per_tenant: number("MAX_PAGES_PER_TENANT", 10_000, 100_000_000)?,
            page_create_per_hour: number("PAGE_CREATE_PER_HOUR", 600, 100_000_000)?,
            retention_batch_rows: match number("RETENTION_BATCH_ROWS", 10_000, 1_000_000)? {
                0 => return Err("RETENTION_BATCH_ROWS must be at least 1".into()),
                rows => rows,
            },
            retention_run_seconds: number("RETENTION_RUN_SECONDS", 600, 840)?,
            visit_retention_days: match number("VISIT_RETENTION_DAYS", 400, 36_500)? {
                0 => return Err("VISIT_RETENTION_DAYS must be at least 1".into()),
                days => days,
            },
            stats_exact_visitors: match number("STATS_EXACT_VISITORS", 100_000, 100_000_000)? {
                n if n < 100 => return Err("STATS_EXACT_VISITORS must be at least 100".into()),
                n => n,
            },
            operation_retention_days: match number("OPERATION_RETENTION_DAYS", 400, 36_500)? {
                d if d < crate::domain::ledger::MIN_RETENTION_DAYS => {
                    return Err("OPERATION_RETENTION_DAYS must be at least 2".into())
                }
                days => days,
            },
            clock_skew_ms: match lookup("EDGECOUNT_CLOCK_SKEW_MS").as_deref().map(str::trim) {
                None | Some("") => 0,
                Some(v) => v.parse().map_err(|_| {
                    format!("EDGECOUNT_CLOCK_SKEW_MS must be an integer, got {v:?}")
                })?,
            },
            default_tenant_label: crate::domain::counter::check_label(
                lookup("DEFAULT_TENANT_LABEL")
                    .as_deref()
                    .unwrap_or("default"),
            )
            .map_err(|_| "DEFAULT_TENANT_LABEL must be a valid label".to_string())?,
            github: GitHubConfig {
                orgs: crate::domain::github::parse_orgs(
                    &lookup("GITHUB_ORGS").unwrap_or_default(),
                )?,
                api_url: crate::domain::github::parse_api_url(
                    &lookup("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
                )?,
                token: lookup("GITHUB_TOKEN").filter(|t| !t.trim().is_empty()),
                stale_max_seconds: number("GITHUB_STALE_MAX_SECONDS", 86_400, 365 * 86_400)?,
                fresh_seconds: number("GITHUB_FRESH_SECONDS", 600, 365 * 86_400)?,
                timeout_ms: number("GITHUB_TIMEOUT_MS", 10_000, 60_000)?.max(1),
                proxy_max_bytes: match number("GITHUB_PROXY_MAX_BYTES", 5 << 20, 25 << 20)? {
                    n if n < 1024 => {
                        return Err("GITHUB_PROXY_MAX_BYTES must be at least 1024".into())
                    }
                    n => n as usize,
                },
                // KV keeps nothing for less than a minute.
                proxy_cache_seconds: number("GITHUB_PROXY_CACHE_SECONDS", 60, 86_400)?.max(60),
                proxy_writes_per_day: number("GITHUB_PROXY_WRITES_PER_DAY", 500, 100_000_000)?,
            },
            retention_cron: lookup("RETENTION_CRON").unwrap_or_else(|| "17 3 * * *".into()),
            backup_keep_days: number("BACKUP_KEEP_DAYS", 30, 3_650)?.max(1),
            fault: match lookup("EDGECOUNT_FAULT").as_deref().map(str::trim) {
                None | Some("") => None,
                Some("batch-write") => Some(Fault::BatchWrite),
                Some("arm-alarm") => Some(Fault::ArmAlarm),
                Some("panic") => Some(Fault::Panic),
                Some(other) => return Err(format!("EDGECOUNT_FAULT: unknown fault {other:?}")),
            },
            cors: AllowedOrigins::parse(
                &lookup("CORS_ALLOWED_ORIGINS").unwrap_or_else(|| "*".into()),
            ),
            sentry: match lookup("SENTRY_DSN").filter(|dsn| !dsn.trim().is_empty()) {
                None => None,
                Some(dsn) => Some(SentryConfig {
                    dsn: crate::domain::sentry::Dsn::parse(&dsn)?,
                    environment: lookup("SENTRY_ENVIRONMENT")
                        .map(|e| e.trim().chars().take(64).collect::<String>())
                        .filter(|e| !e.is_empty())
                        .unwrap_or_else(|| "production".into()),
                }),
            },
        })
    }
}

thread_local! {
    static CACHED: std::cell::OnceCell<Rc<Config>> = const { std::cell::OnceCell::new() };
}

/// The isolate's configuration. Vars cannot change while an isolate lives, so they are
/// read once, keeping binding lookups off the hot path.
pub fn get(env: &worker::Env) -> ApiResult<Rc<Config>> {
    if let Some(config) = CACHED.with(|c| c.get().cloned()) {
        return Ok(config);
    }
    let lookup = |name: &str| {
        env.var(name)
            .map(|v| v.to_string())
            .or_else(|_| env.secret(name).map(|s| s.to_string()))
            .ok()
    };
    let config = Rc::new(
        Config::from_lookup(lookup)
            .map_err(|e| ApiError::Internal(format!("configuration: {e}")))?,
    );
    CACHED.with(|c| c.get_or_init(|| config.clone()).clone());
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn error_reports_need_a_dsn_and_a_malformed_one_stops_the_service() {
        assert_eq!(parse(&[]).unwrap().sentry, None);
        assert_eq!(parse(&[("SENTRY_DSN", " ")]).unwrap().sentry, None);
        let sentry = parse(&[("SENTRY_DSN", "https://k@sentry.example/1")])
            .unwrap()
            .sentry
            .unwrap();
        assert_eq!(sentry.environment, "production");
        let named = parse(&[
            ("SENTRY_DSN", "https://k@sentry.example/1"),
            ("SENTRY_ENVIRONMENT", "staging"),
        ]);
        assert_eq!(named.unwrap().sentry.unwrap().environment, "staging");
        let err = parse(&[("SENTRY_DSN", "sentry.example/1")]).unwrap_err();
        assert!(err.contains("SENTRY_DSN"), "{err}");
    }

    #[test]
    fn operation_retention_keeps_keys_two_days() {
        assert_eq!(
            parse(&[("OPERATION_RETENTION_DAYS", "2")])
                .unwrap()
                .operation_retention_days,
            2
        );
        assert!(parse(&[("OPERATION_RETENTION_DAYS", "1")]).is_err());
        assert!(parse(&[("OPERATION_RETENTION_DAYS", "0")]).is_err());
        assert_eq!(
            parse(&[("EDGECOUNT_CLOCK_SKEW_MS", "-5")])
                .unwrap()
                .clock_skew_ms,
            -5
        );
        assert!(parse(&[("EDGECOUNT_CLOCK_SKEW_MS", "soon")]).is_err());
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.admin_api_key, None);
        assert_eq!(c.flush_interval_ms, 2_000);
        assert_eq!(
            c.budget,
            RatePolicy {
                limit: 10,
                window_ms: 60_000
            }
        );
        assert_eq!(
            c.proxy_budget,
            RatePolicy {
                limit: 600,
                window_ms: 60_000
            }
        );
        assert_eq!(c.cors, AllowedOrigins::Any);
        assert_eq!(c.request_log, LogMode::Notable);
        assert_eq!(c.slow_request_ms, 1_000);
        assert_eq!(c.max_pages_per_tenant, 10_000);
        assert_eq!(c.page_create_per_hour, 600);
        assert_eq!(c.retention_batch_rows, 10_000);
        assert_eq!(c.retention_run_seconds, 600);
        assert_eq!(c.fault, None);
        assert_eq!(c.visit_retention_days, 400);
        assert_eq!(c.operation_retention_days, 400);
        assert_eq!(c.stats_exact_visitors, 100_000);
        assert!(parse(&[("STATS_EXACT_VISITORS", "99")]).is_err());
        assert_eq!(c.clock_skew_ms, 0);
        assert_eq!(c.default_tenant_label, "default");
        assert!(!c.github.enabled());
        assert_eq!(c.github.api_url, "https://api.github.com");
        assert_eq!(c.github.stale_max_seconds, 86_400);
        assert_eq!(c.github.proxy_max_bytes, 5 << 20);
        assert_eq!(c.github.proxy_cache_seconds, 60);
        assert_eq!(c.github.proxy_writes_per_day, 500);
    }

    #[test]
    fn github_settings() {
        let c = parse(&[
            ("GITHUB_ORGS", "acme,beta"),
            ("GITHUB_API_URL", "http://127.0.0.1:9999/"),
        ])
        .unwrap();
        assert_eq!(c.github.orgs, vec!["acme", "beta"]);
        assert_eq!(c.github.api_url, "http://127.0.0.1:9999");
        assert!(parse(&[("GITHUB_API_URL", "ftp://x")]).is_err());
        assert!(parse(&[("GITHUB_API_URL", "http://api.github.com")]).is_err());
        assert!(parse(&[("GITHUB_PROXY_MAX_BYTES", "100")]).is_err());
        assert!(parse(&[("GITHUB_PROXY_MAX_BYTES", "99999999999")]).is_err());
        assert!(parse(&[("GITHUB_ORGS", "not an org")]).is_err());
    }

    #[test]
    fn request_log_modes() {
        let mode = |v: &str| parse(&[("REQUEST_LOG", v)]).unwrap().request_log;
        assert_eq!(mode("all"), LogMode::All);
        assert_eq!(mode("on"), LogMode::All);
        assert_eq!(mode("errors"), LogMode::Errors);
        assert_eq!(mode("off"), LogMode::Errors);
        assert!(parse(&[("REQUEST_LOG", "maybe")])
            .unwrap_err()
            .contains("REQUEST_LOG"));
    }

    #[test]
    fn notable_requests_are_errors_refusals_and_slow_ones() {
        let notable = |status, ms| LogMode::Notable.wants(status, ms, 1_000);
        assert!(!notable(200, 5));
        assert!(!notable(404, 5), "a miss is not worth a line");
        assert!(!notable(400, 5));
        for status in [401, 403, 429, 500, 502] {
            assert!(notable(status, 5), "{status}");
        }
        assert!(notable(200, 1_000), "slow");
        assert!(LogMode::All.wants(200, 1, 1_000));
        assert!(!LogMode::Errors.wants(429, 1, 1_000));
        assert!(LogMode::Errors.wants(503, 1, 1_000));
    }

    #[test]
    fn overrides_and_switches() {
        let c = parse(&[
            ("ADMIN_API_KEY", "k"),
            ("FLUSH_INTERVAL_MS", "250"),
            ("RATE_LIMIT_POST", "3"),
            ("RATE_LIMIT_PROXY", " 4 "),
            ("RATE_LIMIT_WINDOW_SECONDS", "0"),
            ("CORS_ALLOWED_ORIGINS", "https://a.example"),
        ])
        .unwrap();
        assert_eq!(c.admin_api_key.as_deref(), Some("k"));
        assert_eq!(c.flush_interval_ms, 250);
        assert_eq!(c.budget.limit, 3);
        assert_eq!(c.proxy_budget.limit, 4);
        assert!(!c.budget.is_enabled());
        assert!(!c.cors.allows("https://b.example"));
        assert_eq!(
            parse(&[("ADMIN_API_KEY", "  ")]).unwrap().admin_api_key,
            None
        );
    }

    #[test]
    fn malformed_numbers_are_named() {
        for (name, value) in [
            ("FLUSH_INTERVAL_MS", "2s"),
            ("FLUSH_INTERVAL_MS", "0"),
            ("RATE_LIMIT_POST", "-1"),
            ("RATE_LIMIT_WINDOW_SECONDS", "999999"),
            ("PAGE_CREATE_PER_HOUR", "many"),
            ("RETENTION_BATCH_ROWS", "0"),
        ] {
            let err = parse(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
    }
}
