//! `HttpListen`: where the HTTP endpoint listens, from `http.listeners`. The default address
//! (`127.0.0.1:9644`, the admin port Redpanda uses) is a convenience, so a second local node
//! that finds it taken runs without HTTP and says so; an address the operator chose must be
//! bound, or start-up fails.

use tokio::net::TcpListener;

use crate::HttpError;

/// `strom serve`'s HTTP address when `http.listeners` is not set.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9644";

/// Where to listen, and whether the operator chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpListen {
    /// `http.listeners=none`.
    Off,
    /// Not configured: [`DEFAULT_HTTP_LISTEN`].
    Default,
    /// Configured `HOST:PORT`.
    Explicit(String),
}

impl HttpListen {
    /// From the `http.listeners` value, if set. One `HOST:PORT`, an optional `http://` in
    /// front (the key is named like Kafka's `listeners`).
    pub fn parse(value: Option<&str>) -> Result<HttpListen, HttpError> {
        let Some(v) = value.map(str::trim) else {
            return Ok(HttpListen::Default);
        };
        if v.eq_ignore_ascii_case("none") || v.is_empty() {
            return Ok(HttpListen::Off);
        }
        let addr = v
            .strip_prefix("http://")
            .or_else(|| v.strip_prefix("HTTP://"))
            .unwrap_or(v);
        if addr.contains(',') {
            return Err(HttpError::Config(format!(
                "{v:?}: one HOST:PORT (or none) is supported"
            )));
        }
        match addr.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_ok() => {
                Ok(HttpListen::Explicit(addr.to_string()))
            }
            _ => Err(HttpError::Config(format!(
                "{v:?}: expected HOST:PORT or none"
            ))),
        }
    }

    /// Binds the socket: `None` when off, or when the default address is taken (logged).
    pub async fn bind(&self) -> Result<Option<TcpListener>, HttpError> {
        let (addr, explicit) = match self {
            HttpListen::Off => return Ok(None),
            HttpListen::Default => (DEFAULT_HTTP_LISTEN, false),
            HttpListen::Explicit(a) => (a.as_str(), true),
        };
        match TcpListener::bind(addr).await {
            Ok(l) => Ok(Some(l)),
            Err(e) if !explicit => {
                tracing::warn!(addr, error = %e, "the default HTTP address is not available (another local node?); running without the HTTP endpoint (set http.listeners or --http-listen)");
                Ok(None)
            }
            Err(source) => Err(HttpError::Bind {
                addr: addr.to_string(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_key() {
        assert_eq!(HttpListen::parse(None).ok(), Some(HttpListen::Default));
        assert_eq!(HttpListen::parse(Some("none")).ok(), Some(HttpListen::Off));
        assert_eq!(
            HttpListen::parse(Some("0.0.0.0:9644")).ok(),
            Some(HttpListen::Explicit("0.0.0.0:9644".into()))
        );
        assert_eq!(
            HttpListen::parse(Some("http://127.0.0.1:1")).ok(),
            Some(HttpListen::Explicit("127.0.0.1:1".into()))
        );
        assert!(HttpListen::parse(Some("localhost")).is_err());
        assert!(HttpListen::parse(Some("a:1,b:2")).is_err());
    }

    #[tokio::test]
    async fn a_taken_explicit_address_fails_and_off_binds_nothing() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr").to_string();
        let explicit = HttpListen::Explicit(addr);
        assert!(matches!(explicit.bind().await, Err(HttpError::Bind { .. })));
        assert!(matches!(HttpListen::Off.bind().await, Ok(None)));
    }
}
