//! The OpenAPI 3.1 document, built from one table of operations. Tests tie the table
//! to the router both ways: every documented operation resolves to its route, and every
//! route variant names its documented operation (adding a variant without documenting it
//! does not compile). The document is served as a static asset, `public/openapi.json`:
//! a golden test keeps that file equal to what this module builds
//! (`EDGECOUNT_UPDATE_OPENAPI=1 cargo test openapi` writes it anew).
//!
//! The document is as strict as the code that validates requests: every limit it states
//! (lengths, ranges, enums, patterns) is taken from the constant the code checks against,
//! and tests below run the code's own parsers over the values the patterns accept and
//! refuse. What JSON Schema cannot say is said in descriptions: a range's order and
//! length, an expiry in the future, a counter's `max_delta`, a cursor's MAC, page ids and
//! import sources counted in UTF-8 bytes.

use crate::domain::access::Scope;
use crate::domain::counter::{DEFAULT_MAX_DELTA, MAX_LABEL_CHARS, MAX_SAFE};
use crate::domain::input::MAX_ALLOWED_ORIGINS;
use crate::domain::page::MAX_PAGE_ID_BYTES;
use crate::domain::transfer::CHUNK_LINES;
use crate::error::ApiError;
use crate::http::body::MAX_BODY_BYTES;
use crate::http::router::Route;
use serde_json::{json, Map, Value};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Public,
    Admin,
    /// An administrator key, or a tenant key with this scope.
    Scope(&'static str),
}

/// What answers an operation, which decides the statuses it can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The Worker: besides its own errors, any request may meet 401 (a presented key that
    /// does not verify), 403 (an `Origin` the tenant or `CORS_ALLOWED_ORIGINS` does not
    /// allow) and 429 (a client the refusal brake stopped, asking with a tenant key).
    Worker,
    /// A badge: always an SVG image (200, or 304 for `If-None-Match`), errors included.
    Badge,
    /// A static asset, answered before the Worker.
    Asset,
}

/// A query parameter, a path parameter or a request header, with its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// A tenant, counter or credential id: a UUID, hyphenated, any case.
    Id,
    PageId,
    /// `?limit=` of a paged list: 1..=max.
    Limit {
        default: u32,
        max: u32,
    },
    Cursor,
    /// An RFC 3339 time or a date, as `domain::time::parse_rfc3339` reads them.
    Time,
    Enum(&'static [&'static str]),
    Delta,
    Granularity,
    BadgeLabel,
    Color,
    TopN,
    ImportFrom,
    ImportSource,
    /// Free text the route takes as it is.
    Text,
}

/// One parameter: name, schema, description, required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub schema: Schema,
    pub description: &'static str,
    pub required: bool,
}

const fn q(name: &'static str, schema: Schema, description: &'static str) -> Param {
    Param {
        name,
        schema,
        description,
        required: false,
    }
}

/// A request body: its schema (a component) and whether it may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    pub schema: &'static str,
    pub required: bool,
}

/// One documented operation.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    pub kind: Kind,
    pub query: &'static [Param],
    pub headers: &'static [Param],
    pub body: Option<Body>,
    /// (status, schema name or "" for no body, content type).
    pub ok: (u16, &'static str, &'static str),
    /// The errors of the operation itself (`Kind` adds 401, 403 and 429 for the Worker).
    pub errors: &'static [u16],
    /// A counting route: its answer carries the client's budget.
    pub counting: bool,
}

const JSON: &str = "application/json";
const SVG: &str = "image/svg+xml";

/// What every operation is unless it says otherwise.
const BASE: Operation = Operation {
    method: "get",
    path: "",
    id: "",
    summary: "",
    auth: Auth::Public,
    kind: Kind::Worker,
    query: &[],
    headers: &[],
    body: None,
    ok: (200, "", JSON),
    errors: &[],
    counting: false,
};

/// One entry of the table: the fields an operation sets, the rest as `BASE`.
macro_rules! op {
    ($($field:ident: $value:expr),* $(,)?) => {
        Operation { $($field: $value,)* ..BASE }
    };
}

const fn body(schema: &'static str) -> Option<Body> {
    Some(Body {
        schema,
        required: true,
    })
}

const fn optional_body(schema: &'static str) -> Option<Body> {
    Some(Body {
        schema,
        required: false,
    })
}

