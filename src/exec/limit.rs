//! [`TenantLimiter`]: how many of the application pool's connections one tenant may hold at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::tenant::TenantId;

/// Past this many tenants in the map, idle ones are dropped from it when a new one comes.
const PRUNE_ABOVE: usize = 1024;

/// A cap on the operations (each holding one pooled connection) that one tenant runs at once, so
/// that a tenant cannot take the whole pool: each operation of a tenant takes a permit of that
/// tenant's semaphore for as long as it holds its connection, and gives it back when it ends,
/// whatever way it ends (an error, a cancelled future: the permit is dropped with it).
#[derive(Debug)]
pub(crate) struct TenantLimiter {
    cap: usize,
    wait: Duration,
    tenants: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

impl TenantLimiter {
    /// At most `cap` (at least 1) operations per tenant; one over the cap waits up to `wait`.
    pub(crate) fn new(cap: u32, wait: Duration) -> Self {
        Self {
            cap: usize::try_from(cap.max(1)).unwrap_or(usize::MAX),
            wait,
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// A permit for one operation of `tenant`: at once if the tenant holds fewer than the cap,
    /// else as soon as one of its operations ends; [`Error::Busy`] if none ends within the wait.
    pub(crate) async fn admit(&self, tenant: TenantId) -> Result<OwnedSemaphorePermit> {
        let semaphore = self.semaphore(tenant);
        if let Ok(permit) = Arc::clone(&semaphore).try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(self.wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                tracing::debug!(
                    target: "tenant_scope::limit",
                    tenant = %tenant,
                    cap = self.cap,
                    "a tenant is over its share of the pool"
                );
                Err(Error::Busy)
            }
        }
    }

    fn semaphore(&self, tenant: TenantId) -> Arc<Semaphore> {
        let mut tenants = match self.tenants.lock() {
            Ok(guard) => guard,
            // A panic while holding the lock left nothing half-done: the map is still valid.
            Err(poisoned) => poisoned.into_inner(),
        };
        if tenants.len() > PRUNE_ABOVE && !tenants.contains_key(&tenant) {
            // A semaphore nobody holds or waits on (only the map has it) is a tenant at rest.
            let cap = self.cap;
            tenants.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() != cap);
        }
        Arc::clone(
            tenants
                .entry(tenant)
                .or_insert_with(|| Arc::new(Semaphore::new(self.cap))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_over_its_cap_waits_then_is_busy_and_others_go_on() {
        let limiter = TenantLimiter::new(2, Duration::from_millis(50));
        let (a, b) = (TenantId::new(), TenantId::new());
        let first = limiter.admit(a).await.expect("first");
        let _second = limiter.admit(a).await.expect("second");
        assert!(matches!(limiter.admit(a).await, Err(Error::Busy)));
        let _other = limiter
            .admit(b)
            .await
            .expect("another tenant is not held up");
        drop(first);
        drop(limiter.admit(a).await.expect("a permit came back"));
    }

    #[tokio::test]
    async fn a_cancelled_wait_takes_nothing() {
        let limiter = TenantLimiter::new(1, Duration::from_secs(5));
        let a = TenantId::new();
        let held = limiter.admit(a).await.expect("held");
        let waiting = tokio::time::timeout(Duration::from_millis(10), limiter.admit(a)).await;
        assert!(waiting.is_err(), "still waiting when cancelled");
        drop(held);
        drop(
            limiter
                .admit(a)
                .await
                .expect("the cancelled wait left the permit"),
        );
    }

    #[tokio::test]
    async fn idle_tenants_are_pruned() {
        let limiter = TenantLimiter::new(1, Duration::from_millis(10));
        for _ in 0..=PRUNE_ABOVE {
            drop(limiter.admit(TenantId::new()).await.expect("permit"));
        }
        let busy = TenantId::new();
        let _held = limiter.admit(busy).await.expect("held");
        drop(limiter.admit(TenantId::new()).await.expect("permit"));
        let map = limiter.tenants.lock().expect("lock");
        assert!(map.len() <= 3, "{} tenants kept", map.len());
        assert!(map.contains_key(&busy), "a tenant holding a permit is kept");
    }
}
