//! A lower collector's side of federation: its upstream (`upstream set`), and pushing
//! its figures there (`upstream push`, and every `[upstream] push_seconds` while it
//! serves, under the `upstream-push` job lease).
//!
//! Nothing is queued apart: the database is the spool. Each push counts the current
//! figures anew and adds every frozen week after the one the upstream acknowledged,
//! oldest first, a few weeks per message; so a week offline costs nothing but the
//! figures of the hours it was away, and a resend changes nothing upstream.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use sverka_shared::federation::{
    ApplicationPcs, CurrentFigures, FEDERATION_PROTOCOL, FIGURES_PATH, FiguresAck, FiguresMessage,
    LINK_PATH, LinkDescription, MemberOrganization, SchoolViolations, WeekFigures, WeekSpan,
};
use sverka_shared::{AppStatus, Strength};

use crate::store::{PushOutcome, Store, StoreError, Timestamp, UpstreamLink};
use crate::web::clock::Clock;
use crate::web::figures::silent_before;

/// The job lease of pushing to the upstream: one collector process at a time.
pub const PUSH_JOB: &str = "upstream-push";

/// Frozen weeks per message (a year behind takes seven messages).
const WEEKS_PER_MESSAGE: i64 = 8;

/// How long after a week's end a collector that has lower collectors itself (a
/// region between municipalities and the country) waits for their frozen week before
/// it sends its own without them: the upstream keeps a week as first sent.
pub const LATE_MEMBER_GRACE_SECONDS: i64 = 7 * 86_400;

/// `[upstream]`: how often a serving collector pushes, and how long one call may take.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    pub push_seconds: u64,
    pub timeout_seconds: u64,
}

