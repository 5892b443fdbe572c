//! `TlsAcceptorHandle`: a listener's current TLS config, swappable while the listener runs, so
//! a dynamic update of `ssl.keystore.*` / `ssl.truststore.*` (Kafka's AlterConfigs on a
//! listener) takes effect for new connections without a restart. Connections already
//! established keep the config they were accepted with.
//!
//! Concurrency: the current config is an `Arc` behind a `parking_lot::RwLock`; accepting takes
//! the read lock for one `Arc` clone; `reload`/`update` build the new config *outside* the lock
//! (reading files, checking the key pair) and take the write lock only to swap, so a bad update
//! leaves the old config serving. Updates are serialised by a separate mutex.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::error::ConfigError;
use crate::tls::server::{BuiltServer, CertIdentity, TlsServerSettings};

/// New TLS settings read and checked by [`TlsAcceptorHandle::prepare`], not yet in use.
#[derive(Debug)]
pub struct PreparedTls {
    settings: TlsServerSettings,
    built: BuiltServer,
}

/// A listener's TLS acceptor, reloadable.
#[derive(Debug)]
pub struct TlsAcceptorHandle {
    current: RwLock<Arc<ServerConfig>>,
    /// The settings and certificate identity the current config came from (guards updates).
    state: Mutex<(TlsServerSettings, CertIdentity)>,
}

impl TlsAcceptorHandle {
    /// Reads the material and builds the first config.
    pub fn new(settings: TlsServerSettings) -> Result<Self, ConfigError> {
        let built = settings.build_server()?;
        Ok(TlsAcceptorHandle {
            current: RwLock::new(built.config),
            state: Mutex::new((settings, built.identity)),
        })
    }

    /// An acceptor on the current config, for one incoming connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.server_config())
    }

    /// The current config.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    /// Re-reads the same files (rotated certificates under unchanged paths).
    pub fn reload(&self) -> Result<(), ConfigError> {
        let mut state = self.state.lock();
        let built = state.0.build_server()?;
        state.0.check_compatible(&state.1, &built)?;
        self.swap(&mut state, None, built);
        Ok(())
    }

    /// Switches to new settings (a dynamic config update), keeping the old ones on error.
    pub fn update(&self, settings: TlsServerSettings) -> Result<(), ConfigError> {
        let prepared = self.prepare(settings)?;
        self.commit(prepared);
        Ok(())
    }

    /// Reads and checks new settings (the files, the key pair, the certificate's identity
    /// against the current one) without switching: the first half of an update that must be
    /// validated before it is recorded. [`Self::commit`] switches.
    pub fn prepare(&self, settings: TlsServerSettings) -> Result<PreparedTls, ConfigError> {
        let state = self.state.lock();
        let built = settings.build_server()?;
        settings.check_compatible(&state.1, &built)?;
        Ok(PreparedTls { settings, built })
    }

    /// Switches to prepared settings.
    pub fn commit(&self, prepared: PreparedTls) {
        let mut state = self.state.lock();
        self.swap(&mut state, Some(prepared.settings), prepared.built);
    }

    fn swap(
        &self,
        state: &mut (TlsServerSettings, CertIdentity),
        settings: Option<TlsServerSettings>,
        built: BuiltServer,
    ) {
        *self.current.write() = built.config;
        if let Some(s) = settings {
            state.0 = s;
        }
        state.1 = built.identity;
    }
}
