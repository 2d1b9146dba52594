//! The store's errors: what failed, whether trying again may help, and the driver's
//! error kept as the source.

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database is locked, full or unreachable; the request can be retried later.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] DatabaseFailure),
    #[error("{0} not found")]
    NotFound(String),
    /// The request is understood but not allowed (an expired or revoked secret, say).
    #[error("{0}")]
    Rejected(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[source] DatabaseFailure),
}

/// What went wrong in the database, for people, with the database driver's error (when
/// there was one) as its source.
#[derive(Debug, Clone)]
pub struct DatabaseFailure {
    message: String,
    source: Option<std::sync::Arc<sqlx::Error>>,
}

impl DatabaseFailure {
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for DatabaseFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for DatabaseFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|error| error as &(dyn std::error::Error + 'static))
    }
}

impl From<String> for DatabaseFailure {
    fn from(message: String) -> DatabaseFailure {
        DatabaseFailure {
            message,
            source: None,
        }
    }
}

impl From<&str> for DatabaseFailure {
    fn from(message: &str) -> DatabaseFailure {
        DatabaseFailure::from(message.to_string())
    }
}

/// A driver error as the store's: what may pass (a locked, full or unreachable
/// database, a deadlock) is `Unavailable`, so the collector answers 503 and the agent
/// retries; which database codes those are is each dialect's
/// ([`dialect::Dialect::may_pass`]).
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        let (message, may_pass) = match &error {
            sqlx::Error::Database(database) => (
                database.message().to_string(),
                super::dialect::may_pass(&**database),
            ),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => (error.to_string(), true),
            _ => (error.to_string(), false),
        };
        let failure = DatabaseFailure {
            message,
            source: Some(std::sync::Arc::new(error)),
        };
        if may_pass {
            StoreError::Unavailable(failure)
        } else {
            StoreError::Database(failure)
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn driver_errors_keep_their_source_and_tell_what_may_pass() {
        let unavailable = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(unavailable, StoreError::Unavailable(_)));
        let failure = unavailable.source().expect("the failure");
        let driver = failure.source().expect("the driver's error");
        assert_eq!(driver.to_string(), sqlx::Error::PoolTimedOut.to_string());

        let broken = StoreError::from(sqlx::Error::RowNotFound);
        assert!(matches!(broken, StoreError::Database(_)), "{broken:?}");
        assert!(broken.to_string().starts_with("database error: "));

        let plain = StoreError::Unavailable("the report writer has stopped".into());
        assert_eq!(
            plain.to_string(),
            "the database is unavailable: the report writer has stopped"
        );
        assert!(
            plain
                .source()
                .and_then(|failure| failure.source())
                .is_none()
        );
    }
}
