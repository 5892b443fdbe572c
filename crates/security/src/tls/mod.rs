//! TLS on rustls (ring provider): server configs per listener, a reloadable acceptor, client
//! configs, and the PEM stores both read.

pub(crate) mod acceptor;
pub(crate) mod client;
pub(crate) mod pem;
pub(crate) mod server;
pub(crate) mod stores;
#[cfg(test)]
mod tests;
