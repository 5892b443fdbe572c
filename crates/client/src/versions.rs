//! The versions of each Kafka API this client speaks, and choosing one per API against what a
//! broker advertised in ApiVersions.
//!
//! Each range is what the client code in this crate fills in correctly (for example Produce stops
//! at v12 because v13 names topics by id only), further capped by what kafka-protocol can encode.

use std::collections::HashMap;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiKey;

/// `(api, min, max)` this client can build and parse. Everything else is refused before sending.
const CLIENT_RANGES: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 0, 3),
    // v1+: a null topic list means "all topics"; v10+ carries topic ids (needed by Fetch v13).
    (ApiKey::Metadata, 1, 12),
    (ApiKey::Produce, 3, 12),
    // v12 names topics, v13 uses topic ids (taken from Metadata v10+), v15 carries the
    // replica's broker epoch in `replica_state` (KIP-903: the broker's replica fetcher needs it).
    (ApiKey::Fetch, 4, 15),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    // Replica sizes; v3 adds the request-level error, v4 the (unread) disk totals.
    (ApiKey::DescribeLogDirs, 1, 4),
    // Consumer groups. FindCoordinator v4+ batches keys; OffsetFetch stops at v7 (v8 is the
    // multi-group shape), OffsetCommit at v9 (v10 names topics by id).
    (ApiKey::FindCoordinator, 1, 6),
    (ApiKey::JoinGroup, 1, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    // Transaction admin. ListTransactions v2 adds a transactional-id pattern (unused here).
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::DescribeProducers, 0, 0),
    // Broker to broker: the transaction coordinator's markers (and tests of that API), and a
    // partition leader's verification of a transaction (v4+: batched, `verify_only`).
    (ApiKey::WriteTxnMarkers, 0, 1),
    (ApiKey::AddPartitionsToTxn, 4, 5),
    // SASL: the handshake only in v1 (mechanism bytes inside SaslAuthenticate, not raw frames);
    // SaslAuthenticate v1+ carries the KIP-368 session lifetime.
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    // SCRAM credential admin (KIP-554).
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    // ACL admin. v0 predates pattern types (KIP-290) and kafka-protocol 0.18 no longer encodes
    // it; v2+ is the flexible encoding, nothing else changes.
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    // Client quotas (KIP-546); v1 is the flexible encoding.
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    // Share groups (KIP-932): v1 is the first version Kafka 4.1 ships as stable.
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareFetch, 1, 1),
    (ApiKey::ShareAcknowledge, 1, 1),
    (ApiKey::DescribeShareGroupOffsets, 0, 0),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
    // Broker to broker: a share-partition leader's state at the share coordinator (KIP-932).
    (ApiKey::InitializeShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupState, 0, 0),
    (ApiKey::WriteShareGroupState, 0, 0),
    (ApiKey::DeleteShareGroupState, 0, 0),
];

/// The negotiated version per API for one broker. Immutable after the handshake.
#[derive(Debug, Clone, Default)]
pub(crate) struct ApiVersionTable {
    negotiated: HashMap<i16, i16>,
}

impl ApiVersionTable {
    /// Intersects the client's ranges (capped by kafka-protocol) with the broker's advertised ones and
    /// keeps the highest common version per API.
    pub(crate) fn negotiate(broker: &[ApiVersion]) -> Self {
        let mut negotiated = HashMap::new();
        for &(api, min, max) in CLIENT_RANGES {
            let codec = api.valid_versions();
            let ours_min = min.max(codec.min);
            let ours_max = max.min(codec.max);
            let Some(theirs) = broker.iter().find(|v| v.api_key == api as i16) else {
                continue;
            };
            let lo = ours_min.max(theirs.min_version);
            let hi = ours_max.min(theirs.max_version);
            if lo <= hi {
                negotiated.insert(api as i16, hi);
            }
        }
        ApiVersionTable { negotiated }
    }

    /// The version to use for `api`, or `None` when the broker and client share none.
    pub(crate) fn get(&self, api: ApiKey) -> Option<i16> {
        self.negotiated.get(&(api as i16)).copied()
    }

    /// The highest ApiVersions request version this client sends first.
    pub(crate) fn max_api_versions_version() -> i16 {
        CLIENT_RANGES
            .iter()
            .find(|(api, _, _)| *api == ApiKey::ApiVersions)
            .map_or(0, |&(_, _, max)| max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(api: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(api as i16)
            .with_min_version(min)
            .with_max_version(max)
    }

    #[test]
    fn picks_highest_common_version_capped_by_client() {
        let t = ApiVersionTable::negotiate(&[
            v(ApiKey::Fetch, 0, 17),
            v(ApiKey::Produce, 3, 9),
            v(ApiKey::Metadata, 0, 4),
        ]);
        assert_eq!(t.get(ApiKey::Fetch), Some(15));
        assert_eq!(t.get(ApiKey::Produce), Some(9));
        assert_eq!(t.get(ApiKey::Metadata), Some(4));
        assert_eq!(t.get(ApiKey::ListOffsets), None, "not advertised");
    }

    #[test]
    fn no_overlap_means_unsupported() {
        // A broker that only knows Fetch v0..v3 shares nothing with kafka-protocol's v4 minimum.
        let t = ApiVersionTable::negotiate(&[v(ApiKey::Fetch, 0, 3)]);
        assert_eq!(t.get(ApiKey::Fetch), None);
    }
}
