//! The OpenAPI 3.1 document, built from one table of operations. Tests tie the table
//! to the router both ways: every documented operation resolves to its route, and every
//! route variant names its documented operation (adding a variant without documenting it
//! does not compile). The document is served as a static asset, `public/openapi.json`:
//! a golden test keeps that file equal to what this module builds
//! (`EDGECOUNT_UPDATE_OPENAPI=1 cargo test openapi` writes it anew).

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

/// One documented operation. Query parameters are `name: description`.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    pub query: &'static [(&'static str, &'static str)],
    /// The request body's schema name, for operations that take JSON.
    pub body: Option<&'static str>,
    /// (status, schema name or "" for no body, content type).
    pub ok: (u16, &'static str, &'static str),
}

const JSON: &str = "application/json";

macro_rules! op {
    ($method:literal $path:literal $id:literal $auth:ident, $summary:literal, query $query:expr, body $body:expr, ok $status:literal $schema:literal $ctype:expr) => {
        op!(@ $method $path $id Auth::$auth, $summary, $query, $body, $status $schema $ctype)
    };
    ($method:literal $path:literal $id:literal scope $scope:literal, $summary:literal, query $query:expr, body $body:expr, ok $status:literal $schema:literal $ctype:expr) => {
        op!(@ $method $path $id Auth::Scope($scope), $summary, $query, $body, $status $schema $ctype)
    };
    (@ $method:literal $path:literal $id:literal $auth:expr, $summary:literal, $query:expr, $body:expr, $status:literal $schema:literal $ctype:expr) => {
        Operation {
            method: $method,
            path: $path,
            id: $id,
            summary: $summary,
            auth: $auth,
            query: $query,
            body: $body,
            ok: ($status, $schema, $ctype),
        }
    };
}

const PAGE: &[(&str, &str)] = &[
    ("limit", "1..=100, default 50"),
    ("cursor", "next_cursor of the previous page"),
];

