//! `BoundListener`: one of the broker's client listeners (`listeners`, less the controller
//! listeners) bound to its socket, with its security built once at start: the TLS acceptor,
//! the SSL principal mapping, the SASL mechanisms. Connections accepted on it share it.

use std::net::SocketAddr;
use std::sync::Arc;

use strom_security::{
    Listener, ListenerSecurity, Properties, ScramCredentialStore, SecurityProtocol,
};
use tokio::net::TcpListener;

use crate::broker::StartError;

/// A bound client listener.
#[derive(Debug)]
pub(crate) struct BoundListener {
    /// Its name (`PLAINTEXT`, `SASL_SSL`, or a custom name from the protocol map).
    pub(crate) name: String,
    pub(crate) protocol: SecurityProtocol,
    pub(crate) security: ListenerSecurity,
}

impl BoundListener {
    /// Binds the socket of `listener`.
    pub(crate) async fn bind(listener: &Listener) -> Result<(TcpListener, SocketAddr), StartError> {
        let addr = listener.bind_address();
        let bind_err = |source| StartError::Bind {
            addr: addr.clone(),
            source,
        };
        let tcp = TcpListener::bind(&addr).await.map_err(bind_err)?;
        let local_addr = tcp.local_addr().map_err(bind_err)?;
        Ok((tcp, local_addr))
    }

    /// Builds the security of `listener` from the broker's security keys (`security`: the
    /// static ones with this node's dynamic TLS overrides).
    pub(crate) async fn secure(
        security: &Properties,
        listener: &Listener,
        scram: Option<Arc<dyn ScramCredentialStore>>,
    ) -> Result<BoundListener, StartError> {
        let security = ListenerSecurity::build(security, listener, scram)
            .await
            .map_err(|e| {
                StartError::Config(crate::config::ConfigError::Invalid {
                    name: e.key().to_string(),
                    value: String::new(),
                    reason: e.to_string(),
                })
            })?;
        Ok(BoundListener {
            name: listener.name.as_str().to_string(),
            protocol: listener.protocol,
            security,
        })
    }
}
