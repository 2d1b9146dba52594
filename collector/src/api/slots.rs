//! Upload slots shared fairly: at most [`REPORT_SLOTS`] reports are read, decoded and
//! evaluated at once (which bounds the memory a boot storm can take), and no host key
//! holds more than [`SlotLimits::share`] of them nor a client address more than its
//! share (`[connections] uploads_per_address`), so a few keys or
//! one address dribbling slow uploads cannot stall every other PC's reports. A slot is
//! taken before the body is read, and the body must arrive within the connection's
//! body deadline ([`crate::connections::body_deadline`]), so no slot is held for long.

use axum::http::StatusCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use super::ApiFailure;

/// Reports read, decoded and evaluated at once; the rest wait their turn.
pub const REPORT_SLOTS: usize = 256;
/// How long a report waits for a free slot before it is asked to come back later.
const SLOT_WAIT: Duration = Duration::from_secs(10);
/// What a refused upload is asked to wait, in seconds.
const BUSY_RETRY_SECONDS: u64 = 5;

/// Who holds a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    Host(i64),
    Address(IpAddr),
}

/// The slots, and how many each holder has.
#[derive(Debug)]
pub struct SlotLimits {
    slots: tokio::sync::Semaphore,
    held: Mutex<HashMap<Holder, usize>>,
    /// The most slots one host key may hold.
    share: usize,
    /// The most slots one client address may hold.
    address_share: usize,
}

impl Default for SlotLimits {
    fn default() -> SlotLimits {
        SlotLimits::new(REPORT_SLOTS, REPORT_SLOTS / 16)
    }
}

/// A slot taken; given back when dropped.
#[derive(Debug)]
pub struct UploadSlot<'a> {
    limits: &'a SlotLimits,
    holders: Vec<Holder>,
    _permit: Option<tokio::sync::SemaphorePermit<'a>>,
}

impl SlotLimits {
    /// `total` slots; each host key may hold a sixteenth of them (at least 2), each
    /// client address `per_address`.
    pub fn new(total: usize, per_address: usize) -> SlotLimits {
        SlotLimits {
            slots: tokio::sync::Semaphore::new(total.max(1)),
            held: Mutex::new(HashMap::new()),
            share: (total / 16).max(2),
            address_share: per_address.max(1),
        }
    }

    pub fn share(&self) -> usize {
        self.share
    }

    /// Takes a slot for `host` (from `address`, when known): `429` when the host or the
    /// address holds its share already, `503` when no slot frees up in time.
    pub async fn take(
        &self,
        host: i64,
        address: Option<IpAddr>,
    ) -> Result<UploadSlot<'_>, ApiFailure> {
        let holders: Vec<Holder> = std::iter::once(Holder::Host(host))
            .chain(address.map(Holder::Address))
            .collect();
        {
            let Ok(mut held) = self.held.lock() else {
                return Err(busy("the upload slots are unavailable"));
            };
            for holder in &holders {
                let (who, share) = match holder {
                    Holder::Host(_) => ("this host", self.share),
                    Holder::Address(_) => ("this address", self.address_share),
                };
                if held.get(holder).copied().unwrap_or(0) >= share {
                    return Err(ApiFailure::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        format!("{who} has {share} uploads in progress already (at most {share} at once)"),
                    )
                    .retry_after(BUSY_RETRY_SECONDS));
                }
            }
            for holder in &holders {
                *held.entry(*holder).or_default() += 1;
            }
        }
        // Counted from here: dropping the slot gives the counts back, also on failure.
        let mut slot = UploadSlot {
            limits: self,
            holders,
            _permit: None,
        };
        match tokio::time::timeout(SLOT_WAIT, self.slots.acquire()).await {
            Ok(Ok(permit)) => {
                slot._permit = Some(permit);
                Ok(slot)
            }
            Ok(Err(_)) => Err(busy("the collector is shutting down")),
            Err(_) => Err(busy("every upload slot is taken; try again later")),
        }
    }
}

fn busy(message: &str) -> ApiFailure {
    ApiFailure::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        .retry_after(BUSY_RETRY_SECONDS)
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut held) = self.limits.held.lock() {
            for holder in &self.holders {
                if let Some(count) = held.get_mut(holder) {
                    *count -= 1;
                    if *count == 0 {
                        held.remove(holder);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_host_or_address_holds_more_than_its_share() {
        let limits = SlotLimits::new(32, 2);
        assert_eq!(limits.share(), 2);
        let school: IpAddr = [10, 0, 0, 1].into();
        let first = limits.take(1, Some(school)).await.expect("first");
        let _second = limits.take(1, Some(school)).await.expect("second");
        // The host holds its share.
        assert!(limits.take(1, None).await.is_err());
        // So does the address, for every host behind it.
        assert!(limits.take(2, Some(school)).await.is_err());
        // Others are not affected.
        let _other = limits
            .take(3, Some([10, 0, 0, 2].into()))
            .await
            .expect("other");
        drop(first);
        let _again = limits
            .take(2, Some(school))
            .await
            .expect("a slot given back");
    }
}
