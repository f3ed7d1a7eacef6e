//! An object's flush alarm, tracked in memory so the hot path never reads it: the
//! pending alarm is read once per object lifetime, then memory knows.

use crate::error::ApiResult;
use crate::http::respond::OrInternal;
use crate::platform::now_ms;
use std::cell::Cell;
use worker::Storage;

#[derive(Default)]
pub struct FlushAlarm {
    /// `None` until first needed in this object's lifetime.
    armed: Cell<Option<bool>>,
}

impl FlushAlarm {
    pub fn is_armed(&self) -> bool {
        self.armed.get() == Some(true)
    }

    /// The alarm is running: whatever it leaves undone must arm a new one.
    pub fn fired(&self) {
        self.armed.set(Some(false));
    }

    /// Makes sure an alarm fires within `interval_ms`.
    pub async fn ensure(&self, storage: &Storage, interval_ms: u64) -> ApiResult<()> {
        if self.armed.get().is_none() {
            // An alarm left by an earlier life of this object counts only if it is due
            // within the interval (the interval may have been shortened since).
            let due_by = (now_ms() + interval_ms) as i64;
            let pending = storage.get_alarm().await.or_internal("reading the alarm")?;
            self.armed.set(Some(pending.is_some_and(|at| at <= due_by)));
        }
        if self.is_armed() {
            return Ok(());
        }
        self.set_in(storage, interval_ms).await
    }

    pub async fn set_in(&self, storage: &Storage, delay_ms: u64) -> ApiResult<()> {
        self.armed.set(Some(true));
        storage
            .set_alarm(delay_ms as i64)
            .await
            .or_internal("arming the alarm")
    }
}
