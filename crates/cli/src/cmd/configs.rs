//! `strom configs describe|alter`: topic and broker configs over the Kafka protocol
//! (DescribeConfigs, IncrementalAlterConfigs). Alterations are validated by the broker, persisted
//! in its metadata log and applied without a restart.

use std::io::Write as _;

use anyhow::bail;
use strom_client::{AlterConfigOp, ConfigResource, ConfigSource};

use super::ConnectArgs;

/// Flags of `strom configs` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: ConfigsCommand,
}

/// Which resource: exactly one of `--topic` / `--broker` / `--broker-defaults`.
#[derive(Debug, clap::Args)]
struct Target {
    /// A topic.
    #[arg(long, conflicts_with_all = ["broker", "broker_defaults"])]
    topic: Option<String>,
    /// A broker, by id.
    #[arg(long, conflicts_with = "broker_defaults")]
    broker: Option<i32>,
    /// The cluster-wide broker defaults.
    #[arg(long)]
    broker_defaults: bool,
}

impl Target {
    fn resource(&self) -> anyhow::Result<ConfigResource> {
        Ok(match (&self.topic, self.broker, self.broker_defaults) {
            (Some(t), None, false) => ConfigResource::Topic(t.clone()),
            (None, Some(b), false) => ConfigResource::Broker(Some(b)),
            (None, None, true) => ConfigResource::Broker(None),
            _ => bail!("name one of --topic T, --broker N or --broker-defaults"),
        })
    }
}

#[derive(Debug, clap::Subcommand)]
enum ConfigsCommand {
    /// Print every config with its value and source; overrides are marked.
    Describe {
        #[command(flatten)]
        target: Target,
        /// Only configs set on the resource (not defaults).
        #[arg(long)]
        overrides_only: bool,
    },
    /// Set (`--set k=v`) or remove (`--delete k`) config overrides.
    Alter {
        #[command(flatten)]
        target: Target,
        /// `key=value` to set; repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Key whose override to remove; repeatable.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

fn source_name(s: ConfigSource) -> String {
    match s {
        ConfigSource::DynamicTopic => "dynamic-topic".into(),
        ConfigSource::DynamicBroker => "dynamic-broker".into(),
        ConfigSource::DynamicDefaultBroker => "dynamic-default-broker".into(),
        ConfigSource::StaticBroker => "static-broker".into(),
        ConfigSource::Default => "default".into(),
        ConfigSource::Other(c) => format!("source-{c}"),
    }
}

/// Parses `--set` and `--delete` into operations.
fn ops(set: &[String], delete: &[String]) -> anyhow::Result<Vec<AlterConfigOp>> {
    let mut out = Vec::new();
    for pair in set {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--set {pair:?}: expected KEY=VALUE");
        };
        if k.trim().is_empty() {
            bail!("--set {pair:?}: empty key");
        }
        out.push(AlterConfigOp::Set(k.trim().to_owned(), v.to_owned()));
    }
    out.extend(delete.iter().map(|k| AlterConfigOp::Delete(k.clone())));
    if out.is_empty() {
        bail!("nothing to alter: give --set KEY=VALUE and/or --delete KEY");
    }
    Ok(out)
}

pub(crate) fn run(args: ConfigsArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            ConfigsCommand::Describe {
                target,
                overrides_only,
            } => {
                let resource = target.resource()?;
                let mut out = std::io::stdout().lock();
                for e in client.describe_configs(&resource).await? {
                    let set_here = matches!(
                        e.source,
                        ConfigSource::DynamicTopic
                            | ConfigSource::DynamicBroker
                            | ConfigSource::DynamicDefaultBroker
                            | ConfigSource::StaticBroker
                    );
                    if overrides_only && !set_here {
                        continue;
                    }
                    let value = if e.sensitive {
                        "<sensitive>".to_owned()
                    } else {
                        e.value.clone().unwrap_or_else(|| "null".into())
                    };
                    // A closed pipe (`| head`) ends the listing quietly.
                    if writeln!(out, "{}={}  ({})", e.name, value, source_name(e.source)).is_err() {
                        break;
                    }
                }
            }
            ConfigsCommand::Alter {
                target,
                set,
                delete,
            } => {
                let resource = target.resource()?;
                let ops = ops(&set, &delete)?;
                client.alter_configs(&resource, &ops).await?;
                println!("Altered {} config(s).", ops.len());
            }
        }
        Ok(())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn set_and_delete_parse() {
        let o = ops(&["retention.ms=5".into()], &["segment.bytes".into()]).unwrap();
        assert_eq!(
            o,
            vec![
                AlterConfigOp::Set("retention.ms".into(), "5".into()),
                AlterConfigOp::Delete("segment.bytes".into())
            ]
        );
        assert!(ops(&["x".into()], &[]).is_err());
        assert!(ops(&[], &[]).is_err());
    }
}
