//! A raw controller-RPC client for the abuse tests: length-prefixed JSON frames written by hand,
//! so a test can send what no well-behaved node would (no hello, forged ids, huge lengths),
//! over plain TCP or any other stream (a TLS one in the TLS tests).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};
use strom_cluster::quorum::{PeerRefusal, RemoteError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Only a guard against a hung test, never an assertion on timing.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// One raw connection to a controller listener.
pub struct Raw<S = TcpStream> {
    stream: S,
}

impl Raw {
    /// Connects from the default local address.
    pub async fn connect(to: SocketAddr) -> Raw {
        let stream = TcpStream::connect(to).await.expect("connect");
        Raw { stream }
    }

    /// Connects from `from` (another loopback address, say).
    pub async fn connect_from(from: IpAddr, to: SocketAddr) -> Raw {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(from, 0)).expect("bind");
        let stream = socket.connect(to).await.expect("connect");
        Raw { stream }
    }

    /// Connects and says hello as `node_id`; returns the connection and the answer.
    pub async fn hello(to: SocketAddr, node_id: i32) -> (Raw, Option<Value>) {
        let mut raw = Raw::connect(to).await;
        let answer = raw.say_hello(node_id).await;
        (raw, answer)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    /// Speaks over `stream` (already connected, handshake done).
    pub fn over(stream: S) -> Raw<S> {
        Raw { stream }
    }

    /// Says hello as `node_id`; returns the answer (`None`: the connection was closed).
    pub async fn say_hello(&mut self, node_id: i32) -> Option<Value> {
        self.call(&json!({ "Hello": { "node_id": node_id } })).await
    }

    /// Writes raw bytes.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        // The peer may have closed already; the next read tells.
        let _ = self.stream.write_all(bytes).await;
    }

    /// Writes one frame.
    pub async fn send(&mut self, msg: &Value) {
        let body = serde_json::to_vec(msg).expect("json");
        let mut frame = u32::try_from(body.len())
            .expect("frame length")
            .to_be_bytes()
            .to_vec();
        frame.extend_from_slice(&body);
        self.send_bytes(&frame).await;
    }

    /// Reads one frame; `None` when the connection is closed.
    pub async fn recv(&mut self) -> Option<Value> {
        let read = async {
            let mut len = [0u8; 4];
            self.stream.read_exact(&mut len).await.ok()?;
            let mut body = vec![0u8; usize::try_from(u32::from_be_bytes(len)).ok()?];
            self.stream.read_exact(&mut body).await.ok()?;
            serde_json::from_slice(&body).ok()
        };
        tokio::time::timeout(HANG_GUARD, read)
            .await
            .expect("the controller neither answered nor closed")
    }

    /// Sends one frame and reads the answer.
    pub async fn call(&mut self, msg: &Value) -> Option<Value> {
        self.send(msg).await;
        self.recv().await
    }
}

/// The error in an answer, if it is one.
pub fn error_of(answer: &Option<Value>) -> Option<RemoteError> {
    let e = answer.as_ref()?.get("Error")?;
    serde_json::from_value(e.clone()).ok()
}

/// The refusal reason in an answer, if it is an `Unauthorized` error.
pub fn refusal(answer: &Option<Value>) -> Option<PeerRefusal> {
    match error_of(answer)? {
        RemoteError::Unauthorized { reason, .. } => Some(reason),
        _ => None,
    }
}
