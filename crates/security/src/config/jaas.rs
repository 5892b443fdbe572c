//! The JAAS configuration syntax of Kafka's `sasl.jaas.config`:
//! `<LoginModuleClass> <flag> key1="value1" key2=value2;` — Java's `StreamTokenizer` rules as
//! Kafka's `JaasConfig` sets them up: `//` and `/* */` comments, words of letters, digits, `.`,
//! `-`, `_`, `$`; values quoted with `"` or `'` and backslash escapes (`\n \t \r \f \b \a \v`,
//! octal, any other escaped character itself); every entry ends with `;`.
//!
//! The broker-side PLAIN users (`user_<name>="<password>"`), and the `username`/`password` a
//! client or the inter-broker connection logs in with, live in these options. `Debug` hides the
//! values of secret-looking options.

use std::collections::BTreeMap;
use std::fmt;

/// Kafka's PLAIN login module class.
pub const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
/// Kafka's SCRAM login module class.
pub const SCRAM_LOGIN_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
/// Kafka's OAUTHBEARER login module class.
pub const OAUTHBEARER_LOGIN_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// A JAAS login module control flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlFlag {
    /// `required`
    Required,
    /// `requisite`
    Requisite,
    /// `sufficient`
    Sufficient,
    /// `optional`
    Optional,
}

/// One `LoginModule flag options;` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    /// The login module class name.
    pub login_module: String,
    /// Its control flag.
    pub control_flag: ControlFlag,
    options: BTreeMap<String, String>,
}

impl JaasEntry {
    /// An option's value.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// Every option, in key order.
    pub fn options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.options.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.starts_with("user_") || k.contains("secret") || k.contains("token")
}

impl fmt::Debug for JaasEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: BTreeMap<&str, &str> = self
            .options
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret_option(k) {
                        "[hidden]"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("JaasEntry")
            .field("login_module", &self.login_module)
            .field("control_flag", &self.control_flag)
            .field("options", &options)
            .finish()
    }
}

/// Why a JAAS text was refused (Kafka's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JaasError(String);

/// A parsed `sasl.jaas.config` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    /// The entries, in order.
    pub entries: Vec<JaasEntry>,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Symbol(char),
}

impl JaasConfig {
    /// Parses one or more entries.
    pub fn parse(text: &str) -> Result<JaasConfig, JaasError> {
        let tokens = tokenize(text)?;
        let mut it = tokens.into_iter().peekable();
        let mut entries = Vec::new();
        while let Some(tok) = it.next() {
            let login_module = match tok {
                Token::Word(w) | Token::Quoted(w) => w,
                Token::Symbol(c) => {
                    return Err(JaasError(format!(
                        "Unexpected '{c}' where a login module name was expected in JAAS config"
                    )))
                }
            };
            let flag = match it.next() {
                None => {
                    return Err(JaasError(
                        "Login module control flag not specified in JAAS config".into(),
                    ))
                }
                Some(Token::Word(w)) | Some(Token::Quoted(w)) => parse_flag(&w)?,
                Some(Token::Symbol(c)) => {
                    return Err(JaasError(format!(
                        "Invalid login module control flag '{c}' in JAAS config"
                    )))
                }
            };
            let mut options = BTreeMap::new();
            let mut terminated = false;
            while let Some(tok) = it.next() {
                let key = match tok {
                    Token::Symbol(';') => {
                        terminated = true;
                        break;
                    }
                    Token::Word(w) | Token::Quoted(w) => w,
                    Token::Symbol(c) => {
                        return Err(JaasError(format!("Unexpected '{c}' in JAAS config")))
                    }
                };
                if it.next() != Some(Token::Symbol('=')) {
                    return Err(JaasError(format!(
                        "Value not specified for key '{key}' in JAAS config"
                    )));
                }
                match it.next() {
                    Some(Token::Word(v)) | Some(Token::Quoted(v)) => {
                        options.insert(key, v);
                    }
                    _ => {
                        return Err(JaasError(format!(
                            "Value not specified for key '{key}' in JAAS config"
                        )))
                    }
                }
            }
            if !terminated {
                return Err(JaasError(
                    "JAAS config entry not terminated by semi-colon".into(),
                ));
            }
            entries.push(JaasEntry {
                login_module,
                control_flag: flag,
                options,
            });
        }
        if entries.is_empty() {
            return Err(JaasError(
                "Login module not specified in JAAS config".into(),
            ));
        }
        Ok(JaasConfig { entries })
    }

