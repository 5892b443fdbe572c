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
mod leader_hints;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;
mod share_fetch;
mod share_state;
pub(crate) mod txn;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use crate::broker::Broker;
use crate::server::codec::ResponseBody;
use crate::session::Session;

pub(crate) use api_versions::unsupported_version_response;

/// What every handler knows about its request: the broker's parts, the request's version and
/// client id, and who sent it (the connection's [`Session`]: principal, listener, address), so
/// authorization and quotas are one call per handler.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    pub(crate) broker: Arc<Broker>,
    pub(crate) api_version: i16,
    /// The request header's client id (`None` when the client sent null).
    pub(crate) client_id: Option<kafka_protocol::protocol::StrBytes>,
    /// The connection the request came on.
    pub(crate) session: Arc<Session>,
    /// See [`RequestContext::hold_connection`].
    pub(crate) hold: Arc<parking_lot::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>,
    /// The connection's throttle (see [`RequestContext::mute_for`]).
    pub(crate) mute: Mute,
}

/// Until when a connection reads no further request: a client over its quota is muted for its
/// throttle time (KIP-219), also by a response that completes later (a fetch), so the
/// connection's read loop checks it before each request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mute(Arc<parking_lot::Mutex<Option<tokio::time::Instant>>>);

impl Mute {
    /// The end of the current throttle, if it lies ahead.
    pub(crate) fn until(&self) -> Option<tokio::time::Instant> {
        let until = *self.0.lock();
        until.filter(|u| *u > tokio::time::Instant::now())
    }

    /// Extends the throttle to at least `ms` from now.
    fn extend(&self, ms: u64) {
        let until = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
        let mut current = self.0.lock();
        if current.is_none_or(|c| c < until) {
            *current = Some(until);
        }
    }
}

impl RequestContext {
    /// May this request's principal do `operation` on the resource (always, without an
    /// authorizer)?
    pub(crate) fn authorized(
        &self,
        operation: strom_authorizer::AclOperation,
        resource_type: strom_authorizer::ResourceType,
        name: &str,
    ) -> bool {
        self.broker
            .authorization
            .authorize(&self.session, operation, resource_type, name)
    }

    /// May this request's principal do `operation` on the cluster?
    pub(crate) fn authorized_cluster(&self, operation: strom_authorizer::AclOperation) -> bool {
        self.broker
            .authorization
            .authorize_cluster(&self.session, operation)
    }

    /// Records `value` against `quota` for this request's principal and client id; the
    /// throttle time in ms (0 when within the quota, or none applies).
    pub(crate) fn record_quota(&self, quota: &strom_quota::QuotaManager, value: usize) -> u64 {
        if !quota.quotas_enabled() {
            return 0;
        }
        let client_id = self.client_id.as_ref().map_or("", |c| c.as_str());
        let now = strom_log::now_ms_unsigned();
        quota.record(
            crate::quota_managers::quota_user(&self.session),
            client_id,
            value as f64,
            now,
        )
    }

    /// Mutes the connection for `ms` (a quota's throttle time, KIP-219): its next request is
    /// read only after that.
    pub(crate) fn mute_for(&self, ms: u64) {
        if ms > 0 {
            self.mute.extend(ms);
        }
    }

    /// [`RequestContext::authorized`] on a topic.
    pub(crate) fn authorized_topic(
        &self,
        operation: strom_authorizer::AclOperation,
        topic: &str,
    ) -> bool {
        self.authorized(operation, strom_authorizer::ResourceType::Topic, topic)
    }

