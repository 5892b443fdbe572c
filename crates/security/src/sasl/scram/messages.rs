//! The four SCRAM messages, parsed into types (RFC 5802 §7, with Kafka's `ScramMessages`
//! restrictions: gs2 flag `n` only, optional reserved `m=`, `ALPHA=VALUE` extensions).
//! Parsing never echoes the input into errors: it is untrusted and would end up in logs.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::AuthError;
use crate::sasl::scram::decode_saslname;

fn printable_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn extensions<'a>(
    parts: impl Iterator<Item = &'a str>,
    err: &dyn Fn() -> AuthError,
) -> Result<BTreeMap<String, String>, AuthError> {
    let mut map = BTreeMap::new();
    for part in parts {
        let (k, v) = part.split_once('=').ok_or_else(err)?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphabetic()) || v.is_empty() {
            return Err(err());
        }
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

fn base64(value: &str, err: &dyn Fn() -> AuthError) -> Result<Vec<u8>, AuthError> {
    STANDARD.decode(value).map_err(|_| err())
}

/// `gs2-header client-first-message-bare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFirst {
    pub(crate) gs2_header: String,
    pub(crate) authzid: String,
    pub(crate) username: String,
    pub(crate) nonce: String,
    pub(crate) extensions: BTreeMap<String, String>,
    /// The message after the gs2 header, exactly as received (part of the AuthMessage).
    pub(crate) bare: String,
}

impl ClientFirst {
    pub(crate) fn parse(bytes: &[u8]) -> Result<ClientFirst, AuthError> {
        let err = || AuthError::protocol("Invalid SCRAM client first message format");
        let text = std::str::from_utf8(bytes).map_err(|_| err())?;
        let rest = text.strip_prefix("n,").ok_or_else(err)?;
        let (authzid_part, bare) = rest.split_once(',').ok_or_else(err)?;
        let authzid = match authzid_part {
            "" => String::new(),
            a => decode_saslname(a.strip_prefix("a=").ok_or_else(err)?)
                .filter(|s| !s.is_empty())
                .ok_or_else(err)?,
        };
        let mut parts = bare.split(',').peekable();
        if parts.peek().is_some_and(|p| p.starts_with("m=")) {
            parts.next();
        }
        let saslname = parts
            .next()
            .and_then(|p| p.strip_prefix("n="))
            .ok_or_else(err)?;
        let username = decode_saslname(saslname)
            .filter(|s| !s.is_empty())
            .ok_or_else(err)?;
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .filter(|n| printable_nonce(n))
            .ok_or_else(err)?;
        let extensions = extensions(parts, &err)?;
        Ok(ClientFirst {
            gs2_header: format!("n,{authzid_part},"),
            authzid,
            username,
            nonce: nonce.to_string(),
            extensions,
            bare: bare.to_string(),
        })
    }
}

/// `r=nonce,s=salt,i=iterations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerFirst {
    pub(crate) nonce: String,
    pub(crate) salt: Vec<u8>,
    pub(crate) iterations: u32,
}

