//! The OAUTHBEARER client initial response (RFC 7628 §3.1) as Kafka's
//! `OAuthBearerClientInitialResponse` reads and writes it:
//! `n,[a=<authzid>],\x01auth=Bearer <token>\x01[key=value\x01]*\x01`, keys `[A-Za-z]+`, values
//! `[\x21-\x7E \t\r\n]+`, `auth` reserved; the token is a b64token (`[-_.a-zA-Z0-9]+`). Kafka's
//! unsecured extensions are the other key/values: passed through to the broker, not trusted.

use std::collections::BTreeMap;

use crate::error::AuthError;
use crate::sasl::scram::decode_saslname;

const SEP: char = '\u{1}';

/// A parsed client initial response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitialResponse {
    pub(crate) authzid: String,
    pub(crate) token: String,
    pub(crate) extensions: BTreeMap<String, String>,
}

fn invalid(why: &str) -> AuthError {
    if why.is_empty() {
        AuthError::protocol("Invalid OAUTHBEARER client first message")
    } else {
        AuthError::protocol(format!("Invalid OAUTHBEARER client first message: {why}"))
    }
}

impl InitialResponse {
    pub(crate) fn parse(bytes: &[u8]) -> Result<InitialResponse, AuthError> {
        let text = std::str::from_utf8(bytes).map_err(|_| invalid(""))?;
        let rest = text.strip_prefix("n,").ok_or_else(|| invalid(""))?;
        let (authzid, rest) = rest.split_once(',').ok_or_else(|| invalid(""))?;
        let authzid = match authzid {
            "" => String::new(),
            a => decode_saslname(a.strip_prefix("a=").ok_or_else(|| invalid(""))?)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid(""))?,
        };
        let pairs = rest
            .strip_prefix(SEP)
            .and_then(|r| r.strip_suffix(SEP))
            .ok_or_else(|| invalid(""))?;
        let mut map = BTreeMap::new();
        if !pairs.is_empty() {
            let pairs = pairs.strip_suffix(SEP).ok_or_else(|| invalid(""))?;
            for pair in pairs.split(SEP) {
                let (k, v) = pair.split_once('=').ok_or_else(|| invalid(""))?;
                let key_ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphabetic());
                let value_ok = !v.is_empty()
                    && v.bytes()
                        .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b));
                if !key_ok || !value_ok {
                    return Err(invalid(""));
                }
                map.insert(k.to_string(), v.to_string());
            }
        }
        let auth = map
            .remove("auth")
            .ok_or_else(|| invalid("'auth' not specified"))?;
        let (scheme, token) = auth
            .split_once(' ')
            .ok_or_else(|| invalid("invalid 'auth' format"))?;
        let token = token.trim_start_matches(' ');
        let scheme_ok =
            !scheme.is_empty() && scheme.chars().all(|c| c.is_alphanumeric() || c == '_');
        let token_ok = !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !scheme_ok || !token_ok {
            return Err(invalid("invalid 'auth' format"));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::protocol(format!(
                "Invalid scheme in OAUTHBEARER client first message: {scheme}"
            )));
        }
        Ok(InitialResponse {
            authzid,
            token: token.to_string(),
            extensions: map,
        })
    }

    /// The client's message for `token` and `extensions`.
    pub(crate) fn format(token: &str, extensions: &BTreeMap<String, String>) -> Vec<u8> {
        let mut out = format!("n,,{SEP}auth=Bearer {token}");
        for (k, v) in extensions {
            out.push(SEP);
            out.push_str(&format!("{k}={v}"));
        }
        out.push(SEP);
        out.push(SEP);
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_and_rfc_forms() {
        let r = InitialResponse::parse(b"n,,\x01auth=Bearer abc.def-_.ghi\x01\x01").unwrap();
        assert_eq!(
            (r.authzid.as_str(), r.token.as_str()),
            ("", "abc.def-_.ghi")
        );
        let r = InitialResponse::parse(b"n,a=user@example.com,\x01auth=bearer   t.t.t\x01traceId=abc 123\x01logicalCluster=lkc-1\x01\x01").unwrap();
        assert_eq!(r.authzid, "user@example.com");
        assert_eq!(
            r.extensions.get("traceId").map(String::as_str),
            Some("abc 123")
        );
        assert_eq!(r.extensions.len(), 2);
        let mut ext = BTreeMap::new();
        ext.insert("k".to_string(), "v".to_string());
        assert_eq!(
            InitialResponse::parse(&InitialResponse::format("a.b.c", &ext))
                .unwrap()
                .extensions,
            ext
        );
    }

    #[test]
    fn refuses_malformed_messages() {
        for (bad, why) in [
            (
                &b"n,,auth=Bearer t\x01\x01"[..],
                "Invalid OAUTHBEARER client first message",
            ),
            (
                b"y,,\x01auth=Bearer t\x01\x01",
                "Invalid OAUTHBEARER client first message",
            ),
            (
                b"n,,\x01auth=Bearer t\x01",
                "Invalid OAUTHBEARER client first message",
            ),
            (
                b"n,,\x01x=1\x01\x01",
                "Invalid OAUTHBEARER client first message: 'auth' not specified",
            ),
            (
                b"n,,\x01auth=Bearer\x01\x01",
                "Invalid OAUTHBEARER client first message: invalid 'auth' format",
            ),
            (
                b"n,,\x01auth=Bearer a b\x01\x01",
                "Invalid OAUTHBEARER client first message: invalid 'auth' format",
            ),
            (
                b"n,,\x01auth=Basic dXNlcg\x01\x01",
                "Invalid scheme in OAUTHBEARER client first message: Basic",
            ),
            (
                b"n,,\x01auth=Bearer t\x011x=2\x01\x01",
                "Invalid OAUTHBEARER client first message",
            ),
        ] {
            assert_eq!(
                InitialResponse::parse(bad).unwrap_err().detail(),
                why,
                "{bad:?}"
            );
        }
    }
}
