//! Concurrent requests for the same key share one piece of work: the first runs it, the
//! rest wait for its result. Pure (no `worker` import).

use crate::shared_result::SharedResult;
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

pub struct SingleFlight<V> {
    flights: RefCell<HashMap<String, Rc<SharedResult<V>>>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        SingleFlight {
            flights: RefCell::new(HashMap::new()),
        }
    }
}

impl<V: Clone> SingleFlight<V> {
    /// Runs `work` unless a flight for `key` is under way; either way, its result.
    pub async fn run<F: Future<Output = V>>(&self, key: &str, work: impl FnOnce() -> F) -> V {
        let existing = self.flights.borrow().get(key).cloned();
        if let Some(flight) = existing {
            return flight.wait().await;
        }
        let flight = SharedResult::new();
        self.flights
            .borrow_mut()
            .insert(key.to_string(), flight.clone());
        let result = work().await;
        self.flights.borrow_mut().remove(key);
        flight.set(result.clone());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::Wake;
    use std::task::{Context, Poll, Waker};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    /// A future that stays pending until its gate opens.
    struct Gate(Rc<Cell<bool>>);
    impl Future for Gate {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.0.get() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn concurrent_callers_share_one_run() {
        let flights = SingleFlight::<u32>::default();
        let runs = Cell::new(0);
        let gate = Rc::new(Cell::new(false));
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        let work = || {
            runs.set(runs.get() + 1);
            let gate = Gate(gate.clone());
            async move {
                gate.await;
                7
            }
        };
        let mut first = Box::pin(flights.run("k", work));
        let mut second = Box::pin(flights.run("k", work));
        assert!(first.as_mut().poll(&mut cx).is_pending());
        assert!(second.as_mut().poll(&mut cx).is_pending());
        gate.set(true);
        assert_eq!(first.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(second.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(runs.get(), 1);
    }
}
