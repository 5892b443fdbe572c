//! `Wire`: the two tasks behind one broker connection and the state they share. A writer task
//! writes queued frames in queue order; a reader task routes each response frame by correlation id
//! to the oneshot of the request waiting for it (decoding happens in the waiting task, keeping the
//! reader cheap).
//!
//! Both loops are generic over the stream halves — a `TcpStream`'s owned halves for PLAINTEXT and
//! SASL_PLAINTEXT (no lock between reader and writer), `tokio::io::split` halves of a rustls stream
//! for SSL and SASL_SSL — so there is one copy of each loop and plaintext pays nothing for TLS.
//!
//! SASL runs in the writer task, because the writer is the one place that decides what goes on
//! the wire next: the first login (asked for by `Connection::connect` after ApiVersions) and each
//! KIP-368 re-authentication. A re-authentication is due once the session's deadline has passed
//! and starts before the next queued frame is written: frames queued meanwhile stay in the queue
//! (so the broker sees no other request between SaslHandshake and the last SaslAuthenticate, as
//! Kafka requires), responses to requests already sent keep flowing through the reader, and the
//! queue resumes in order afterwards. Callers never wait for it except through their responses.
//!
//! Concurrency: `InFlight` is the only shared mutable state; it is locked briefly and never across
//! `.await`. Once `closed` is set (by whichever task sees the socket fail first) no new waiter is
//! registered and every existing waiter has been answered with the error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Request, StrBytes};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::codec;
use crate::error::ClientError;
use crate::sasl_authenticator::{SaslAuthenticator, SaslNext, SaslVersions};
use crate::security::SaslLogin;

type Waiter = oneshot::Sender<Result<Bytes, ClientError>>;
pub(crate) type ResponseReceiver = oneshot::Receiver<Result<Bytes, ClientError>>;

/// Waiters by correlation id, plus whether the socket is gone.
#[derive(Default)]
struct InFlight {
    closed: bool,
    waiting: HashMap<i32, Waiter>,
}

/// State shared by the handle, the reader task and the writer task.
pub(crate) struct Shared {
    pub(crate) addr: String,
    client_id: StrBytes,
    next_correlation_id: AtomicI32,
    request_timeout: Duration,
    in_flight: Mutex<InFlight>,
}

impl Shared {
    /// Encodes `req` with the next correlation id.
    fn encode<R: Request>(
        &self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<(i32, Bytes), ClientError> {
        // fetch_add wraps at i32::MAX, which Kafka allows; ids only need to be unique among waiters.
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let frame = codec::encode_request(api, version, correlation_id, &self.client_id, req)?;
        Ok((correlation_id, frame))
    }

    /// Registers a waiter for `correlation_id`, then runs `queue` under the same lock so the wire
    /// order is the registration order; `queue` returning false (the writer is gone) undoes it.
    fn register(
        &self,
        correlation_id: i32,
        queue: impl FnOnce() -> bool,
    ) -> Result<ResponseReceiver, ClientError> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.in_flight.lock();
        if state.closed {
            return Err(self.closed_error());
        }
        state.waiting.insert(correlation_id, tx);
        if !queue() {
            state.waiting.remove(&correlation_id);
            return Err(self.closed_error());
        }
        Ok(rx)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.in_flight.lock().closed
    }

    pub(crate) fn closed_error(&self) -> ClientError {
        ClientError::ConnectionClosed {
            addr: self.addr.clone(),
        }
    }

    /// Marks the connection dead and answers every waiter with `err`.
    fn fail_all(&self, err: &ClientError) {
        let waiting = {
            let mut state = self.in_flight.lock();
            state.closed = true;
            std::mem::take(&mut state.waiting)
        };
        for (_, waiter) in waiting {
            let _ = waiter.send(Err(err.clone()));
        }
    }

    /// Waits (up to the request timeout) for the response to `correlation_id` and strips its header.
    pub(crate) async fn wait_body(
        &self,
        rx: ResponseReceiver,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> Result<Bytes, ClientError> {
        let frame = match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(self.closed_error()),
            Err(_) => {
                // Forget the waiter so a late response is dropped by the reader, not leaked.
                self.in_flight.lock().waiting.remove(&correlation_id);
                return Err(ClientError::Timeout {
                    api,
                    addr: self.addr.clone(),
                });
            }
        };
        codec::strip_response_header(frame, api, version)
    }
}

