//! `ListenerProps`: one listener's view of the broker config. Kafka lets most keys be set per
//! listener as `listener.name.<lower-cased listener>.<key>` and per SASL mechanism as
//! `listener.name.<listener>.<lower-cased mechanism>.<key>`; the most specific one wins, then the
//! plain key. Lookups return the key that supplied the value, so errors can name it.

use crate::config::listener::ListenerName;
use crate::config::properties::Properties;

/// A setting found by a prefixed lookup: the key that supplied it (for error messages) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<'a> {
    /// The key that held the value (`listener.name.external.ssl.keystore.location`, or the plain key).
    pub key: &'a str,
    /// Its value.
    pub value: &'a str,
}

/// A listener's view of the config: `listener.name.<name>.<key>` first, then the plain key.
#[derive(Debug, Clone)]
pub struct ListenerProps<'a> {
    props: &'a Properties,
    name: ListenerName,
}

impl<'a> ListenerProps<'a> {
    /// The view of `props` for listener `name`.
    pub fn new(props: &'a Properties, name: &ListenerName) -> Self {
        ListenerProps {
            props,
            name: name.clone(),
        }
    }

    /// The listener this view is for.
    pub fn listener_name(&self) -> &ListenerName {
        &self.name
    }

    /// The underlying, unprefixed properties.
    pub fn properties(&self) -> &'a Properties {
        self.props
    }

    fn entry(&self, key: String) -> Option<Setting<'a>> {
        self.props
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(key, value)| Setting { key, value })
    }

    /// The value for `key`: listener-prefixed, else plain.
    pub fn lookup(&self, key: &str) -> Option<Setting<'a>> {
        self.entry(format!("{}{key}", self.name.config_prefix()))
            .or_else(|| self.entry(key.to_string()))
    }

    /// Only the listener-prefixed value (Kafka reads some keys, like `ssl.client.auth` on
    /// SASL_SSL listeners (KIP-684), only from there).
    pub fn lookup_prefixed_only(&self, key: &str) -> Option<Setting<'a>> {
        self.entry(format!("{}{key}", self.name.config_prefix()))
    }

    /// A mechanism's value: `listener.name.<l>.<mechanism>.<key>`, then `listener.name.<l>.<key>`,
    /// then `<key>`.
    pub fn lookup_for_mechanism(&self, mechanism: &str, key: &str) -> Option<Setting<'a>> {
        self.entry(format!(
            "{}{key}",
            self.name.mechanism_config_prefix(mechanism)
        ))
        .or_else(|| self.lookup(key))
    }

    /// The value for `key`, trimmed, empty taken as unset.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.lookup(key)
            .map(|s| s.value.trim())
            .filter(|v| !v.is_empty())
    }

    /// The full name of `key` under this listener's prefix, for error messages about missing keys.
    pub fn prefixed_key(&self, key: &str) -> String {
        format!("{}{key}", self.name.config_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        pairs.iter().copied().collect()
    }

    #[test]
    fn listener_props_prefer_the_listener_then_mechanism_prefix() {
        let p = props(&[
            ("ssl.client.auth", "none"),
            ("listener.name.external.ssl.client.auth", "required"),
            ("sasl.jaas.config", "plain"),
            (
                "listener.name.external.scram-sha-256.sasl.jaas.config",
                "scram",
            ),
        ]);
        let ext = ListenerProps::new(&p, &ListenerName::new("EXTERNAL"));
        let int = ListenerProps::new(&p, &ListenerName::new("INTERNAL"));
        assert_eq!(ext.get("ssl.client.auth"), Some("required"));
        assert_eq!(int.get("ssl.client.auth"), Some("none"));
        assert_eq!(
            ext.lookup_for_mechanism("SCRAM-SHA-256", "sasl.jaas.config")
                .unwrap()
                .value,
            "scram"
        );
        assert_eq!(
            ext.lookup_for_mechanism("PLAIN", "sasl.jaas.config")
                .unwrap()
                .key,
            "sasl.jaas.config"
        );
        assert!(int.lookup_prefixed_only("ssl.client.auth").is_none());
    }
}
