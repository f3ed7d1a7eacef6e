//! Concurrent requests for the same key share one piece of work: the first runs it, the
//! rest wait for its result. Pure (no `worker` import).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Flight<V> {
    result: RefCell<Option<V>>,
    waiting: RefCell<Vec<Waker>>,
}

pub struct SingleFlight<V> {
    flights: RefCell<HashMap<String, Rc<Flight<V>>>>,
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
            return Wait(flight).await;
        }
        let flight = Rc::new(Flight {
            result: RefCell::new(None),
            waiting: RefCell::new(Vec::new()),
        });
        self.flights
            .borrow_mut()
            .insert(key.to_string(), flight.clone());
        let result = work().await;
        self.flights.borrow_mut().remove(key);
        *flight.result.borrow_mut() = Some(result.clone());
        for waker in flight.waiting.borrow_mut().drain(..) {
            waker.wake();
        }
        result
    }
}

struct Wait<V>(Rc<Flight<V>>);

impl<V: Clone> Future for Wait<V> {
    type Output = V;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<V> {
        if let Some(result) = self.0.result.borrow().as_ref() {
            return Poll::Ready(result.clone());
        }
        self.0.waiting.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::Arc;
    use std::task::Wake;

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