const CURSOR: Param = q("cursor", Schema::Cursor, "next_cursor of the previous page");
const FROM: Param = q(
    "from",
    Schema::Time,
    "start of the range: RFC 3339 or a date (default: 30 days before `to`); before `to`",
);
const TO: Param = q(
    "to",
    Schema::Time,
    "end of the range: RFC 3339 or a date (default: now)",
);
const GRANULARITY: Param = q(
    "granularity",
    Schema::Granularity,
    "bucket size (default day); a range holds at most 2,000 buckets",
);
const DELTA: Param = q(
    "delta",
    Schema::Delta,
    "how much to add (default 1): at most the counter's max_delta, and the value stays within ±9007199254740991",
);
const BADGE: &[Param] = &[
    q(
        "label",
        Schema::BadgeLabel,
        "the left-hand text (default: the counter's label, or views)",
    ),
    q(
        "color",
        Schema::Color,
        "the value's colour: a name or 3 or 6 hex digits (default brightgreen)",
    ),
    q(
        "label_color",
        Schema::Color,
        "the label's colour: a name or 3 or 6 hex digits (default grey)",
    ),
    q(
        "style",
        Schema::Enum(&["flat", "flat-square", "for-the-badge"]),
        "default flat",
    ),
    q(
        "format",
        Schema::Enum(&["full", "short"]),
        "short: 1.2k; default full",
    ),
    q(
        "inc",
        Schema::Enum(&["0", "1", "false", "true"]),
        "1 or true: count first",
    ),
];
const IDEMPOTENCY_KEY: Param = q(
    "Idempotency-Key",
    Schema::Id,
    "a UUID: a retry with the same key and request replays the first answer; with other request data it is 409",
);
const IDEMPOTENCY_KEY_REQUIRED: Param = Param {
    required: true,
    ..IDEMPOTENCY_KEY
};
const ORG: Param = q(
    "org",
    Schema::Text,
    "a configured organisation (any case); required when several are configured",
);

