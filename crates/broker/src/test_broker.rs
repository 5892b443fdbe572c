//! A real single-node broker on 127.0.0.1:0 in a temp dir, for the broker's own async tests.
//!
//! Test-only: declared under #[cfg(test)] by lib.rs.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::BrokerConfig;
use crate::server::BrokerServer;

/// Starts a broker in `dir` with a few small defaults and `extra` settings.
pub(crate) async fn start(dir: &Path, extra: &[(&str, &str)]) -> BrokerServer {
    let mut props = BTreeMap::from([
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        ("log.dirs".to_string(), dir.display().to_string()),
        ("offsets.topic.num.partitions".to_string(), "4".to_string()),
        (
            "transaction.state.log.num.partitions".to_string(),
            "2".to_string(),
        ),
    ]);
    props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    BrokerServer::start(BrokerConfig::from_properties(&props).unwrap())
        .await
        .unwrap()
}
