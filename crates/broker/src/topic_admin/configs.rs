//! Altering topic and broker configs (IncrementalAlterConfigs, AlterConfigs): each alteration's
//! operations are checked key by key against the config tables (`strom_log::TOPIC_CONFIGS`, the
//! broker's `BROKER_CONFIGS`) and the resulting override set against `LogConfig`, then written
//! as `Config` records; the published image applies them to the local logs without a restart.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use strom_log::{topic_config, ConfigType};

use super::{TopicAdmin, TopicError};
use crate::config::{broker_config_kind, group_config};
use crate::metadata::{ConfigResourceType, MetadataImage, MetadataRecord};

/// One config change (Kafka's `AlterConfigOp.OpType`, plus AlterConfigs' whole-set replace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set the value.
    Set(String),
    /// Remove the override (back to the broker or default value).
    Delete,
    /// Add items to a list config.
    Append(String),
    /// Remove items from a list config.
    Subtract(String),
}

/// What to alter.
#[derive(Debug, Clone)]
pub struct ConfigAlteration {
    /// Topic or broker.
    pub resource_type: ConfigResourceType,
    /// Topic name, or broker id ("" = the cluster-wide broker default).
    pub resource_name: String,
    /// Changes, in request order.
    pub ops: Vec<(String, ConfigOp)>,
    /// AlterConfigs semantics: the given keys become the whole override set.
    pub replace: bool,
}

fn invalid_config(msg: impl Into<String>) -> TopicError {
    TopicError::new(ResponseError::InvalidConfig, msg)
}

/// Broker keys that may change at run time: the broker-level defaults of topic configs, and the
/// listeners' keystores and truststores (per broker only; re-read by `ListenerTls`).
/// Dynamic broker keys Kafka accepts that have no effect here (Kerberos: no GSSAPI), with their
/// types: recorded and described, so tools that set them (librdkafka's admin test does) work.
const DYNAMIC_WITHOUT_EFFECT: &[(&str, ConfigType)] = &[(
    "sasl.kerberos.min.time.before.relogin",
    ConfigType::Long { min: 0 },
)];

fn without_effect(name: &str) -> Option<ConfigType> {
    DYNAMIC_WITHOUT_EFFECT
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, kind)| *kind)
}

fn dynamically_updatable(name: &str) -> bool {
    strom_security::is_dynamic_tls_key(name)
        || without_effect(name).is_some()
        || strom_log::TOPIC_CONFIGS
            .iter()
            .any(|d| d.broker_synonym == Some(name))
}

