//! How a record's key or value is shown: the bytes as text (when they are UTF-8), as pretty JSON
//! (when they are a JSON object or array) and as hex, with the format a viewer would pick first.
//!
//! The page only switches between the forms the server computed, so a binary value never reaches
//! the browser as anything but hex. Large payloads are cut at [`SHOWN_BYTES`] (and say so): the
//! Messages view is for looking, not for exporting.

use serde::Serialize;

/// At most this many bytes of a key or value are rendered.
pub(crate) const SHOWN_BYTES: usize = 16 * 1024;

/// Which form suits a payload best.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// A JSON object or array.
    Json,
    /// UTF-8 text.
    Text,
    /// Anything else.
    Binary,
}

/// One key or value, rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Payload {
    /// The full length in bytes.
    pub(crate) size: usize,
    /// The best form to show first.
    pub(crate) format: Format,
    /// The bytes as text, when they are valid UTF-8 (of the shown part).
    pub(crate) text: Option<String>,
    /// Indented JSON, when the bytes are a JSON object or array.
    pub(crate) json: Option<String>,
    /// Lower-case hex, one space between bytes.
    pub(crate) hex: String,
    /// Whether only the first [`SHOWN_BYTES`] are rendered.
    pub(crate) truncated: bool,
}

/// Renders `bytes` (a record's key or value).
pub(crate) fn render(bytes: &[u8]) -> Payload {
    let truncated = bytes.len() > SHOWN_BYTES;
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
    let text = match std::str::from_utf8(shown) {
        Ok(s) => Some(s.to_owned()),
        // A cut through a multi-byte character is still text: keep the valid prefix.
        Err(e) if truncated && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&shown[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    };
    // JSON only for a whole payload: a truncated document does not parse, and scalars ("42",
    // "true") read better as text.
    let json = if truncated {
        None
    } else {
        serde_json::from_slice::<serde_json::Value>(shown)
            .ok()
            .filter(|v| v.is_object() || v.is_array())
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
    };
    let format = if json.is_some() {
        Format::Json
    } else if text.is_some() {
        Format::Text
    } else {
        Format::Binary
    };
    Payload {
        size: bytes.len(),
        format,
        text,
        json,
        hex: hex(shown),
        truncated,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_object_is_json_and_pretty() {
        let p = render(br#"{"id":7,"tags":["a"]}"#);
        assert_eq!(p.format, Format::Json);
        assert_eq!(
            p.json.as_deref(),
            Some("{\n  \"id\": 7,\n  \"tags\": [\n    \"a\"\n  ]\n}")
        );
        assert_eq!(p.text.as_deref(), Some(r#"{"id":7,"tags":["a"]}"#));
        assert!(!p.truncated);
    }

    #[test]
    fn scalars_and_plain_words_are_text() {
        for v in [&b"42"[..], b"true", b"hello world", b"\"quoted\""] {
            let p = render(v);
            assert_eq!(p.format, Format::Text, "{v:?}");
            assert_eq!(p.json, None);
        }
    }

    #[test]
    fn binary_is_hex_only() {
        let p = render(&[0x00, 0xff, 0x10, 0xc3]);
        assert_eq!(p.format, Format::Binary);
        assert_eq!(p.text, None);
        assert_eq!(p.hex, "00 ff 10 c3");
        assert_eq!(p.size, 4);
    }

    #[test]
    fn empty_is_empty_text() {
        let p = render(b"");
        assert_eq!(p.format, Format::Text);
        assert_eq!(p.text.as_deref(), Some(""));
        assert_eq!(p.hex, "");
    }

    #[test]
    fn large_payload_is_cut_without_splitting_a_character() {
        // 'é' is two bytes; SHOWN_BYTES - 1 ASCII bytes put its first byte at the cut.
        let mut v = vec![b'a'; SHOWN_BYTES - 1];
        v.extend_from_slice("é and more".as_bytes());
        let p = render(&v);
        assert!(p.truncated);
        assert_eq!(p.size, v.len());
        assert_eq!(p.format, Format::Text);
        assert_eq!(p.text.as_ref().map(String::len), Some(SHOWN_BYTES - 1));
        assert_eq!(p.hex.len(), SHOWN_BYTES * 3 - 1);
    }
}