    /// Parses a `sasl.jaas.config` property, which Kafka requires to hold exactly one entry.
    pub fn parse_single(text: &str) -> Result<JaasEntry, JaasError> {
        let mut config = JaasConfig::parse(text)?;
        if config.entries.len() != 1 {
            return Err(JaasError(format!(
                "JAAS config property contains {} login modules, should be 1 module",
                config.entries.len()
            )));
        }
        config
            .entries
            .pop()
            .ok_or_else(|| JaasError("Login module not specified in JAAS config".into()))
    }
}

fn parse_flag(word: &str) -> Result<ControlFlag, JaasError> {
    match word.to_ascii_uppercase().as_str() {
        "REQUIRED" => Ok(ControlFlag::Required),
        "REQUISITE" => Ok(ControlFlag::Requisite),
        "SUFFICIENT" => Ok(ControlFlag::Sufficient),
        "OPTIONAL" => Ok(ControlFlag::Optional),
        _ => Err(JaasError(format!(
            "Invalid login module control flag '{word}' in JAAS config"
        ))),
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '$') || (c as u32) >= 128
}

fn tokenize(text: &str) -> Result<Vec<Token>, JaasError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || (c as u32) < 32 {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '"' || c == '\'' {
            let (value, next) = quoted(&chars, i + 1, c);
            tokens.push(Token::Quoted(value));
            i = next;
        } else if is_word_char(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            tokens.push(Token::Symbol(c));
            i += 1;
        }
    }
    Ok(tokens)
}

/// A quoted string from `start` (after the opening quote): StreamTokenizer ends it at the closing
/// quote or at an end of line.
fn quoted(chars: &[char], start: usize, quote: char) -> (String, usize) {
    let mut out = String::new();
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == quote {
            return (out, i + 1);
        }
        if c == '\n' || c == '\r' {
            return (out, i);
        }
        if c == '\\' && i + 1 < chars.len() {
            let e = chars[i + 1];
            i += 2;
            match e {
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    // Up to three octal digits (at most two when the first is 4–7), as StreamTokenizer.
                    let max = if e <= '3' { 2 } else { 1 };
                    let mut value = e as u32 - '0' as u32;
                    let mut taken = 0;
                    while taken < max && i < chars.len() && ('0'..='7').contains(&chars[i]) {
                        value = value * 8 + (chars[i] as u32 - '0' as u32);
                        i += 1;
                        taken += 1;
                    }
                    out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
                }
                other => out.push(other),
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    (out, i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_plain_server_config() {
        let e = JaasConfig::parse_single(
            "org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=\"admin\"\n  password=\"admin-secret\"\n  user_admin=\"admin-secret\"\n  user_alice=\"alice-secret\";",
        )
        .unwrap();
        assert_eq!(e.login_module, PLAIN_LOGIN_MODULE);
        assert_eq!(e.control_flag, ControlFlag::Required);
        assert_eq!(e.option("user_alice"), Some("alice-secret"));
        assert_eq!(e.option("username"), Some("admin"));
        let shown = format!("{e:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("admin"));
    }

    #[test]
    fn quotes_escapes_comments_and_unquoted_words() {
        let e = JaasConfig::parse_single(
            "com.Example OPTIONAL /* c */ a='x y' b=\"q\\\"uo\\\\te\\n\" c=plain-word_$1 // tail\n d=\"\\101\";",
        )
        .unwrap();
        assert_eq!(e.control_flag, ControlFlag::Optional);
        assert_eq!(e.option("a"), Some("x y"));
        assert_eq!(e.option("b"), Some("q\"uo\\te\n"));
        assert_eq!(e.option("c"), Some("plain-word_$1"));
        assert_eq!(e.option("d"), Some("A"));
    }

    #[test]
    fn errors_are_kafkas() {
        let err = |t: &str| JaasConfig::parse_single(t).unwrap_err().to_string();
        assert_eq!(err(""), "Login module not specified in JAAS config");
        assert_eq!(
            err("M"),
            "Login module control flag not specified in JAAS config"
        );
        assert_eq!(
            err("M maybe;"),
            "Invalid login module control flag 'maybe' in JAAS config"
        );
        assert_eq!(
            err("M required a=\"b\""),
            "JAAS config entry not terminated by semi-colon"
        );
        assert_eq!(
            err("M required a;"),
            "Value not specified for key 'a' in JAAS config"
        );
        assert_eq!(
            err("M required a=;"),
            "Value not specified for key 'a' in JAAS config"
        );
        assert_eq!(
            err("M required; N required;"),
            "JAAS config property contains 2 login modules, should be 1 module"
        );
        assert_eq!(
            JaasConfig::parse("M required; N sufficient x=\"1\";")
                .unwrap()
                .entries
                .len(),
            2
        );
    }
}
