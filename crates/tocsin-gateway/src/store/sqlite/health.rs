//! What the writer knows about the database's health, shared with `/readyz`.
//!
//! A read (`ping`) cannot see that another process holds the write lock, that the
//! disk is full, nor that the files were deleted under the gateway: only the writer
//! meets those. It records them
//! here, and readiness reports them, so a load balancer stops sending publishes to a
//! gateway that would refuse them.

use std::sync::Mutex;

use crate::store::StoreError;

/// The writer's last word on the database.
#[derive(Default)]
pub struct Health {
    /// Std mutex: held only to copy or set the state, never across a wait.
    state: Mutex<State>,
}

#[derive(Default, Clone)]
enum State {
    #[default]
    Writable,
    /// The last write waited past the busy timeout for another process's lock.
    Busy,
    /// The last write found the disk full.
    Full,
    /// The files were deleted or replaced: writes are refused until a restart.
    Unusable(String),
}

impl Health {
    /// The error every write gets now, if any (`Busy` still lets writes try).
    pub fn refusal(&self) -> Option<StoreError> {
        match &*self.lock() {
            State::Unusable(message) => Some(StoreError::Unusable(message.clone())),
            _ => None,
        }
    }

    /// What readiness reports: `Err` while writes would fail.
    pub fn readiness(&self) -> Result<(), StoreError> {
        match &*self.lock() {
            State::Writable => Ok(()),
            State::Busy => Err(StoreError::Busy),
            State::Full => Err(StoreError::DiskFull),
            State::Unusable(message) => Err(StoreError::Unusable(message.clone())),
        }
    }

    /// Records a commit's outcome. Unusable is final.
    pub fn record_commit(&self, outcome: &Result<(), StoreError>) {
        let mut state = self.lock();
        if matches!(*state, State::Unusable(_)) {
            return;
        }
        *state = match outcome {
            Err(StoreError::Busy) => State::Busy,
            Err(StoreError::DiskFull) => State::Full,
            _ => State::Writable,
        };
    }

    /// Whether the last write found the lock held by another process.
    pub fn is_busy(&self) -> bool {
        matches!(*self.lock(), State::Busy)
    }

    /// Whether the last write found the disk full.
    pub fn is_full(&self) -> bool {
        matches!(*self.lock(), State::Full)
    }

    /// From now on every write is refused with `message`.
    pub fn make_unusable(&self, message: String) {
        *self.lock() = State::Unusable(message);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is always valid: a panic elsewhere cannot leave it half-written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
