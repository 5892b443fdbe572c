//! `strom quotas describe|alter`: client quotas (KIP-546's DescribeClientQuotas and
//! AlterClientQuotas), what Kafka does with `kafka-configs --entity-type users|clients|ips`.
//!
//! The entity flags are kafka-configs' shortcuts (`--user`, `--user-defaults`, `--client-id`,
//! `--client-defaults`, plus `--ip` and `--ip-defaults`); `--user` with `--client-id` is the
//! combined entity. As kafka-configs does, describing named entities matches only entities made
//! of exactly those parts (`containsOnly`), and deleting a key the entity does not have is
//! refused before anything is sent. Without entity flags, `describe` shows every quota.

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::{bail, Context};
use strom_client::{
    entity_text, Client, ClientQuotaAlteration, ClientQuotaEntity, ClientQuotaFilterComponent,
    ClientQuotaMatch, QUOTA_ENTITY_CLIENT_ID, QUOTA_ENTITY_IP, QUOTA_ENTITY_USER,
};

use super::ConnectArgs;

/// Flags of `strom quotas` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct QuotasArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: QuotasCommand,
}

#[derive(Debug, clap::Subcommand)]
enum QuotasCommand {
    /// Show quotas: of the entity the flags name, or every quota.
    #[command(
        long_about = "Show quotas: of the entity the flags name (only entities of \
        exactly those parts), or, without entity flags, every quota of the cluster.\n\n\
        Kafka equivalent: kafka-configs --bootstrap-server HOST:PORT --describe \
        --entity-type users --entity-name NAME"
    )]
    Describe {
        #[command(flatten)]
        entity: EntityFlags,
    },
    /// Set (`--add-config`) or remove (`--delete-config`) quotas of one entity.
    #[command(
        long_about = "Set (--add-config) or remove (--delete-config) quotas of one \
        entity. Keys: producer_byte_rate, consumer_byte_rate, request_percentage, \
        controller_mutation_rate; connection_creation_rate for --ip.\n\n\
        Kafka equivalent: kafka-configs --bootstrap-server HOST:PORT --alter \
        --add-config 'producer_byte_rate=1048576' --entity-type users --entity-name NAME"
    )]
    Alter {
        #[command(flatten)]
        entity: EntityFlags,
        /// `key=value,key=value` to set; repeatable.
        #[arg(long = "add-config", value_name = "KEY=VALUE,...")]
        add_config: Vec<String>,
        /// `key,key` to remove; repeatable.
        #[arg(long = "delete-config", value_name = "KEY,...")]
        delete_config: Vec<String>,
    },
}

/// Which entity (kafka-configs' entity shortcuts).
#[derive(Debug, Clone, Default, clap::Args)]
struct EntityFlags {
    /// A user principal name (`alice`, not `User:alice`).
    #[arg(long, value_name = "USER", conflicts_with = "user_defaults")]
    user: Option<String>,
    /// The default user entity (every user without a quota of its own).
    #[arg(long)]
    user_defaults: bool,
    /// A client id.
    #[arg(long, value_name = "CLIENT_ID", conflicts_with = "client_defaults")]
    client_id: Option<String>,
    /// The default client-id entity.
    #[arg(long)]
    client_defaults: bool,
    /// A client IP address (connection_creation_rate only; not combined with users or clients).
    #[arg(long, value_name = "IP", conflicts_with_all = ["ip_defaults", "user", "user_defaults", "client_id", "client_defaults"])]
    ip: Option<String>,
    /// The default IP entity.
    #[arg(long, conflicts_with_all = ["user", "user_defaults", "client_id", "client_defaults"])]
    ip_defaults: bool,
}

impl EntityFlags {
    /// The `(type, name)` parts named; `None` names are defaults.
    fn parts(&self) -> Vec<(&'static str, Option<String>)> {
        let mut out = Vec::new();
        let mut part = |ty, name: &Option<String>, default: bool| {
            if let Some(n) = name {
                out.push((ty, Some(n.clone())));
            } else if default {
                out.push((ty, None));
            }
        };
        part(QUOTA_ENTITY_USER, &self.user, self.user_defaults);
        part(
            QUOTA_ENTITY_CLIENT_ID,
            &self.client_id,
            self.client_defaults,
        );
        part(QUOTA_ENTITY_IP, &self.ip, self.ip_defaults);
        out
    }

