//! Embeds: the counter and page badges. (`/embed.js` is a static asset, `public/`.)

use crate::domain::client::ClientKey;
use crate::domain::cors::referer_origin;
use crate::domain::counter::Delta;
use crate::domain::crypto::{hex, sha256};
use crate::domain::ids::{CounterId, TenantId};
use crate::domain::page::PageId;
use crate::embeds::badge::{error_text, format_count, Badge, BadgeOptions, Style};
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::http::context::Ctx;
use crate::http::tenant_origins;
use crate::objects::counter_protocol::{CounterCall, Shown};
use crate::platform::to_upper;
use crate::routes::counters::call_object;
use crate::routes::pages::{read_page, record_visit};
use worker::{Headers, Response};

pub async fn counter_badge(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    counter: CounterId,
) -> ApiResult<Response> {
    let options = match badge_options(ctx) {
        Ok(options) => options,
        Err(e) => return error_badge(&e),
    };
    if ctx.braked {
        return braked_badge(&options, "count");
    }
    let call = match counting_client(ctx, &tenant, &options).await {
        Some(client) => CounterCall::Increment {
            tenant,
            delta: Delta::ONE,
            key: None,
            client: Some(client),
            view: true,
            actor: ctx.actor(),
        },
        None => CounterCall::Read { tenant },
    };
    let counted = matches!(call, CounterCall::Increment { .. });
    let (label, value, refused) = match counter_shown(ctx, counter, &call).await {
        Ok(shown) => shown,
        Err(e) => {
            ctx.refused = true;
            return error_badge(&e);
        }
    };
    ctx.refused = refused;
    badge(
        ctx,
        &options,
        options.label.as_deref().unwrap_or(&label),
        value,
        counted,
    )
}

/// A counter's label and value, after the increment if the call makes one, and whether
/// the client's budget refused it (the object then shows the value without counting).
async fn counter_shown(
    ctx: &Ctx<'_>,
    counter: CounterId,
    call: &CounterCall,
) -> ApiResult<(String, i64, bool)> {
    let mut answer = call_object(ctx.env, counter, call).await?;
    let status = answer.status_code();
    let refused = crate::http::respond::budget_of(&answer).is_some_and(|d| !d.allowed);
    let text = answer.text().await.or_internal("reading a counter")?;
    if status != 200 {
        return Err(ApiError::from_answer(status, &text));
    }
    let shown = Shown::from_answer(&text)
        .ok_or_else(|| ApiError::internal("a counter answer that does not parse"))?;
    Ok((
        shown.label.unwrap_or_else(|| "count".into()),
        shown.value,
        refused,
    ))
}

pub async fn page_badge(ctx: &mut Ctx<'_>, tenant: TenantId, page: PageId) -> ApiResult<Response> {
    let options = match badge_options(ctx) {
        Ok(options) => options,
        Err(e) => return error_badge(&e),
    };
    if ctx.braked {
        return braked_badge(&options, "views");
    }
    let counting = counting_client(ctx, &tenant, &options).await.is_some();
    let visited = if counting {
        match record_visit(ctx, &tenant, &page, false).await {
            Ok(visited) => {
                ctx.refused = visited.budget.is_some_and(|d| !d.allowed);
                Some(visited.answer.count)
            }
            // Over the tenant's hourly page creations: shown, not created.
            Err(ApiError::RateLimitExceeded { .. }) => {
                ctx.refused = true;
                None
            }
            Err(e) => {
                ctx.refused = true;
                return error_badge(&e);
            }
        }
    } else {
        None
    };
    let count = match visited {
        Some(count) => count,
        None => match read_page(ctx.env, &tenant, &page).await {
            Ok(answer) => answer.count,
            Err(ApiError::PageNotFound) => {
                ctx.refused = true;
                0
            }
            Err(e) => {
                ctx.refused = true;
                return error_badge(&e);
            }
        },
    };
    let value = i64::try_from(count).unwrap_or(i64::MAX);
    badge(
        ctx,
        &options,
        options.label.as_deref().unwrap_or("views"),
        value,
        counting,
    )
}

