//! A write batch: requests that change a counter while the batch is open share one
//! storage write, and so one commit. Each member waits for the batch's outcome before
//! answering. Pure (no `worker` import): a waker list and an outcome.

use crate::error::ApiError;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Batch {
    outcome: RefCell<Option<Result<(), ApiError>>>,
    waiting: RefCell<Vec<Waker>>,
}

impl Batch {
    pub fn open() -> Rc<Batch> {
        Rc::new(Batch::default())
    }

    /// Records how the batch's write went and wakes every member.
    pub fn finish(&self, outcome: Result<(), ApiError>) {
        *self.outcome.borrow_mut() = Some(outcome);
        for waker in self.waiting.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves once the batch is finished, with its outcome.
    pub fn wait(self: &Rc<Self>) -> BatchWait {
        BatchWait(self.clone())
    }
}

pub struct BatchWait(Rc<Batch>);

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
        let batch = Batch::open();
        *self.open.borrow_mut() = Some(batch.clone());
        gather.await;
        *self.open.borrow_mut() = None;
        let written = write();
        batch.finish(written.clone());
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

impl Future for BatchWait {
    type Output = Result<(), ApiError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(outcome) = self.0.outcome.borrow().as_ref() {
            return Poll::Ready(outcome.clone());
        }
        self.0.waiting.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn members_wait_for_the_outcome_and_all_are_woken() {
        let counter = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let batch = Batch::open();
        let mut a = batch.wait();
        let mut b = batch.wait();
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        batch.finish(Err(ApiError::internal("disk full")));
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(matches!(
            Pin::new(&mut a).poll(&mut cx),
            Poll::Ready(Err(ApiError::Internal(_)))
        ));
        let mut late = batch.wait();
        assert!(Pin::new(&mut late).poll(&mut cx).is_ready());
    }
}
