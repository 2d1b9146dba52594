//! Who is asking, and how often: host keys checked against the store (and trusted for
//! 30 s without asking again), and a token bucket per host (`429` + `Retry-After`).

use axum::http::{HeaderMap, StatusCode};
use std::time::{Duration, Instant};

use super::ApiFailure;
use crate::app::AppState;
use crate::keys;
use crate::store::HostCredentials;

/// How long a checked host key is trusted without asking the database again.
const CREDENTIAL_TTL: Duration = Duration::from_secs(30);

/// Per-host request budget: a token bucket.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Requests a host may make in a burst (a spool emptied after an outage).
    pub burst: f64,
    /// Requests per minute a host may keep up.
    pub per_minute: f64,
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit {
            burst: 120.0,
            per_minute: 60.0,
        }
    }
}

/// One host's tokens, as of `updated`.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// Takes one token from the bucket at `key` (created full), refilled at `rate` since
    /// it was last used; `Err` holds the seconds until the next token.
    pub(crate) fn take<K: std::hash::Hash + Eq>(
        buckets: &mut std::collections::HashMap<K, Bucket>,
        key: K,
        rate: RateLimit,
    ) -> Result<(), u64> {
        let now = Instant::now();
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_minute / 60.0).min(rate.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) * 60.0 / rate.per_minute.max(0.001)).ceil() as u64;
            Err(wait.max(1))
        }
    }

    /// Whether the bucket would be full again by now (so forgetting it changes nothing).
    pub(crate) fn is_refilled(&self, rate: RateLimit) -> bool {
        self.tokens + self.updated.elapsed().as_secs_f64() * rate.per_minute / 60.0 >= rate.burst
    }
}

impl AppState {
    /// Takes one of the host's tokens, or answers 429 with the wait until the next.
    pub(crate) fn take_token(&self, host_id: i64) -> Result<(), ApiFailure> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        Bucket::take(&mut buckets, host_id, self.rate).map_err(|wait| {
            ApiFailure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this host",
            )
            .retry_after(wait)
        })
    }

    /// The host whose key is in `Authorization: Bearer <id>.<hex>`.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<HostCredentials, ApiFailure> {
        let unauthorized = |message: &str| {
            ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                message.to_string(),
            )
        };
        let token = keys::bearer(headers)
            .ok_or_else(|| unauthorized("a host key is required (Authorization: Bearer ...)"))?;
        let (host_id, random) =
            keys::parse_token(token).ok_or_else(|| unauthorized("not a host key"))?;
        let presented = keys::hash(random);
        let cached = self.credentials.lock().ok().and_then(|cache| {
            cache
                .get(&host_id)
                .filter(|(_, checked)| checked.elapsed() < CREDENTIAL_TTL)
                .map(|(credentials, _)| credentials.clone())
        });
        if let Some(credentials) = cached
            && keys::same_hash(&credentials.key_hash, &presented)
        {
            return Ok(credentials);
        }
        let credentials = self
            .store
            .host_credentials(host_id)
            .await
            .map_err(ApiFailure::from)?
            .ok_or_else(|| unauthorized("this host key is not valid; enroll the agent again"))?;
        if !keys::same_hash(&credentials.key_hash, &presented) {
            return Err(unauthorized(
                "this host key is not valid; enroll the agent again",
            ));
        }
        if let Ok(mut cache) = self.credentials.lock() {
            cache.insert(host_id, (credentials.clone(), Instant::now()));
        }
        Ok(credentials)
    }

    /// Forgets a host's checked key (it enrolled again and has a new one).
    pub(crate) fn forget_credentials(&self, host_id: i64) {
        if let Ok(mut cache) = self.credentials.lock() {
            cache.remove(&host_id);
        }
    }
}
