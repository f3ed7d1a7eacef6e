//! All-or-nothing writes: the runtime's `transactionSync` for SQLite-backed objects, which
//! workers-rs does not wrap. A write batch runs inside it, so either every row of the
//! batch is stored or none is — storage can never run ahead of what the object
//! acknowledged, or of its memory.

use crate::error::{ApiError, ApiResult};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use worker::js_sys::Function;
use worker::Storage;

#[wasm_bindgen]
extern "C" {
    /// An object's storage, seen only for the method workers-rs leaves out.
    type TransactionalStorage;

    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(this: &TransactionalStorage, run: &Function) -> Result<JsValue, JsValue>;
}

/// Runs `write` in one storage transaction: when it fails, everything it wrote is rolled
/// back and its error returned.
pub fn atomically(
    storage: &Storage,
    write: impl FnOnce() -> ApiResult<()> + 'static,
) -> ApiResult<()> {
    let failure: Rc<RefCell<Option<ApiError>>> = Rc::default();
    let record = failure.clone();
    let run = Closure::<dyn FnMut() -> Result<(), JsValue>>::once_assert_unwind_safe(move || {
        write().map_err(|e| {
            let thrown = JsValue::from_str(e.code());
            *record.borrow_mut() = Some(e);
            // Throwing is what makes the runtime roll the transaction back.
            thrown
        })
    });
    let raw: &TransactionalStorage = storage.as_raw().unchecked_ref();
    let outcome = raw.transaction_sync(run.as_ref().unchecked_ref());
    drop(run);
    let failed = failure.borrow_mut().take();
    match (outcome, failed) {
        (_, Some(e)) => Err(e),
        (Err(thrown), None) => Err(ApiError::Internal(format!(
            "storage transaction: {thrown:?}"
        ))),
        (Ok(_), None) => Ok(()),
    }
}
