//! TLS on rustls (ring provider): server configs per listener, a reloadable acceptor, client
//! configs, and the PEM stores both read.

pub(crate) mod acceptor;
pub(crate) mod client;
pub(crate) mod pem;
pub(crate) mod server;
pub(crate) mod stores;
#[cfg(test)]
mod tests;

/// The TLS keys a running listener re-reads when they are altered (Kafka's reconfigurable SSL
/// configs: the keystore and the truststore), unprefixed.
pub const DYNAMIC_TLS_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
];

/// True for a key of [`DYNAMIC_TLS_KEYS`], bare or as `listener.name.<listener>.<key>`.
pub fn is_dynamic_tls_key(key: &str) -> bool {
    let bare = key
        .strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(key, |(_, k)| k);
    DYNAMIC_TLS_KEYS.contains(&bare)
}