pub const OPERATIONS: &[Operation] = &[
    op!("get" "/healthz" "health" Public, "Service health", query &[], body None, ok 200 "Health" JSON),
    op!("get" "/healthcheck" "healthcheck" Public, "Service health (GitHub cache clients)", query &[], body None, ok 200 "Health" JSON),
    op!("get" "/openapi.json" "openapi" Public, "This document", query &[], body None, ok 200 "" JSON),
    op!("post" "/tenants" "createTenant" Admin, "Create a tenant", query &[], body Some("NewTenant"), ok 201 "Tenant" JSON),
    op!("get" "/tenants/{tenant_id}" "getTenant" Public, "Read a tenant", query &[], body None, ok 200 "Tenant" JSON),
    op!("patch" "/tenants/{tenant_id}" "updateTenant" Admin, "Change a tenant's label or settings", query &[], body Some("TenantChanges"), ok 200 "Tenant" JSON),
    op!("post" "/tenants/{tenant_id}" "createCounter" scope "counter:create", "Create a counter", query &[], body Some("NewCounter"), ok 201 "Counter" JSON),
    op!("post" "/tenants/{tenant_id}/counters" "createCounterAlias" scope "counter:create", "Create a counter (alias)", query &[], body Some("NewCounter"), ok 201 "Counter" JSON),
    op!("get" "/tenants/{tenant_id}/counters" "listCounters" scope "counter:read", "List a tenant's counters", query &[("limit", "1..=100, default 20"), ("cursor", "next_cursor of the previous page")], body None, ok 200 "CounterPage" JSON),
    op!("get" "/tenants/{tenant_id}/{counter_id}" "getCounter" Public, "Read a counter", query &[], body None, ok 200 "Counter" JSON),
    op!("get" "/tenants/{tenant_id}/counters/{counter_id}" "getCounterAlias" Public, "Read a counter (alias)", query &[], body None, ok 200 "Counter" JSON),
    op!("post" "/tenants/{tenant_id}/{counter_id}/inc" "increment" Public, "Increment a counter (Idempotency-Key optional)", query &[("delta", "positive integer <= max_delta, default 1")], body None, ok 200 "Mutation" JSON),
    op!("post" "/tenants/{tenant_id}/counters/{counter_id}/inc" "incrementAlias" Public, "Increment a counter (alias)", query &[("delta", "positive integer <= max_delta, default 1")], body None, ok 200 "Mutation" JSON),
    op!("post" "/tenants/{tenant_id}/counters/{counter_id}/set" "setValue" scope "counter:adjust", "Set a counter's value", query &[], body Some("NewValue"), ok 200 "Mutation" JSON),
    op!("get" "/tenants/{tenant_id}/{counter_id}/badge.svg" "counterBadge" Public, "A counter's SVG badge", query &[("label", "text"), ("color", "name or hex"), ("label_color", "name or hex"), ("style", "flat | flat-square | for-the-badge"), ("format", "full | short"), ("inc", "1: increment first")], body None, ok 200 "" "image/svg+xml"),
    op!("get" "/tenants/{tenant_id}/counters/{counter_id}/badge.svg" "counterBadgeAlias" Public, "A counter's SVG badge (alias)", query &[("label", "text"), ("color", "name or hex"), ("label_color", "name or hex"), ("style", "flat | flat-square | for-the-badge"), ("format", "full | short"), ("inc", "1: increment first")], body None, ok 200 "" "image/svg+xml"),
    op!("post" "/tenants/{tenant_id}/pages/{page_id}/visit" "visit" Public, "Count a visit", query &[("referrer", "where the visitor came from (a URL; empty: nowhere); without it the Referer header says")], body None, ok 200 "Visit" JSON),
    op!("get" "/tenants/{tenant_id}/pages/{page_id}" "getPage" Public, "Read a page's count", query &[], body None, ok 200 "Page" JSON),
    op!("delete" "/tenants/{tenant_id}/pages/{page_id}" "deletePage" Admin, "Delete a page with its visit log and history", query &[], body None, ok 204 "" ""),
    op!("get" "/tenants/{tenant_id}/stats" "stats" scope "tenant:read", "A site's visits, visitors, series and top lists over a range, from rollups", query &[("from", "RFC 3339 or date"), ("to", "RFC 3339 or date"), ("granularity", "hour | day"), ("limit", "top list length, 1-100, default 10"), ("page", "narrow everything to one page id")], body None, ok 200 "Stats" JSON),
    op!("get" "/tenants/{tenant_id}/export" "exportTenant" scope "tenant:export", "The tenant as NDJSON (docs/export-format.md), streamed: settings, counters with their ledgers, pages, daily totals, stats rollups", query &[("visits", "1: include the visit log")], body None, ok 200 "" "application/x-ndjson"),
    op!("post" "/tenants/{tenant_id}/import" "importTenant" Admin, "Import an edgecount export, a GoatCounter or Plausible CSV export, or page/counter count lines (NDJSON or CSV body), idempotently", query &[("dry_run", "1: check every line, change nothing"), ("from", "the data line this body's first is (1 + a multiple of 1,000), for files sent in parts"), ("source", "recorded in imported counter operations' metadata")], body None, ok 200 "ImportReport" JSON),
    op!("get" "/tenants/{tenant_id}/pages/{page_id}/history" "pageHistory" Public, "A page's visits by hour or day", query &[("from", "RFC 3339 or date"), ("to", "RFC 3339 or date"), ("granularity", "hour | day")], body None, ok 200 "History" JSON),
    op!("get" "/tenants/{tenant_id}/pages/{page_id}/badge.svg" "pageBadge" Public, "A page's SVG badge", query &[("label", "text"), ("color", "name or hex"), ("label_color", "name or hex"), ("style", "flat | flat-square | for-the-badge"), ("format", "full | short"), ("inc", "1: count a visit first")], body None, ok 200 "" "image/svg+xml"),
    op!("get" "/embed.js" "embedScript" Public, "The embed script", query &[], body None, ok 200 "" "text/javascript"),
    op!("post" "/api/v1/counter" "legacyCounterIncrement" Public, "Migration: increment the default counter", query &[], body None, ok 204 "" ""),
    op!("get" "/api/v1/counter" "legacyCounterRead" Public, "Migration: read the default counter", query &[], body None, ok 200 "LegacyCount" JSON),
    op!("get" "/web-counter/increment" "webCounterIncrement" Public, "Migration: count a visit on web-counter", query &[], body None, ok 200 "" "text/plain"),
    op!("post" "/web-counter/increment" "webCounterIncrementPost" Public, "Migration: count a visit on web-counter", query &[], body None, ok 200 "" "text/plain"),
    op!("get" "/web-counter/" "webCounterRead" Public, "Migration: read web-counter", query &[], body None, ok 200 "" "text/plain"),
    op!("get" "/api/v1/visitor/getCounter" "visitorGetCounter" Public, "Migration: read web-counter", query &[], body None, ok 200 "" "text/plain"),
    op!("post" "/visit/{page_id}" "legacyVisit" Public, "Migration: count a visit", query &[], body None, ok 200 "LegacyVisit" JSON),
    op!("get" "/visits/{page_id}" "legacyVisits" Public, "Migration: read a page", query &[], body None, ok 200 "LegacyVisits" JSON),
    op!("post" "/v2/tenants/{tenant_id}/counters/{counter_id}/inc" "v2Increment" scope "counter:increment", "Increment a counter (Idempotency-Key required)", query &[("delta", "positive integer <= max_delta, default 1")], body None, ok 200 "Mutation" JSON),
    op!("post" "/v2/tenants/{tenant_id}/counters/{counter_id}/set" "v2Set" scope "counter:adjust", "Set a counter's value (Idempotency-Key required)", query &[], body Some("NewValue"), ok 200 "Mutation" JSON),
    op!("get" "/v2/tenants/{tenant_id}/counters/{counter_id}" "v2GetCounter" scope "counter:read", "Read a counter", query &[], body None, ok 200 "Counter" JSON),
    op!("get" "/v2/tenants/{tenant_id}/counters/{counter_id}/operations" "operations" scope "counter:history", "A counter's operations, newest first", query PAGE, body None, ok 200 "OperationPage" JSON),
    op!("post" "/v2/tenants/{tenant_id}/credentials" "createCredential" Admin, "Issue a tenant key (shown once)", query &[], body Some("NewCredential"), ok 201 "IssuedCredential" JSON),
    op!("get" "/v2/tenants/{tenant_id}/credentials" "listCredentials" Admin, "A tenant's keys, never their secrets", query &[], body None, ok 200 "CredentialList" JSON),
    op!("post" "/v2/tenants/{tenant_id}/credentials/{credential_id}/rotate" "rotateCredential" Admin, "A new key with the same scopes and expiry; the old one stays valid until revoked", query &[], body None, ok 201 "IssuedCredential" JSON),
    op!("post" "/v2/tenants/{tenant_id}/credentials/{credential_id}/revoke" "revokeCredential" Admin, "Revoke a key (everywhere within 60 s)", query &[], body None, ok 204 "" ""),
    op!("post" "/v2/admin/credentials" "createCredentialAdmin" Admin, "Issue a managed administrator key (shown once)", query &[], body Some("NewAdminCredential"), ok 201 "IssuedCredential" JSON),
    op!("post" "/v2/admin/credentials/{credential_id}/rotate" "rotateCredentialAdmin" Admin, "Rotate a managed administrator key", query &[], body None, ok 201 "IssuedCredential" JSON),
    op!("post" "/v2/admin/credentials/{credential_id}/revoke" "revokeCredentialAdmin" Admin, "Revoke a managed administrator key", query &[], body None, ok 204 "" ""),
    op!("get" "/v2/admin/reconcile" "reconcile" Admin, "Every counter's ledger against its value", query &[("limit", "1..=50, default 20"), ("cursor", "next_cursor of the previous page")], body None, ok 200 "Reconciliation" JSON),
    op!("get" "/view/top/{n}/{field}" "githubView" Public, "Top N repositories of an org by a field", query &[("org", "required when several orgs are configured")], body None, ok 200 "" JSON),
    op!("get" "/orgs/{org}" "githubPath" Public, "GitHub API paths: cached (/, /orgs/{org}, members, repos) or proxied (other GET paths the proxy allows; the token's own account and private areas are 404)", query &[], body None, ok 200 "" JSON),
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

/// The response and body schemas, kept as JSON: data, not code, in the bundle.
const SCHEMAS: &str = include_str!("openapi_schemas.json");

fn schemas() -> Value {
    serde_json::from_str(SCHEMAS).unwrap_or_default()
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut parameters = path_parameters(op.path);
        parameters.extend(
            op.query.iter().map(|(name, d)| json!({"name": name, "in": "query", "description": d, "schema": {"type": "string"}})),
        );
        let (status, schema, ctype) = op.ok;
        let ok = match (schema, ctype) {
            (_, "") => json!({"description": "Done"}),
            ("", ctype) => json!({"description": "OK", "content": {ctype: {}}}),
            (schema, ctype) => {
                json!({"description": "OK", "content": {ctype: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
            }
        };
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "parameters": parameters,
            "responses": {
                status.to_string(): ok,
                "4XX": {"description": "A contract error", "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if let Some(body) = op.body {
            operation["requestBody"] = json!({"required": true, "content": {JSON: {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
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
        for name in text
            .split("#/components/schemas/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap_or(""))
        {
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "missing schema {name}"
            );
        }
        assert_eq!(
            doc["paths"]["/tenants/{tenant_id}"]
                .as_object()
                .unwrap()
                .len(),
            3
        );
    }
}
