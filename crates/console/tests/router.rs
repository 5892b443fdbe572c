//! The console's router over a real socket, without a cluster: the pages and assets with their
//! security headers, the API's JSON errors when the cluster cannot be reached (the page shows
//! them; nothing hangs or panics), and the login challenge.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A cluster address that refuses connections at once.
const NO_CLUSTER: &str = "127.0.0.1:1";

async fn serve(config: strom_console::ConsoleConfig) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        axum::serve(listener, strom_console::router(config))
            .await
            .unwrap()
    });
    addr
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

async fn get(addr: &str, path: &str, extra: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .expect("the console answered in time")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn pages_assets_and_api_errors() {
    let addr = serve(strom_console::ConsoleConfig::new(NO_CLUSTER)).await;

    let index = get(&addr, "/", "").await;
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = index.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(index.body.contains("/assets/app.js"));

    let js = get(&addr, "/assets/app.js", "").await;
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.header("content-security-policy").is_some());
    assert_eq!(get(&addr, "/assets/nope.js", "").await.status, 404);
    assert_eq!(get(&addr, "/favicon.ico", "").await.status, 200);

    let config = get(&addr, "/api/config", "").await;
    assert_eq!(config.status, 200);
    let config: serde_json::Value = serde_json::from_str(&config.body).unwrap();
    assert_eq!(config["metrics"], false);

    let missing = get(&addr, "/api/nope", "").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("\"error\""), "{}", missing.body);

    // No cluster: a JSON error saying so, not a hang.
    let overview = get(&addr, "/api/overview", "").await;
    assert_eq!(overview.status, 502, "{}", overview.body);
    let err: serde_json::Value = serde_json::from_str(&overview.body).unwrap();
    assert!(err["error"].as_str().unwrap().contains(NO_CLUSTER), "{err}");
}

#[tokio::test]
async fn login_challenges_every_route() {
    let mut config = strom_console::ConsoleConfig::new(NO_CLUSTER);
    config.login = Some(strom_client::Mechanism::ScramSha256);
    let addr = serve(config).await;
    for path in ["/", "/assets/app.js", "/api/topics"] {
        let a = get(&addr, path, "").await;
        assert_eq!(a.status, 401, "{path}");
        assert!(a.header("www-authenticate").unwrap().starts_with("Basic "));
    }
    // With credentials the page is served; the broker (here: none) judges them on API calls.
    let auth = "Authorization: Basic YWxpY2U6cHc=\r\n"; // alice:pw
    assert_eq!(get(&addr, "/", auth).await.status, 200);
    assert_eq!(get(&addr, "/api/topics", auth).await.status, 502);
}