pub const OPERATIONS: &[Operation] = &[
    op!(path: "/healthz", id: "health", summary: "Service health", ok: (200, "Health", JSON)),
    op!(path: "/healthcheck", id: "healthcheck", summary: "Service health (GitHub cache clients)", ok: (200, "Health", JSON)),
    op!(path: "/openapi.json", id: "openapi", summary: "This document", kind: Kind::Asset),
    op!(method: "post", path: "/tenants", id: "createTenant", summary: "Create a tenant", auth: Auth::Admin, headers: &[IDEMPOTENCY_KEY], body: body("NewTenant"), ok: (201, "Tenant", JSON), errors: &[400, 409, 413]),
    op!(path: "/tenants/{tenant_id}", id: "getTenant", summary: "Read a tenant", ok: (200, "Tenant", JSON), errors: &[400, 404]),
    op!(method: "patch", path: "/tenants/{tenant_id}", id: "updateTenant", summary: "Change a tenant's label or settings", auth: Auth::Admin, body: body("TenantChanges"), ok: (200, "Tenant", JSON), errors: &[400, 404, 409, 413]),
    op!(method: "post", path: "/tenants/{tenant_id}", id: "createCounter", summary: "Create a counter", auth: Auth::Scope("counter:create"), headers: &[IDEMPOTENCY_KEY], body: optional_body("NewCounter"), ok: (201, "Counter", JSON), errors: &[400, 404, 409, 413]),
    op!(method: "post", path: "/tenants/{tenant_id}/counters", id: "createCounterAlias", summary: "Create a counter (alias)", auth: Auth::Scope("counter:create"), headers: &[IDEMPOTENCY_KEY], body: optional_body("NewCounter"), ok: (201, "Counter", JSON), errors: &[400, 404, 409, 413]),
    op!(path: "/tenants/{tenant_id}/counters", id: "listCounters", summary: "List a tenant's counters", auth: Auth::Scope("counter:read"), query: &[q("limit", Schema::Limit { default: crate::routes::counters::PAGE_DEFAULT, max: crate::routes::counters::PAGE_MAX }, "page size"), CURSOR], ok: (200, "CounterPage", JSON), errors: &[400, 404]),
    op!(path: "/tenants/{tenant_id}/{counter_id}", id: "getCounter", summary: "Read a counter", ok: (200, "Counter", JSON), errors: &[400, 404]),
    op!(path: "/tenants/{tenant_id}/counters/{counter_id}", id: "getCounterAlias", summary: "Read a counter (alias)", ok: (200, "Counter", JSON), errors: &[400, 404]),
    op!(method: "post", path: "/tenants/{tenant_id}/{counter_id}/inc", id: "increment", summary: "Increment a counter (Idempotency-Key optional)", query: &[DELTA], headers: &[IDEMPOTENCY_KEY], ok: (200, "Mutation", JSON), errors: &[400, 404, 409], counting: true),
    op!(method: "post", path: "/tenants/{tenant_id}/counters/{counter_id}/inc", id: "incrementAlias", summary: "Increment a counter (alias)", query: &[DELTA], headers: &[IDEMPOTENCY_KEY], ok: (200, "Mutation", JSON), errors: &[400, 404, 409], counting: true),
    op!(method: "post", path: "/tenants/{tenant_id}/counters/{counter_id}/set", id: "setValue", summary: "Set a counter's value", auth: Auth::Scope("counter:adjust"), headers: &[IDEMPOTENCY_KEY], body: body("NewValue"), ok: (200, "Mutation", JSON), errors: &[400, 404, 409, 413]),
    op!(path: "/tenants/{tenant_id}/{counter_id}/badge.svg", id: "counterBadge", summary: "A counter's SVG badge", kind: Kind::Badge, query: BADGE, ok: (200, "", SVG)),
    op!(path: "/tenants/{tenant_id}/counters/{counter_id}/badge.svg", id: "counterBadgeAlias", summary: "A counter's SVG badge (alias)", kind: Kind::Badge, query: BADGE, ok: (200, "", SVG)),
    op!(method: "post", path: "/tenants/{tenant_id}/pages/{page_id}/visit", id: "visit", summary: "Count a visit", query: &[q("referrer", Schema::Text, "where the visitor came from (a URL; empty: nowhere); without it the Referer header says")], ok: (200, "Visit", JSON), errors: &[400, 404], counting: true),
    op!(path: "/tenants/{tenant_id}/pages/{page_id}", id: "getPage", summary: "Read a page's count", ok: (200, "Page", JSON), errors: &[400, 404]),
    op!(method: "delete", path: "/tenants/{tenant_id}/pages/{page_id}", id: "deletePage", summary: "Delete a page with its visit log and history", auth: Auth::Admin, ok: (204, "", ""), errors: &[400, 404]),
    op!(path: "/tenants/{tenant_id}/stats", id: "stats", summary: "A site's visits, visitors, series and top lists over a range, from rollups", auth: Auth::Scope("tenant:read"), query: &[
        q("from", Schema::Time, "start of the range: RFC 3339 or a date (default: 30 days before `to`); before `to`, and the range's whole days at most 400"),
        TO,
        GRANULARITY,
        q("limit", Schema::Limit { default: crate::domain::stats::DEFAULT_LIMIT as u32, max: crate::domain::stats::MAX_LIMIT as u32 }, "top list length"),
        q("page", Schema::PageId, "narrow everything to one page id"),
    ], ok: (200, "Stats", JSON), errors: &[400, 404]),
    op!(path: "/tenants/{tenant_id}/export", id: "exportTenant", summary: "The tenant as NDJSON (docs/export-format.md), streamed: settings, counters with their ledgers, pages, daily totals, stats rollups", auth: Auth::Scope("tenant:export"), query: &[q("visits", Schema::Enum(&["0", "1"]), "1: include the visit log")], ok: (200, "", "application/x-ndjson"), errors: &[400, 404]),
    op!(method: "post", path: "/tenants/{tenant_id}/import", id: "importTenant", summary: "Import an edgecount export, a GoatCounter or Plausible CSV export, or page/counter count lines (NDJSON or CSV body), idempotently", auth: Auth::Admin, query: &[
        q("dry_run", Schema::Enum(&["0", "1"]), "1: check every line, change nothing"),
        q("from", Schema::ImportFrom, "the data line this body's first is (1 + a multiple of 1,000), for files sent in parts"),
        q("source", Schema::ImportSource, "recorded in imported counter operations' metadata: 1 to 100 bytes of UTF-8, no control characters"),
    ], body: body("Import"), ok: (200, "ImportReport", JSON), errors: &[400, 404]),
    op!(path: "/tenants/{tenant_id}/pages/{page_id}/history", id: "pageHistory", summary: "A page's visits by hour or day", query: &[FROM, TO, GRANULARITY], ok: (200, "History", JSON), errors: &[400, 404]),
    op!(path: "/tenants/{tenant_id}/pages/{page_id}/badge.svg", id: "pageBadge", summary: "A page's SVG badge", kind: Kind::Badge, query: BADGE, ok: (200, "", SVG)),
    op!(path: "/embed.js", id: "embedScript", summary: "The embed script", kind: Kind::Asset, ok: (200, "", "text/javascript")),
    op!(method: "post", path: "/api/v1/counter", id: "legacyCounterIncrement", summary: "Migration: increment the default counter", ok: (204, "", ""), counting: true),
    op!(path: "/api/v1/counter", id: "legacyCounterRead", summary: "Migration: read the default counter", ok: (200, "LegacyCount", JSON)),
    op!(path: "/web-counter/increment", id: "webCounterIncrement", summary: "Migration: count a visit on web-counter", ok: (200, "", "text/plain"), counting: true),
    op!(method: "post", path: "/web-counter/increment", id: "webCounterIncrementPost", summary: "Migration: count a visit on web-counter", ok: (200, "", "text/plain"), counting: true),
    op!(path: "/web-counter/", id: "webCounterRead", summary: "Migration: read web-counter", ok: (200, "", "text/plain")),
    op!(path: "/api/v1/visitor/getCounter", id: "visitorGetCounter", summary: "Migration: read web-counter", ok: (200, "", "text/plain")),
    op!(method: "post", path: "/visit/{page_id}", id: "legacyVisit", summary: "Migration: count a visit", ok: (200, "LegacyVisit", JSON), errors: &[400], counting: true),
    op!(path: "/visits/{page_id}", id: "legacyVisits", summary: "Migration: read a page", ok: (200, "LegacyVisits", JSON), errors: &[400]),
    op!(method: "post", path: "/v2/tenants/{tenant_id}/counters/{counter_id}/inc", id: "v2Increment", summary: "Increment a counter (Idempotency-Key required)", auth: Auth::Scope("counter:increment"), query: &[DELTA], headers: &[IDEMPOTENCY_KEY_REQUIRED], ok: (200, "Mutation", JSON), errors: &[400, 404, 409]),
    op!(method: "post", path: "/v2/tenants/{tenant_id}/counters/{counter_id}/set", id: "v2Set", summary: "Set a counter's value (Idempotency-Key required)", auth: Auth::Scope("counter:adjust"), headers: &[IDEMPOTENCY_KEY_REQUIRED], body: body("NewValue"), ok: (200, "Mutation", JSON), errors: &[400, 404, 409, 413]),
    op!(path: "/v2/tenants/{tenant_id}/counters/{counter_id}", id: "v2GetCounter", summary: "Read a counter", auth: Auth::Scope("counter:read"), ok: (200, "Counter", JSON), errors: &[400, 404]),
    op!(path: "/v2/tenants/{tenant_id}/counters/{counter_id}/operations", id: "operations", summary: "A counter's operations, newest first", auth: Auth::Scope("counter:history"), query: &[q("limit", Schema::Limit { default: crate::domain::ledger::PAGE_DEFAULT, max: crate::domain::ledger::PAGE_MAX }, "page size"), CURSOR], ok: (200, "OperationPage", JSON), errors: &[400, 404]),
    op!(method: "post", path: "/v2/tenants/{tenant_id}/credentials", id: "createCredential", summary: "Issue a tenant key (shown once)", auth: Auth::Admin, body: optional_body("NewCredential"), ok: (201, "IssuedCredential", JSON), errors: &[400, 404, 413]),
    op!(path: "/v2/tenants/{tenant_id}/credentials", id: "listCredentials", summary: "A tenant's keys, never their secrets", auth: Auth::Admin, ok: (200, "CredentialList", JSON), errors: &[400, 404]),
    op!(method: "post", path: "/v2/tenants/{tenant_id}/credentials/{credential_id}/rotate", id: "rotateCredential", summary: "A new key with the same scopes and expiry; the old one stays valid until revoked", auth: Auth::Admin, ok: (201, "IssuedCredential", JSON), errors: &[400, 404]),
    op!(method: "post", path: "/v2/tenants/{tenant_id}/credentials/{credential_id}/revoke", id: "revokeCredential", summary: "Revoke a key (everywhere within 60 s)", auth: Auth::Admin, ok: (204, "", ""), errors: &[400, 404]),
    op!(method: "post", path: "/v2/admin/credentials", id: "createCredentialAdmin", summary: "Issue a managed administrator key (shown once)", auth: Auth::Admin, body: optional_body("NewAdminCredential"), ok: (201, "IssuedCredential", JSON), errors: &[400, 413]),
    op!(method: "post", path: "/v2/admin/credentials/{credential_id}/rotate", id: "rotateCredentialAdmin", summary: "Rotate a managed administrator key", auth: Auth::Admin, ok: (201, "IssuedCredential", JSON), errors: &[400, 404]),
    op!(method: "post", path: "/v2/admin/credentials/{credential_id}/revoke", id: "revokeCredentialAdmin", summary: "Revoke a managed administrator key", auth: Auth::Admin, ok: (204, "", ""), errors: &[400, 404]),
    op!(path: "/v2/admin/reconcile", id: "reconcile", summary: "Every counter's ledger against its value", auth: Auth::Admin, query: &[q("limit", Schema::Limit { default: crate::routes::credentials::RECONCILE_DEFAULT, max: crate::routes::credentials::RECONCILE_MAX }, "counters checked per page"), CURSOR], ok: (200, "Reconciliation", JSON), errors: &[400]),
    op!(path: "/view/top/{n}/{field}", id: "githubView", summary: "Top N repositories of an org by a field", query: &[ORG], ok: (200, "TopRepositories", JSON), errors: &[400, 404, 502, 504]),
    op!(path: "/orgs/{org}", id: "githubPath", summary: "GitHub API paths: cached (/, /orgs/{org}, members, repos) or proxied (other GET paths the proxy allows; the token's own account and private areas are 404)", ok: (200, "GitHubAnswer", JSON), errors: &[304, 400, 404, 502, 504]),
];

