//! KIP-951 leader hints: a client whose Produce (v10+) or Fetch (v12+) reached a broker that does
//! not lead the partition learns the current leader and epoch in the partition's error
//! (`current_leader`), and that broker's endpoint in the response (`node_endpoints`), so it
//! retries without a Metadata round trip. One collector for both APIs; each response type has
//! its own `NodeEndpoint` struct, built here by [`EndpointOf`].

use kafka_protocol::messages::{fetch_response, produce_response, BrokerId};
use kafka_protocol::protocol::StrBytes;

use crate::endpoints::Endpoints;
use crate::metadata::{MetadataImage, PartitionImage};

/// The leaders named in one response's hints.
#[derive(Debug, Default)]
pub(crate) struct LeaderHints {
    leaders: Vec<i32>,
}

impl LeaderHints {
    /// The leader (id, epoch) to name for `part` when another broker than `me` leads it; noted
    /// for [`LeaderHints::endpoints`].
    pub(crate) fn note(&mut self, part: &PartitionImage, me: i32) -> Option<(i32, i32)> {
        if part.leader < 0 || part.leader == me {
            return None;
        }
        if !self.leaders.contains(&part.leader) {
            self.leaders.push(part.leader);
        }
        Some((part.leader, part.leader_epoch))
    }

    /// The endpoints of every leader noted, as registered in `image`, on `listener`.
    pub(crate) fn endpoints<T: EndpointOf>(
        &self,
        image: &MetadataImage,
        endpoints: &Endpoints,
        listener: &str,
    ) -> Vec<T> {
        self.leaders
            .iter()
            .filter_map(|id| image.brokers.get(id))
            .map(|b| {
                let (host, port) = endpoints.of(b, listener);
                T::endpoint_of(b.id(), &host, port, b.registration.rack.as_deref())
            })
            .collect()
    }
}

/// A response's `NodeEndpoint` type.
pub(crate) trait EndpointOf {
    fn endpoint_of(id: i32, host: &str, port: i32, rack: Option<&str>) -> Self;
}

macro_rules! endpoint_of {
    ($t:ty) => {
        impl EndpointOf for $t {
            fn endpoint_of(id: i32, host: &str, port: i32, rack: Option<&str>) -> Self {
                <$t>::default()
                    .with_node_id(BrokerId(id))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port)
                    .with_rack(rack.map(|r| StrBytes::from_string(r.to_string())))
            }
        }
    };
}

endpoint_of!(produce_response::NodeEndpoint);
endpoint_of!(fetch_response::NodeEndpoint);
