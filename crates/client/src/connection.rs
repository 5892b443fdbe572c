//! `Connection`: one connection to one broker, shared by clones, with pipelined requests.
//!
//! Requests are encoded by the caller and queued to a writer task in call order, so the order of
//! [`Connection::start`] calls is the order on the wire (the producer relies on this for per-partition
//! ordering); a reader task routes responses by correlation id (both in `wire.rs`).
//!
//! Connecting is Kafka's sequence: TCP, TLS for SSL/SASL_SSL (`transport.rs`), ApiVersions, then
//! for SASL_PLAINTEXT/SASL_SSL the SASL exchange (`sasl_authenticator.rs`), which the writer task
//! repeats on this connection when the broker's session lifetime asks for it (KIP-368).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use kafka_protocol::ResponseError;

use crate::codec;
use crate::error::ClientError;
use crate::sasl_authenticator::SaslVersions;
use crate::security::Security;
use crate::transport::{self, ConnectionConfig};
use crate::versions::ApiVersionTable;
use crate::wire::{ResponseReceiver, Wire};

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
    /// Connects to `addr` ("host:port") over PLAINTEXT and negotiates API versions: ApiVersions v3
    /// first, and v0 when the broker answers UNSUPPORTED_VERSION (older brokers reply in v0 format then).
    pub async fn connect(addr: &str, config: &ConnectionConfig) -> Result<Connection, ClientError> {
        Connection::connect_with_security(addr, config, &Security::plaintext()).await
    }

    /// Connects as `security` says: TLS first when it has a TLS config, then ApiVersions, then the
    /// SASL login when it has one. Fails with the broker's SASL error (SASL_AUTHENTICATION_FAILED,
    /// UNSUPPORTED_SASL_MECHANISM) or [`ClientError::Tls`]; neither is retriable.
    pub async fn connect_with_security(
        addr: &str,
        config: &ConnectionConfig,
        security: &Security,
    ) -> Result<Connection, ClientError> {
        let wire = Arc::new(transport::open(addr, config, security).await?);
        let versions = negotiate(&wire).await?;
        if let Some(login) = security.sasl() {
            let sasl_versions = SaslVersions::negotiated(&versions, addr)?;
            wire.authenticate(login.clone(), sasl_versions).await?;
        }
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
        self.wire.shared.is_closed()
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
    rx: ResponseReceiver,
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
        self.wire
            .shared
            .wait_body(self.rx, self.api, self.version, self.correlation_id)
            .await
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
