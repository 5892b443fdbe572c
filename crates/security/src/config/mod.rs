//! Configuration as Kafka spells it: raw properties, the listener model, JAAS entries.

pub(crate) mod jaas;
pub(crate) mod listener;
pub(crate) mod listener_props;
pub(crate) mod properties;