impl Default for UpstreamConfig {
    fn default() -> UpstreamConfig {
        UpstreamConfig {
            push_seconds: 3600,
            timeout_seconds: 60,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no upstream is set (sverka-collector upstream set --url URL --secret SECRET)")]
    NotConfigured,
    #[error("{0}")]
    Invalid(String),
    #[error("the upstream is unreachable: {0}")]
    Unreachable(String),
    #[error("the upstream refused it ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The upstream's URL, checked ([`crate::store::rules::checked_outbound_url`]); plain
/// http only when allowed.
pub fn checked_url(url: &str, allow_http: bool) -> Result<reqwest::Url, UpstreamError> {
    let parsed = crate::store::rules::checked_outbound_url(url)
        .map_err(|why| UpstreamError::Invalid(format!("upstream URL {:?}: {why}", url.trim())))?;
    if parsed.scheme() == "http" && !allow_http {
        return Err(UpstreamError::Invalid(
            "the upstream URL is plain http: use https, or --allow-http on a private network"
                .into(),
        ));
    }
    Ok(parsed)
}

fn client(timeout: Duration) -> Result<reqwest::Client, UpstreamError> {
    crate::outbound_http_client(timeout)
        .map_err(|error| UpstreamError::Invalid(format!("the HTTP client: {error}")))
}

fn endpoint(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim().trim_end_matches('/'))
}

/// Reads an answer: the JSON body of a 2xx, else the `ApiError`'s message.
async fn answer<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, UpstreamError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|error| UpstreamError::Unreachable(sverka_shared::error_chain(&error)))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<sverka_shared::protocol::ApiError>(&bytes)
            .map(|error| error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        return Err(UpstreamError::Refused {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        UpstreamError::Invalid(format!("the upstream's answer is not understood: {error}"))
    })
}

/// What the link allows, as the upstream says (`upstream set` shows it before saving).
pub async fn describe_link(
    url: &str,
    secret: &str,
    allow_http: bool,
    timeout: Duration,
) -> Result<LinkDescription, UpstreamError> {
    checked_url(url, allow_http)?;
    let response = client(timeout)?
        .get(endpoint(url, LINK_PATH))
        .bearer_auth(secret.trim())
        .send()
        .await
        .map_err(|error| UpstreamError::Unreachable(sverka_shared::error_chain(&error)))?;
    answer(response).await
}

/// The message of this moment: every organization, each one's own current figures,
/// banned messengers per school (with PC names when the link allows them), the current
/// week's use, and frozen weeks after `acknowledged_week` (at most a few).
pub async fn compose(
    store: &dyn Store,
    clock: &Clock,
    silent_after_days: u32,
    link: &UpstreamLink,
    now: Timestamp,
) -> Result<FiguresMessage, StoreError> {
    let organizations = store.organizations().await?;
    let week = clock.week_of(now);
    let counts = store
        .organization_counts(week.start, silent_before(&week, silent_after_days, now))
        .await?;
    let mut violations: BTreeMap<(i64, String), BTreeSet<String>> = BTreeMap::new();
    for root in organizations.iter().filter(|org| org.parent_id.is_none()) {
        for row in store.violations(root.id, false).await? {
            if row.status == AppStatus::Banned && row.strength != Strength::Trace {
                violations
                    .entry((row.organization_id, row.app_id))
                    .or_default()
                    .insert(row.hostname);
            }
        }
    }
    // A region between municipalities and the country forwards what its lower
    // collectors sent of their schools, as they sent it.
    let with_names = link.detail == sverka_shared::federation::Detail::Pcs;
    let mut forwarded = Vec::new();
    for row in store.federated_violations(None).await? {
        forwarded.push(SchoolViolations {
            organization: row.organization_id.to_string(),
            app_id: row.app_id,
            pcs: row.pcs,
            hosts: if with_names { row.hosts } else { Vec::new() },
        });
    }
    let (statuses, applications) = store.organization_use(week.start, week.end).await?;
    let used = statuses
        .into_iter()
        .map(|row| ApplicationPcs {
            organization: row.organization_id.to_string(),
            app_id: String::new(),
            status: row.status,
            pcs: row.pcs,
        })
        .chain(applications.into_iter().map(|row| ApplicationPcs {
            organization: row.organization_id.to_string(),
            app_id: row.app_id,
            status: row.status,
            pcs: row.pcs,
        }))
        .collect();
    let weeks = frozen_weeks_after(store, clock, link.acknowledged_week.as_deref(), now).await?;
    Ok(FiguresMessage {
        protocol: FEDERATION_PROTOCOL,
        message_id: uuid::Uuid::now_v7().to_string(),
        generated_at: now,
        organizations: organizations
            .into_iter()
            .map(|org| MemberOrganization {
                key: org.id.to_string(),
                parent: org.parent_id.map(|parent| parent.to_string()),
                name: org.name,
                kind: org.kind,
                expected_pcs: org.expected_pcs,
            })
            .collect(),
        current: counts
            .into_iter()
            .map(|row| CurrentFigures {
                organization: row.organization_id.to_string(),
                enrolled: row.enrolled,
                reporting: row.reporting,
                silent: row.silent,
                with_banned: row.with_banned,
                with_approved: row.with_approved,
                known: row.known,
                silent_with_banned: row.silent_with_banned,
            })
            .collect(),
        violations: violations
            .into_iter()
            .map(|((organization, app_id), hosts)| SchoolViolations {
                organization: organization.to_string(),
                app_id,
                pcs: hosts.len() as i64,
                hosts: if with_names {
                    hosts.into_iter().collect()
                } else {
                    Vec::new()
                },
            })
            .chain(forwarded)
            .collect(),
        used,
        week: Some(WeekSpan {
            start: week.start,
            end: week.end,
        }),
        weeks,
        not_understood: BTreeMap::new(),
    })
}

/// Every organization's frozen figures of the (at most `WEEKS_PER_MESSAGE`) weeks
/// frozen after `after`, oldest first. A week some lower collector of this one has not
/// sent yet is held back (and the weeks after it) until it arrives or
/// [`LATE_MEMBER_GRACE_SECONDS`] after the week's end.
async fn frozen_weeks_after(
    store: &dyn Store,
    clock: &Clock,
    after: Option<&str>,
    now: Timestamp,
) -> Result<Vec<WeekFigures>, StoreError> {
    let mut weeks = Vec::new();
    for label in store.frozen_weeks(after, WEEKS_PER_MESSAGE).await? {
        let figures = store.weekly_figures_of_week(&label).await?;
        let waiting = figures.iter().any(|row| row.late)
            && clock
                .parse_week(&label)
                .is_some_and(|week| now < week.end + LATE_MEMBER_GRACE_SECONDS);
        if waiting {
            break;
        }
        for figures in figures {
            weeks.push(WeekFigures {
                week: figures.week,
                organization: figures.organization_id.to_string(),
                expected_pcs: figures.expected_pcs,
                enrolled: figures.enrolled,
                reporting: figures.reporting,
                silent: figures.silent,
                with_banned: figures.with_banned,
                with_approved: figures.with_approved,
                known: figures.known,
                silent_with_banned: figures.silent_with_banned,
                used_approved: figures.used_approved,
                used_banned: figures.used_banned,
            });
        }
    }
    Ok(weeks)
}

/// Sends one message, gzip-compressed.
async fn send(
    http: &reqwest::Client,
    link: &UpstreamLink,
    message: &FiguresMessage,
) -> Result<FiguresAck, UpstreamError> {
    use std::io::Write as _;
    let json = serde_json::to_vec(message)
        .map_err(|error| UpstreamError::Invalid(format!("the message: {error}")))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(&json)
        .map_err(|error| UpstreamError::Invalid(error.to_string()))?;
    let body = encoder
        .finish()
        .map_err(|error| UpstreamError::Invalid(error.to_string()))?;
    let response = http
        .post(endpoint(&link.url, FIGURES_PATH))
        .bearer_auth(link.secret.trim())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::CONTENT_ENCODING, "gzip")
        .body(body)
        .send()
        .await
        .map_err(|error| UpstreamError::Unreachable(sverka_shared::error_chain(&error)))?;
    answer(response).await
}

