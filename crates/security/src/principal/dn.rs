//! A certificate's subject DN as Kafka prints it: Java's `X500Principal.getName()` (RFC 2253),
//! e.g. `CN=alice,OU=eng,O=Example,C=US` — RDNs in reverse encoding order, Java's RFC 2253
//! keywords (CN C L ST O OU STREET DC UID) and dotted OIDs for the rest (so `emailAddress` is
//! `1.2.840.113549.1.9.1=#16...`), `#`-hex of the DER value for OID-named attributes and for
//! non-string values, and Java's escaping (`, = + < > # ; " \` always, leading/trailing blanks,
//! NUL as `\00`). Mapping rules are written against this exact text, so it must match Java's.
//!
//! Multi-valued RDNs are joined with `+` after sorting by attribute name; Java sorts them with
//! its own comparator, which can order such (rare) RDNs differently.

use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::name::Name;
use x509_cert::Certificate;

/// The certificate could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the peer certificate's subject: {0}")]
pub struct DnError(String);

/// The subject DN of a DER certificate, in Java's RFC 2253 form.
pub fn subject_dn_rfc2253(cert_der: &[u8]) -> Result<String, DnError> {
    let cert = Certificate::from_der(cert_der).map_err(|e| DnError(e.to_string()))?;
    Ok(name_rfc2253(&cert.tbs_certificate.subject))
}

/// A `Name` in Java's RFC 2253 form.
pub(crate) fn name_rfc2253(name: &Name) -> String {
    let mut rdns = Vec::with_capacity(name.0.len());
    for rdn in name.0.iter().rev() {
        let mut avas: Vec<String> = rdn
            .0
            .iter()
            .map(|ava| {
                let oid = ava.oid.to_string();
                let keyword = keyword(&oid);
                let value = match keyword {
                    Some(_) => string_value(ava.value.tag(), ava.value.value()),
                    None => None,
                };
                match (keyword, value) {
                    (Some(k), Some(v)) => format!("{k}={}", escape(&v)),
                    (k, _) => {
                        let der = ava.value.to_der().unwrap_or_default();
                        let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
                        format!("{}=#{hex}", k.unwrap_or(&oid))
                    }
                }
            })
            .collect();
        avas.sort();
        rdns.push(avas.join("+"));
    }
    rdns.join(",")
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// Decodes the string types Java's `isDerString(value, false)` accepts.
fn string_value(tag: Tag, bytes: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String => std::str::from_utf8(bytes).ok().map(str::to_string),
        // PrintableString, IA5String, GeneralString: ASCII; T61String: Java reads it as Latin-1.
        Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            Some(bytes.iter().map(|&b| b as char).collect())
        }
        Tag::BmpString => {
            let chunks = bytes.chunks_exact(2);
            if !chunks.remainder().is_empty() {
                return None;
            }
            let units: Vec<u16> = chunks.map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ if u8::from(tag) == 0x1b => Some(bytes.iter().map(|&b| b as char).collect()),
        _ => None,
    }
}

/// Java's `AVA.toRFC2253String` escaping.
fn escape(value: &str) -> String {
    const ESCAPEES: &str = ",=+<>#;\"\\";
    let mut chars: Vec<String> = Vec::with_capacity(value.len());
    for c in value.chars() {
        if ESCAPEES.contains(c) {
            chars.push(format!("\\{c}"));
        } else if c == '\0' {
            chars.push("\\00".to_string());
        } else {
            chars.push(c.to_string());
        }
    }
    let blank = |s: &String| s == " " || s == "\r";
    let lead = chars.iter().take_while(|c| blank(c)).count();
    let trail = chars.iter().rev().take_while(|c| blank(c)).count();
    let n = chars.len();
    let mut out = String::with_capacity(value.len() + 4);
    for (i, c) in chars.iter().enumerate() {
        if i < lead || i >= n.saturating_sub(trail) {
            out.push('\\');
        }
        out.push_str(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_java() {
        assert_eq!(escape("Tkac, Adam"), "Tkac\\, Adam");
        assert_eq!(
            escape("a=b+c<d>e#f;g\"h\\i"),
            "a\\=b\\+c\\<d\\>e\\#f\\;g\\\"h\\\\i"
        );
        assert_eq!(escape(" lead and trail "), "\\ lead and trail\\ ");
        assert_eq!(escape("nul\0"), "nul\\00");
        assert_eq!(escape("    "), "\\ \\ \\ \\ ");
        assert_eq!(escape("ünï"), "ünï");
    }

    #[test]
    fn string_types() {
        assert_eq!(
            string_value(Tag::PrintableString, b"US").as_deref(),
            Some("US")
        );
        assert_eq!(
            string_value(Tag::BmpString, &[0, b'h', 0, b'i']).as_deref(),
            Some("hi")
        );
        assert_eq!(
            string_value(Tag::Utf8String, "é".as_bytes()).as_deref(),
            Some("é")
        );
        assert_eq!(string_value(Tag::Integer, &[1]), None);
    }
}
