//! [`WorkerPool`]: N workers of one capability behind a bounded admission queue; each command
//! goes to the least-loaded live worker.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use capnp_lean::Runtime;
use futures::channel::oneshot;

use crate::parent::config::WorkerConfig;
use crate::parent::run::{CommandRun, Summary};
use crate::parent::worker::{Worker, WorkerState};
use crate::WorkerError;

/// The shape of a [`WorkerPool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker processes (default 4).
    pub workers: usize,
    /// Commands one worker runs at a time (default 1).
    pub per_worker: usize,
    /// Commands allowed to wait for a free worker; beyond it `start` fails with
    /// [`WorkerError::QueueFull`] (default 64).
    pub queue_limit: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { workers: 4, per_worker: 1, queue_limit: 64 }
    }
}

/// What a [`WorkerPool`] reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolState {
    /// Each worker's state.
    pub workers: Vec<WorkerState>,
    /// Commands waiting for a free worker.
    pub queued: usize,
}

/// N workers running one capability. Cheap to share by reference from many tasks and threads.
pub struct WorkerPool {
    workers: Vec<Worker>,
    admission: Arc<Admission>,
    _runtime: Runtime,
}

impl WorkerPool {
    /// Starts `pool.workers` workers of `config` (on one shared runtime) and waits until each
    /// has opened the capability.
    pub async fn spawn(config: WorkerConfig, pool: PoolConfig) -> Result<WorkerPool, WorkerError> {
        let runtime = Runtime::new()?;
        let mut workers = Vec::with_capacity(pool.workers);
        for _ in 0..pool.workers.max(1) {
            workers.push(Worker::spawn_with(runtime.handle(), config.clone()).await?);
        }
        let admission = Arc::new(Admission {
            state: Mutex::new(Slots { free: workers.len() * pool.per_worker.max(1), waiters: VecDeque::new() }),
            queue_limit: pool.queue_limit,
        });
        Ok(WorkerPool { workers, admission, _runtime: runtime })
    }

    /// Starts a command on the least-loaded worker, after waiting for a free one (at most
    /// `queue_limit` commands wait). A worker whose child died is replaced when it is next
    /// chosen (it has nothing in flight, so that is soon), within its restart policy.
    pub async fn start(&self, command: &str, input: &[u8]) -> Result<CommandRun, WorkerError> {
        let permit = self.admission.acquire().await?;
        let worker = self
            .workers
            .iter()
            .min_by_key(|w| w.inner.in_flight.load(Ordering::SeqCst))
            .expect("a pool has workers");
        let live = worker.inner.live().await?;
        Ok(worker.inner.start_on(live, command, input, Some(Box::new(permit))))
    }

    /// Runs a command to its end, discarding events; returns the summary.
    pub async fn call(&self, command: &str, input: &[u8]) -> Result<Summary, WorkerError> {
        self.start(command, input).await?.summary().await
    }

    /// The workers, e.g. to read one's pid.
    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// The pool's state now.
    pub fn state(&self) -> PoolState {
        let queued = self.admission.state.lock().unwrap_or_else(|p| p.into_inner()).waiters.len();
        PoolState { workers: self.workers.iter().map(Worker::state).collect(), queued }
    }
}

struct Admission {
    state: Mutex<Slots>,
    queue_limit: usize,
}

struct Slots {
    free: usize,
    waiters: VecDeque<oneshot::Sender<Permit>>,
}

/// A place in the pool, held by a running command; handed to the next waiter when released.
struct Permit {
    admission: Option<Arc<Admission>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(admission) = self.admission.take() else { return };
        let mut slots = admission.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut permit = Permit { admission: Some(admission.clone()) };
        while let Some(waiter) = slots.waiters.pop_front() {
            match waiter.send(permit) {
                Ok(()) => return,
                // That waiter gave up; try the next.
                Err(mut returned) => {
                    permit = Permit { admission: returned.admission.take() };
                }
            }
        }
        permit.admission = None;
        slots.free += 1;
    }
}

impl Admission {
    async fn acquire(self: &Arc<Self>) -> Result<Permit, WorkerError> {
        let receiver = {
            let mut slots = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if slots.free > 0 {
                slots.free -= 1;
                return Ok(Permit { admission: Some(self.clone()) });
            }
            if slots.waiters.len() >= self.queue_limit {
                return Err(WorkerError::QueueFull { queued: slots.waiters.len() });
            }
            let (sender, receiver) = oneshot::channel();
            slots.waiters.push_back(sender);
            receiver
        };
        // A permit sent to a waiter that is dropped meanwhile is released by its own drop
        // (the oneshot drops the value it holds).
        receiver.await.map_err(|_| WorkerError::Closed("the pool was dropped".into()))
    }
}
