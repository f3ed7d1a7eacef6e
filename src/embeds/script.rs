//! The embed script, served at `/embed.js`. Its version is a hash of its text, so a
//! changed script gets a new ETag and caches can keep it for a long time.

use crate::domain::crypto::{hex, sha256};

pub const SOURCE: &str = include_str!("embed.js");

/// The script's ETag: the first 16 hex digits of its SHA-256.
pub fn etag() -> String {
    format!("\"{}\"", &hex(&sha256(SOURCE.as_bytes()))[..16])
}
