//! How the bytes of a controller connection travel, both ways: the [`Acceptor`] seam the
//! listener turns each accepted TCP connection through (plain TCP here; TLS with client
//! certificates in `tls`), and the [`Connector`] outbound calls dial with, whose
//! [`ControllerStream`] is plain TCP or TLS.
//!
//! Nothing here decides who a peer is allowed to be: an acceptor only reports the node id its
//! transport proved ([`Accepted::proven_node`]), and `peer` checks the hello and each request
//! against it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What the accept path established about a connection before any request is read.
#[derive(Debug)]
pub(crate) struct Accepted<S> {
    /// The stream requests are read from and answers written to.
    pub(crate) stream: S,
    /// The node id the transport proved (an mTLS certificate); `None` when it proves nothing.
    pub(crate) proven_node: Option<i32>,
}

/// The seam where the controller listener turns a TCP connection into a stream to speak on,
/// proving the peer's node id when the transport can (`tls::TlsNodeAcceptor`).
pub(crate) trait Acceptor: Send + Sync + 'static {
    /// The stream after the handshake.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Runs the transport handshake (bounded by the caller's hello timeout). An error closes
    /// the connection; the caller logs it.
    fn accept(
        &self,
        tcp: TcpStream,
        from: SocketAddr,
    ) -> impl Future<Output = io::Result<Accepted<Self::Stream>>> + Send;
}

/// Plain TCP: proves nothing (see `peer`).
#[derive(Debug)]
pub(crate) struct PlainTcp;

impl Acceptor for PlainTcp {
    type Stream = TcpStream;

    fn accept(
        &self,
        tcp: TcpStream,
        _from: SocketAddr,
    ) -> impl Future<Output = io::Result<Accepted<TcpStream>>> + Send {
        std::future::ready(Ok(Accepted {
            stream: tcp,
            proven_node: None,
        }))
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
pub(crate) fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// How this node dials its peers' controller listeners.
#[derive(Clone)]
pub(crate) enum Connector {
    /// Plain TCP.
    Plain,
    /// TLS with this node's client certificate; the server's certificate is checked against
    /// the truststore (and its name against the address dialled, unless configured otherwise).
    Tls(TlsConnector),
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connector::Plain => "Connector::Plain",
            Connector::Tls(_) => "Connector::Tls",
        })
    }
}

impl Connector {
    /// Connects to `addr` (`host:port`) and runs the TLS handshake when there is one.
    pub(crate) async fn connect(&self, addr: &str) -> io::Result<ControllerStream> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        match self {
            Connector::Plain => Ok(ControllerStream::Plain(tcp)),
            Connector::Tls(tls) => {
                let name = strom_security::server_name(host_of(addr))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let stream = tls.connect(name, tcp).await?;
                Ok(ControllerStream::Tls(Box::new(stream)))
            }
        }
    }
}

/// An outbound controller connection.
#[derive(Debug)]
pub(crate) enum ControllerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large next to a socket).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ControllerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControllerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ControllerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ControllerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ControllerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ControllerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControllerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ControllerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ControllerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ControllerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(host_of("10.0.0.1:9093"), "10.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("node-1.example:9093"), "node-1.example");
        assert_eq!(host_of("plain"), "plain");
    }
}
