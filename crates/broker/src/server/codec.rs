//! Frame codec: 4-byte big-endian size, then a request header and body (decoded by the handler
//! with `kafka-protocol`); responses are a size, a response header and the encoded body.
//!
//! The size is checked against `socket.request.max.bytes` before any buffer is allocated, so a
//! hostile size costs nothing.

use bytes::{BufMut, Bytes, BytesMut};
use strom_log::FileSlice;

use super::splice_buf::SpliceBuf;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read; each closes the connection with a log line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("idle timeout")]
    Idle,
    #[error("request frame of {size} bytes not complete within connections.max.idle.ms ({got} bytes came)")]
    Stalled { size: usize, got: usize },
    #[error("frame size {0} is negative or zero")]
    BadSize(i32),
    #[error("frame size {size} exceeds socket.request.max.bytes {max}")]
    TooLarge { size: i32, max: usize },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the next frame's size. `idle` bounds the wait for it; sizes ≤ 0 or over `max` are
/// refused before anything is allocated.
pub(crate) async fn read_frame_size<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    idle: std::time::Duration,
) -> Result<usize, FrameError> {
    let mut size = [0u8; 4];
    match tokio::time::timeout(idle, r.read_exact(&mut size)).await {
        Err(_) => return Err(FrameError::Idle),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed)
        }
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(_)) => {}
    }
    let size = i32::from_be_bytes(size);
    if size <= 0 {
        return Err(FrameError::BadSize(size));
    }
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    if len > max {
        return Err(FrameError::TooLarge { size, max });
    }
    Ok(len)
}

/// Buffer allocated up front for a frame body; a larger frame's buffer grows as its bytes
/// arrive, so a size that lies costs no memory.
const INITIAL_BODY_BUFFER: usize = 1 << 20;

/// Reads a frame body of `size` bytes, which must all arrive within `within`.
pub(crate) async fn read_frame_body<R: AsyncRead + Unpin>(
    r: &mut R,
    size: usize,
    within: std::time::Duration,
) -> Result<Bytes, FrameError> {
    // Read into uninitialised capacity: no memset of a frame that is about to be overwritten.
    let mut buf = BytesMut::with_capacity(size.min(INITIAL_BODY_BUFFER));
    let read = async {
        while buf.len() < size {
            if buf.len() == buf.capacity() {
                // Doubling: few copies for a real large frame.
                buf.reserve((size - buf.len()).min(buf.capacity().max(4096)));
            }
            let mut limited = (&mut *r).take((size - buf.len()) as u64);
            if limited.read_buf(&mut buf).await? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
            }
        }
        Ok(())
    };
    match tokio::time::timeout(within, read).await {
        Ok(Ok(())) => Ok(buf.freeze()),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(FrameError::Stalled {
            size,
            got: buf.len(),
        }),
    }
}

/// The fixed start of every request header: enough to route and to answer errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderPrefix {
    pub(crate) api_key: i16,
    pub(crate) api_version: i16,
    pub(crate) correlation_id: i32,
}

pub(crate) fn peek_header(frame: &[u8]) -> Option<HeaderPrefix> {
    if frame.len() < 8 {
        return None;
    }
    Some(HeaderPrefix {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// Decodes the full request header, leaving `frame` at the body.
pub(crate) fn decode_header(
    api_key: ApiKey,
    version: i16,
    frame: &mut Bytes,
) -> anyhow::Result<RequestHeader> {
    RequestHeader::decode(frame, api_key.request_header_version(version))
}

/// A response body any handler can return: a typed `kafka-protocol` message, possibly with
/// records that stay in segment files (see [`super::splice_buf`]).
pub(crate) trait ResponseBody: Send + std::fmt::Debug {
    fn encode_body(&self, buf: &mut SpliceBuf, version: i16) -> anyhow::Result<()>;
    /// File ranges for the placeholder records, in encoding order.
    fn file_slices(&self) -> &[FileSlice] {
        &[]
    }
}

impl<T: Encodable + Send + std::fmt::Debug> ResponseBody for T {
    fn encode_body(&self, buf: &mut SpliceBuf, version: i16) -> anyhow::Result<()> {
        self.encode(buf, version)
    }
}

/// An encoded response: bytes, with file ranges spliced in at the given offsets.
#[derive(Debug)]
pub(crate) struct EncodedResponse {
    pub(crate) bytes: Bytes,
    pub(crate) splices: Vec<(usize, FileSlice)>,
}

/// Encodes a whole response frame (size, header, body).
pub(crate) fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &dyn ResponseBody,
) -> anyhow::Result<EncodedResponse> {
    let mut buf = SpliceBuf::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    header.encode(&mut buf, api_key.response_header_version(version))?;
    body.encode_body(&mut buf, version)?;
    let files = body.file_slices();
    if files.len() != buf.holes.len()
        || files
            .iter()
            .zip(&buf.holes)
            .any(|(f, (_, l))| f.len() != *l as u64)
    {
        anyhow::bail!("records placeholders do not match the file ranges");
    }
    let size = i32::try_from(buf.buf.len() - 4 + buf.hole_bytes())?;
    buf.buf[0..4].copy_from_slice(&size.to_be_bytes());
    let splices = buf
        .holes
        .iter()
        .map(|(o, _)| *o)
        .zip(files.iter().cloned())
        .collect();
    Ok(EncodedResponse {
        bytes: buf.buf.freeze(),
        splices,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_frame_that_stalls_midway_is_refused_at_the_deadline() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client
            .write_all(&1000i32.to_be_bytes())
            .await
            .expect("size");
        client
            .write_all(&[7u8; 10])
            .await
            .expect("some of the body");
        let size = read_frame_size(&mut server, 1 << 20, Duration::from_secs(60))
            .await
            .expect("size read");
        assert_eq!(size, 1000);
        let r = read_frame_body(&mut server, size, Duration::from_secs(60)).await;
        assert!(
            matches!(
                r,
                Err(FrameError::Stalled {
                    size: 1000,
                    got: 10
                })
            ),
            "{r:?}"
        );
        drop(client);
    }

    #[tokio::test]
    async fn a_large_frame_arriving_in_pieces_is_read_whole() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let body: Vec<u8> = (0..(3 << 20)).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.expect("body");
            client
        });
        let got = read_frame_body(&mut server, body.len(), Duration::from_secs(60))
            .await
            .expect("whole frame");
        assert_eq!(&got[..], &body[..]);
        drop(writer.await);
    }

    #[tokio::test]
    async fn sizes_are_checked_before_anything_is_allocated() {
        for (bytes, want_too_large) in [(0i32, false), (-5, false), (i32::MAX, true)] {
            let (mut client, mut server) = tokio::io::duplex(64);
            client.write_all(&bytes.to_be_bytes()).await.expect("size");
            let r = read_frame_size(&mut server, 1 << 20, Duration::from_secs(1)).await;
            match r {
                Err(FrameError::TooLarge { .. }) => assert!(want_too_large),
                Err(FrameError::BadSize(_)) => assert!(!want_too_large),
                other => panic!("{other:?}"),
            }
        }
    }
}