impl ServerFirst {
    pub(crate) fn to_message(&self) -> String {
        format!(
            "r={},s={},i={}",
            self.nonce,
            STANDARD.encode(&self.salt),
            self.iterations
        )
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<ServerFirst, AuthError> {
        let err = || AuthError::protocol("Invalid SCRAM server first message format");
        let text = std::str::from_utf8(bytes).map_err(|_| err())?;
        let mut parts = text.split(',').peekable();
        if parts.peek().is_some_and(|p| p.starts_with("m=")) {
            parts.next();
        }
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .filter(|n| printable_nonce(n))
            .ok_or_else(err)?;
        let salt = base64(
            parts
                .next()
                .and_then(|p| p.strip_prefix("s="))
                .ok_or_else(err)?,
            &err,
        )?;
        let iterations: u32 = parts
            .next()
            .and_then(|p| p.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .filter(|i| *i > 0)
            .ok_or_else(|| {
                AuthError::protocol("Invalid SCRAM server first message format: invalid iterations")
            })?;
        extensions(parts, &err)?;
        Ok(ServerFirst {
            nonce: nonce.to_string(),
            salt,
            iterations,
        })
    }
}

/// `c=binding,r=nonce[,ext],p=proof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFinal {
    pub(crate) channel_binding: Vec<u8>,
    pub(crate) nonce: String,
    pub(crate) proof: Vec<u8>,
    /// Everything before `,p=`, exactly as received (part of the AuthMessage).
    pub(crate) without_proof: String,
}

impl ClientFinal {
    pub(crate) fn parse(bytes: &[u8]) -> Result<ClientFinal, AuthError> {
        let err = || AuthError::protocol("Invalid SCRAM client final message format");
        let text = std::str::from_utf8(bytes).map_err(|_| err())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(err)?;
        let mut parts = without_proof.split(',');
        let channel_binding = base64(
            parts
                .next()
                .and_then(|p| p.strip_prefix("c="))
                .ok_or_else(err)?,
            &err,
        )?;
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .filter(|n| printable_nonce(n))
            .ok_or_else(err)?;
        extensions(parts, &err)?;
        let proof = base64(proof, &err)?;
        if proof.is_empty() {
            return Err(err());
        }
        Ok(ClientFinal {
            channel_binding,
            nonce: nonce.to_string(),
            proof,
            without_proof: without_proof.to_string(),
        })
    }
}

/// `v=signature` or `e=error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerFinal {
    Verifier(Vec<u8>),
    Error(String),
}

impl ServerFinal {
    pub(crate) fn parse(bytes: &[u8]) -> Result<ServerFinal, AuthError> {
        let err = || AuthError::protocol("Invalid SCRAM server final message format");
        let text = std::str::from_utf8(bytes).map_err(|_| err())?;
        let mut parts = text.split(',');
        let first = parts.next().ok_or_else(err)?;
        if let Some(e) = first.strip_prefix("e=") {
            return Ok(ServerFinal::Error(e.to_string()));
        }
        let v = base64(first.strip_prefix("v=").ok_or_else(err)?, &err)?;
        extensions(parts, &err)?;
        Ok(ServerFinal::Verifier(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_forms() {
        let m = ClientFirst::parse(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        assert_eq!(
            (m.username.as_str(), m.nonce.as_str(), m.gs2_header.as_str()),
            ("user", "fyko+d2lbbFgONRv9qkxdawL", "n,,")
        );
        assert_eq!(m.bare, "n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let m = ClientFirst::parse(b"n,a=a=2Cb,m=x,n=a=2Cb,r=abc,tokenauth=true").unwrap();
        assert_eq!((m.authzid.as_str(), m.username.as_str()), ("a,b", "a,b"));
        assert_eq!(
            m.extensions.get("tokenauth").map(String::as_str),
            Some("true")
        );
        for bad in [
            &b"y,,n=user,r=abc"[..],
            b"p=tls-unique,,n=user,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,,r=abc,n=user",
            b"n,,n=user,r=",
            b"n,,n=user,r=abc,1x=2",
            b"n,,n=user",
            b"\xff\xfe",
            b"",
        ] {
            assert!(ClientFirst::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn final_messages() {
        let m =
            ClientFinal::parse(b"c=biws,r=abcdef,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
                .unwrap();
        assert_eq!(m.channel_binding, b"n,,");
        assert_eq!(m.without_proof, "c=biws,r=abcdef");
        assert!(ClientFinal::parse(b"c=biws,r=abc").is_err());
        assert!(ClientFinal::parse(b"c=!!,r=abc,p=AAAA").is_err());
        assert!(ClientFinal::parse(b"c=biws,r=abc,p=").is_err());
        assert_eq!(
            ServerFinal::parse(b"e=invalid-proof").unwrap(),
            ServerFinal::Error("invalid-proof".into())
        );
        assert!(matches!(
            ServerFinal::parse(b"v=AAAA").unwrap(),
            ServerFinal::Verifier(_)
        ));
        let s = ServerFirst::parse(b"r=abc,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
        assert_eq!(s.iterations, 4096);
        assert_eq!(s.to_message(), "r=abc,s=QSXCR+Q6sek8bf92,i=4096");
        assert!(ServerFirst::parse(b"r=abc,s=QSXCR+Q6sek8bf92,i=0").is_err());
    }
}
