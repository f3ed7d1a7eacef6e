//! Scheduled work, run by the cron trigger.

pub mod retention;
