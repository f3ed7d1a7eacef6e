//! Scheduled work, run by the cron trigger.

pub mod backup;
pub mod retention;
