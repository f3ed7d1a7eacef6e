//! Embeds: `/embed.js` and the counter and page badges.

use crate::domain::counter::Delta;
use crate::domain::crypto::{hex, sha256};
use crate::domain::ids::{CounterId, TenantId};
use crate::domain::page::PageId;
use crate::embeds::badge::{check_label, format_count, parse_color, Badge, Style};
use crate::embeds::script;
use crate::error::{ApiError, ApiResult};
use crate::http::context::Ctx;
use crate::http::respond::OrInternal;
use crate::objects::counter_protocol::CounterCall;
use crate::routes::counters::call_object;
use crate::routes::pages::{read_page, record_visit};
use worker::{Headers, Response};

pub fn script(ctx: &mut Ctx<'_>) -> ApiResult<Response> {
    let etag = script::etag();
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).or_internal("answering");
    set("Content-Type", "text/javascript; charset=utf-8")?;
    // A day in every cache, then a cheap revalidation by ETag picks up a new version.
    set(
        "Cache-Control",
        "public, max-age=86400, stale-while-revalidate=604800",
    )?;
    set("ETag", &etag)?;
    set("Access-Control-Allow-Origin", "*")?;
    if ctx.header("If-None-Match").as_deref() == Some(etag.as_str()) {
        return Ok(Response::empty()
            .or_internal("answering")?
            .with_status(304)
            .with_headers(headers));
    }
    Ok(Response::ok(script::SOURCE)
        .or_internal("answering")?
        .with_headers(headers))
}

pub async fn counter_badge(
    ctx: &mut Ctx<'_>,
    tenant: TenantId,
    counter: CounterId,
) -> ApiResult<Response> {
    let increment = wants_increment(ctx)?;
    let call = if increment {
        CounterCall::Increment {
            tenant,
            delta: Delta::ONE,
            key: None,
        }
    } else {
        CounterCall::Read { tenant }
    };
    let mut answer = call_object(ctx.env, counter, &call).await?;
    let text = answer.text().await.or_internal("reading a counter")?;
    let json: serde_json::Value = serde_json::from_str(&text).or_internal("decoding a counter")?;
    if answer.status_code() != 200 {
        let code = json["errors"][0]["code"].as_str().unwrap_or_default();
        return Err(match code {
            "COUNTER_NOT_FOUND" => ApiError::CounterNotFound,
            "TENANT_NOT_FOUND" => ApiError::TenantNotFound,
            "COUNTER_OVERFLOW" => ApiError::CounterOverflow,
            "DELTA_EXCEEDS_MAXIMUM" => ApiError::DeltaExceedsMaximum {
                max_delta: json_i64(&json["max_delta"]),
            },
            _ => ApiError::Internal(format!("counter answered {}: {text}", answer.status_code())),
        });
    }
    let value = json_i64(&json["value"]);
    // An increment's answer has no label; the default label then is "count".
    let label = json["label"].as_str().unwrap_or("count").to_string();
    badge(ctx, &label, value, increment)
}

pub async fn page_badge(ctx: &mut Ctx<'_>, tenant: TenantId, page: PageId) -> ApiResult<Response> {
    let increment = wants_increment(ctx)?;
    let count = if increment {
        record_visit(ctx, &tenant, &page).await?.count
    } else {
        match read_page(ctx.env, &tenant, &page).await {
            Ok(answer) => answer.count,
            Err(ApiError::PageNotFound) => 0,
            Err(e) => return Err(e),
        }
    };
    badge(
        ctx,
        "views",
        i64::try_from(count).unwrap_or(i64::MAX),
        increment,
    )
}

fn json_i64(v: &serde_json::Value) -> i64 {
    v.as_i64().unwrap_or_default()
}

fn wants_increment(ctx: &Ctx<'_>) -> ApiResult<bool> {
    match ctx.query("inc")?.as_deref() {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(_) => Err(ApiError::InvalidParameter("inc must be 1 or 0".into())),
    }
}

fn badge(ctx: &Ctx<'_>, default_label: &str, value: i64, counted: bool) -> ApiResult<Response> {
    let label = check_label(ctx.query("label")?.as_deref().unwrap_or(default_label))?;
    let color = parse_color(ctx.query("color")?.as_deref().unwrap_or("brightgreen"))?;
    let label_color = parse_color(ctx.query("label_color")?.as_deref().unwrap_or("grey"))?;
    let style = Style::parse(ctx.query("style")?.as_deref())?;
    let short = match ctx.query("format")?.as_deref() {
        None | Some("full") => false,
        Some("short") => true,
        Some(_) => {
            return Err(ApiError::InvalidParameter(
                "format must be short or full".into(),
            ))
        }
    };
    let value = format_count(value, short);
    let svg = Badge {
        label: &label,
        value: &value,
        color: &color,
        label_color: &label_color,
        style,
    }
    .render();
    let etag = format!("\"{}\"", &hex(&sha256(svg.as_bytes()))[..16]);
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).or_internal("answering");
    set("Content-Type", "image/svg+xml; charset=utf-8")?;
    // Browsers and image proxies (GitHub's camo among them) must ask every time.
    set("Cache-Control", "no-cache, no-store, must-revalidate")?;
    set("Pragma", "no-cache")?;
    set("Expires", "0")?;
    set("ETag", &etag)?;
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
