//! Framing: a request is `i32 size (big-endian) | RequestHeader | body`, a response is
//! `i32 size | ResponseHeader | body`. Header and body encoding are kafka-protocol's; this module
//! owns only the size prefix, the header version choice and the frame-size sanity checks.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::ClientError;

/// Responses larger than this are treated as a corrupt stream rather than allocated: a Fetch is
/// bounded by its `max_bytes` (50 MiB by default), so 256 MiB leaves room without trusting the peer.
pub(crate) const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Encodes one request frame, size prefix included.
pub(crate) fn encode_request<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    body: &R,
) -> Result<Bytes, ClientError> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let header_version = api.request_header_version(version);
    let header_len = header
        .compute_size(header_version)
        .map_err(|e| ClientError::codec("size request header", e))?;
    let body_len = body
        .compute_size(version)
        .map_err(|e| ClientError::codec("size request", e))?;
    let len = header_len + body_len;
    let size = i32::try_from(len)
        .map_err(|_| ClientError::codec("encode request", "request larger than 2 GiB"))?;
    let mut buf = BytesMut::with_capacity(4 + len);
    buf.put_i32(size);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| ClientError::codec("encode request header", e))?;
    body.encode(&mut buf, version)
        .map_err(|e| ClientError::codec("encode request", e))?;
    Ok(buf.freeze())
}

/// The correlation id of a response frame (size prefix already stripped): the first field of every
/// response header version, so the reader can route a frame without knowing its API.
pub(crate) fn correlation_id(frame: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// Strips the response header (whose version depends on the API and version) and returns the body.
pub(crate) fn strip_response_header(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
) -> Result<Bytes, ClientError> {
    ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .map_err(|e| ClientError::codec("decode response header", e))?;
    Ok(frame)
}

/// Decodes a response body of the given version, refusing trailing garbage silently (older brokers
/// may append tagged fields we do not know; kafka-protocol keeps those).
pub(crate) fn decode_body<T: Decodable>(
    mut body: Bytes,
    version: i16,
    what: &'static str,
) -> Result<T, ClientError> {
    T::decode(&mut body, version).map_err(|e| ClientError::codec(what, e))
}

/// Reads one size-prefixed frame. `Ok(None)` on a clean EOF between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    addr: &str,
) -> Result<Option<Bytes>, ClientError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ClientError::io(addr, e)),
    }
    let size = i32::from_be_bytes(size);
    let len = usize::try_from(size).map_err(|_| malformed(addr, "negative frame size"))?;
    if len < 4 {
        return Err(malformed(addr, "frame shorter than a correlation id"));
    }
    if len > MAX_RESPONSE_BYTES {
        return Err(malformed(addr, "frame larger than the client's limit"));
    }
    let mut buf = BytesMut::zeroed(len);
    reader
        .read_exact(&mut buf)
        .await
        .map_err(|e| ClientError::io(addr, e))?;
    Ok(Some(buf.freeze()))
}

fn malformed(addr: &str, reason: &'static str) -> ClientError {
    ClientError::MalformedResponse {
        addr: addr.to_owned(),
        reason,
    }
}

/// Peeks the leading `error_code` of a body (ApiVersions puts it first in every version), used to
/// detect UNSUPPORTED_VERSION before choosing the decode version.
pub(crate) fn peek_i16(body: &Bytes) -> Option<i16> {
    let mut b = body.get(..2)?;
    Some(b.get_i16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};

    #[test]
    fn request_frame_has_size_prefix_and_decodable_header() {
        let client_id = StrBytes::from_static_str("strom-test");
        let frame = encode_request(
            ApiKey::Metadata,
            12,
            42,
            &client_id,
            &MetadataRequest::default(),
        )
        .unwrap();
        let mut buf = frame.clone();
        let size = buf.get_i32();
        assert_eq!(usize::try_from(size).unwrap(), frame.len() - 4);
        let header =
            RequestHeader::decode(&mut buf, ApiKey::Metadata.request_header_version(12)).unwrap();
        assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
        assert_eq!(header.request_api_version, 12);
        assert_eq!(header.correlation_id, 42);
        assert_eq!(header.client_id.as_deref(), Some("strom-test"));
        let body = MetadataRequest::decode(&mut buf, 12).unwrap();
        assert_eq!(body, MetadataRequest::default());
        assert!(!buf.has_remaining());
    }

    #[test]
    fn flexible_and_legacy_header_versions() {
        let client_id = StrBytes::from_static_str("c");
        // ApiVersions v3 uses header v2 (tagged fields), v0 uses header v1.
        let v3 = encode_request(
            ApiKey::ApiVersions,
            3,
            1,
            &client_id,
            &ApiVersionsRequest::default(),
        )
        .unwrap();
        let v0 = encode_request(
            ApiKey::ApiVersions,
            0,
            1,
            &client_id,
            &ApiVersionsRequest::default(),
        )
        .unwrap();
        assert!(v3.len() > v0.len());
    }

    #[test]
    fn response_header_is_stripped_by_version() {
        let mut frame = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut frame, 1)
            .unwrap();
        frame.put_slice(b"body");
        let frame = frame.freeze();
        assert_eq!(correlation_id(&frame), Some(7));
        // Metadata v12 is flexible: response header v1 (one tagged-fields byte after the id).
        let body = strip_response_header(frame, ApiKey::Metadata, 12).unwrap();
        assert_eq!(&body[..], b"body");
    }

    #[tokio::test]
    async fn read_frame_checks_sizes() {
        let mut ok: &[u8] = &[0, 0, 0, 5, 0, 0, 0, 9, 1];
        let frame = read_frame(&mut ok, "t").await.unwrap().unwrap();
        assert_eq!(correlation_id(&frame), Some(9));
        assert!(
            read_frame(&mut ok, "t").await.unwrap().is_none(),
            "clean EOF"
        );
        let mut negative: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut negative, "t").await.is_err());
        let mut tiny: &[u8] = &[0, 0, 0, 2, 0, 0];
        assert!(read_frame(&mut tiny, "t").await.is_err());
        let mut truncated: &[u8] = &[0, 0, 0, 8, 0, 0, 0, 1];
        assert!(read_frame(&mut truncated, "t").await.is_err());
    }
}
