//! Request bodies, read with a hard size limit so no client can make the Worker buffer
//! more than the contract allows.

use crate::error::{ApiError, ApiResult};
use crate::http::respond::OrInternal;
use futures_util::StreamExt;
use worker::Request;

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
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.or_internal("reading the request body")?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