    fn entity(&self) -> anyhow::Result<ClientQuotaEntity> {
        let parts = self.parts();
        if parts.is_empty() {
            bail!(
                "name an entity: --user U or --user-defaults, --client-id C or \
                 --client-defaults (alone or with a user), or --ip IP or --ip-defaults"
            );
        }
        Ok(ClientQuotaEntity::new(parts))
    }

    /// The DescribeClientQuotas filter: exactly these parts (strict), or everything.
    fn filter(&self) -> (Vec<ClientQuotaFilterComponent>, bool) {
        let components: Vec<ClientQuotaFilterComponent> = self
            .parts()
            .into_iter()
            .map(|(ty, name)| ClientQuotaFilterComponent {
                entity_type: ty.to_owned(),
                matches: name.map_or(ClientQuotaMatch::Default, ClientQuotaMatch::Exact),
            })
            .collect();
        let strict = !components.is_empty();
        (components, strict)
    }
}

/// Parses `--add-config` and `--delete-config` into `(key, Some(value))` and `(key, None)`.
fn quota_ops(add: &[String], delete: &[String]) -> anyhow::Result<Vec<(String, Option<f64>)>> {
    let mut ops: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for pair in add.iter().flat_map(|a| a.split(',')) {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--add-config {pair:?}: expected KEY=VALUE");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("--add-config {pair:?}: empty key");
        }
        let value: f64 = value.trim().parse().map_err(|_| {
            anyhow::anyhow!("Cannot parse quota configuration value for {key}: {value}")
        })?;
        if ops.insert(key.to_owned(), Some(value)).is_some() {
            bail!("--add-config names {key} twice");
        }
    }
    for key in delete.iter().flat_map(|d| d.split(',')).map(str::trim) {
        if key.is_empty() {
            bail!("--delete-config: empty key");
        }
        if ops.insert(key.to_owned(), None).is_some() {
            bail!("{key} is both added and deleted");
        }
    }
    if ops.is_empty() {
        bail!("nothing to alter: give --add-config KEY=VALUE,... and/or --delete-config KEY,...");
    }
    Ok(ops.into_iter().collect())
}

/// kafka-configs' line for one entity: `Quota configs for user-principal 'alice' are k=v, k=v`.
fn describe_line(entity: &ClientQuotaEntity, values: &BTreeMap<String, f64>) -> String {
    let values: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "Quota configs for {} are {}",
        entity_text(entity),
        values.join(", ")
    )
}

pub(crate) fn run(args: QuotasArgs) -> anyhow::Result<()> {
    let QuotasArgs { connect, command } = args;
    // Flag mistakes are reported before connecting.
    let (entity, alteration) = match command {
        QuotasCommand::Describe { entity } => (entity, None),
        QuotasCommand::Alter {
            entity,
            add_config,
            delete_config,
        } => {
            let alteration = ClientQuotaAlteration {
                entity: entity.entity()?,
                ops: quota_ops(&add_config, &delete_config)?,
            };
            (entity, Some(alteration))
        }
    };
    super::runtime()?.block_on(async move {
        let client = connect.connect().await?;
        match alteration {
            Some(alteration) => alter(&client, &entity, alteration).await,
            None => describe(&client, &entity).await,
        }
    })
}

async fn describe(client: &Client, entity: &EntityFlags) -> anyhow::Result<()> {
    let (components, strict) = entity.filter();
    let quotas = client.describe_client_quotas(&components, strict).await?;
    let mut out = std::io::stdout().lock();
    if quotas.is_empty() && strict {
        let named = entity.entity()?;
        let _ = writeln!(out, "No quota configs for {}", entity_text(&named));
    }
    for (e, values) in &quotas {
        // A closed pipe (`| head`) ends the listing quietly.
        if writeln!(out, "{}", describe_line(e, values)).is_err() {
            break;
        }
    }
    Ok(())
}

