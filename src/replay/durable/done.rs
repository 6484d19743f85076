//! The outcome of one batch, shared by the [`Commit`]s of its events.
//!
//! A publisher that asked for `acknowledge` gets PUBLISHED once its event's batch is
//! committed. With thousands of acknowledged publications per second, a task (or a
//! channel receiver polled by one) per publication costs more than the publication:
//! instead, each `Commit` may leave a callback with its batch, and the writer runs the
//! batch's callbacks one after the other once the statement is over. Async callers
//! (the HTTP bridge) wait through a one-shot channel filled by such a callback.
//!
//! A batch is finished exactly once: by the writer with the statement's outcome, or,
//! when the writer goes away without one (the runtime dropping its task, a panic), by
//! the drop of the writer's [`Finisher`] with `WriterStopped`. No callback is lost
//! and none runs twice.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::replay::ReplayError;

type Callback = Box<dyn FnOnce(Result<(), ReplayError>) + Send>;

enum State {
    Pending(Vec<Callback>),
    Done(Result<(), ReplayError>),
}

/// One batch's outcome, once known, and what is to be done with it.
pub(super) struct BatchDone(Mutex<State>);

impl BatchDone {
    fn state(&self) -> MutexGuard<'_, State> {
        // Callbacks run outside the lock, so a panicking one cannot poison it; the
        // state is consistent whatever happened.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn then(&self, f: Callback) {
        let mut state = self.state();
        match &mut *state {
            State::Pending(callbacks) => callbacks.push(f),
            State::Done(r) => {
                let r = r.clone();
                drop(state);
                f(r);
            }
        }
    }

    /// Records the outcome and runs the callbacks left so far, in the order they were
    /// left. Only the first outcome counts.
    fn finish(&self, result: Result<(), ReplayError>) {
        let callbacks = {
            let mut state = self.state();
            match &mut *state {
                State::Done(_) => return,
                State::Pending(callbacks) => {
                    let callbacks = std::mem::take(callbacks);
                    *state = State::Done(result.clone());
                    callbacks
                }
            }
        };
        for f in callbacks {
            f(result.clone());
        }
    }
}

/// The writer's side of a batch's outcome: finishes it when the writer is done with
/// the batch, and with `WriterStopped` if it is dropped unfinished.
pub(super) struct Finisher(Arc<BatchDone>);

impl Finisher {
    pub(super) fn new() -> Finisher {
        Finisher(Arc::new(BatchDone(Mutex::new(State::Pending(Vec::new())))))
    }

    /// A `Commit` for one more event of this batch.
    pub(super) fn commit(&self) -> Commit {
        Commit(Outcome::Pending(self.0.clone()))
    }

    pub(super) fn finish(self, result: Result<(), ReplayError>) {
        self.0.finish(result);
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        self.0.finish(Err(ReplayError::WriterStopped));
    }
}

/// The outcome of one written event's batch: committed (`Ok`) or failed (the batch's
/// error, or `WriterStopped`). Dropping a `Commit` changes nothing about the write.
pub struct Commit(Outcome);

enum Outcome {
    Pending(Arc<BatchDone>),
    Ready(Result<(), ReplayError>),
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Outcome::Pending(_) => f.write_str("Commit(pending)"),
            Outcome::Ready(r) => f.debug_tuple("Commit").field(r).finish(),
        }
    }
}

impl Commit {
    pub(super) fn ready(result: Result<(), ReplayError>) -> Commit {
        Commit(Outcome::Ready(result))
    }

    /// Runs `f` with the outcome: now if it is known, else on the writer's task right
    /// after the batch's statement (so `f` must be quick and must not block).
    pub fn then(self, f: impl FnOnce(Result<(), ReplayError>) + Send + 'static) {
        match self.0 {
            Outcome::Ready(r) => f(r),
            Outcome::Pending(done) => done.then(Box::new(f)),
        }
    }

    /// Waits for the event's batch to be committed or to fail.
    pub async fn wait(self) -> Result<(), ReplayError> {
        let (tx, rx) = oneshot::channel();
        self.then(move |r| {
            let _ = tx.send(r);
        });
        // Every batch is finished once (see `Finisher`), so the sender is never
        // dropped unsent; the fallback only keeps this total.
        rx.await.unwrap_or(Err(ReplayError::WriterStopped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn callbacks_run_once_in_order_before_or_after_the_outcome() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let batch = Finisher::new();
        for i in 0..3 {
            let seen = seen.clone();
            batch.commit().then(move |r| seen.lock().unwrap().push((i, r.is_ok())));
        }
        let late = batch.commit();
        assert!(seen.lock().unwrap().is_empty());
        batch.finish(Ok(()));
        let s = seen.clone();
        late.then(move |r| s.lock().unwrap().push((3, r.is_ok())));
        assert_eq!(*seen.lock().unwrap(), vec![(0, true), (1, true), (2, true), (3, true)]);
    }

    #[test]
    fn a_batch_dropped_unfinished_fails_its_commits_with_writer_stopped() {
        let runs = Arc::new(AtomicUsize::new(0));
        let batch = Finisher::new();
        let r = runs.clone();
        batch.commit().then(move |res| {
            assert!(matches!(res, Err(ReplayError::WriterStopped)));
            r.fetch_add(1, Ordering::SeqCst);
        });
        let waiting = batch.commit();
        drop(batch);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(matches!(rt.block_on(waiting.wait()), Err(ReplayError::WriterStopped)));
    }

    #[test]
    fn the_first_outcome_counts() {
        let batch = Finisher::new();
        let c = batch.commit();
        let inner = batch.0.clone();
        batch.finish(Err(ReplayError::WriterStopped));
        inner.finish(Ok(()));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(matches!(rt.block_on(c.wait()), Err(ReplayError::WriterStopped)));
    }
}
