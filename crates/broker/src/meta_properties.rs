//! `meta.properties`: this node's identity on disk (Kafka's format: `version`, `node.id`,
//! `cluster.id`). Read at start; written once, when missing, durably (temp → fsync → rename →
//! fsync(dir)), so a power loss never leaves a node that comes back under a new cluster id.

use std::io;

use uuid::Uuid;

use crate::config::BrokerConfig;

/// The cluster id of this node's data directory, created (and written durably) when the file is
/// missing. A file that cannot be read or names no cluster id is an error, never replaced: a new
/// id would cut the node off from its cluster and its clients.
pub(crate) fn read_or_create_cluster_id(config: &BrokerConfig) -> io::Result<String> {
    let dir = config
        .log_dirs
        .first()
        .cloned()
        .unwrap_or_else(|| "./data".into());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("meta.properties");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props = crate::config::parse_properties(&text)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            return props.get("cluster.id").cloned().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} has no cluster.id", path.display()),
                )
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = config.cluster_id.clone().unwrap_or_else(|| {
        // Kafka cluster ids are 22-character URL-safe base64 UUIDs; a hex UUID prefix is fine.
        // Nodes of one quorum must agree without being told (Kafka makes the operator format
        // every node with the same id): derive it from the voter set; a lone node picks one.
        let uuid = if config.voters.is_empty() {
            Uuid::new_v4()
        } else {
            let mut voters: Vec<String> = config
                .voters
                .iter()
                .map(|(id, addr)| format!("{id}@{addr}"))
                .collect();
            voters.sort();
            Uuid::new_v5(&Uuid::NAMESPACE_OID, voters.join(",").as_bytes())
        };
        uuid.simple().to_string()[..22].to_string()
    });
    let text = format!("version=1\nnode.id={}\ncluster.id={id}\n", config.node_id);
    strom_log::write_durably(&path, text.as_bytes())
        .map_err(|e| io::Error::other(e.to_string()))?;
    Ok(id)
}
