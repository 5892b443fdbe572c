//! Request handlers, one module per Kafka API family, registered in one table ([`HANDLERS`]) that
//! drives both dispatch and the ApiVersions answer, so what is advertised is what is handled.
//!
//! A handler is called in two phases (Redpanda's two-phase produce): `handle` runs in the
//! connection's read loop, in request order, and does whatever must be ordered (a Produce appends
//! here); it returns a future that completes the response (waiting for durability, a long-poll
//! fetch). The connection writes completed responses in request order.

mod admin;
mod api_versions;
pub(crate) mod errors;
mod fetch;
mod group;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;
pub(crate) mod txn;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use crate::broker::Broker;
use crate::server::codec::ResponseBody;

pub(crate) use api_versions::unsupported_version_response;

/// What every handler knows about its request.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) broker: Arc<Broker>,
    pub(crate) api_version: i16,
    /// See [`RequestContext::hold_connection`].
    pub(crate) hold: Arc<parking_lot::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
}

impl RequestContext {
    /// Keeps the connection's next request unread until the returned sender is used or
    /// dropped. For a handler whose ordered part (normally done before it returns) must await
    /// something first: a produce that verifies a transaction before appending must not be
    /// overtaken by the same producer's next produce request (Kafka reads one request per
    /// connection at a time; Strom pipelines, and this is the exception).
    pub(crate) fn hold_connection(&self) -> tokio::sync::oneshot::Sender<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self.hold.lock() = Some(rx);
        tx
    }
}

/// The completion phase of a request; `None` means send nothing back (Produce with acks=0).
pub(crate) type HandlerFuture =
    Pin<Box<dyn Future<Output = Option<Box<dyn ResponseBody>>> + Send + 'static>>;

/// A request that could not be decoded: the connection is closed, as Kafka does.
#[derive(Debug, thiserror::Error)]
#[error("malformed {api:?} v{version} request: {reason}")]
pub(crate) struct DecodeError {
    pub(crate) api: ApiKey,
    pub(crate) version: i16,
    pub(crate) reason: String,
}

/// One registered API.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiHandler {
    pub(crate) api_key: ApiKey,
    /// Versions advertised in ApiVersions.
    pub(crate) min_version: i16,
    pub(crate) max_version: i16,
    /// Lowest version actually served: advertised-but-older versions close the connection
    /// (Produce v0–v2, advertised for librdkafka's sake; see KAFKA-18659).
    pub(crate) min_served: i16,
    pub(crate) handle: fn(RequestContext, Bytes) -> Result<HandlerFuture, DecodeError>,
}

/// Every API this broker serves.
pub(crate) const HANDLERS: &[ApiHandler] = &[
    produce::HANDLER,
    fetch::HANDLER,
    list_offsets::HANDLER,
    metadata::HANDLER,
    api_versions::HANDLER,
    admin::create_topics::HANDLER,
    admin::delete_topics::HANDLER,
    admin::describe_configs::HANDLER,
    admin::describe_cluster::HANDLER,
    admin::alter_configs::HANDLER,
    admin::alter_configs::INCREMENTAL_HANDLER,
    admin::create_partitions::HANDLER,
    admin::delete_records::HANDLER,
    admin::describe_log_dirs::HANDLER,
    admin::describe_topic_partitions::HANDLER,
    admin::elect_leaders::HANDLER,
    offset_for_leader_epoch::HANDLER,
    txn::init_producer_id::HANDLER,
    txn::add_partitions_to_txn::HANDLER,
    txn::end_txn::ADD_OFFSETS_HANDLER,
    txn::end_txn::HANDLER,
    txn::txn_offset_commit::HANDLER,
    txn::write_txn_markers::HANDLER,
    txn::admin::LIST_HANDLER,
    txn::admin::DESCRIBE_HANDLER,
    txn::admin::DESCRIBE_PRODUCERS_HANDLER,
    group::find_coordinator::HANDLER,
    group::join_group::HANDLER,
    group::sync_group::HANDLER,
    group::heartbeat::HANDLER,
    group::leave_group::HANDLER,
    group::offset_commit::HANDLER,
    group::offset_fetch::HANDLER,
    group::offset_fetch::DELETE_HANDLER,
    group::list_groups::LIST_HANDLER,
    group::list_groups::DESCRIBE_HANDLER,
    group::list_groups::DELETE_HANDLER,
    group::consumer_group_heartbeat::HANDLER,
    group::consumer_group_describe::HANDLER,
];

/// The handler for an API key, if served.
pub(crate) fn lookup(api_key: i16) -> Option<&'static ApiHandler> {
    HANDLERS.iter().find(|h| h.api_key as i16 == api_key)
}

/// Decodes a request body of type `T` at `version`.
pub(crate) fn decode<T: kafka_protocol::protocol::Decodable>(
    api: ApiKey,
    version: i16,
    mut body: Bytes,
) -> Result<T, DecodeError> {
    T::decode(&mut body, version).map_err(|e| DecodeError {
        api,
        version,
        reason: e.to_string(),
    })
}

/// Wraps a ready response.
pub(crate) fn ready<T: ResponseBody + 'static>(resp: T) -> HandlerFuture {
    Box::pin(std::future::ready(Some(
        Box::new(resp) as Box<dyn ResponseBody>
    )))
}

/// Wraps an async response.
pub(crate) fn later<T: ResponseBody + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> HandlerFuture {
    Box::pin(async move { Some(Box::new(f.await) as Box<dyn ResponseBody>) })
}