/// What a push sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pushed {
    pub messages: u64,
    pub weeks_stored: u64,
    pub newest_week: Option<String>,
    pub refused: Vec<String>,
}

/// Pushes what is due now: messages until the upstream holds every frozen week (and
/// the current figures), each acknowledged before the next; the outcome is recorded
/// either way. Ends at the first failure.
pub async fn push(
    store: &dyn Store,
    clock: &Clock,
    silent_after_days: u32,
    config: &UpstreamConfig,
    now: Timestamp,
) -> Result<Pushed, UpstreamError> {
    let Some(mut link) = store.upstream().await? else {
        return Err(UpstreamError::NotConfigured);
    };
    let http = client(Duration::from_secs(config.timeout_seconds.max(1)))?;
    let mut pushed = Pushed::default();
    // The current figures are counted once; a further message carries the next weeks.
    let mut message = compose(store, clock, silent_after_days, &link, now).await?;
    loop {
        let sent_weeks: BTreeSet<String> =
            message.weeks.iter().map(|row| row.week.clone()).collect();
        let ack = match send(&http, &link, &message).await {
            Ok(ack) => ack,
            Err(error) => {
                let failed = PushOutcome::Failed {
                    error: error.to_string(),
                };
                store.record_push(&failed, now).await?;
                return Err(error);
            }
        };
        pushed.messages += 1;
        pushed.weeks_stored += ack.weeks_stored;
        pushed.refused.extend(ack.refused.iter().cloned());
        store
            .record_push(
                &PushOutcome::Acknowledged {
                    newest_week: ack.newest_week.clone(),
                },
                now,
            )
            .await?;
        pushed.newest_week = ack.newest_week.clone();
        // More weeks to send when this message carried a full batch and the upstream
        // now holds its last one.
        let more = sent_weeks.len() as i64 == WEEKS_PER_MESSAGE
            && ack.newest_week.as_ref() == sent_weeks.last()
            && ack.newest_week != link.acknowledged_week;
        link.acknowledged_week = ack.newest_week;
        if !more {
            return Ok(pushed);
        }
        message.message_id = uuid::Uuid::now_v7().to_string();
        message.weeks =
            frozen_weeks_after(store, clock, link.acknowledged_week.as_deref(), now).await?;
    }
}

/// Every `[upstream] push_seconds`, pushes (one process at a time); a failure is
/// logged and tried again at the next round.
pub async fn push_job(
    store: std::sync::Arc<dyn Store>,
    clock: Clock,
    silent_after_days: u32,
    config: UpstreamConfig,
) {
    loop {
        match store.try_lock_job(PUSH_JOB).await {
            Ok(Some(lease)) => {
                match store.upstream().await {
                    Ok(Some(_)) => {
                        let round = push(
                            store.as_ref(),
                            &clock,
                            silent_after_days,
                            &config,
                            crate::now(),
                        );
                        match round.await {
                            Ok(pushed) => tracing::info!(
                                messages = pushed.messages,
                                weeks = pushed.weeks_stored,
                                newest_week = pushed.newest_week.as_deref().unwrap_or("-"),
                                "figures pushed to the upstream"
                            ),
                            Err(error) => {
                                tracing::warn!("cannot push to the upstream: {error}");
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!("cannot read the upstream: {error}"),
                }
                drop(lease);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!("cannot take the upstream-push job: {error}"),
        }
        tokio::time::sleep(Duration::from_secs(config.push_seconds.max(1))).await;
    }
}
