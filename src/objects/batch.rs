//! A write batch: requests that change an object's state while the batch is open share
//! one storage write, and so one commit. Each member waits for the batch's outcome
//! before answering. Pure (no `worker` import).

use crate::error::ApiError;
use crate::shared_result::SharedResult;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

type Batch = SharedResult<Result<(), ApiError>>;

/// An object's write batching: at most one batch is open at a time.
#[derive(Default)]
pub struct BatchWriter {
    open: RefCell<Option<Rc<Batch>>>,
}

impl BatchWriter {
    /// Joins the open batch, or opens one: the leader awaits `gather` (a yield that lets
    /// requests already waiting at the object join), closes the batch and runs `write`.
    /// Every member gets the write's outcome. True for the leader.
    pub async fn join(
        &self,
        gather: impl Future<Output = ()>,
        write: impl FnOnce() -> Result<(), ApiError>,
    ) -> Result<bool, ApiError> {
        let open = self.open.borrow().clone();
        if let Some(batch) = open {
            return batch.wait().await.map(|()| false);
        }
        let batch = Batch::new();
        *self.open.borrow_mut() = Some(batch.clone());
        gather.await;
        *self.open.borrow_mut() = None;
        let written = write();
        batch.set(written.clone());
        written.map(|()| true)
    }

    /// Waits for the open batch, if any: an answer that may show its changes must not
    /// leave before they are written.
    pub async fn settled(&self) -> Result<(), ApiError> {
        let open = self.open.borrow().clone();
        match open {
            Some(batch) => batch.wait().await,
            None => Ok(()),
        }
    }
}