fn list_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Applies `ops` to `current`, checking each key's type; returns the new override set.
fn apply_ops(
    current: &BTreeMap<String, String>,
    alt: &ConfigAlteration,
    kind_of: &dyn Fn(&str) -> Option<(ConfigType, String)>,
) -> Result<BTreeMap<String, String>, TopicError> {
    let mut seen = Vec::new();
    for (k, _) in &alt.ops {
        if seen.contains(&k) {
            return Err(TopicError::new(
                ResponseError::InvalidRequest,
                format!("Error due to duplicate config keys: {k}"),
            ));
        }
        seen.push(k);
    }
    let mut next = if alt.replace {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for (k, op) in &alt.ops {
        let Some((kind, default)) = kind_of(k) else {
            return Err(invalid_config(format!("Unknown config name: {k}")));
        };
        match op {
            ConfigOp::Delete => {
                next.remove(k);
            }
            ConfigOp::Set(v) => {
                kind.validate(v).map_err(|reason| {
                    invalid_config(format!("Invalid value {v} for configuration {k}: {reason}"))
                })?;
                next.insert(k.clone(), v.trim().to_string());
            }
            ConfigOp::Append(v) | ConfigOp::Subtract(v) => {
                if !matches!(kind, ConfigType::List(_)) {
                    return Err(invalid_config(format!(
                        "Config value append/subtract is not allowed for config {k}: it is not a list"
                    )));
                }
                let base = next.get(k).cloned().unwrap_or(default);
                let mut items = list_items(&base);
                for item in list_items(v) {
                    match op {
                        ConfigOp::Append(_) if !items.contains(&item) => items.push(item),
                        ConfigOp::Subtract(_) => items.retain(|x| *x != item),
                        _ => {}
                    }
                }
                let joined = items.join(",");
                kind.validate(&joined).map_err(|reason| {
                    invalid_config(format!(
                        "Invalid value {joined} for configuration {k}: {reason}"
                    ))
                })?;
                next.insert(k.clone(), joined);
            }
        }
    }
    Ok(next)
}

/// The `Config` records turning `from` into `to`.
fn diff_records(
    resource_type: ConfigResourceType,
    name: &str,
    from: &BTreeMap<String, String>,
    to: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for (k, v) in to {
        if from.get(k) != Some(v) {
            out.push(MetadataRecord::Config {
                resource_type,
                resource_name: name.to_string(),
                name: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
    for k in from.keys().filter(|k| !to.contains_key(*k)) {
        out.push(MetadataRecord::Config {
            resource_type,
            resource_name: name.to_string(),
            name: k.clone(),
            value: None,
        });
    }
    out
}

impl TopicAdmin {
    /// Checks one alteration against `image`; returns its records.
    fn plan_alteration(
        &self,
        image: &MetadataImage,
        alt: &ConfigAlteration,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        match alt.resource_type {
            ConfigResourceType::Group => self.plan_group_alteration(image, alt),
            ConfigResourceType::Topic => {
                let Some(topic) = image.topic(&alt.resource_name) else {
                    return Err(TopicError::new(
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic {} does not exist", alt.resource_name),
                    ));
                };
                if super::is_internal_topic(&alt.resource_name) {
                    return Err(super::internal_topic_error(
                        ResponseError::TopicAuthorizationFailed,
                        &alt.resource_name,
                        "alter the configs of",
                    ));
                }
                let kind_of = |k: &str| topic_config(k).map(|d| (d.kind, d.default.to_string()));
                let next = apply_ops(&topic.configs, alt, &kind_of)?;
                self.replicas
                    .log_config(&next)
                    .map_err(|e| invalid_config(e.to_string()))?;
                Ok(diff_records(
                    ConfigResourceType::Topic,
                    &alt.resource_name,
                    &topic.configs,
                    &next,
                ))
            }
            ConfigResourceType::Broker => {
                let name = alt.resource_name.as_str();
                if !name.is_empty() && name != self.node_id.to_string() {
                    return Err(TopicError::new(
                        ResponseError::InvalidRequest,
                        format!("Unknown broker id {name}"),
                    ));
                }
                if let Some((k, _)) = alt
                    .ops
                    .iter()
                    .find(|(k, _)| broker_config_kind(k).is_some() && !dynamically_updatable(k))
                {
                    return Err(TopicError::new(
                        ResponseError::InvalidRequest,
                        format!("Cannot update these configs dynamically: [{k}]"),
                    ));
                }
                if name.is_empty() {
                    if let Some((k, _)) = alt
                        .ops
                        .iter()
                        .find(|(k, _)| strom_security::is_dynamic_tls_key(k))
                    {
                        return Err(TopicError::new(
                            ResponseError::InvalidRequest,
                            format!("Cannot update these configs at default cluster level, broker id must be specified: [{k}]"),
                        ));
                    }
                }
                let current = image.broker_configs.get(name).cloned().unwrap_or_default();
                let kind_of = |k: &str| {
                    if strom_security::is_dynamic_tls_key(k) {
                        return Some((ConfigType::String, String::new()));
                    }
                    if let Some(kind) = without_effect(k) {
                        return Some((kind, String::new()));
                    }
                    broker_config_kind(k).map(|kind| {
                        let default = strom_log::TOPIC_CONFIGS
                            .iter()
                            .find(|d| d.broker_synonym == Some(k))
                            .map_or(String::new(), |d| d.default.to_string());
                        (kind, default)
                    })
                };
                let next = apply_ops(&current, alt, &kind_of)?;
                let mut merged = self.replicas.effective_broker_overrides(image);
                merged.extend(next.iter().map(|(k, v)| (k.clone(), v.clone())));
                strom_log::LogConfig::build(&merged, &BTreeMap::new())
                    .map_err(|e| invalid_config(e.to_string()))?;
                Ok(diff_records(
                    ConfigResourceType::Broker,
                    name,
                    &current,
                    &next,
                ))
            }
        }
    }

    /// A group's alteration (KIP-848/KIP-932 group configs): each key checked against its
    /// bounds in this broker's config; the group need not exist (Kafka's rule).
    fn plan_group_alteration(
        &self,
        image: &MetadataImage,
        alt: &ConfigAlteration,
    ) -> Result<Vec<MetadataRecord>, TopicError> {
        let name = alt.resource_name.as_str();
        if name.is_empty() {
            return Err(TopicError::new(
                ResponseError::InvalidRequest,
                "Group id must not be empty",
            ));
        }
        let current = image.group_configs.get(name).cloned().unwrap_or_default();
        let kind_of = |k: &str| group_config(k).map(|d| (d.kind, String::new()));
        let next = apply_ops(&current, alt, &kind_of)?;
        for (k, v) in &next {
            if current.get(k) == Some(v) {
                continue;
            }
            if let Some(def) = group_config(k) {
                def.validate(v, &self.group_bounds).map_err(|reason| {
                    invalid_config(format!("Invalid value {v} for configuration {k}: {reason}"))
                })?;
            }
        }
        Ok(diff_records(
            ConfigResourceType::Group,
            name,
            &current,
            &next,
        ))
    }

    /// Alters configs (or only validates them); one result per alteration, in order. Applied
    /// to the local logs before returning.
    pub async fn alter_configs(
        &self,
        alterations: Vec<ConfigAlteration>,
        validate_only: bool,
    ) -> Vec<Result<(), TopicError>> {
        self.propose_each(alterations.len(), |image: &MetadataImage| {
            let mut records = Vec::new();
            let mut results = Vec::new();
            let mut scratch = image.clone();
            for alt in &alterations {
                match self.plan_alteration(&scratch, alt) {
                    Ok(recs) => {
                        for r in &recs {
                            scratch.apply(r);
                        }
                        if !validate_only {
                            records.extend(recs);
                        }
                        results.push(Ok(()));
                    }
                    Err(e) => results.push(Err(e)),
                }
            }
            (records, results)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alt(ops: Vec<(&str, ConfigOp)>) -> ConfigAlteration {
        ConfigAlteration {
            resource_type: ConfigResourceType::Topic,
            resource_name: "t".into(),
            ops: ops.into_iter().map(|(k, o)| (k.to_string(), o)).collect(),
            replace: false,
        }
    }

    fn topic_kind(k: &str) -> Option<(ConfigType, String)> {
        topic_config(k).map(|d| (d.kind, d.default.to_string()))
    }

    #[test]
    fn set_delete_append_and_errors_name_the_key() {
        let cur = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let next = apply_ops(
            &cur,
            &alt(vec![
                ("retention.ms", ConfigOp::Delete),
                ("cleanup.policy", ConfigOp::Append("compact".into())),
            ]),
            &topic_kind,
        )
        .expect("valid");
        assert_eq!(
            next.get("cleanup.policy").map(String::as_str),
            Some("delete,compact")
        );
        assert!(!next.contains_key("retention.ms"));
        let e = apply_ops(
            &cur,
            &alt(vec![("segment.bytes", ConfigOp::Set("x".into()))]),
            &topic_kind,
        )
        .expect_err("invalid");
        assert_eq!(e.code, ResponseError::InvalidConfig.code());
        assert!(e.message.contains("segment.bytes"), "{}", e.message);
        let e = apply_ops(
            &cur,
            &alt(vec![("retention.ms", ConfigOp::Append("1".into()))]),
            &topic_kind,
        )
        .expect_err("not a list");
        assert!(e.message.contains("retention.ms"));
        let e = apply_ops(
            &cur,
            &alt(vec![
                ("retention.ms", ConfigOp::Delete),
                ("retention.ms", ConfigOp::Delete),
            ]),
            &topic_kind,
        )
        .expect_err("duplicate");
        assert_eq!(e.code, ResponseError::InvalidRequest.code());
    }

    #[test]
    fn diff_emits_sets_and_removals() {
        let from = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]);
        let to = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("c".to_string(), "3".to_string()),
        ]);
        let recs = diff_records(ConfigResourceType::Topic, "t", &from, &to);
        assert_eq!(recs.len(), 2);
    }
}