/// What the handle asks of the writer task.
enum Outgoing {
    /// A request frame, written in queue order.
    Frame(Bytes),
    /// Run the SASL exchange now and keep the login for re-authentication.
    Authenticate {
        login: SaslLogin,
        versions: SaslVersions,
        done: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// The handle side; dropping the last clone stops both tasks.
pub(crate) struct Wire {
    pub(crate) shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Outgoing>,
    reader: tokio::task::AbortHandle,
}

impl Drop for Wire {
    fn drop(&mut self) {
        // The writer ends when `writer` is dropped; the reader would wait for the broker to close.
        self.reader.abort();
        // The writer may be waiting for a re-authentication response the aborted reader will
        // never route: answer it now rather than at its timeout.
        self.shared.fail_all(&self.shared.closed_error());
    }
}

impl Wire {
    /// Starts the reader and writer tasks over a stream's two halves.
    pub(crate) fn spawn<R, W>(
        read_half: R,
        write_half: W,
        addr: &str,
        client_id: &str,
        request_timeout: Duration,
    ) -> Wire
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            client_id: StrBytes::from_string(client_id.to_owned()),
            next_correlation_id: AtomicI32::new(0),
            request_timeout,
            in_flight: Mutex::new(InFlight::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            out: BufWriter::with_capacity(64 * 1024, write_half),
            shared: shared.clone(),
            session: None,
        };
        tokio::spawn(writer.run(rx));
        let reader = tokio::spawn(read_loop(read_half, shared.clone())).abort_handle();
        Wire {
            shared,
            writer: tx,
            reader,
        }
    }

    /// Queues `req` and registers a waiter for its response.
    pub(crate) fn start<R: Request>(
        &self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<(i32, ResponseReceiver), ClientError> {
        let (correlation_id, frame) = self.shared.encode(api, version, req)?;
        let rx = self.shared.register(correlation_id, || {
            self.writer.send(Outgoing::Frame(frame)).is_ok()
        })?;
        Ok((correlation_id, rx))
    }

    /// Queues a request whose response the broker will not send (Produce with acks=0).
    pub(crate) fn send_without_response<R: Request>(
        &self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<(), ClientError> {
        let (_, frame) = self.shared.encode(api, version, req)?;
        let state = self.shared.in_flight.lock();
        if state.closed || self.writer.send(Outgoing::Frame(frame)).is_err() {
            return Err(self.shared.closed_error());
        }
        Ok(())
    }

    /// Logs in with `login`; the writer re-authenticates with it whenever the session asks to.
    pub(crate) async fn authenticate(
        &self,
        login: SaslLogin,
        versions: SaslVersions,
    ) -> Result<(), ClientError> {
        let (done, result) = oneshot::channel();
        self.writer
            .send(Outgoing::Authenticate {
                login,
                versions,
                done,
            })
            .map_err(|_| self.shared.closed_error())?;
        result.await.map_err(|_| self.shared.closed_error())?
    }
}

/// An authenticated session: the login to repeat and when to repeat it.
struct SaslSession {
    login: SaslLogin,
    versions: SaslVersions,
    /// `None` when the broker set no session lifetime (no re-authentication).
    reauthenticate_at: Option<Instant>,
}

/// The writer task's state.
struct Writer<W> {
    out: BufWriter<W>,
    shared: Arc<Shared>,
    session: Option<SaslSession>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Writes queued frames, coalescing whatever is already queued into one flush, until the
    /// handle is dropped or the socket fails.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
        let result: Result<(), ClientError> = async {
            while let Some(first) = rx.recv().await {
                self.handle(first).await?;
                while let Ok(next) = rx.try_recv() {
                    self.handle(next).await?;
                }
                self.out.flush().await.map_err(|e| self.io(e))?;
            }
            self.out.shutdown().await.map_err(|e| self.io(e))
        }
        .await;
        if let Err(err) = result {
            tracing::debug!(addr = %self.shared.addr, error = %err, "connection writer stopped");
            self.shared.fail_all(&err);
        }
    }

    async fn handle(&mut self, outgoing: Outgoing) -> Result<(), ClientError> {
        match outgoing {
            Outgoing::Frame(frame) => {
                if self.reauthentication_due() {
                    self.reauthenticate().await?;
                }
                self.out.write_all(&frame).await.map_err(|e| self.io(e))
            }
            Outgoing::Authenticate {
                login,
                versions,
                done,
            } => match self.authenticate(&login, versions).await {
                Ok(reauthenticate_at) => {
                    self.session = Some(SaslSession {
                        login,
                        versions,
                        reauthenticate_at,
                    });
                    let _ = done.send(Ok(()));
                    Ok(())
                }
                Err(err) => {
                    let _ = done.send(Err(err.clone()));
                    Err(err)
                }
            },
        }
    }

    fn reauthentication_due(&self) -> bool {
        self.session
            .as_ref()
            .and_then(|s| s.reauthenticate_at)
            .is_some_and(|at| Instant::now() >= at)
    }

    /// KIP-368: the same exchange again on this connection. A failure closes the connection, as
    /// in Kafka's clients: the broker would close it at the session's end anyway.
    async fn reauthenticate(&mut self) -> Result<(), ClientError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        tracing::debug!(addr = %self.shared.addr, mechanism = %session.login.mechanism(), "re-authenticating");
        let reauthenticate_at = self.authenticate(&session.login, session.versions).await?;
        self.session = Some(SaslSession {
            reauthenticate_at,
            ..session
        });
        Ok(())
    }

    /// SaslHandshake, then SaslAuthenticate rounds until the mechanism is done; returns when to
    /// re-authenticate.
    async fn authenticate(
        &mut self,
        login: &SaslLogin,
        versions: SaslVersions,
    ) -> Result<Option<Instant>, ClientError> {
        let mut auth = SaslAuthenticator::new(login, &self.shared.addr);
        let handshake = self
            .round_trip(ApiKey::SaslHandshake, versions.handshake, &auth.handshake())
            .await?;
        let mut request = auth.on_handshake(&handshake)?;
        loop {
            let response = self
                .round_trip(ApiKey::SaslAuthenticate, versions.authenticate, &request)
                .await?;
            match auth.on_authenticate(&response)? {
                SaslNext::Send(next) => request = next,
                SaslNext::Done {
                    reauthenticate_after,
                } => return Ok(reauthenticate_after.map(|after| Instant::now() + after)),
            }
        }
    }

    /// One request written and flushed at once, its response awaited (the reader routes it).
    async fn round_trip<R: Request>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<R::Response, ClientError> {
        let (correlation_id, frame) = self.shared.encode(api, version, req)?;
        let rx = self.shared.register(correlation_id, || true)?;
        self.out.write_all(&frame).await.map_err(|e| self.io(e))?;
        self.out.flush().await.map_err(|e| self.io(e))?;
        let body = self
            .shared
            .wait_body(rx, api, version, correlation_id)
            .await?;
        codec::decode_body(body, version, "decode SASL response")
    }

    fn io(&self, e: std::io::Error) -> ClientError {
        ClientError::io(&self.shared.addr, e)
    }
}

/// Routes response frames to waiters until the socket closes or fails.
async fn read_loop<R: AsyncRead + Unpin>(read_half: R, shared: Arc<Shared>) {
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let err = loop {
        match codec::read_frame(&mut reader, &shared.addr).await {
            Ok(Some(frame)) => {
                let Some(correlation_id) = codec::correlation_id(&frame) else {
                    continue; // read_frame guarantees 4 bytes; kept total for clarity
                };
                let waiter = shared.in_flight.lock().waiting.remove(&correlation_id);
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(Ok(frame));
                    }
                    // A request that timed out; its late answer has nowhere to go.
                    None => {
                        tracing::debug!(addr = %shared.addr, correlation_id, "response for unknown request")
                    }
                }
            }
            Ok(None) => break shared.closed_error(),
            Err(e) => break e,
        }
    };
    shared.fail_all(&err);
}
