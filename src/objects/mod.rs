//! Durable Object classes and how the Worker reaches them.

pub mod alarm;
pub mod batch;
pub mod counter;
pub mod counter_protocol;
pub mod counter_storage;
// The classes run in the edge Worker only; the annex builds without them.
#[cfg(not(feature = "annex"))]
pub mod page;
pub mod page_protocol;
pub mod page_storage;
pub mod salts;
pub mod schema;
pub mod transaction;
