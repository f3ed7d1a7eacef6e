//! Pure domain rules. Nothing here imports `worker`: every rule runs under native
//! `cargo test` in milliseconds, with time and randomness passed in as values.

pub mod access;
pub mod agent;
pub mod auth;
pub mod bot_patterns;
pub mod budget;
pub mod client;
pub mod cors;
pub mod counter;
pub mod credentials;
pub mod crypto;
pub mod cursor;
pub mod flush;
pub mod github;
pub mod history;
pub mod idempotency;
pub mod ids;
pub mod import_formats;
pub mod input;
pub mod ledger;
pub mod page;
pub mod sentry;
pub mod stats;
pub mod time;
pub mod transfer;
pub mod uniques;
pub mod views;
pub mod visit;