    /// [`RequestContext::authorized`] on a group.
    pub(crate) fn authorized_group(
        &self,
        operation: strom_authorizer::AclOperation,
        group: &str,
    ) -> bool {
        self.authorized(operation, strom_authorizer::ResourceType::Group, group)
    }

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

/// Runs a request under `request_percentage` (KIP-124): the time spent in its handler — the
/// ordered part and every poll of the completion, not the waits between them — counts against
/// the client's quota, and a client over it is muted for the throttle time once the response
/// is done. Only used while some request quota exists.
pub(crate) fn under_request_quota(
    h: &ApiHandler,
    ctx: RequestContext,
    body: Bytes,
) -> Result<HandlerFuture, DecodeError> {
    let started = std::time::Instant::now();
    let ordered = (h.handle)(ctx.clone(), body)?;
    let mut spent = started.elapsed();
    let mut inner = ordered;
    Ok(Box::pin(std::future::poll_fn(move |cx| {
        let polled = std::time::Instant::now();
        let out = inner.as_mut().poll(cx);
        spent += polled.elapsed();
        if out.is_ready() {
            let client_id = ctx.client_id.as_ref().map_or("", |c| c.as_str());
            let now = strom_log::now_ms_unsigned();
            let throttle = ctx.broker.quotas.request.record_request_time(
                crate::quota_managers::quota_user(&ctx.session),
                client_id,
                spent,
                now,
            );
            ctx.mute_for(throttle);
        }
        out
    })))
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
    /// Decodes a body only (the fuzz harness: every decoder, no broker needed).
    pub(crate) decode_only: fn(i16, Bytes) -> Result<(), DecodeError>,
}

/// Builds one [`ApiHandler`]: the API key, its request type, the versions advertised (and the
/// lowest served, when lower ones are advertised but refused), and the handler, by how it
/// completes: `sync` (a function of `&RequestContext` answering at once), `async` (an async
/// function: the response completes later, in order), `phased` (a function doing its ordered
/// part now and returning the [`HandlerFuture`] that completes it: Produce, WriteTxnMarkers).
macro_rules! api {
    (@sync $f:path, $ctx:ident, $req:ident) => { ready($f(&$ctx, $req)) };
    (@async $f:path, $ctx:ident, $req:ident) => { later($f($ctx, $req)) };
    (@phased $f:path, $ctx:ident, $req:ident) => { $f($ctx, $req) };
    ($key:ident, $req:ident, $min:literal..=$max:literal, served $served:literal, $kind:ident $f:path) => {
        ApiHandler {
            api_key: ApiKey::$key,
            min_version: $min,
            max_version: $max,
            min_served: $served,
            handle: |ctx, body| {
                let req: kafka_protocol::messages::$req = decode(ApiKey::$key, ctx.api_version, body)?;
                Ok(api!(@$kind $f, ctx, req))
            },
            decode_only: |version, body| {
                decode::<kafka_protocol::messages::$req>(ApiKey::$key, version, body).map(drop)
            },
        }
    };
    ($key:ident, $req:ident, $min:literal..=$max:literal, $kind:ident $f:path) => {
        api!($key, $req, $min..=$max, served $min, $kind $f)
    };
}

/// Every API this broker serves: one row each.
pub(crate) const HANDLERS: &[ApiHandler] = &[
    api!(Produce, ProduceRequest, 0..=12, served 3, phased produce::handle),
    api!(Fetch, FetchRequest, 4..=16, async fetch::handle),
    api!(ListOffsets, ListOffsetsRequest, 1..=8, sync list_offsets::handle),
    api!(Metadata, MetadataRequest, 0..=12, async metadata::handle),
    api!(ApiVersions, ApiVersionsRequest, 0..=4, sync api_versions::handle),
    api!(CreateTopics, CreateTopicsRequest, 2..=7, async admin::create_topics::handle),
    api!(DeleteTopics, DeleteTopicsRequest, 1..=6, async admin::delete_topics::handle),
    api!(DescribeConfigs, DescribeConfigsRequest, 1..=4, sync admin::describe_configs::handle),
    api!(DescribeCluster, DescribeClusterRequest, 0..=2, sync admin::describe_cluster::handle),
    api!(AlterConfigs, AlterConfigsRequest, 0..=2, async admin::alter_configs::alter),
    api!(IncrementalAlterConfigs, IncrementalAlterConfigsRequest, 0..=1, async admin::alter_configs::incremental),
    api!(CreatePartitions, CreatePartitionsRequest, 0..=3, async admin::create_partitions::handle),
    api!(DeleteRecords, DeleteRecordsRequest, 0..=2, async admin::delete_records::handle),
    api!(DescribeLogDirs, DescribeLogDirsRequest, 1..=4, sync admin::describe_log_dirs::handle),
    api!(DescribeTopicPartitions, DescribeTopicPartitionsRequest, 0..=0, sync admin::describe_topic_partitions::handle),
    api!(ElectLeaders, ElectLeadersRequest, 0..=2, async admin::elect_leaders::handle),
    api!(DescribeUserScramCredentials, DescribeUserScramCredentialsRequest, 0..=0, sync admin::scram_credentials::describe),
    api!(AlterUserScramCredentials, AlterUserScramCredentialsRequest, 0..=0, async admin::scram_credentials::alter),
    api!(CreateAcls, CreateAclsRequest, 0..=3, async admin::acls::create),
    api!(DescribeAcls, DescribeAclsRequest, 0..=3, sync admin::acls::describe),
    api!(DeleteAcls, DeleteAclsRequest, 0..=3, async admin::acls::delete),
    api!(DescribeClientQuotas, DescribeClientQuotasRequest, 0..=1, sync admin::client_quotas::describe),
    api!(AlterClientQuotas, AlterClientQuotasRequest, 0..=1, async admin::client_quotas::alter),
    api!(OffsetForLeaderEpoch, OffsetForLeaderEpochRequest, 2..=4, sync offset_for_leader_epoch::handle),
    api!(InitProducerId, InitProducerIdRequest, 0..=5, async txn::init_producer_id::handle),
    api!(AddPartitionsToTxn, AddPartitionsToTxnRequest, 0..=5, async txn::add_partitions_to_txn::handle),
    api!(AddOffsetsToTxn, AddOffsetsToTxnRequest, 0..=4, async txn::end_txn::add_offsets),
    api!(EndTxn, EndTxnRequest, 0..=5, async txn::end_txn::end_txn),
    api!(TxnOffsetCommit, TxnOffsetCommitRequest, 0..=5, async txn::txn_offset_commit::handle),
    api!(WriteTxnMarkers, WriteTxnMarkersRequest, 0..=1, phased txn::write_txn_markers::handle),
    api!(ListTransactions, ListTransactionsRequest, 0..=1, async txn::admin::list),
    api!(DescribeTransactions, DescribeTransactionsRequest, 0..=0, async txn::admin::describe),
    api!(DescribeProducers, DescribeProducersRequest, 0..=0, sync txn::admin::describe_producers),
    api!(FindCoordinator, FindCoordinatorRequest, 0..=6, async group::find_coordinator::handle),
    api!(JoinGroup, JoinGroupRequest, 0..=9, async group::join_group::handle),
    api!(SyncGroup, SyncGroupRequest, 0..=5, async group::sync_group::handle),
    api!(Heartbeat, HeartbeatRequest, 0..=4, sync group::heartbeat::handle),
    api!(LeaveGroup, LeaveGroupRequest, 0..=5, sync group::leave_group::handle),
    api!(OffsetCommit, OffsetCommitRequest, 2..=9, async group::offset_commit::handle),
    api!(OffsetFetch, OffsetFetchRequest, 1..=9, sync group::offset_fetch::handle),
    api!(OffsetDelete, OffsetDeleteRequest, 0..=0, async group::offset_fetch::handle_delete),
    api!(ListGroups, ListGroupsRequest, 0..=5, sync group::list_groups::list),
    api!(DescribeGroups, DescribeGroupsRequest, 0..=6, sync group::list_groups::describe),
    api!(DeleteGroups, DeleteGroupsRequest, 0..=2, async group::list_groups::delete),
    api!(ConsumerGroupHeartbeat, ConsumerGroupHeartbeatRequest, 0..=1, async group::consumer_group_heartbeat::handle),
    api!(ConsumerGroupDescribe, ConsumerGroupDescribeRequest, 0..=1, sync group::consumer_group_describe::handle),
    api!(ShareGroupHeartbeat, ShareGroupHeartbeatRequest, 1..=1, async group::share_group::heartbeat),
    api!(ShareGroupDescribe, ShareGroupDescribeRequest, 1..=1, sync group::share_group::describe),
    api!(ShareFetch, ShareFetchRequest, 1..=1, async share_fetch::fetch),
    api!(ShareAcknowledge, ShareAcknowledgeRequest, 1..=1, async share_fetch::acknowledge_request),
    api!(DescribeShareGroupOffsets, DescribeShareGroupOffsetsRequest, 0..=0, async group::share_group_offsets::describe),
    api!(AlterShareGroupOffsets, AlterShareGroupOffsetsRequest, 0..=0, async group::share_group_offsets::alter),
    api!(DeleteShareGroupOffsets, DeleteShareGroupOffsetsRequest, 0..=0, async group::share_group_offsets::delete),
    api!(InitializeShareGroupState, InitializeShareGroupStateRequest, 0..=0, async share_state::initialize),
    api!(ReadShareGroupState, ReadShareGroupStateRequest, 0..=0, async share_state::read),
    api!(WriteShareGroupState, WriteShareGroupStateRequest, 0..=0, async share_state::write),
    api!(DeleteShareGroupState, DeleteShareGroupStateRequest, 0..=0, async share_state::delete),
    api!(ReadShareGroupStateSummary, ReadShareGroupStateSummaryRequest, 0..=0, async share_state::read_summary),
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