async fn alter(
    client: &Client,
    entity: &EntityFlags,
    alteration: ClientQuotaAlteration,
) -> anyhow::Result<()> {
    let deleted: Vec<&str> = alteration
        .ops
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if !deleted.is_empty() {
        // kafka-configs refuses to delete what is not set, rather than succeed at nothing.
        let (components, strict) = entity.filter();
        let current = client.describe_client_quotas(&components, strict).await?;
        let set = current.get(&alteration.entity);
        let invalid: Vec<&str> = deleted
            .into_iter()
            .filter(|k| !set.is_some_and(|values| values.contains_key(*k)))
            .collect();
        if !invalid.is_empty() {
            bail!(
                "Invalid config(s): {} (not set for {})",
                invalid.join(","),
                entity_text(&alteration.entity)
            );
        }
    }
    let name = entity_text(&alteration.entity);
    let mut results = client
        .alter_client_quotas(std::slice::from_ref(&alteration), false)
        .await?;
    results
        .remove(&alteration.entity)
        .with_context(|| format!("the broker did not answer for {name}"))??;
    println!("Completed updating quotas of {name}.");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: QuotasArgs,
    }

    fn entity_flags(words: &str) -> anyhow::Result<EntityFlags> {
        let argv = ["quotas", "describe"]
            .into_iter()
            .chain(words.split_whitespace());
        match Cli::try_parse_from(argv)?.args.command {
            QuotasCommand::Describe { entity } => Ok(entity),
            QuotasCommand::Alter { .. } => unreachable!(),
        }
    }

    #[test]
    fn entity_flags_name_kafka_entities() {
        let e = entity_flags("--user alice").unwrap();
        assert_eq!(
            e.entity().unwrap(),
            ClientQuotaEntity::new([(QUOTA_ENTITY_USER, Some("alice".to_owned()))])
        );
        let (components, strict) = e.filter();
        assert!(strict);
        assert_eq!(
            components,
            vec![ClientQuotaFilterComponent {
                entity_type: "user".into(),
                matches: ClientQuotaMatch::Exact("alice".into())
            }]
        );

        let e = entity_flags("--user-defaults --client-id app").unwrap();
        assert_eq!(
            e.entity().unwrap(),
            ClientQuotaEntity::new([
                (QUOTA_ENTITY_USER, None),
                (QUOTA_ENTITY_CLIENT_ID, Some("app".to_owned()))
            ])
        );
        assert_eq!(e.filter().0[0].matches, ClientQuotaMatch::Default);

        // No flags: every quota, not strict; and no entity to alter.
        let e = entity_flags("").unwrap();
        assert_eq!(e.filter(), (vec![], false));
        assert!(e.entity().is_err());

        assert!(entity_flags("--user a --user-defaults").is_err());
        assert!(entity_flags("--ip 10.0.0.1 --user a").is_err());
        assert!(entity_flags("--ip-defaults --client-id c").is_err());
        assert!(entity_flags("--ip 10.0.0.1").is_ok());
    }

    #[test]
    fn add_and_delete_config_parse() {
        let ops = quota_ops(
            &["producer_byte_rate=1048576,consumer_byte_rate=2e6".into()],
            &["request_percentage".into()],
        )
        .unwrap();
        assert_eq!(
            ops,
            vec![
                ("consumer_byte_rate".to_owned(), Some(2e6)),
                ("producer_byte_rate".to_owned(), Some(1048576.0)),
                ("request_percentage".to_owned(), None),
            ]
        );
        let err = |a: &[&str], d: &[&str]| {
            let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
            let d: Vec<String> = d.iter().map(|s| s.to_string()).collect();
            quota_ops(&a, &d).unwrap_err().to_string()
        };
        assert!(err(&["producer_byte_rate=fast"], &[]).contains("Cannot parse quota"));
        assert!(err(&["producer_byte_rate"], &[]).contains("expected KEY=VALUE"));
        assert!(err(&["a=1"], &["a"]).contains("both added and deleted"));
        assert!(err(&[], &[]).contains("nothing to alter"));
    }

    #[test]
    fn describe_lines_read_like_kafka_configs() {
        let e = ClientQuotaEntity::new([(QUOTA_ENTITY_USER, Some("alice".to_owned()))]);
        let values = BTreeMap::from([
            ("producer_byte_rate".to_owned(), 1048576.0),
            ("request_percentage".to_owned(), 12.5),
        ]);
        assert_eq!(
            describe_line(&e, &values),
            "Quota configs for user-principal 'alice' are producer_byte_rate=1048576, \
             request_percentage=12.5"
        );
    }
}
