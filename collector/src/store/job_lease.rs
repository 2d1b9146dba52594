//! [`JobLease`]: the right to run a background job in one collector process at a
//! time ([`Store::try_lock_job`](super::Store::try_lock_job)).

/// A background job held by this process: while the lease lives, no other process
/// on the same database (and no other task of this one) gets the same job name from
/// [`Store::try_lock_job`]. Dropping it gives the job up.
pub struct JobLease {
    name: String,
    _held: Box<dyn std::any::Any + Send + Sync>,
}

impl JobLease {
    /// A lease on `name` that lasts as long as `held` (a connection holding a lock, a
    /// guard that removes the name from a set, ...).
    pub fn new(name: &str, held: impl std::any::Any + Send + Sync) -> JobLease {
        JobLease {
            name: name.to_string(),
            _held: Box::new(held),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for JobLease {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("JobLease")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
