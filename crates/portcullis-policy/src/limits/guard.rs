//! A concurrency lease that is given back even when the request future is dropped.

use super::{BackendError, Lease, LimitBackend};
use std::sync::Arc;

/// Holds a [`Lease`]; call [`ConcurrencyGuard::release`] when the request ends. If the
/// guard is dropped instead (client disconnect, panic), the release is spawned on the
/// current tokio runtime.
pub struct ConcurrencyGuard {
    backend: Arc<dyn LimitBackend>,
    lease: Option<Lease>,
}

impl std::fmt::Debug for ConcurrencyGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConcurrencyGuard")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl ConcurrencyGuard {
    /// Guards `lease` (a `None` lease makes an inert guard, e.g. after fail-open).
    pub fn new(backend: Arc<dyn LimitBackend>, lease: Option<Lease>) -> ConcurrencyGuard {
        ConcurrencyGuard { backend, lease }
    }

    /// Releases the slots now.
    pub async fn release(mut self) -> Result<(), BackendError> {
        match self.lease.take() {
            Some(lease) => self.backend.release(&lease).await,
            None => Ok(()),
        }
    }
}

impl Drop for ConcurrencyGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let backend = self.backend.clone();
                handle.spawn(async move {
                    let _ = backend.release(&lease).await;
                });
            }
        }
    }
}
