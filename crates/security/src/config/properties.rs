//! `Properties`: Kafka's configuration as the operator wrote it — key → string value — plus the
//! Java `.properties` reader for `--command-config FILE` and typed getters whose errors name the key.
//!
//! The broker keeps its own typed config table; it hands this crate the raw key/values (from
//! `server.properties` or a dynamic update) because the security keys are many, prefixed per
//! listener and per mechanism, and only meaningful here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::error::ConfigError;

/// Config keys and their string values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties {
    map: BTreeMap<String, String>,
}

/// Keys whose values are secrets: `Debug` prints them redacted.
fn is_secret_key(key: &str) -> bool {
    key.ends_with("password")
        || key.ends_with("sasl.jaas.config")
        || key.ends_with("ssl.keystore.key")
        || key.ends_with("ssl.key.pem")
        || key.ends_with("client.secret")
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.map {
            if is_secret_key(k) {
                m.entry(k, &"[hidden]");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Properties {
            map: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl Properties {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.map.insert(key.into(), value.into())
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Every key and value, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Reads a Java `.properties` file (Kafka's `--command-config`, `client.properties`).
    pub fn load(path: &Path, key_for_errors: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            key: key_for_errors.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text))
    }

    /// Parses Java `.properties` text: `key=value`, `key: value` or `key value`; `#`/`!` comments;
    /// a trailing odd backslash continues the line (its next line's leading blanks dropped);
    /// `\t \n \r \f \uXXXX` escapes, any other escaped character stands for itself. The format
    /// has no syntax errors: Java accepts every input, and so does this.
    pub fn parse(text: &str) -> Self {
        let mut props = Properties::new();
        let mut lines = text.lines();
        while let Some(first) = lines.next() {
            let trimmed = first.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
                continue;
            }
            let mut logical = String::new();
            let mut current = trimmed.to_string();
            loop {
                let trailing = current.chars().rev().take_while(|c| *c == '\\').count();
                if trailing % 2 == 1 {
                    current.pop();
                    logical.push_str(&current);
                    match lines.next() {
                        Some(next) => current = next.trim_start().to_string(),
                        None => break,
                    }
                } else {
                    logical.push_str(&current);
                    break;
                }
            }
            let (key, value) = split_key_value(&logical);
            props.insert(unescape(key), unescape(value));
        }
        props
    }

    /// The trimmed value, treating an empty one as absent (as Kafka does for most string keys).
    pub fn get_trimmed(&self, key: &str) -> Option<&str> {
        self.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A comma-separated list, items trimmed, empty items dropped (Kafka's `Type.LIST`).
    pub fn get_list(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).map(split_list)
    }

    /// A boolean (`true`/`false`, any case).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.get_trimmed(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(ConfigError::invalid(
                key,
                format!("expected true or false, got {v:?}"),
            )),
        }
    }

    /// A signed 64-bit integer (Kafka's `Type.LONG`).
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.get_trimmed(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::invalid(key, format!("expected an integer, got {v:?}"))),
        }
    }
}

/// Kafka's list syntax: comma-separated, trimmed, empties dropped.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits a logical line at the first unescaped `=`, `:` or blank (Java's `Properties.load`).
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = bytes.len();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(bytes.len());
    let rest = &line[key_end..];
    let rest = rest.trim_start_matches([' ', '\t', '\x0c']);
    let rest = rest
        .strip_prefix('=')
        .or_else(|| rest.strip_prefix(':'))
        .unwrap_or(rest);
    (
        &line[..key_end],
        rest.trim_start_matches([' ', '\t', '\x0c']),
    )
}

/// Java `.properties` escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => {
                        out.push(ch);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    // Java throws on a malformed \u escape; keeping the text is kinder and loses nothing.
                    _ => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A secret string (password, inline private key, token): `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([hidden])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_properties_with_continuations_and_escapes() {
        let text = "# comment\n! also\nsecurity.protocol=SASL_SSL\n  sasl.mechanism : SCRAM-SHA-256\n\
                    sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    \
                    username=\"alice\" \\\n    password=\"a\\\\b\";\nkey\\=with\\:seps value here\nempty=\nspaced   v\n\
                    unicode=caf\\u00e9\n";
        let p = Properties::parse(text);
        assert_eq!(p.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(p.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(
            p.get("sasl.jaas.config"),
            Some("org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"a\\b\";")
        );
        assert_eq!(p.get("key=with:seps"), Some("value here"));
        assert_eq!(p.get("empty"), Some(""));
        assert_eq!(p.get("spaced"), Some("v"));
        assert_eq!(p.get("unicode"), Some("café"));
    }

    #[test]
    fn debug_hides_secrets() {
        let p: Properties = [
            ("ssl.key.password", "s3cret"),
            ("sasl.jaas.config", "x password=\"p\";"),
            ("a", "b"),
        ]
        .into_iter()
        .collect();
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("password=\"p\""),
            "{shown}"
        );
        assert!(shown.contains("\"a\": \"b\""));
        assert_eq!(format!("{:?}", Password::new("pw")), "Password([hidden])");
    }

    #[test]
    fn typed_getters_name_the_key() {
        let p: Properties = [("b", "yes"), ("n", "12x"), ("l", " a, ,b ,")]
            .into_iter()
            .collect();
        assert_eq!(p.get_bool("b").unwrap_err().key(), "b");
        assert_eq!(p.get_i64("n").unwrap_err().key(), "n");
        assert_eq!(
            p.get_list("l"),
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }
}
