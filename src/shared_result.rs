//! One result, many waiters: whoever does a piece of work sets its result, and every
//! request awaiting it gets a copy. Write batches and single flights are built on it.
//! Pure (no `worker` import). Only shared within one Durable Object or one request: a
//! plain Worker request must not await another request's work.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

pub struct SharedResult<V> {
    value: RefCell<Option<V>>,
    waiting: RefCell<Vec<Waker>>,
}

impl<V: Clone> SharedResult<V> {
    pub fn new() -> Rc<Self> {
        Rc::new(SharedResult {
            value: RefCell::new(None),
            waiting: RefCell::new(Vec::new()),
        })
    }

    /// Records the result and wakes every waiter.
    pub fn set(&self, value: V) {
        *self.value.borrow_mut() = Some(value);
        for waker in self.waiting.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves once the result is set, with a copy of it.
    pub fn wait(self: &Rc<Self>) -> Wait<V> {
        Wait(self.clone())
    }
}

pub struct Wait<V>(Rc<SharedResult<V>>);

impl<V: Clone> Future for Wait<V> {
    type Output = V;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<V> {
        if let Some(value) = self.0.value.borrow().as_ref() {
            return Poll::Ready(value.clone());
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
    fn waiters_get_the_result_and_all_are_woken() {
        let counter = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let shared = SharedResult::<Result<(), String>>::new();
        let mut a = shared.wait();
        let mut b = shared.wait();
        assert!(Pin::new(&mut a).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut b).poll(&mut cx).is_pending());
        shared.set(Err("disk full".into()));
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert_eq!(
            Pin::new(&mut a).poll(&mut cx),
            Poll::Ready(Err("disk full".into()))
        );
        let mut late = shared.wait();
        assert!(Pin::new(&mut late).poll(&mut cx).is_ready());
    }
}
