//! Opening the byte stream under a connection: TCP (no Nagle: requests are already batched), then
//! for SSL and SASL_SSL a rustls handshake with the configured `rustls::ClientConfig`, verifying
//! the broker's certificate against the host name it was dialled by. Both fit within
//! `connect_timeout`, as Kafka's `socket.connection.setup.timeout.ms` covers the TLS handshake.
//!
//! A TLS failure (an untrusted CA, a certificate for another host, no common protocol version)
//! is reported as [`ClientError::Tls`], which is not retried: dialling again cannot fix it.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::ClientError;
use crate::security::Security;
use crate::wire::Wire;

/// Settings of one connection. How it is secured is an argument of
/// [`crate::Connection::connect_with_security`] (and [`crate::ClientConfig::security`]) rather than a
/// field here, so the struct literals that build this type elsewhere keep compiling.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Sent in every request header (Kafka: client.id).
    pub client_id: String,
    /// How long to wait for a response (Kafka: request.timeout.ms).
    pub request_timeout: Duration,
    /// How long to wait for the TCP and TLS handshakes (Kafka: socket.connection.setup.timeout.ms).
    pub connect_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "strom".to_owned(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Dials `addr` ("host:port") and starts the connection's tasks over the (maybe TLS) stream.
pub(crate) async fn open(
    addr: &str,
    config: &ConnectionConfig,
    security: &Security,
) -> Result<Wire, ClientError> {
    let setup = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ClientError::io(addr, e))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ClientError::io(addr, e))?;
        let (client_id, timeout) = (&config.client_id, config.request_timeout);
        let Some(tls) = security.tls() else {
            // Owned halves: the reader and writer never contend for a lock.
            let (read_half, write_half) = stream.into_split();
            return Ok(Wire::spawn(read_half, write_half, addr, client_id, timeout));
        };
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let server_name = strom_security::server_name(host)
            .map_err(|_| ClientError::InvalidAddress(addr.to_owned()))?;
        let stream = TlsConnector::from(tls.clone())
            .connect(server_name, stream)
            .await
            .map_err(|e| tls_error(addr, e))?;
        let (read_half, write_half) = tokio::io::split(stream);
        Ok(Wire::spawn(read_half, write_half, addr, client_id, timeout))
    };
    tokio::time::timeout(config.connect_timeout, setup)
        .await
        .map_err(|_| ClientError::Timeout {
            api: kafka_protocol::messages::ApiKey::ApiVersions,
            addr: addr.to_owned(),
        })?
}

/// tokio-rustls reports rustls' verdicts (certificate, alert, protocol) as `InvalidData`; anything
/// else is the socket failing mid-handshake, which a retry may fix.
fn tls_error(addr: &str, e: std::io::Error) -> ClientError {
    if e.kind() == std::io::ErrorKind::InvalidData {
        ClientError::Tls {
            addr: addr.to_owned(),
            cause: std::sync::Arc::new(e),
        }
    } else {
        ClientError::io(addr, e)
    }
}
