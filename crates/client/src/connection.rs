//! `Connection`: one TCP connection to one broker, shared by clones, with pipelined requests.
//!
//! Requests are encoded by the caller and queued to a writer task in call order, so the order of
//! [`Connection::start`] calls is the order on the wire (the producer relies on this for per-partition
//! ordering). A single reader task routes each response frame by correlation id to the oneshot of the
//! request that is waiting for it; decoding happens in the waiting task, keeping the reader cheap.
//!
//! Concurrency: `InFlight` is the only shared mutable state; it is locked briefly and never across
//! `.await`. Once `closed` is set (by whichever task sees the socket fail first) no new waiter is
//! registered and every existing waiter has been answered with the error.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::codec;
use crate::error::ClientError;
use crate::versions::ApiVersionTable;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header (Kafka: client.id).
    pub client_id: String,
    /// How long to wait for a response (Kafka: request.timeout.ms).
    pub request_timeout: Duration,
    /// How long to wait for the TCP handshake (Kafka: socket.connection.setup.timeout.ms).
    pub connect_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "strom".to_owned(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

type Waiter = oneshot::Sender<Result<Bytes, ClientError>>;

/// Waiters by correlation id, plus whether the socket is gone.
#[derive(Default)]
struct InFlight {
    closed: bool,
    waiting: HashMap<i32, Waiter>,
}

/// State shared by the handle, the reader task and the writer task.
struct Shared {
    addr: String,
    in_flight: Mutex<InFlight>,
}

impl Shared {
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
}

/// The handle side; dropping the last clone stops both tasks.
struct Wire {
    shared: Arc<Shared>,
    client_id: StrBytes,
    next_correlation_id: AtomicI32,
    request_timeout: Duration,
    writer: mpsc::UnboundedSender<Bytes>,
    reader: tokio::task::AbortHandle,
}

impl Drop for Wire {
    fn drop(&mut self) {
        // The writer ends when `writer` is dropped; the reader would wait for the broker to close.
        self.reader.abort();
    }
}

/// A connection to one broker, with the API versions negotiated at connect time. Cheap to clone;
/// clones share the socket.
#[derive(Clone)]
pub struct Connection {
    wire: Arc<Wire>,
    versions: Arc<ApiVersionTable>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.wire.shared.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` ("host:port") and negotiates API versions: ApiVersions v3 first, and v0
    /// when the broker answers UNSUPPORTED_VERSION (older brokers reply in v0 format then).
    pub async fn connect(addr: &str, config: &ConnectionConfig) -> Result<Connection, ClientError> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                api: ApiKey::ApiVersions,
                addr: addr.to_owned(),
            })?
            .map_err(|e| ClientError::io(addr, e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ClientError::io(addr, e))?;
        let wire = Arc::new(Wire::spawn(stream, addr, config));
        let versions = negotiate(&wire).await?;
        Ok(Connection {
            wire,
            versions: Arc::new(versions),
        })
    }

    /// The broker address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.wire.shared.addr
    }

    /// Whether the socket has failed or closed; a closed connection fails every request.
    pub fn is_closed(&self) -> bool {
        self.wire.shared.in_flight.lock().closed
    }

    /// The version negotiated for `api`, or `UnsupportedApi`.
    pub fn version(&self, api: ApiKey) -> Result<i16, ClientError> {
        self.versions
            .get(api)
            .ok_or_else(|| ClientError::UnsupportedApi {
                api,
                addr: self.addr().to_owned(),
            })
    }

    /// Sends `req` at `version` and waits for its response.
    pub async fn send<R: Request>(
        &self,
        version: i16,
        req: &R,
    ) -> Result<R::Response, ClientError> {
        self.start(version, req)?.wait().await
    }

    /// Queues `req` on the wire now and returns a handle to await the response later: requests
    /// started in sequence go out in that sequence, and many can be outstanding at once.
    pub fn start<R: Request>(
        &self,
        version: i16,
        req: &R,
    ) -> Result<PendingResponse<R::Response>, ClientError> {
        let api = api_key::<R>()?;
        let (correlation_id, rx) = self.wire.start(api, version, req)?;
        Ok(PendingResponse {
            wire: self.wire.clone(),
            rx,
            api,
            version,
            correlation_id,
            _response: PhantomData,
        })
    }

    /// Queues a request whose response the broker will not send (Produce with acks=0).
    pub fn send_without_response<R: Request>(
        &self,
        version: i16,
        req: &R,
    ) -> Result<(), ClientError> {
        let api = api_key::<R>()?;
        self.wire.send_without_response(api, version, req)
    }
}

fn api_key<R: Request>() -> Result<ApiKey, ClientError> {
    ApiKey::try_from(R::KEY).map_err(|()| ClientError::codec("request", "unknown API key"))
}

/// A response not yet received; see [`Connection::start`].
pub struct PendingResponse<T> {
    wire: Arc<Wire>,
    rx: oneshot::Receiver<Result<Bytes, ClientError>>,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    _response: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for PendingResponse<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingResponse")
            .field("api", &self.api)
            .field("version", &self.version)
            .field("correlation_id", &self.correlation_id)
            .finish()
    }
}

impl<T: Decodable> PendingResponse<T> {
    /// Waits (up to the request timeout) and decodes the response.
    pub async fn wait(self) -> Result<T, ClientError> {
        let (api, version) = (self.api, self.version);
        let body = self.wait_body().await?;
        codec::decode_body(body, version, response_name(api))
    }

    /// Waits and returns the body with the header stripped, undecoded.
    async fn wait_body(self) -> Result<Bytes, ClientError> {
        let addr = &self.wire.shared.addr;
        let frame = match tokio::time::timeout(self.wire.request_timeout, self.rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(ClientError::ConnectionClosed { addr: addr.clone() }),
            Err(_) => {
                // Forget the waiter so a late response is dropped by the reader, not leaked.
                self.wire
                    .shared
                    .in_flight
                    .lock()
                    .waiting
                    .remove(&self.correlation_id);
                return Err(ClientError::Timeout {
                    api: self.api,
                    addr: addr.clone(),
                });
            }
        };
        codec::strip_response_header(frame, self.api, self.version)
    }
}

fn response_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "decode Produce response",
        ApiKey::Fetch => "decode Fetch response",
        ApiKey::ListOffsets => "decode ListOffsets response",
        ApiKey::Metadata => "decode Metadata response",
        ApiKey::ApiVersions => "decode ApiVersions response",
        ApiKey::CreateTopics => "decode CreateTopics response",
        ApiKey::DeleteTopics => "decode DeleteTopics response",
        ApiKey::DescribeConfigs => "decode DescribeConfigs response",
        ApiKey::DescribeCluster => "decode DescribeCluster response",
        _ => "decode response",
    }
}

impl Wire {
    fn spawn(stream: TcpStream, addr: &str, config: &ConnectionConfig) -> Wire {
        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared {
            addr: addr.to_owned(),
            in_flight: Mutex::new(InFlight::default()),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(write_half, rx, shared.clone()));
        let reader = tokio::spawn(read_loop(read_half, shared.clone())).abort_handle();
        Wire {
            shared,
            client_id: StrBytes::from_string(config.client_id.clone()),
            next_correlation_id: AtomicI32::new(0),
            request_timeout: config.request_timeout,
            writer: tx,
            reader,
        }
    }

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

    fn start<R: Request>(
        &self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<(i32, oneshot::Receiver<Result<Bytes, ClientError>>), ClientError> {
        let (correlation_id, frame) = self.encode(api, version, req)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.in_flight.lock();
            if state.closed {
                return Err(self.closed());
            }
            state.waiting.insert(correlation_id, tx);
            // Queue while still holding the lock so the wire order is the registration order.
            if self.writer.send(frame).is_err() {
                state.waiting.remove(&correlation_id);
                return Err(self.closed());
            }
        }
        Ok((correlation_id, rx))
    }

    fn send_without_response<R: Request>(
        &self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<(), ClientError> {
        let (_, frame) = self.encode(api, version, req)?;
        let state = self.shared.in_flight.lock();
        if state.closed || self.writer.send(frame).is_err() {
            return Err(self.closed());
        }
        Ok(())
    }

    fn closed(&self) -> ClientError {
        ClientError::ConnectionClosed {
            addr: self.shared.addr.clone(),
        }
    }
}

/// Writes queued frames, coalescing whatever is already queued into one flush.
async fn write_loop(
    write_half: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
) {
    let mut writer = BufWriter::with_capacity(64 * 1024, write_half);
    let result: Result<(), std::io::Error> = async {
        while let Some(frame) = rx.recv().await {
            writer.write_all(&frame).await?;
            while let Ok(frame) = rx.try_recv() {
                writer.write_all(&frame).await?;
            }
            writer.flush().await?;
        }
        writer.shutdown().await
    }
    .await;
    if let Err(e) = result {
        let err = ClientError::io(&shared.addr, e);
        tracing::debug!(addr = %shared.addr, error = %err, "connection write failed");
        shared.fail_all(&err);
    }
}

/// Routes response frames to waiters until the socket closes or fails.
async fn read_loop(read_half: OwnedReadHalf, shared: Arc<Shared>) {
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
            Ok(None) => {
                break ClientError::ConnectionClosed {
                    addr: shared.addr.clone(),
                }
            }
            Err(e) => break e,
        }
    };
    shared.fail_all(&err);
}

/// ApiVersions handshake; see [`Connection::connect`].
async fn negotiate(wire: &Arc<Wire>) -> Result<ApiVersionTable, ClientError> {
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("strom"))
        .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
    let first = ApiVersionTable::max_api_versions_version();
    let response = match api_versions(wire, first, &request).await? {
        Ok(response) => response,
        // The broker does not know v3: it replied in v0 format; ask again in v0.
        Err(()) => match api_versions(wire, 0, &ApiVersionsRequest::default()).await? {
            Ok(response) => response,
            Err(()) => {
                return Err(ClientError::broker(
                    "ApiVersions",
                    ResponseError::UnsupportedVersion.code(),
                    None,
                ))
            }
        },
    };
    if response.error_code != 0 {
        return Err(ClientError::broker(
            "ApiVersions",
            response.error_code,
            None,
        ));
    }
    Ok(ApiVersionTable::negotiate(&response.api_keys))
}

/// One ApiVersions round trip. `Ok(Err(()))` means UNSUPPORTED_VERSION (retry lower).
async fn api_versions(
    wire: &Arc<Wire>,
    version: i16,
    request: &ApiVersionsRequest,
) -> Result<Result<ApiVersionsResponse, ()>, ClientError> {
    let (correlation_id, rx) = wire.start(ApiKey::ApiVersions, version, request)?;
    let pending = PendingResponse::<ApiVersionsResponse> {
        wire: wire.clone(),
        rx,
        api: ApiKey::ApiVersions,
        version,
        correlation_id,
        _response: PhantomData,
    };
    let body = pending.wait_body().await?;
    if version > 0 && codec::peek_i16(&body) == Some(ResponseError::UnsupportedVersion.code()) {
        return Ok(Err(()));
    }
    codec::decode_body(body, version, "decode ApiVersions response").map(Ok)
}
