//! The byte streams under a connection: plain TCP, or TLS (rustls) for SSL and SASL_SSL
//! listeners. `accept` runs the TLS handshake (on the connection's own task, bounded by
//! `HANDSHAKE_TIMEOUT`, so a slow or hostile handshake never holds the accept loop) and gives
//! the SSL principal of a client certificate; `Writer` writes response frames.
//!
//! Zero-copy stays on plaintext: record bytes of a Fetch go from the segment file to the socket
//! with sendfile. TLS must encrypt them in user space, so there the file ranges are read into
//! memory and written through the TLS stream.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::codec::EncodedResponse;
use super::listener::BoundListener;
use crate::session::Principal;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The read side of a connection.
pub(crate) enum Reader {
    Plain(OwnedReadHalf),
    Tls(ReadHalf<TlsStream<TcpStream>>),
}

/// The write side of a connection.
pub(crate) enum Writer {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reader::Plain(_) => "Reader::Plain",
            Reader::Tls(_) => "Reader::Tls",
        })
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Writer::Plain(_) => "Writer::Plain",
            Writer::Tls(_) => "Writer::Tls",
        })
    }
}

impl AsyncRead for Reader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Reader::Plain(r) => std::pin::Pin::new(r).poll_read(cx, buf),
            Reader::Tls(r) => std::pin::Pin::new(r).poll_read(cx, buf),
        }
    }
}

/// A connection after its transport handshake, with the principal the transport proves.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) reader: Reader,
    pub(crate) writer: Writer,
    /// `User:ANONYMOUS`, or the mapped subject of an SSL client certificate.
    pub(crate) principal: Principal,
}

/// Runs the listener's transport handshake on `stream`. An error is a refused connection.
pub(crate) async fn accept(
    listener: &BoundListener,
    stream: TcpStream,
    peer: SocketAddr,
) -> Result<Accepted, String> {
    let Some(tls) = &listener.security.tls else {
        let (r, w) = stream.into_split();
        return Ok(Accepted {
            reader: Reader::Plain(r),
            writer: Writer::Plain(w),
            principal: Principal::anonymous(),
        });
    };
    let handshake = tls.acceptor().accept(stream);
    let tls_stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
        Err(_) => return Err("TLS handshake not complete in time".into()),
    };
    let principal = match &listener.security.ssl_principal {
        Some(builder) => builder
            .principal(tls_stream.get_ref().1.peer_certificates())
            .map_err(|e| format!("no principal for the client certificate: {e}"))?,
        // SASL_SSL: the SASL exchange names the principal.
        None => Principal::anonymous(),
    };
    tracing::debug!(%peer, listener = %listener.name, %principal, "TLS connection");
    let (r, w) = tokio::io::split(tls_stream);
    Ok(Accepted {
        reader: Reader::Tls(r),
        writer: Writer::Tls(w),
        principal,
    })
}

impl Writer {
    /// Writes one encoded response frame: spliced file ranges by sendfile on plaintext, read
    /// and encrypted on TLS.
    pub(crate) async fn write_response(&mut self, frame: &EncodedResponse) -> std::io::Result<()> {
        match self {
            Writer::Plain(wr) => {
                let mut at = 0;
                for (offset, file) in &frame.splices {
                    wr.write_all(&frame.bytes[at..*offset]).await?;
                    super::sendfile::send_file(
                        wr.as_ref(),
                        file.file(),
                        file.position(),
                        file.len(),
                    )
                    .await?;
                    at = *offset;
                }
                wr.write_all(&frame.bytes[at..]).await
            }
            Writer::Tls(wr) => {
                let mut at = 0;
                for (offset, file) in &frame.splices {
                    wr.write_all(&frame.bytes[at..*offset]).await?;
                    let bytes = file.read_to_vec().map_err(std::io::Error::other)?;
                    wr.write_all(&bytes).await?;
                    at = *offset;
                }
                wr.write_all(&frame.bytes[at..]).await?;
                wr.flush().await
            }
        }
    }

    /// Writes bytes as they are (a raw SASL token frame after a v0 handshake).
    pub(crate) async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Writer::Plain(wr) => wr.write_all(bytes).await,
            Writer::Tls(wr) => {
                wr.write_all(bytes).await?;
                wr.flush().await
            }
        }
    }

    /// Closes the write side.
    pub(crate) async fn shutdown(&mut self) {
        let _ = match self {
            Writer::Plain(wr) => wr.shutdown().await,
            Writer::Tls(wr) => wr.shutdown().await,
        };
    }
}