/// The operation that documents a route: exhaustive, so a new route must be documented.
pub fn operation_id(route: &Route) -> &'static str {
    match route {
        Route::Health => "health",
        Route::CreateTenant => "createTenant",
        Route::GetTenant(_) => "getTenant",
        Route::UpdateTenant(_) => "updateTenant",
        Route::CreateCounter(_) => "createCounter",
        Route::ListCounters(_) => "listCounters",
        Route::GetCounter(..) => "getCounter",
        Route::Increment(..) => "increment",
        Route::SetValue(..) => "setValue",
        Route::Visit(..) => "visit",
        Route::GetPage(..) => "getPage",
        Route::DeletePage(..) => "deletePage",
        Route::PageHistory(..) => "pageHistory",
        Route::Stats(_) => "stats",
        Route::Export(_) => "exportTenant",
        Route::Import(_) => "importTenant",
        Route::LegacyCounterIncrement => "legacyCounterIncrement",
        Route::LegacyCounterRead => "legacyCounterRead",
        Route::WebCounterIncrement => "webCounterIncrement",
        Route::WebCounterRead => "webCounterRead",
        Route::VisitorGetCounter => "visitorGetCounter",
        Route::LegacyVisit(_) => "legacyVisit",
        Route::LegacyVisits(_) => "legacyVisits",
        Route::GitHub => "githubPath",
        Route::GitHubView(..) => "githubView",
        Route::CounterBadge(..) => "counterBadge",
        Route::PageBadge(..) => "pageBadge",
        Route::V2Increment(..) => "v2Increment",
        Route::V2Set(..) => "v2Set",
        Route::V2GetCounter(..) => "v2GetCounter",
        Route::Operations(..) => "operations",
        Route::CreateCredential(_) => "createCredential",
        Route::ListCredentials(_) => "listCredentials",
        Route::RotateCredential(..) => "rotateCredential",
        Route::RevokeCredential(..) => "revokeCredential",
        Route::Reconcile => "reconcile",
    }
}

