//! Serving connections with time limits: the collector's own accept loop on hyper,
//! since `axum::serve` sets no timer and so never times a connection out.
//!
//! Every connection is bounded: at most [`ConnectionLimits::per_address`] open at once
//! from one client address (more are closed at once), a TLS handshake within
//! `tls_handshake_seconds`, each request's headers within `header_seconds` (hyper's
//! header read timeout, which also closes a kept-alive connection that sends nothing
//! for that long), each request body within `body_seconds` (`408`, see
//! [`body_deadline`]), and a response the client does not read for `idle_seconds`
//! ends the connection ([`StallLimitedIo`]).

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Connection limits (`[connections]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this many seconds (and a kept-alive
    /// connection that sends nothing for this long is closed).
    pub header_seconds: u64,
    /// A request's body must arrive within this many seconds (`408` otherwise).
    pub body_seconds: u64,
    /// A response the client does not read for this many seconds ends the connection.
    pub idle_seconds: u64,
    /// A TLS handshake must finish within this many seconds.
    pub tls_handshake_seconds: u64,
    /// Connections one client address may hold open at once (a school's PCs behind one
    /// NAT address share it).
    pub per_address: usize,
    /// Report uploads one client address may have in progress at once (of the 256
    /// upload slots; one host key holds at most 16).
    pub uploads_per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_seconds: 10,
            body_seconds: 30,
            idle_seconds: 30,
            tls_handshake_seconds: 10,
            per_address: 256,
            uploads_per_address: 16,
        }
    }
}

impl ConnectionLimits {
    pub fn body(&self) -> Duration {
        Duration::from_secs(self.body_seconds.max(1))
    }
}

/// The connections each client address holds open.
#[derive(Debug, Default)]
struct OpenConnections {
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection, counted until it is dropped.
struct OpenConnection {
    table: Arc<OpenConnections>,
    address: IpAddr,
}

impl OpenConnections {
    fn open(self: &Arc<Self>, address: IpAddr, limit: usize) -> Option<OpenConnection> {
        let mut table = self.per_address.lock().ok()?;
        let count = table.entry(address).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(OpenConnection {
            table: self.clone(),
            address,
        })
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Ok(mut table) = self.table.per_address.lock()
            && let Some(count) = table.get_mut(&self.address)
        {
            *count -= 1;
            if *count == 0 {
                table.remove(&self.address);
            }
        }
    }
}

/// An IO whose writes may not stall: a write the peer does not take for `limit` fails
/// with `TimedOut`, which ends the connection.
#[derive(Debug)]
pub struct StallLimitedIo<T> {
    inner: T,
    limit: Duration,
    stalled_since: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallLimitedIo<T> {
    pub fn new(inner: T, limit: Duration) -> StallLimitedIo<T> {
        StallLimitedIo {
            inner,
            limit,
            stalled_since: None,
        }
    }

    fn poll_stall<R>(
        &mut self,
        context: &mut Context<'_>,
        poll: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled_since = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(context) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallLimitedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(context, buffer)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallLimitedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(context, data);
        self.poll_stall(context, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(context, buffers);
        self.poll_stall(context, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(context);
        self.poll_stall(context, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(context);
        self.poll_stall(context, poll)
    }
}

/// The error a request body gives when it did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s")]
pub struct BodyDeadlineExceeded(pub u64);

/// Middleware: the request body must arrive whole within `limit`; after it, reading
/// the body fails with [`BodyDeadlineExceeded`] (handlers answer `408`).
pub async fn body_deadline(
    limit: Duration,
    request: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let limited = DeadlineBody {
        frames: body.into_data_stream(),
        deadline: tokio::time::Instant::now() + limit,
        timer: None,
        seconds: limit.as_secs(),
        timed_out: false,
    };
    next.run(Request::from_parts(parts, Body::from_stream(limited)))
        .await
}

/// A body's frames until its deadline. The timer is made the first time a frame is not
/// there yet and then kept: one timer per body, not one registered and dropped again
/// for each frame that has to be waited for.
struct DeadlineBody {
    frames: axum::body::BodyDataStream,
    deadline: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    seconds: u64,
    /// The deadline passed: the body ended with its error.
    timed_out: bool,
}

impl futures_util::Stream for DeadlineBody {
    type Item = Result<axum::body::Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = self.frames.poll_next_unpin(context) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(context) {
            Poll::Ready(()) => {
                self.timed_out = true;
                Poll::Ready(Some(Err(axum::Error::new(BodyDeadlineExceeded(
                    self.seconds,
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether a body read failed because of [`body_deadline`].
pub fn is_body_deadline(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyDeadlineExceeded>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The plain-text 408 of routes that do not answer JSON themselves.
pub fn request_timeout() -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        "the request body did not arrive in time",
    )
        .into_response()
}

/// Serves `router` on `listener` (over TLS when `tls` is given) with `limits`, until
/// `shutdown` resolves; connections still open then are closed gracefully.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let open = Arc::new(OpenConnections::default());
    let tls = tls.map(TlsAcceptor::from);
    let (closing, _) = tokio::sync::watch::channel(false);
    let closing = Arc::new(closing);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    tracing::warn!("accepting a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let Some(counted) = open.open(peer.ip(), limits.per_address) else {
            tracing::debug!(address = %peer.ip(), "too many connections from one address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let tls = tls.clone();
        let mut closing = closing.subscribe();
        tasks.spawn(async move {
            let _counted = counted;
            let stall = Duration::from_secs(limits.idle_seconds.max(1));
            match tls {
                Some(acceptor) => {
                    let handshake = Duration::from_secs(limits.tls_handshake_seconds.max(1));
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(
                                StallLimitedIo::new(stream, stall),
                                peer,
                                router,
                                limits,
                                &mut closing,
                            )
                            .await
                        }
                        Ok(Err(error)) => tracing::debug!("TLS handshake with {peer}: {error}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                }
                None => {
                    serve_connection(
                        StallLimitedIo::new(stream, stall),
                        peer,
                        router,
                        limits,
                        &mut closing,
                    )
                    .await
                }
            }
        });
    }
    let _ = closing.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection<T>(
    io: T,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    closing: &mut tokio::sync::watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            router.oneshot(request).await
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_seconds.max(1)))
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!("connection from {peer}: {error}");
            }
            return;
        }
        _ = closing.changed() => connection.as_mut().graceful_shutdown(),
    }
    if let Err(error) = connection.await {
        tracing::debug!("connection from {peer} while closing: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use futures_util::stream;
    use tower::ServiceExt;

    /// A route that reads its body whole: 200 with its length, 408 past the deadline.
    fn reading_router(limit: Duration) -> Router {
        Router::new()
            .route(
                "/",
                post(|body: Body| async move {
                    match axum::body::to_bytes(body, 1 << 20).await {
                        Ok(bytes) => (StatusCode::OK, bytes.len().to_string()),
                        Err(error) if is_body_deadline(&error) => {
                            (StatusCode::REQUEST_TIMEOUT, String::new())
                        }
                        Err(error) => (StatusCode::BAD_REQUEST, error.to_string()),
                    }
                }),
            )
            .layer(axum::middleware::from_fn(move |request, next| {
                body_deadline(limit, request, next)
            }))
    }

    async fn send(router: Router, body: Body) -> (StatusCode, String) {
        let request = Request::post("/").body(body).expect("request");
        let response = tokio::time::timeout(Duration::from_secs(10), router.oneshot(request))
            .await
            .expect("an answer within 10 s")
            .expect("infallible");
        let status = response.status();
        let text = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("answer");
        (status, String::from_utf8_lossy(&text).into_owned())
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_ends_at_its_deadline() {
        let frames = stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
            b"{\"first\":",
        ))])
        .chain(stream::pending());
        let started = std::time::Instant::now();
        let (status, _) = send(
            reading_router(Duration::from_millis(300)),
            Body::from_stream(frames),
        )
        .await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn frames_that_arrive_in_time_are_read_whole() {
        // Each frame after a pause (the timer is made while waiting for the second and
        // kept for the third).
        let frames = stream::iter([&b"{\"a\":"[..], b"\"bc\"", b"}"]).then(|frame| async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(frame))
        });
        let (status, length) = send(
            reading_router(Duration::from_secs(5)),
            Body::from_stream(frames),
        )
        .await;
        assert_eq!((status, length.as_str()), (StatusCode::OK, "10"));
    }
}
