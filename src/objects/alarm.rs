//! An object's one alarm, tracked in memory so the hot path never reads it: the pending
//! alarm is read once per object lifetime, then memory knows when it is due. Every kind
//! of work asks for the alarm to fire *by* its due time (`domain::flush::must_arm`); the
//! alarm only ever moves earlier, so a chore due in two days cannot starve a flush due in
//! two seconds.

use crate::domain::flush::must_arm;
use crate::error::{ApiError, ApiResult, OrInternal};
use std::cell::Cell;
use worker::js_sys;
use worker::wasm_bindgen::JsValue;
use worker::{ScheduledTime, Storage};

#[derive(Default)]
pub struct Alarm {
    /// `None` until known in this object's lifetime; then when the alarm is due, if armed.
    due: Cell<Option<Option<u64>>>,
}

impl Alarm {
    /// Whether an alarm is known to be armed.
    pub fn is_armed(&self) -> bool {
        matches!(self.due.get(), Some(Some(_)))
    }

    /// The alarm is running: nothing is armed until its work arms again.
    pub fn fired(&self) {
        self.due.set(Some(None));
    }

    /// Makes sure an alarm fires by `due_ms` (Unix milliseconds).
    pub async fn ensure_by(&self, storage: &Storage, due_ms: u64) -> ApiResult<()> {
        self.ensure_by_or_fail(storage, due_ms, false).await
    }

    /// `ensure_by`, failing as storage might when `fail` (the tests' injected fault).
    pub async fn ensure_by_or_fail(
        &self,
        storage: &Storage,
        due_ms: u64,
        fail: bool,
    ) -> ApiResult<()> {
        if fail {
            self.due.set(None);
            return Err(ApiError::internal("injected fault: arming the alarm"));
        }
        let armed = match self.due.get() {
            Some(known) => known,
            None => {
                let pending = storage.get_alarm().await.or_internal("reading the alarm")?;
                let known = pending.map(|at| at.max(0) as u64);
                self.due.set(Some(known));
                known
            }
        };
        if !must_arm(armed, due_ms) {
            return Ok(());
        }
        self.due.set(Some(Some(due_ms)));
        let set = storage
            .set_alarm(ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(
                due_ms as f64,
            ))))
            .await
            .or_internal("arming the alarm");
        if set.is_err() {
            // Unknown again: the next request reads the truth instead of trusting memory.
            self.due.set(None);
        }
        set
    }
}