// Patterns, in the dialect both JSON Schema (ECMA-262) and the fuzzers that read it
// understand: no lookarounds, no inline flags. Each is tested against the code's parser.

/// A UUID as `Uuid::try_parse` takes it at 36 characters: hyphenated, any case.
pub const UUID_PATTERN: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// `char::is_control`: the C0 and C1 controls.
const CONTROL: &str = "\\u0000-\\u001F\\u007F-\\u009F";

/// `char::is_whitespace` (Unicode White_Space), less the controls already excluded.
const SPACE: &str = "\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000";

/// Text without control characters (a page id, a badge label, an import source).
fn no_control(min: usize) -> String {
    let repeat = if min == 0 { "*" } else { "+" };
    format!("^[^{CONTROL}]{repeat}$")
}

/// `counter::check_label`: no control characters, and not only white space.
fn not_blank() -> String {
    format!("^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$")
}

/// What `domain::time::parse_rfc3339` reads: a date from 1970 to 9999 that exists
/// (leap years included), optionally with `T`, a time to the second, a fraction and `Z`
/// or an offset.
pub fn time_pattern() -> String {
    let year = "(?:19[7-9][0-9]|[2-9][0-9]{3})";
    let leap = "(?:19(?:7[26]|8[048]|9[26])|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)";
    let day = format!(
        "(?:{year}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|{leap}-02-29)"
    );
    let hour = "(?:[01][0-9]|2[0-3])";
    let time =
        format!("[Tt]{hour}:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:[Zz]|[+-]{hour}:[0-5][0-9])");
    format!("^{day}(?:{time})?$")
}

/// What `cors::parse_origin` takes: `*` or `http(s)://host[:port]` (any case), with white
/// space around and trailing slashes, which it trims.
pub fn origin_pattern() -> String {
    let space = format!("[\\t-\\r\\u0085{SPACE}]");
    format!("^{space}*(?:\\*|[Hh][Tt][Tt][Pp][Ss]?://[0-9A-Za-z.:\\[\\]-]{{1,253}})/*{space}*$")
}

/// The colour names `embeds::badge::parse_color` knows (any case).
pub const COLOR_NAMES: &[&str] = &[
    "brightgreen",
    "success",
    "green",
    "yellowgreen",
    "yellow",
    "orange",
    "important",
    "red",
    "critical",
    "blue",
    "informational",
    "grey",
    "gray",
    "lightgrey",
    "lightgray",
    "inactive",
    "blueviolet",
];

/// A name in any case, as a pattern: `[Rr][Ee][Dd]`.
fn any_case(name: &str) -> String {
    name.chars()
        .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c))
        .collect()
}

pub fn color_pattern() -> String {
    let names: Vec<String> = COLOR_NAMES.iter().map(|n| any_case(n)).collect();
    format!(
        "^(?:#?(?:[0-9A-Fa-f]{{3}}|[0-9A-Fa-f]{{6}})|{})$",
        names.join("|")
    )
}

/// A cursor as `CursorKey` writes it: 29 bytes in unpadded base64url (39 characters,
/// the last carrying no leftover bits).
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]{38}[AEIMQUYcgkosw048]$";

/// `?from=` of an import: 1 plus a multiple of `CHUNK_LINES` (a power of ten), as
/// `u64::from_str` reads it (a `+`, leading zeros).
pub fn import_from_pattern() -> String {
    let zeros = CHUNK_LINES.to_string().len() - 1;
    format!(
        "^\\+?0*(?:[1-9][0-9]{{0,15}}{})?1$",
        "0".repeat(zeros.saturating_sub(1))
    )
}

fn parameter_schema(schema: Schema) -> Value {
    match schema {
        Schema::Id => json!({"$ref": "#/components/schemas/Id"}),
        Schema::PageId => json!({"$ref": "#/components/schemas/PageId"}),
        Schema::Limit { default, max } => {
            json!({"type": "integer", "minimum": 1, "maximum": max, "default": default})
        }
        Schema::Cursor => json!({"type": "string", "pattern": CURSOR_PATTERN}),
        Schema::Time => json!({"$ref": "#/components/schemas/Time"}),
        Schema::Enum(values) => json!({"type": "string", "enum": values}),
        Schema::Delta => {
            json!({"type": "integer", "minimum": 1, "maximum": MAX_SAFE, "default": 1})
        }
        Schema::Granularity => {
            json!({"type": "string", "enum": ["hour", "day"], "default": "day"})
        }
        Schema::BadgeLabel => json!({
            "type": "string",
            "maxLength": crate::embeds::badge::MAX_LABEL_CHARS,
            "pattern": no_control(0),
        }),
        Schema::Color => json!({"type": "string", "pattern": color_pattern()}),
        Schema::TopN => json!({"type": "string", "pattern": "^[0-9]*[1-9][0-9]*$"}),
        Schema::ImportFrom => json!({"type": "string", "pattern": import_from_pattern()}),
        Schema::ImportSource => json!({
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "pattern": no_control(1),
        }),
        Schema::Text => json!({"type": "string"}),
    }
}

