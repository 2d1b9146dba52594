//! The webhook: what is new in an organization as a JSON POST to the URL its
//! administrator set, signed so the receiver knows it came from this collector and was
//! not changed on the way.
//!
//! Headers: `X-Sverka-Notification` (the notification's id: a call made again after a
//! failure or a stop carries the same id), `X-Sverka-Timestamp` (Unix seconds of this
//! try) and `X-Sverka-Signature: sha256=HEX`, the HMAC-SHA256 with the organization's
//! secret of `TIMESTAMP.BODY` (the timestamp's digits, a dot, the body's bytes). A
//! receiver recomputes it, compares in constant time, and refuses old timestamps.

use serde::Serialize;
use std::time::Duration;
use sverka_shared::error_chain;

use super::Tried;
use crate::store::{Notification, Store, Timestamp};
use crate::web::scope::OrganizationTree;

pub const NOTIFICATION_HEADER: &str = "x-sverka-notification";
pub const TIMESTAMP_HEADER: &str = "x-sverka-timestamp";
pub const SIGNATURE_HEADER: &str = "x-sverka-signature";

/// `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY` with `secret`.
pub fn signature(secret: &str, timestamp: Timestamp, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    let hex: String = tag
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn rfc3339(seconds: Timestamp) -> String {
    jiff::Timestamp::from_second(seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

#[derive(Debug, Serialize)]
struct Named {
    id: i64,
    name: String,
}

#[derive(Debug, Serialize)]
struct Application {
    id: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct ViolationEntry {
    host_id: i64,
    pc: String,
    organization: Named,
    application: Application,
    users: Vec<String>,
    /// When the collector recorded the change (RFC 3339, UTC).
    at: String,
}

#[derive(Debug, Serialize)]
struct SilentEntry {
    host_id: i64,
    pc: String,
    organization: Named,
    last_report_at: String,
}

/// The body of a call: the organization, the window, and what changed in it.
#[derive(Debug, Serialize)]
struct WebhookBody {
    notification_id: i64,
    organization: Named,
    /// The window the changes are from, `[from, until)`, RFC 3339, UTC.
    from: String,
    until: String,
    new_violations: Vec<ViolationEntry>,
    resolved_violations: Vec<ViolationEntry>,
    silent_pcs: Vec<SilentEntry>,
}

/// The JSON body of `notification` (the same bytes on every try).
pub fn body_of(notification: &Notification, organization: &str) -> Result<Vec<u8>, String> {
    let changes = super::changes_of(notification);
    let violations = |changes: Vec<crate::store::ViolationChange>| {
        changes
            .into_iter()
            .map(|change| ViolationEntry {
                host_id: change.host_id,
                pc: change.pc,
                organization: Named {
                    id: change.organization_id,
                    name: change.organization,
                },
                application: Application {
                    id: change.app_id,
                    name: change.application,
                },
                users: change.users,
                at: rfc3339(change.at),
            })
            .collect()
    };
    let body = WebhookBody {
        notification_id: notification.id,
        organization: Named {
            id: notification.organization_id,
            name: organization.to_string(),
        },
        from: rfc3339(notification.covered_from),
        until: rfc3339(notification.covered_until),
        new_violations: violations(changes.new_violations),
        resolved_violations: violations(changes.resolved_violations),
        silent_pcs: changes
            .silent_pcs
            .into_iter()
            .map(|pc| SilentEntry {
                host_id: pc.host_id,
                pc: pc.pc,
                organization: Named {
                    id: pc.organization_id,
                    name: pc.organization,
                },
                last_report_at: rfc3339(pc.last_report_at),
            })
            .collect(),
    };
    serde_json::to_vec(&body).map_err(|error| format!("the webhook body as JSON: {error}"))
}

/// The HTTP client of webhook calls: one call may take `timeout` in all; redirects
/// are not followed (a POST would turn into a GET).
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
}

impl WebhookClient {
    pub fn new(timeout: Duration) -> Result<WebhookClient, String> {
        let http = crate::outbound_http_client(timeout)
            .map_err(|error| format!("the webhook client: {error}"))?;
        Ok(WebhookClient { http })
    }

    /// Makes the call of `notification` to its organization's webhook as it is set
    /// now; a 2xx answer is success. A failure may pass, except when the webhook was
    /// removed.
    pub async fn deliver(
        &self,
        store: &dyn Store,
        tree: &OrganizationTree,
        notification: &Notification,
    ) -> Tried {
        let id = notification.organization_id;
        let webhook = match store.organization_webhook(id).await {
            Ok(Some(webhook)) => webhook,
            Ok(None) => return Tried::hopeless("the organization's webhook was removed"),
            Err(error) => return Tried::may_pass(format!("reading the webhook: {error}")),
        };
        let name = tree
            .get(id)
            .map(|organization| organization.name.clone())
            .unwrap_or_default();
        let body = match body_of(notification, &name) {
            Ok(body) => body,
            Err(error) => return Tried::hopeless(error),
        };
        let timestamp = crate::now();
        let answer = self
            .http
            .post(&webhook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(NOTIFICATION_HEADER, notification.id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                signature(&webhook.secret, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() => Tried::Sent,
            Ok(answer) => Tried::may_pass(format!("{} answered {}", webhook.url, answer.status())),
            Err(error) => Tried::may_pass(format!("{}: {}", webhook.url, error_chain(&error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() {
        // The HMAC of the joined bytes `TIMESTAMP.BODY`.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let joined = ring::hmac::sign(&key, b"1700000000.{\"a\":1}");
        let expected: String = joined
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            signature("Jefe", 1_700_000_000, b"{\"a\":1}"),
            format!("sha256={expected}")
        );
        // ring's HMAC-SHA256 gives RFC 4231's test case 2.
        let rfc = ring::hmac::sign(&key, b"what do ya want for nothing?");
        let rfc: String = rfc
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(
            rfc,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            signature("Jefe", 1_700_000_001, b"{\"a\":1}"),
            signature("Jefe", 1_700_000_000, b"{\"a\":1}")
        );
    }
}
