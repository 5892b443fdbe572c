//! Principals: `KafkaPrincipal`, certificate subject DNs in Kafka's RFC 2253 form, and
//! `ssl.principal.mapping.rules`.

pub(crate) mod dn;
pub(crate) mod kafka_principal;
pub(crate) mod mapper;