/// The schemas the document's parameters and bodies share, each from the code's own
/// limits.
fn shared_schemas() -> Value {
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
    json!({
        "Id": {
            "type": "string",
            "pattern": UUID_PATTERN,
            "description": "a UUID (UUIDv7 when this service made it), hyphenated, any case",
        },
        "PageId": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_PAGE_ID_BYTES,
            "pattern": no_control(1),
            "description": format!("1 to {MAX_PAGE_ID_BYTES} bytes of UTF-8 without control characters, percent-encoded in a path"),
        },
        "Label": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_LABEL_CHARS,
            "pattern": not_blank(),
            "description": format!("1 to {MAX_LABEL_CHARS} characters, not blank, without control characters"),
        },
        "Value": {
            "type": "integer",
            "minimum": -MAX_SAFE,
            "maximum": MAX_SAFE,
            "description": "an integer exact in JavaScript",
        },
        "MaxDelta": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SAFE,
            "default": DEFAULT_MAX_DELTA,
        },
        "Time": {
            "type": "string",
            "pattern": time_pattern(),
            "description": "RFC 3339 (T, seconds, optional fraction, Z or an offset) or a date, 1970 to 9999",
        },
        "Origin": {
            "type": "string",
            "pattern": origin_pattern(),
            "description": "* or http(s)://host[:port]",
        },
        "Origins": {
            "type": ["array", "null"],
            "items": {"$ref": "#/components/schemas/Origin"},
            "maxItems": MAX_ALLOWED_ORIGINS,
            "description": "origins whose pages may call the public routes; null: CORS_ALLOWED_ORIGINS",
        },
        "Scope": {"type": "string", "enum": scopes},
        "GrantedScope": {
            "type": "string",
            "enum": scopes.iter().copied().chain(["admin"]).collect::<Vec<_>>(),
            "description": "admin: a managed administrator key",
        },
        "Scopes": {
            "type": ["array", "null"],
            "items": {"$ref": "#/components/schemas/Scope"},
            // As `NewCredential::parse` bounds the list: each scope at most twice over.
            "maxItems": Scope::ALL.len() * 2,
            "description": "default (absent or null): counter:read, counter:increment, counter:history; the answer lists them sorted, without duplicates",
        },
        "ErrorCode": {"type": "string", "enum": error_codes()},
    })
}

/// Every error code the service answers, from its one error type.
fn error_codes() -> Vec<&'static str> {
    let samples = [
        ApiError::TenantNotFound,
        ApiError::TenantLabelExists,
        ApiError::CounterNotFound,
        ApiError::CounterLabelExists,
        ApiError::PageNotFound,
        ApiError::CredentialNotFound,
        ApiError::PageLimitReached { limit: 0 },
        ApiError::RateLimitExceeded {
            retry_after_seconds: 0,
        },
        ApiError::Unauthorized,
        ApiError::Forbidden(String::new()),
        ApiError::InvalidJson(String::new()),
        ApiError::InvalidParameter(String::new()),
        ApiError::InvalidDelta(String::new()),
        ApiError::InvalidUuid(String::new()),
        ApiError::InvalidCursor,
        ApiError::DeltaExceedsMaximum { max_delta: 0 },
        ApiError::CounterOverflow,
        ApiError::IdempotencyKeyRequired,
        ApiError::InvalidIdempotencyKey,
        ApiError::IdempotencyKeyReused,
        ApiError::MethodNotAllowed { allow: Vec::new() },
        ApiError::PayloadTooLarge { limit: 0 },
        ApiError::InvalidImport {
            line: 0,
            reason: String::new(),
            applied: 0,
        },
        ApiError::NotFound,
        ApiError::UpstreamUnavailable { timeout: false },
        ApiError::Internal(String::new()),
    ];
    samples.iter().map(ApiError::code).collect()
}

