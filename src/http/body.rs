//! Bodies read with a hard size limit: a client's request, or an upstream answer, can
//! never make the Worker buffer more than its limit allows.

use crate::error::{ApiError, ApiResult, OrInternal};
use futures_util::StreamExt;
use worker::{ByteStream, Request};

pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub async fn read_limited(req: &mut Request) -> ApiResult<Vec<u8>> {
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = req.headers().get("Content-Length").ok().flatten();
    if let Some(len) = declared {
        match len.trim().parse::<u64>() {
            Ok(n) if n > MAX_BODY_BYTES as u64 => return Err(too_large),
            Ok(_) => {}
            Err(_) => {
                return Err(ApiError::InvalidParameter(
                    "Content-Length is malformed".into(),
                ))
            }
        }
    }
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    collect_capped(&mut stream, MAX_BODY_BYTES)
        .await
        .or_internal("reading the request body")?
        .ok_or(too_large)
}

/// A stream's bytes, or `None` as soon as they pass `cap` (the rest is never read).
pub async fn collect_capped(
    stream: &mut ByteStream,
    cap: usize,
) -> worker::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
