//! The probe and metrics routes. `/metrics` builds a registry per scrape (collectors are
//! cheap to build): the process collector and the broker's.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use strom_broker::BrokerCollector;
use strom_metrics::prometheus_client::collector::Collector;
use strom_metrics::prometheus_client::encoding::{prometheus_text, text, DescriptorEncoder};
use strom_metrics::prometheus_client::registry::Registry;
use strom_metrics::ProcessStats;

use crate::HttpState;

/// OpenMetrics' content type (what Prometheus asks for first).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn health() -> &'static str {
    "ok\n"
}

async fn ready(State(state): State<HttpState>) -> Response {
    match state.broker() {
        Some(b) if b.is_ready() => (StatusCode::OK, "ready\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response(),
    }
}

/// Process metrics as a collector (read at scrape time).
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        ProcessStats::read().encode(&mut encoder)
    }
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let broker = state.broker().cloned();
    // Scraping reads every hosted partition and group: off the async workers.
    let encoded = tokio::task::spawn_blocking(move || {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        if let Some(b) = broker {
            registry.register_collector(Box::new(BrokerCollector::new(b)));
        }
        let mut out = String::new();
        let r = if openmetrics {
            text::encode(&mut out, &registry)
        } else {
            prometheus_text::encode(&mut out, &registry)
        };
        r.map(|()| out)
    })
    .await;
    match encoded {
        Ok(Ok(body)) => {
            let content_type = if openmetrics {
                OPENMETRICS
            } else {
                prometheus_text::CONTENT_TYPE
            };
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}
