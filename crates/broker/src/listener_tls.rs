//! `ListenerTls`: the TLS acceptors of this broker's listeners, so altering their keystore or
//! truststore keys on this broker (IncrementalAlterConfigs / AlterConfigs, resource BROKER with
//! this node's id, e.g. `kafka-configs --entity-type brokers --entity-name 1 --alter
//! --add-config listener.name.sasl_ssl.ssl.keystore.location=/etc/strom/new.pem`) re-reads the
//! files without a restart, as Kafka's DynamicBrokerConfig does. Setting a key to the value it
//! already has re-reads the same files: how rotated certificates under unchanged paths are taken.
//!
//! An update is checked first (every TLS listener's new material read, the key pair matched, the
//! certificate's subject and SANs unchanged unless `ssl.allow.dn.changes` / `ssl.allow.san.changes`),
//! recorded in the metadata log only if all pass, and switched to only once recorded. The
//! recorded values are this node's broker config overrides, so a restart starts with them
//! ([`ListenerTls::effective_security`]). New connections use the new material; established ones
//! keep theirs.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use strom_cluster::metadata::MetadataImage;
use strom_security::{
    is_dynamic_tls_key, Listener, ListenerProps, PreparedTls, Properties, TlsAcceptorHandle,
    TlsServerSettings,
};

use crate::topic_admin::ConfigOp;

/// A checked update, to switch to once recorded.
#[derive(Debug)]
pub(crate) struct PreparedReload(Vec<(Arc<TlsAcceptorHandle>, PreparedTls)>);

/// The TLS listeners of this broker.
#[derive(Debug, Default)]
pub(crate) struct ListenerTls {
    listeners: RwLock<Vec<(Listener, Arc<TlsAcceptorHandle>)>>,
}

impl ListenerTls {
    /// Adds a listener's acceptor (at start, once bound).
    pub(crate) fn register(&self, listener: Listener, handle: Arc<TlsAcceptorHandle>) {
        self.listeners.write().push((listener, handle));
    }

    /// The security keys to build listeners from: `static_props` with this node's recorded
    /// dynamic TLS overrides on top.
    pub(crate) fn effective_security(
        static_props: &Properties,
        image: &MetadataImage,
        node_id: i32,
    ) -> Properties {
        let overrides = image.broker_configs.get(&node_id.to_string());
        overlay(static_props, overrides.into_iter().flatten())
    }

    /// Reads and checks what `ops` would make of every TLS listener (`current` = this node's
    /// recorded overrides; `replace`: AlterConfigs, where keys not given are removed). `None`
    /// when `ops` touch no TLS key. An error names the key and why.
    pub(crate) fn prepare(
        &self,
        static_props: &Properties,
        current: &BTreeMap<String, String>,
        ops: &[(String, ConfigOp)],
        replace: bool,
    ) -> Result<Option<PreparedReload>, String> {
        if !ops.iter().any(|(k, _)| is_dynamic_tls_key(k)) {
            return Ok(None);
        }
        let mut next: BTreeMap<String, String> = if replace {
            BTreeMap::new()
        } else {
            current.clone()
        };
        for (k, op) in ops.iter().filter(|(k, _)| is_dynamic_tls_key(k)) {
            match op {
                ConfigOp::Set(v) => {
                    next.insert(k.clone(), v.trim().to_string());
                }
                ConfigOp::Delete => {
                    next.remove(k);
                }
                ConfigOp::Append(_) | ConfigOp::Subtract(_) => {
                    return Err(format!(
                    "Config value append/subtract is not allowed for config {k}: it is not a list"
                ))
                }
            }
        }
        let props = overlay(static_props, next.iter());
        let listeners = self.listeners.read().clone();
        let mut prepared = Vec::with_capacity(listeners.len());
        for (listener, handle) in listeners {
            let l = ListenerProps::new(&props, &listener.name);
            let settings = TlsServerSettings::from_listener(&l, listener.protocol)
                .map_err(|e| e.to_string())?;
            let ready = handle.prepare(settings).map_err(|e| e.to_string())?;
            prepared.push((handle, ready));
        }
        Ok(Some(PreparedReload(prepared)))
    }

    /// Switches every listener of `prepared` to its new material.
    pub(crate) fn commit(&self, prepared: PreparedReload) {
        for (handle, ready) in prepared.0 {
            handle.commit(ready);
        }
        tracing::info!("TLS keystore/truststore reloaded");
    }
}

/// `base` with this node's dynamic TLS keys of `overrides` set over it.
fn overlay<'a>(
    base: &Properties,
    overrides: impl Iterator<Item = (&'a String, &'a String)>,
) -> Properties {
    let mut props = base.clone();
    for (k, v) in overrides.filter(|(k, _)| is_dynamic_tls_key(k)) {
        props.insert(k.clone(), v.clone());
    }
    props
}
