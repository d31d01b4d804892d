//! [`completes`]: a future that runs to completion even if its caller drops it.
//!
//! Some steps must never stop halfway, because the connection would be left in a state nobody
//! knows about:
//!
//! - a `BEGIN` whose answer has not arrived yet: sqlx counts a transaction as open only once the
//!   server has answered, so a `BEGIN` dropped while waiting would go back to the pool inside a
//!   transaction (on PostgreSQL with the tenant set) that nothing rolls back;
//! - a MySQL statement: sqlx-mysql 0.9 dropped between a packet's header and its body leaves the
//!   rest of the answer on the connection, for its next user to read as its own.
//!
//! Running such a step on a task of its own (`tokio::spawn(step).await`) makes it complete, but it
//! costs every operation a hand-off between tasks (tens of microseconds on a busy two-core machine,
//! docs/benchmarks.md). [`completes`] costs an allocation instead: the step is polled in place, by
//! its caller, and only if the caller drops it before it is done does the rest run on a task of its
//! own, whose result (a transaction, rows) is then dropped there, which rolls a transaction back
//! like any other abandoned one. tests/pool_safety.rs cancels operations at each of these steps.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `step`, made to run to completion even if the returned future is dropped before it is done;
/// see the module docs.
pub(crate) fn completes<F>(step: F) -> Completes<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    Completes {
        step: Some(Box::pin(step)),
    }
}

/// The future of [`completes`].
pub(crate) struct Completes<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// `None` once the step has completed.
    step: Option<Pin<Box<F>>>,
}

impl<F> Future for Completes<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(step) = self.step.as_mut() else {
            panic!("a `completes` future was polled after it completed");
        };
        let output = std::task::ready!(step.as_mut().poll(cx));
        self.step = None;
        Poll::Ready(output)
    }
}

impl<F> Drop for Completes<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(step) = self.step.take() {
            // Outside a runtime nothing could run the step, nor use the connection it holds.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    drop(step.await);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn a_completed_step_is_its_output() {
        assert_eq!(completes(async { 7 }).await, 7);
    }

    #[tokio::test]
    async fn a_dropped_step_still_runs_to_completion() {
        let done = Arc::new(AtomicBool::new(false));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let step = {
            let done = done.clone();
            completes(async move {
                let _ = released.await;
                done.store(true, Ordering::SeqCst);
            })
        };
        // The caller gives up while the step waits, as a timeout would.
        assert!(
            tokio::time::timeout(Duration::from_millis(10), step)
                .await
                .is_err()
        );
        assert!(!done.load(Ordering::SeqCst));
        release.send(()).expect("the step still waits");
        for _ in 0..100 {
            if done.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the dropped step did not complete");
    }
}