fn badge_options(ctx: &Ctx<'_>) -> ApiResult<BadgeOptions> {
    BadgeOptions::parse(|name| ctx.query(name))
}

/// Whose budget a counting badge spends, or `None` when this request must not count:
/// no `inc=1`, a `HEAD`, or a `Referer` from a site outside the tenant's allowed origins
/// (an `<img>` sends no `Origin`, so the page that embeds it is known only from there).
/// GitHub's image proxy, which fetches for every reader from one address, shares one
/// budget per badge.
async fn counting_client(
    ctx: &Ctx<'_>,
    tenant: &TenantId,
    options: &BadgeOptions,
) -> Option<ClientKey> {
    if !options.increment || ctx.head {
        return None;
    }
    if let Some(origin) = ctx.header("Referer").as_deref().and_then(referer_origin) {
        let allowed = match tenant_origins::of(ctx.env, tenant, &ctx.client).await {
            Ok(Some(list)) => list.allows(&origin),
            Ok(None) => ctx.config.cors.allows(&origin),
            // Braked: this client is flooding; show, do not count.
            Err(_) => false,
        };
        if !allowed {
            return None;
        }
    }
    Some(ctx.budget_client(ctx.salt().await.as_deref()))
}

/// A badge for a client whose count brake is on: drawn without asking any object, so a
/// flood of badge requests costs nothing behind the Worker. The value is unknown here.
fn braked_badge(options: &BadgeOptions, default_label: &str) -> ApiResult<Response> {
    let svg = draw(
        options,
        options.label.as_deref().unwrap_or(default_label),
        "…",
    );
    let headers = svg_headers()?;
    headers.set("Retry-After", "60").or_internal("answering")?;
    Ok(Response::ok(svg)
        .or_internal("answering")?
        .with_headers(headers))
}

/// A badge that says what went wrong. Still an image with status 200: image proxies
/// (GitHub's among them) show nothing at all for an error status.
pub fn error_badge(error: &ApiError) -> ApiResult<Response> {
    if let ApiError::Internal(detail) = error {
        crate::http::log::failure("badge", detail);
    }
    let svg = Badge {
        label: "edgecount",
        value: error_text(error.code()),
        color: "#e05d44",
        label_color: "#555",
        style: Style::Flat,
    }
    .render();
    let headers = svg_headers()?;
    headers
        .set("X-Edgecount-Error", error.code())
        .or_internal("answering")?;
    Ok(Response::ok(svg)
        .or_internal("answering")?
        .with_headers(headers))
}

/// The badge's SVG, in the options' colours and style (`for-the-badge` in capitals).
fn draw(options: &BadgeOptions, label: &str, value: &str) -> String {
    let (label, value) = match options.style {
        Style::ForTheBadge => (to_upper(label), to_upper(value)),
        _ => (label.to_string(), value.to_string()),
    };
    Badge {
        label: &label,
        value: &value,
        color: &options.color,
        label_color: &options.label_color,
        style: options.style,
    }
    .render()
}

fn svg_headers() -> ApiResult<Headers> {
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).or_internal("answering");
    set("Content-Type", "image/svg+xml; charset=utf-8")?;
    // Browsers and image proxies (GitHub's camo among them) must ask every time.
    set("Cache-Control", "no-cache, no-store, must-revalidate")?;
    set("Pragma", "no-cache")?;
    set("Expires", "0")?;
    Ok(headers)
}

fn badge(
    ctx: &Ctx<'_>,
    options: &BadgeOptions,
    label: &str,
    value: i64,
    counted: bool,
) -> ApiResult<Response> {
    let svg = draw(options, label, &format_count(value, options.short));
    let etag = format!("\"{}\"", &hex(&sha256(svg.as_bytes()))[..16]);
    let headers = svg_headers()?;
    headers.set("ETag", &etag).or_internal("answering")?;
    if !counted && ctx.header("If-None-Match").as_deref() == Some(etag.as_str()) {
        return Ok(Response::empty()
            .or_internal("answering")?
            .with_status(304)
            .with_headers(headers));
    }
    Ok(Response::ok(svg)
        .or_internal("answering")?
        .with_headers(headers))
}
