//! The built-in web console: a few pages and a JSON API, as one axum [`Router`].
//!
//! The console is a Kafka *client* of the cluster (through `strom-client`, against the bootstrap
//! address in [`ConsoleConfig`]), never a reader of broker internals: so it runs the same next to
//! a remote broker (`strom console`) as inside `strom serve`, and the broker's authorizer decides
//! what it may see and do, as for any other client.
//!
//! Routes: `/` and `/assets/*` are the front end (plain ES modules and CSS, embedded at build time,
//! served with a `default-src 'self'` Content-Security-Policy); `/api/*` is JSON. Live pages poll the
//! JSON API. The throughput sparkline reads `/metrics` of the same origin when the host server
//! mounts one (`ConsoleConfig::metrics_at_origin`); without it the overview says so.
//!
//! Security: with [`ConsoleConfig::login`] the console asks for HTTP basic credentials and uses
//! them as the SASL login of that user's Kafka connections, so what a user sees and may change
//! (produce, reset offsets) is exactly what the broker's ACLs allow that user.
//!
//! This crate must not depend on the broker crates: it sees the cluster only through the wire.

// Tests may unwrap: a panic there is a test failure, not a crash on network input.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod api;
mod assets;
mod lag;
mod messages;
mod render;
mod state;

use axum::Router;
pub use state::ConsoleConfig;

/// The console's routes: the pages under `/`, the JSON API under `/api`. Merge it into a server
/// (`Router::merge`) or serve it alone.
pub fn router(config: ConsoleConfig) -> Router {
    let console = state::Console::new(config);
    Router::new()
        .merge(assets::routes())
        .nest("/api", api::routes())
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            state::require_login,
        ))
        .with_state(console)
        .layer(axum::middleware::map_response(assets::security_headers))
}
