//! `strom users create|list|delete`: SCRAM credentials (KIP-554's AlterUserScramCredentials and
//! DescribeUserScramCredentials), what Kafka does with `kafka-configs --entity-type users`.
//! The password is salted and hashed here; only the salted hash is sent.

use anyhow::{bail, Context};
use strom_client::{Password, ScramMechanism, UserScramCredentialAlteration};

use super::ConnectArgs;

/// Flags of `strom users` (a contract: scripts drive the binary by them).
#[derive(Debug, clap::Args)]
pub(crate) struct UsersArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UsersCommand {
    /// Create a SCRAM user or replace its password.
    #[command(
        long_about = "Create a SCRAM user or replace its password (an upsert).\n\n\
        Kafka equivalent: kafka-configs --bootstrap-server HOST:PORT --alter \
        --add-config 'SCRAM-SHA-256=[iterations=4096,password=P]' --entity-type users --entity-name NAME"
    )]
    Create {
        /// User name.
        name: String,
        /// The password (salted and hashed locally; only the hash is sent).
        #[arg(long, value_parser = |p: &str| Ok::<_, std::convert::Infallible>(Password::new(p)))]
        password: Password,
        /// Mechanism to store a credential for; repeatable. Default: both, so the user can log in
        /// with whichever the listener enables.
        #[arg(long = "mechanism", value_enum, value_name = "MECHANISM")]
        mechanisms: Vec<MechanismArg>,
        /// PBKDF2 iterations (Kafka's range).
        #[arg(long, default_value_t = ScramMechanism::MIN_ITERATIONS,
              value_parser = clap::value_parser!(u32).range(i64::from(ScramMechanism::MIN_ITERATIONS)..=i64::from(ScramMechanism::MAX_ITERATIONS)))]
        iterations: u32,
    },
    /// List SCRAM users and their mechanisms (never the secrets).
    #[command(
        long_about = "List SCRAM users and their mechanisms and iterations (never the secrets).\n\n\
        Kafka equivalent: kafka-configs --bootstrap-server HOST:PORT --describe --entity-type users"
    )]
    List {
        /// Users to show (default: every user with a SCRAM credential).
        names: Vec<String>,
    },
    /// Delete a SCRAM user's credentials.
    #[command(long_about = "Delete a SCRAM user's credentials.\n\n\
        Kafka equivalent: kafka-configs --bootstrap-server HOST:PORT --alter \
        --delete-config 'SCRAM-SHA-256' --entity-type users --entity-name NAME")]
    Delete {
        /// User name.
        name: String,
        /// Mechanism to delete; repeatable. Default: every mechanism the user has.
        #[arg(long = "mechanism", value_enum, value_name = "MECHANISM")]
        mechanisms: Vec<MechanismArg>,
    },
}

/// `--mechanism SCRAM-SHA-256|SCRAM-SHA-512`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MechanismArg {
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl From<MechanismArg> for ScramMechanism {
    fn from(m: MechanismArg) -> Self {
        match m {
            MechanismArg::ScramSha256 => ScramMechanism::Sha256,
            MechanismArg::ScramSha512 => ScramMechanism::Sha512,
        }
    }
}

pub(crate) fn run(args: UsersArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        let client = args.connect.connect().await?;
        match args.command {
            UsersCommand::Create {
                name,
                password,
                mechanisms,
                iterations,
            } => {
                let alterations = chosen(&mechanisms)
                    .into_iter()
                    .map(|mechanism| UserScramCredentialAlteration::Upsertion {
                        user: name.clone(),
                        mechanism,
                        iterations,
                        password: password.clone(),
                        salt: None,
                    })
                    .collect::<Vec<_>>();
                alter(&client, &name, &alterations).await?;
                println!(
                    "Set {} credentials of user {name} ({iterations} iterations).",
                    names(&alterations)
                );
            }
            UsersCommand::List { names } => {
                let filter: Vec<&str> = names.iter().map(String::as_str).collect();
                let users = client
                    .describe_user_scram_credentials((!filter.is_empty()).then_some(&filter[..]))
                    .await?;
                let mut rows = vec![["USER", "MECHANISM", "ITERATIONS"]
                    .map(String::from)
                    .to_vec()];
                for (user, result) in users {
                    for c in result? {
                        rows.push(vec![
                            user.clone(),
                            c.mechanism.name().to_owned(),
                            c.iterations.to_string(),
                        ]);
                    }
                }
                print!("{}", super::topics::render_table(&rows));
            }
            UsersCommand::Delete { name, mechanisms } => {
                let mechanisms = if mechanisms.is_empty() {
                    existing(&client, &name).await?
                } else {
                    mechanisms.into_iter().map(ScramMechanism::from).collect()
                };
                let alterations = mechanisms
                    .into_iter()
                    .map(|mechanism| UserScramCredentialAlteration::Deletion {
                        user: name.clone(),
                        mechanism,
                    })
                    .collect::<Vec<_>>();
                alter(&client, &name, &alterations).await?;
                println!(
                    "Deleted {} credentials of user {name}.",
                    names(&alterations)
                );
            }
        }
        Ok(())
    })
}

/// The mechanisms asked for, both by default.
fn chosen(mechanisms: &[MechanismArg]) -> Vec<ScramMechanism> {
    if mechanisms.is_empty() {
        vec![ScramMechanism::Sha256, ScramMechanism::Sha512]
    } else {
        mechanisms
            .iter()
            .copied()
            .map(ScramMechanism::from)
            .collect()
    }
}

/// The mechanisms `user` has a credential for.
async fn existing(
    client: &strom_client::Client,
    user: &str,
) -> anyhow::Result<Vec<ScramMechanism>> {
    let mut described = client
        .describe_user_scram_credentials(Some(&[user]))
        .await?;
    let infos = described
        .remove(user)
        .with_context(|| format!("the broker did not describe user {user}"))??;
    if infos.is_empty() {
        bail!("user {user} has no SCRAM credentials");
    }
    Ok(infos.into_iter().map(|c| c.mechanism).collect())
}

async fn alter(
    client: &strom_client::Client,
    user: &str,
    alterations: &[UserScramCredentialAlteration],
) -> anyhow::Result<()> {
    let mut results = client.alter_user_scram_credentials(alterations).await?;
    results
        .remove(user)
        .with_context(|| format!("the broker did not answer for user {user}"))?
        .map_err(Into::into)
}

fn names(alterations: &[UserScramCredentialAlteration]) -> String {
    alterations
        .iter()
        .map(|a| match a {
            UserScramCredentialAlteration::Upsertion { mechanism, .. }
            | UserScramCredentialAlteration::Deletion { mechanism, .. } => mechanism.name(),
        })
        .collect::<Vec<_>>()
        .join(" and ")
}