/// The error answers, shared by reference.
fn responses() -> Value {
    let error = |description: &str| json!({"description": description, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut too_many = error(
        "RATE_LIMIT_EXCEEDED: the client's budget for this object, or a brake on a flooding client",
    );
    too_many["headers"] = json!({"Retry-After": {"required": true, "description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}});
    json!({
        "BadRequest": error("A malformed id, parameter, header or body: INVALID_UUID, INVALID_PARAMETER, INVALID_JSON, INVALID_DELTA, INVALID_CURSOR, DELTA_EXCEEDS_MAXIMUM, COUNTER_OVERFLOW, IDEMPOTENCY_KEY_REQUIRED, INVALID_IDEMPOTENCY_KEY, INVALID_IMPORT"),
        "Unauthorized": error("UNAUTHORIZED: no key where one is needed, or a presented key that is unknown, malformed, expired or revoked (on any route)"),
        "Forbidden": error("FORBIDDEN: the key lacks the scope or belongs to another tenant, or the Origin is not allowed; PAGE_LIMIT_REACHED"),
        "NotFound": error("TENANT_NOT_FOUND, COUNTER_NOT_FOUND, PAGE_NOT_FOUND, CREDENTIAL_NOT_FOUND, or NOT_FOUND"),
        "Conflict": error("TENANT_LABEL_EXISTS, COUNTER_LABEL_EXISTS, or IDEMPOTENCY_KEY_REUSED"),
        "PayloadTooLarge": error(&format!("PAYLOAD_TOO_LARGE: a body over {MAX_BODY_BYTES} bytes")),
        "TooManyRequests": too_many,
        "BadGateway": error("UPSTREAM_UNAVAILABLE: GitHub failed and no recent copy is cached, or its answer is too large"),
        "GatewayTimeout": error("UPSTREAM_UNAVAILABLE: GitHub did not answer in time and no recent copy is cached"),
    })
}

fn error_response(status: u16) -> Value {
    let name = match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        429 => "TooManyRequests",
        502 => "BadGateway",
        504 => "GatewayTimeout",
        304 => return json!({"description": "Not modified (a conditional request)"}),
        other => panic!("no error response for {other}"),
    };
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// The statuses an operation answers besides its success.
fn error_statuses(op: &Operation) -> Vec<u16> {
    let mut statuses = op.errors.to_vec();
    if op.kind == Kind::Worker {
        statuses.extend([401, 403, 429]);
    }
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// The response and body schemas, kept as JSON.
const SCHEMAS: &str = include_str!("openapi_schemas.json");

fn schemas() -> Value {
    let mut all: Value = serde_json::from_str(SCHEMAS).unwrap_or_default();
    if let (Some(all), Value::Object(shared)) = (all.as_object_mut(), shared_schemas()) {
        all.extend(shared);
    }
    all
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = match name {
                "tenant_id" | "counter_id" | "credential_id" => parameter_schema(Schema::Id),
                "page_id" => parameter_schema(Schema::PageId),
                "n" => parameter_schema(Schema::TopN),
                "field" => parameter_schema(Schema::Enum(&[
                    "forks",
                    "last_updated",
                    "open_issues",
                    "stars",
                ])),
                _ => parameter_schema(Schema::Text),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

fn parameter(location: &str, p: &Param) -> Value {
    let mut value = json!({
        "name": p.name,
        "in": location,
        "description": p.description,
        "schema": parameter_schema(p.schema),
    });
    if p.required {
        value["required"] = json!(true);
    }
    value
}

fn ok_response(op: &Operation) -> Value {
    let (_, schema, ctype) = op.ok;
    let mut ok = match (schema, ctype) {
        (_, "") => json!({"description": "Done"}),
        ("", ctype) => json!({"description": "OK", "content": {ctype: {}}}),
        (schema, ctype) => {
            json!({"description": "OK", "content": {ctype: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
        }
    };
    if op.counting {
        ok["headers"] = json!({
            "X-RateLimit-Limit": {"description": "the client's budget for this object per window (when budgets are on)", "schema": {"type": "integer", "minimum": 0}},
            "X-RateLimit-Remaining": {"description": "what is left of it", "schema": {"type": "integer", "minimum": 0}},
        });
    }
    if op.kind == Kind::Badge {
        ok["description"] = json!("The badge: always an image, errors included (an error badge says what is wrong and counts nothing)");
        ok["headers"] = json!({
            "X-Edgecount-Error": {"description": "the error code an error badge shows", "schema": {"$ref": "#/components/schemas/ErrorCode"}},
        });
    }
    ok
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut parameters = path_parameters(op.path);
        parameters.extend(op.query.iter().map(|p| parameter("query", p)));
        parameters.extend(op.headers.iter().map(|p| parameter("header", p)));
        let mut responses = Map::new();
        responses.insert(op.ok.0.to_string(), ok_response(op));
        if op.kind == Kind::Badge {
            responses.insert("304".into(), error_response(304));
        }
        for status in error_statuses(op) {
            responses.insert(status.to_string(), error_response(status));
        }
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(body) = op.body {
            let reference = json!({"$ref": format!("#/components/schemas/{}", body.schema)});
            let content = if body.schema == "Import" {
                json!({
                    "application/x-ndjson": {"schema": reference, "example": "{\"page\":\"/imported\",\"count\":12}\n{\"counter\":\"downloads\",\"count\":3}\n"},
                    "text/csv": {"schema": reference, "example": "page,count\n/imported,12\n"},
                })
            } else {
                json!({JSON: {"schema": reference}})
            };
            operation["requestBody"] = json!({"required": body.required, "content": content});
        }
        match op.auth {
            Auth::Public => {}
            Auth::Admin => {
                operation["security"] = json!([{"apiKey": []}, {"bearer": []}]);
                operation["description"] = json!("Needs an administrator key.");
            }
            Auth::Scope(scope) => {
                operation["security"] = json!([{"apiKey": []}, {"bearer": []}]);
                operation["description"] = json!(format!(
                    "Needs an administrator key or a key of this tenant with the scope {scope}."
                ));
                operation["x-required-scope"] = json!(scope);
            }
        }
        let entry = paths.entry(op.path).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "edgecount", "version": env!("CARGO_PKG_VERSION"), "description": "Counters for the edge: counters, page views, embeds and a GitHub cache."},
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "responses": responses(),
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::access::{Need, Scope};
    use crate::http::router::{resolve, Method};

    const SAMPLE_UUID: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";

    fn sample(path: &str) -> String {
        path.replace("{tenant_id}", SAMPLE_UUID)
            .replace("{counter_id}", "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6c")
            .replace("{page_id}", "%2Fposts%2Fhello")
            .replace("{n}", "3")
            .replace("{field}", "stars")
            .replace("{org}", "acme")
            .replace("{credential_id}", "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6d")
    }

    /// Operations answered by static assets, never by the Worker.
    const ASSETS: [&str; 2] = ["/openapi.json", "/embed.js"];

    #[test]
    fn the_served_document_is_the_built_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("public/openapi.json");
        let built = format!("{:#}\n", document());
        if std::env::var_os("EDGECOUNT_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &built).unwrap();
        }
        let served = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            served == built,
            "public/openapi.json is stale: run EDGECOUNT_UPDATE_OPENAPI=1 cargo test openapi"
        );
    }

    #[test]
    fn every_documented_operation_is_routed_to_itself() {
        for op in OPERATIONS.iter().filter(|op| !ASSETS.contains(&op.path)) {
            let method = Method::parse(&op.method.to_ascii_uppercase());
            let matched = resolve(&sample(op.path))
                .and_then(|r| r.select(method))
                .unwrap_or_else(|e| panic!("{} {}: {e}", op.method, op.path));
            let documented_as = operation_id(&matched.route);
            let need = match op.auth {
                Auth::Public => Need::Nothing,
                Auth::Admin => Need::Admin,
                Auth::Scope(name) => Need::Scope(Scope::parse(name).unwrap()),
            };
            assert_eq!(matched.access.need(), need, "{} {}", op.method, op.path);
            // Aliases document themselves apart but route to the same operation.
            assert!(
                op.id == documented_as || op.id.starts_with(documented_as),
                "{} {} routes to {documented_as}",
                op.method,
                op.path
            );
            use crate::http::router::Access;
            let badge = matched.access == Access::Badge;
            assert_eq!(badge, op.kind == Kind::Badge, "{} {}", op.method, op.path);
            let counting = matched.access == Access::Counting;
            assert_eq!(counting, op.counting, "{} {}", op.method, op.path);
        }
    }

    #[test]
    fn every_route_names_a_documented_operation() {
        let ids: Vec<&str> = OPERATIONS.iter().map(|o| o.id).collect();
        for path in [
            "/healthz",
            "/tenants",
            "/api/v1/counter",
            "/web-counter/increment",
            "/web-counter/",
            "/api/v1/visitor/getCounter",
            "/visit/x",
            "/visits/x",
            "/view/top/1/stars",
            "/orgs/acme",
            "/",
        ]
        .iter()
        .map(|p| p.to_string())
        .chain(
            OPERATIONS
                .iter()
                .filter(|o| !ASSETS.contains(&o.path))
                .map(|o| sample(o.path)),
        ) {
            let resource = resolve(&path).unwrap();
            for method in [Method::Get, Method::Post, Method::Patch, Method::Delete] {
                if let Ok(matched) = resource.clone().select(method) {
                    let id = operation_id(&matched.route);
                    assert!(ids.contains(&id), "{path}: {id} is not documented");
                }
            }
        }
    }

    #[test]
    fn the_schemas_parse() {
        assert!(serde_json::from_str::<Value>(SCHEMAS).is_ok());
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_schema_it_names() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        for (kind, marker) in [
            ("schemas", "#/components/schemas/"),
            ("responses", "#/components/responses/"),
        ] {
            for name in text
                .split(marker)
                .skip(1)
                .map(|s| s.split('"').next().unwrap_or(""))
            {
                assert!(
                    doc["components"][kind].get(name).is_some(),
                    "missing {kind} {name}"
                );
            }
        }
        assert_eq!(
            doc["paths"]["/tenants/{tenant_id}"]
                .as_object()
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn cursor_pattern_fits_the_cursors_issued() {
        use crate::domain::cursor::CursorKey;
        // CURSOR_PATTERN: 38 base64url characters, then one whose low bits are zero.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = "AEIMQUYcgkosw048";
        assert!(CURSOR_PATTERN.contains(last));
        let key = CursorKey::derive("secret");
        for n in 0..=255u8 {
            let cursor = key.encode(
                &uuid::Uuid::from_bytes([n; 16]),
                &uuid::Uuid::from_bytes([n.wrapping_mul(7); 16]),
            );
            assert_eq!(cursor.len(), 39, "{cursor}");
            assert!(cursor.chars().all(|c| alphabet.contains(c)), "{cursor}");
            assert!(last.contains(cursor.chars().last().unwrap()), "{cursor}");
        }
    }

    #[test]
    fn scopes_and_error_codes_come_from_the_code() {
        let doc = document();
        let scopes = doc["components"]["schemas"]["Scope"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(scopes.len(), Scope::ALL.len());
        assert!(!scopes.contains(&json!("admin")));
        let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap();
        assert!(codes.contains(&json!("RATE_LIMIT_EXCEEDED")));
    }
}
