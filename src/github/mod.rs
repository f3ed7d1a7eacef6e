//! The GitHub cache: a cron refresh keeps organisations' data in KV; requests are
//! answered from KV, from a short Cache API copy (proxied paths), or from upstream.

pub mod cache;
pub mod fetcher;
pub mod refresh;
pub mod single_flight;
pub mod upstream;
