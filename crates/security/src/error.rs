//! The crate's two error types: [`ConfigError`] for what an operator wrote (always naming the
//! config key, because that is what they must fix), and [`AuthError`] for what a peer sent
//! during authentication.
//!
//! They are apart because they meet different people: a `ConfigError` stops a listener from
//! starting (or a dynamic update from applying) and is read by an operator; an `AuthError`
//! ends one connection's SASL exchange and part of it is sent to an untrusted client. The
//! broker maps `AuthError` to a Kafka error code in one place (`AuthErrorKind::Authentication`
//! and `Protocol` → SASL_AUTHENTICATION_FAILED, `IllegalState` → ILLEGAL_SASL_STATE).

use std::path::PathBuf;

/// A configuration value that cannot be used. Every variant names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The key is required here but absent.
    #[error("{key}: missing (required {context})")]
    Missing {
        /// The config key, as the operator wrote it (with its listener prefix when it had one).
        key: String,
        /// Why it is required, e.g. "for SSL listener EXTERNAL".
        context: String,
    },
    /// The value is present but wrong.
    #[error("{key}: {reason}")]
    Invalid {
        /// The config key.
        key: String,
        /// What is wrong with it, for the operator.
        reason: String,
    },
    /// A file named by the key could not be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Io {
        /// The config key whose value is the path.
        key: String,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// rustls refused the assembled configuration (for example a key that does not match its certificate).
    #[error("{key}: {source}")]
    Tls {
        /// The config key whose material rustls refused.
        key: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(key: impl Into<String>, context: impl Into<String>) -> Self {
        ConfigError::Missing {
            key: key.into(),
            context: context.into(),
        }
    }

    /// The key this error is about.
    pub fn key(&self) -> &str {
        match self {
            ConfigError::Missing { key, .. }
            | ConfigError::Invalid { key, .. }
            | ConfigError::Io { key, .. }
            | ConfigError::Tls { key, .. } => key,
        }
    }
}

/// How an authentication failure is reported, following Kafka's `SaslServerAuthenticator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorKind {
    /// Kafka's `SaslAuthenticationException`: the message is meant for the client and sent as is.
    Authentication,
    /// Kafka's `SaslException`: the client gets only the generic "Authentication failed during
    /// authentication due to invalid credentials with SASL mechanism X"; the detail is for logs.
    Protocol,
    /// A message arrived after the exchange ended (Kafka's `IllegalSaslStateException`).
    IllegalState,
}

/// A failed SASL exchange. It never carries a password, a proof or a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AuthError {
    kind: AuthErrorKind,
    message: String,
    /// A fuller reason for the server's log when `message` is deliberately terse (OAUTHBEARER
    /// sends the client only `{"status":"invalid_token"}`).
    log_detail: Option<String>,
}

impl AuthError {
    /// A failure whose message the client may see.
    pub fn authentication(message: impl Into<String>) -> Self {
        AuthError {
            kind: AuthErrorKind::Authentication,
            message: message.into(),
            log_detail: None,
        }
    }

    /// A failure whose detail stays on the server.
    pub fn protocol(message: impl Into<String>) -> Self {
        AuthError {
            kind: AuthErrorKind::Protocol,
            message: message.into(),
            log_detail: None,
        }
    }

    /// A message after the exchange completed or failed.
    pub fn illegal_state(message: impl Into<String>) -> Self {
        AuthError {
            kind: AuthErrorKind::IllegalState,
            message: message.into(),
            log_detail: None,
        }
    }

    /// Which of Kafka's exception classes this corresponds to.
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// Adds a reason for the server's log that the client does not see.
    pub fn with_log_detail(mut self, detail: impl Into<String>) -> Self {
        self.log_detail = Some(detail.into());
        self
    }

    /// The full reason, for the server's log (it holds no secret).
    pub fn detail(&self) -> &str {
        self.log_detail.as_deref().unwrap_or(&self.message)
    }

    /// What Kafka puts in SaslAuthenticateResponse's `error_message` for this failure.
    pub fn client_message(&self, mechanism: &str) -> String {
        match self.kind {
            AuthErrorKind::Authentication | AuthErrorKind::IllegalState => self.message.clone(),
            AuthErrorKind::Protocol => format!(
                "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_hide_their_detail_from_the_client() {
        let e = AuthError::protocol("Invalid client nonce in the final client message.");
        assert_eq!(
            e.client_message("SCRAM-SHA-256"),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(
            e.detail(),
            "Invalid client nonce in the final client message."
        );
        let e = AuthError::authentication("Authentication failed: Invalid username or password");
        assert_eq!(e.client_message("PLAIN"), e.detail());
    }

    #[test]
    fn config_errors_name_their_key() {
        let e = ConfigError::invalid("listeners", "bad");
        assert_eq!(e.key(), "listeners");
        assert_eq!(e.to_string(), "listeners: bad");
    }
}
