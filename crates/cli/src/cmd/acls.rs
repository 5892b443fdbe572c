//! `strom acls add|list|remove`: ACLs over CreateAcls, DescribeAcls and DeleteAcls, with the
//! flags and semantics of Kafka's `kafka-acls.sh` (`kafka.admin.AclCommand`).
//!
//! The flags build a map from resource to entries, as AclCommand's `getResourceFilterToAcls`:
//! every resource (`--topic`, `--group`, `--cluster`, `--transactional-id`, with one
//! `--resource-pattern-type`) gets the cross product of principals × hosts (default `*`) ×
//! operations (default ALL), ALLOW for `--allow-principal` and DENY for `--deny-principal`;
//! `--producer` and `--consumer` replace `--operation` with the operations a producer or a
//! consumer needs. `add` creates those bindings, `remove` deletes them (a resource without
//! principals: all its ACLs), `list` shows the ACLs of the resources (none: all ACLs) grouped by
//! resource in kafka-acls' words, so scripts written against kafka-acls read the same lines.
//!
//! One deliberate difference: kafka-acls silently drops `--cluster` (and so `--idempotent`) when
//! the pattern type is not LITERAL. The cluster has one literal name, so here the cluster
//! resource stays LITERAL beside PREFIXED topics, and an ANY or MATCH filter is kept as is (both
//! select the cluster's literal ACLs).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, Write as _};

use anyhow::{bail, Context};
use strom_client::{
    parse_principal, AccessControlEntry, AclBinding, AclBindingFilter, AclOperation,
    AclPermissionType, Client, ClientError, ParseEnumError, PatternType, ResourcePattern,
    ResourceType, CLUSTER_RESOURCE_NAME, WILDCARD,
};

use super::ConnectArgs;

/// Flags of `strom acls` (a contract: kafka-acls' flag names, so its scripts carry over).
#[derive(Debug, clap::Args)]
pub(crate) struct AclsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: AclsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AclsCommand {
    /// Add ACLs: principals × hosts × operations on each resource.
    #[command(
        long_about = "Add ACLs: every principal × host (default *) × operation \
        (default All) on each resource; ALLOW for --allow-principal, DENY for --deny-principal.\n\n\
        Kafka equivalent: kafka-acls --bootstrap-server HOST:PORT --add ..."
    )]
    Add {
        #[command(flatten)]
        resources: ResourceFlags,
        #[command(flatten)]
        entries: EntryFlags,
    },
    /// List ACLs, grouped by resource (no resource: every ACL).
    #[command(
        long_about = "List ACLs, grouped by resource. Without a resource flag, every \
        ACL of the cluster.\n\n\
        Kafka equivalent: kafka-acls --bootstrap-server HOST:PORT --list ..."
    )]
    List {
        #[command(flatten)]
        resources: ResourceFlags,
        /// Only the ACLs of this principal (`User:alice`); repeatable.
        #[arg(long = "principal", value_name = "PRINCIPAL")]
        principals: Vec<String>,
    },
    /// Remove ACLs: the ones the flags name, or all of a resource's when no principal is given.
    #[command(
        long_about = "Remove the ACLs the flags name; with a resource and no principal, \
        every ACL of that resource. Asks for confirmation unless --force.\n\n\
        Kafka equivalent: kafka-acls --bootstrap-server HOST:PORT --remove ..."
    )]
    Remove {
        #[command(flatten)]
        resources: ResourceFlags,
        #[command(flatten)]
        entries: EntryFlags,
        /// Do not ask for confirmation.
        #[arg(long)]
        force: bool,
    },
}

/// The resources (kafka-acls' resource flags and `--resource-pattern-type`).
#[derive(Debug, Clone, clap::Args)]
struct ResourceFlags {
    /// A topic (`*`: every topic); repeatable.
    #[arg(long = "topic", value_name = "TOPIC")]
    topics: Vec<String>,
    /// A consumer group (`*`: every group); repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The cluster resource.
    #[arg(long)]
    cluster: bool,
    /// A transactional id (`*`: every one); repeatable.
    #[arg(long = "transactional-id", value_name = "ID")]
    transactional_ids: Vec<String>,
    /// literal or prefixed (add); any or match also filter (list, remove). Default: literal.
    #[arg(long, value_name = "TYPE", default_value = "literal", value_parser = parse_pattern_type)]
    resource_pattern_type: PatternType,
}

/// Who, from where, doing what (kafka-acls' principal, host and operation flags).
#[derive(Debug, Clone, Default, clap::Args)]
struct EntryFlags {
    /// A principal to allow (`User:alice`, `User:*`); repeatable.
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    allow_principals: Vec<String>,
    /// A principal to deny; repeatable.
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    deny_principals: Vec<String>,
    /// A host (IP) the allowed principals may connect from (default: `*`); repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,
    /// A host (IP) the denied principals are denied from (default: `*`); repeatable.
    #[arg(long = "deny-host", value_name = "HOST")]
    deny_hosts: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, All (the default); repeatable.
    #[arg(long = "operation", value_name = "OPERATION", value_parser = parse_operation)]
    operations: Vec<AclOperation>,
    /// The ACLs of a producer: Write, Describe, Create on the topics; Write, Describe on the
    /// transactional ids.
    #[arg(long, conflicts_with_all = ["operations", "deny_principals", "deny_hosts"])]
    producer: bool,
    /// The ACLs of a consumer: Read, Describe on the topics; Read on the groups.
    #[arg(long, conflicts_with_all = ["operations", "deny_principals", "deny_hosts"])]
    consumer: bool,
    /// With --producer: IdempotentWrite on the cluster too.
    #[arg(long, requires = "producer")]
    idempotent: bool,
}

fn parse_pattern_type(s: &str) -> Result<PatternType, ParseEnumError> {
    s.parse()
}

fn parse_operation(s: &str) -> Result<AclOperation, ParseEnumError> {
    s.parse()
}

/// Resources and the entries each gets, in a stable order.
type ResourceEntries = BTreeMap<ResourcePattern, BTreeSet<AccessControlEntry>>;

impl ResourceFlags {
    /// The resources named, each with the pattern type (kafka-acls' `getResourceFilter`).
    fn patterns(&self) -> Vec<ResourcePattern> {
        let pt = self.resource_pattern_type;
        let mut out = Vec::new();
        let named = |out: &mut Vec<ResourcePattern>, ty, names: &[String]| {
            out.extend(names.iter().map(|n| ResourcePattern::new(ty, n.trim(), pt)));
        };
        named(&mut out, ResourceType::Topic, &self.topics);
        named(&mut out, ResourceType::Group, &self.groups);
        named(
            &mut out,
            ResourceType::TransactionalId,
            &self.transactional_ids,
        );
        if self.cluster {
            out.push(cluster_pattern(pt));
        }
        out
    }

    fn require_some(&self) -> anyhow::Result<Vec<ResourcePattern>> {
        let patterns = self.patterns();
        if patterns.is_empty() {
            bail!(
                "You must provide at least one resource: --topic <topic> or --cluster or \
                 --group <group> or --transactional-id <id>"
            );
        }
        Ok(patterns)
    }
}

/// The cluster resource under pattern type `pt` (see the module header).
fn cluster_pattern(pt: PatternType) -> ResourcePattern {
    let pt = match pt {
        PatternType::Literal | PatternType::Prefixed => PatternType::Literal,
        filter => filter,
    };
    ResourcePattern::new(ResourceType::Cluster, CLUSTER_RESOURCE_NAME, pt)
}

impl EntryFlags {
    /// kafka-acls' `getAcl`: allowed principals × allowed hosts × `operations` as ALLOW, and the
    /// same for DENY. Hosts default to `*` when principals are given.
    fn entries(&self, operations: &[AclOperation]) -> BTreeSet<AccessControlEntry> {
        let mut out = BTreeSet::new();
        let sides = [
            (
                &self.allow_principals,
                &self.allow_hosts,
                AclPermissionType::Allow,
            ),
            (
                &self.deny_principals,
                &self.deny_hosts,
                AclPermissionType::Deny,
            ),
        ];
        for (principals, hosts, permission) in sides {
            let hosts: Vec<&str> = if hosts.is_empty() {
                vec![WILDCARD]
            } else {
                hosts.iter().map(|h| h.trim()).collect()
            };
            for principal in principals {
                for host in &hosts {
                    for op in operations {
                        out.insert(AccessControlEntry::new(
                            principal.trim(),
                            *host,
                            *op,
                            permission,
                        ));
                    }
                }
            }
        }
        out
    }

    /// Kafka's checks on the principal and host flags.
    fn check(&self) -> anyhow::Result<()> {
        for p in self.allow_principals.iter().chain(&self.deny_principals) {
            check_principal(p)?;
        }
        if !self.allow_hosts.is_empty() && self.allow_principals.is_empty() {
            bail!("--allow-host needs --allow-principal");
        }
        if !self.deny_hosts.is_empty() && self.deny_principals.is_empty() {
            bail!("--deny-host needs --deny-principal");
        }
        Ok(())
    }
}

fn check_principal(p: &str) -> anyhow::Result<()> {
    if parse_principal(p.trim()).is_none() {
        bail!("Invalid principal {p:?}: expected a string in format principalType:principalName");
    }
    Ok(())
}

/// kafka-acls' `getResourceFilterToAcls`: each resource and the entries the flags give it.
fn resource_entries(
    resources: &ResourceFlags,
    entries: &EntryFlags,
) -> anyhow::Result<ResourceEntries> {
    entries.check()?;
    let has_topic = !resources.topics.is_empty();
    if entries.producer && !has_topic {
        bail!("With --producer you must specify a --topic");
    }
    if entries.consumer
        && (!has_topic
            || resources.groups.is_empty()
            || (!entries.producer
                && (resources.cluster || !resources.transactional_ids.is_empty())))
    {
        bail!(
            "With --consumer you must specify a --topic and a --group and no --cluster or \
             --transactional-id option should be specified."
        );
    }
    let patterns = resources.require_some()?;
    let of_type = |ty| patterns.iter().filter(move |p| p.resource_type == ty);
    let mut out = ResourceEntries::new();
    let mut give = |pattern: &ResourcePattern, ops: &[AclOperation]| {
        out.entry(pattern.clone())
            .or_default()
            .extend(entries.entries(ops));
    };
    if !entries.producer && !entries.consumer {
        let ops = if entries.operations.is_empty() {
            vec![AclOperation::All]
        } else {
            entries.operations.clone()
        };
        for p in &patterns {
            give(p, &ops);
        }
    }
    if entries.producer {
        use AclOperation::{Create, Describe, IdempotentWrite, Write};
        for p in of_type(ResourceType::Topic) {
            give(p, &[Write, Describe, Create]);
        }
        for p in of_type(ResourceType::TransactionalId) {
            give(p, &[Write, Describe]);
        }
        if entries.idempotent {
            give(
                &cluster_pattern(resources.resource_pattern_type),
                &[IdempotentWrite],
            );
        }
    }
    if entries.consumer {
        use AclOperation::{Describe, Read};
        for p in of_type(ResourceType::Topic) {
            give(p, &[Read, Describe]);
        }
        for p in of_type(ResourceType::Group) {
            give(p, &[Read]);
        }
    }
    for (pattern, aces) in &out {
        let supported = pattern.resource_type.supported_operations();
        if aces
            .iter()
            .any(|a| a.operation != AclOperation::All && !supported.contains(&a.operation))
        {
            let names: Vec<&str> = supported
                .iter()
                .chain([&AclOperation::All])
                .map(|o| o.name())
                .collect();
            bail!(
                "ResourceType {} only supports operations {}",
                pattern.resource_type,
                names.join(", ")
            );
        }
    }
    Ok(out)
}

/// The bindings `add` creates.
fn bindings_to_add(
    resources: &ResourceFlags,
    entries: &EntryFlags,
) -> anyhow::Result<ResourceEntries> {
    let pt = resources.resource_pattern_type;
    if !matches!(pt, PatternType::Literal | PatternType::Prefixed) {
        bail!("A '--resource-pattern-type' value of '{pt}' is not valid when adding acls.");
    }
    let map = resource_entries(resources, entries)?;
    if map.values().all(BTreeSet::is_empty) {
        bail!(
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs."
        );
    }
    Ok(map)
}

/// The filters `remove` sends per resource: one per entry, or every entry of the resource when
/// no principal was given (kafka-acls' `removeAcls`).
fn filters_to_remove(map: &ResourceEntries) -> Vec<(ResourcePattern, Vec<AclBindingFilter>)> {
    map.iter()
        .map(|(pattern, aces)| {
            let base = resource_filter(pattern);
            let filters = if aces.is_empty() {
                vec![base]
            } else {
                aces.iter()
                    .map(|a| AclBindingFilter {
                        principal: Some(a.principal.clone()),
                        host: Some(a.host.clone()),
                        operation: a.operation,
                        permission: a.permission,
                        ..base.clone()
                    })
                    .collect()
            };
            (pattern.clone(), filters)
        })
        .collect()
}

/// The filter selecting every ACL of `pattern` (its type, name and pattern type or filter).
fn resource_filter(pattern: &ResourcePattern) -> AclBindingFilter {
    AclBindingFilter {
        resource_type: pattern.resource_type,
        name: Some(pattern.name.clone()),
        pattern_type: pattern.pattern_type,
        ..AclBindingFilter::any()
    }
}

/// The DescribeAcls filters of `list`: one per resource (none: all), each for `principal`.
fn list_filters(resources: &ResourceFlags, principal: Option<&str>) -> Vec<AclBindingFilter> {
    let patterns = resources.patterns();
    let base: Vec<AclBindingFilter> = if patterns.is_empty() {
        vec![AclBindingFilter::any()]
    } else {
        patterns.iter().map(resource_filter).collect()
    };
    base.into_iter()
        .map(|f| AclBindingFilter {
            principal: principal.map(|p| p.trim().to_owned()),
            ..f
        })
        .collect()
}

/// kafka-acls' listing: per resource, a header line and one tab-indented line per ACL.
fn render(header: &str, map: &ResourceEntries) -> String {
    let mut out = String::new();
    for (pattern, aces) in map {
        out.push_str(&format!("{header} `{pattern}`:\n"));
        for a in aces {
            out.push_str(&format!("\t{a}\n"));
        }
        out.push('\n');
    }
    out
}

fn group(bindings: impl IntoIterator<Item = AclBinding>) -> ResourceEntries {
    let mut map = ResourceEntries::new();
    for b in bindings {
        map.entry(b.pattern).or_default().insert(b.entry);
    }
    map
}

/// A broker error with what to do about it, when there is something to do.
fn explain(e: ClientError) -> anyhow::Error {
    let hint = match e.kafka_code() {
        Some(54) => Some(
            "the broker runs without an authorizer: start it with --set \
             authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ),
        Some(31) => Some("this principal may not alter or describe ACLs (it needs ALTER or DESCRIBE on the cluster)"),
        _ => None,
    };
    match hint {
        Some(h) => anyhow::Error::new(e).context(h),
        None => e.into(),
    }
}

/// Asks on the terminal, as kafka-acls does; anything but `y` (or end of input) is no.
fn confirm(question: &str) -> bool {
    println!("{question} (y/n)");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    match std::io::stdin().lock().read_line(&mut answer) {
        Ok(_) => answer.trim().eq_ignore_ascii_case("y"),
        Err(_) => false,
    }
}

/// What a command does, planned from its flags before connecting.
enum Action {
    Add(ResourceEntries),
    Remove(ResourceEntries, bool),
    List(ResourceFlags, Vec<String>),
}

pub(crate) fn run(args: AclsArgs) -> anyhow::Result<()> {
    let AclsArgs { connect, command } = args;
    // Flag mistakes are reported before connecting.
    let action = match command {
        AclsCommand::Add { resources, entries } => {
            Action::Add(bindings_to_add(&resources, &entries)?)
        }
        AclsCommand::Remove {
            resources,
            entries,
            force,
        } => Action::Remove(resource_entries(&resources, &entries)?, force),
        AclsCommand::List {
            resources,
            principals,
        } => {
            for p in &principals {
                check_principal(p)?;
            }
            Action::List(resources, principals)
        }
    };
    super::runtime()?.block_on(async move {
        let client = connect.connect().await?;
        match action {
            Action::Add(map) => add(&client, &map).await,
            Action::Remove(map, force) => remove(&client, &map, force).await,
            Action::List(resources, principals) => list(&client, &resources, &principals).await,
        }
    })
}

async fn add(client: &Client, map: &ResourceEntries) -> anyhow::Result<()> {
    print!("{}", render("Adding ACLs for resource", map));
    let bindings: Vec<AclBinding> = map
        .iter()
        .flat_map(|(p, aces)| aces.iter().map(|a| AclBinding::new(p.clone(), a.clone())))
        .collect();
    let results = client.create_acls(&bindings).await?;
    let failures: Vec<ClientError> = results.into_iter().filter_map(Result::err).collect();
    fail_on(failures, bindings.len(), "ACL(s) not created")
}

/// `Err` when anything failed: the first failure, explained, after the others (unless they
/// all failed for the same reason, as every binding does without an authorizer).
fn fail_on(failures: Vec<ClientError>, total: usize, what: &str) -> anyhow::Result<()> {
    let Some(first) = failures.first() else {
        return Ok(());
    };
    if failures
        .iter()
        .any(|e| e.kafka_code() != first.kafka_code())
    {
        for e in &failures[1..] {
            eprintln!("error: {e}");
        }
    }
    Err(explain(first.clone())).context(format!("{} of {total} {what}", failures.len()))
}

async fn list(
    client: &Client,
    resources: &ResourceFlags,
    principals: &[String],
) -> anyhow::Result<()> {
    let principals: Vec<Option<&str>> = if principals.is_empty() {
        vec![None]
    } else {
        principals.iter().map(|p| Some(p.as_str())).collect()
    };
    let mut out = String::new();
    for principal in principals {
        let mut found = Vec::new();
        for filter in list_filters(resources, principal) {
            found.extend(client.describe_acls(&filter).await.map_err(explain)?);
        }
        if let Some(p) = principal {
            out.push_str(&format!("ACLs for principal `{}`\n", p.trim()));
        }
        out.push_str(&render("Current ACLs for resource", &group(found)));
    }
    // A closed pipe (`| head`) ends the listing quietly.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(())
}

async fn remove(client: &Client, map: &ResourceEntries, force: bool) -> anyhow::Result<()> {
    let mut filters = Vec::new();
    for (pattern, resource_filters) in filters_to_remove(map) {
        let aces = &map[&pattern];
        let question = if aces.is_empty() {
            format!("Are you sure you want to delete all ACLs for resource filter `{pattern}`?")
        } else {
            let lines: Vec<String> = aces.iter().map(|a| format!("\t{a}")).collect();
            format!(
                "Are you sure you want to remove ACLs:\n{}\nfrom resource filter `{pattern}`?",
                lines.join("\n")
            )
        };
        if force || confirm(&question) {
            filters.extend(resource_filters);
        }
    }
    if filters.is_empty() {
        return Ok(());
    }
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    for result in client.delete_acls(&filters).await? {
        match result {
            Ok(bindings) => removed.extend(bindings),
            Err(e) => failures.push(e),
        }
    }
    if removed.is_empty() && failures.is_empty() {
        println!("No ACLs matched; nothing removed.");
    } else {
        print!("{}", render("Removed ACLs for resource", &group(removed)));
    }
    fail_on(failures, filters.len(), "ACL filter(s) failed")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: AclsArgs,
    }

    /// The command the `strom acls ...` words parse to.
    fn parse(words: &str) -> AclsCommand {
        let argv = std::iter::once("acls").chain(words.split_whitespace());
        Cli::try_parse_from(argv).unwrap().args.command
    }

    /// `(resource, [(principal, host, operation, permission)])` for compact expectations.
    fn flat(map: &ResourceEntries) -> Vec<(String, Vec<String>)> {
        map.iter()
            .map(|(p, aces)| {
                let aces = aces
                    .iter()
                    .map(|a| {
                        format!(
                            "{} {} {} {}",
                            a.principal, a.host, a.operation, a.permission
                        )
                    })
                    .collect();
                (
                    format!("{} {} {}", p.resource_type, p.name, p.pattern_type),
                    aces,
                )
            })
            .collect()
    }

    fn planned(words: &str) -> anyhow::Result<ResourceEntries> {
        match parse(words) {
            AclsCommand::Add { resources, entries } => bindings_to_add(&resources, &entries),
            AclsCommand::Remove {
                resources, entries, ..
            } => resource_entries(&resources, &entries),
            AclsCommand::List { .. } => panic!("list has no plan"),
        }
    }

    #[test]
    fn add_is_the_cross_product_of_principals_hosts_operations_and_resources() {
        let map = planned(
            "add --allow-principal User:alice --allow-principal User:bob \
             --allow-host 10.0.0.1 --allow-host 10.0.0.2 \
             --deny-principal User:mallory \
             --operation Read --operation describe \
             --topic orders --group billing",
        )
        .unwrap();
        let flat = flat(&map);
        assert_eq!(flat.len(), 2);
        for (resource, aces) in &flat {
            assert!(
                resource == "TOPIC orders LITERAL" || resource == "GROUP billing LITERAL",
                "{resource}"
            );
            // 2 principals × 2 hosts × 2 operations allowed, 1 × * × 2 denied.
            assert_eq!(aces.len(), 10, "{aces:?}");
            assert!(aces.contains(&"User:alice 10.0.0.2 READ ALLOW".to_owned()));
            assert!(aces.contains(&"User:bob 10.0.0.1 DESCRIBE ALLOW".to_owned()));
            assert!(aces.contains(&"User:mallory * READ DENY".to_owned()));
            assert!(!aces.iter().any(|a| a.starts_with("User:mallory 10.")));
        }
    }

    #[test]
    fn add_defaults_to_all_operations_and_any_host() {
        let map = planned("add --allow-principal User:alice --topic orders").unwrap();
        assert_eq!(
            flat(&map),
            vec![(
                "TOPIC orders LITERAL".to_owned(),
                vec!["User:alice * ALL ALLOW".to_owned()]
            )]
        );
    }

    #[test]
    fn wildcard_topic_and_prefixed_patterns() {
        let map = planned("add --allow-principal User:* --operation Read --topic *").unwrap();
        assert_eq!(
            flat(&map),
            vec![(
                "TOPIC * LITERAL".to_owned(),
                vec!["User:* * READ ALLOW".to_owned()]
            )]
        );
        let map = planned(
            "add --allow-principal User:alice --operation Read --topic orders \
             --resource-pattern-type prefixed",
        )
        .unwrap();
        assert_eq!(flat(&map)[0].0, "TOPIC orders PREFIXED");
    }

    #[test]
    fn producer_shortcut() {
        let map = planned(
            "add --allow-principal User:p --producer --topic t --transactional-id tx --idempotent",
        )
        .unwrap();
        assert_eq!(
            flat(&map),
            vec![
                (
                    "TOPIC t LITERAL".to_owned(),
                    vec![
                        "User:p * WRITE ALLOW".to_owned(),
                        "User:p * CREATE ALLOW".to_owned(),
                        "User:p * DESCRIBE ALLOW".to_owned(),
                    ]
                ),
                (
                    "CLUSTER kafka-cluster LITERAL".to_owned(),
                    vec!["User:p * IDEMPOTENT_WRITE ALLOW".to_owned()]
                ),
                (
                    "TRANSACTIONAL_ID tx LITERAL".to_owned(),
                    vec![
                        "User:p * WRITE ALLOW".to_owned(),
                        "User:p * DESCRIBE ALLOW".to_owned(),
                    ]
                ),
            ]
        );
        // The cluster stays literal beside prefixed topics.
        let map = planned(
            "add --allow-principal User:p --producer --topic t --idempotent \
             --resource-pattern-type prefixed",
        )
        .unwrap();
        let resources: Vec<String> = flat(&map).into_iter().map(|(r, _)| r).collect();
        assert_eq!(
            resources,
            vec!["TOPIC t PREFIXED", "CLUSTER kafka-cluster LITERAL"]
        );
    }

    #[test]
    fn consumer_shortcut_and_both() {
        let map = planned("add --allow-principal User:c --consumer --topic t --group g").unwrap();
        assert_eq!(
            flat(&map),
            vec![
                (
                    "TOPIC t LITERAL".to_owned(),
                    vec![
                        "User:c * READ ALLOW".to_owned(),
                        "User:c * DESCRIBE ALLOW".to_owned(),
                    ]
                ),
                (
                    "GROUP g LITERAL".to_owned(),
                    vec!["User:c * READ ALLOW".to_owned()]
                ),
            ]
        );
        // Producer and consumer together: the topic gets both sets.
        let map =
            planned("add --allow-principal User:pc --producer --consumer --topic t --group g")
                .unwrap();
        assert_eq!(flat(&map)[0].1.len(), 4, "{:?}", flat(&map));
    }

    #[test]
    fn kafka_acls_refusals() {
        let err = |words: &str| planned(words).unwrap_err().to_string();
        assert!(err("add --topic t").contains("--allow-principal, --deny-principal"));
        assert!(err("add --allow-principal User:a").contains("at least one resource"));
        assert!(
            err("add --allow-principal alice --topic t").contains("principalType:principalName")
        );
        assert!(
            err("add --allow-principal User:a --topic t --resource-pattern-type match")
                .contains("not valid when adding acls")
        );
        assert!(
            err("add --allow-principal User:a --operation Read --cluster")
                .contains("ResourceType CLUSTER only supports operations")
        );
        assert!(
            err("add --allow-principal User:a --operation Write --group g")
                .contains("ResourceType GROUP only supports operations")
        );
        assert!(err("add --allow-principal User:a --producer --group g")
            .contains("With --producer you must specify a --topic"));
        assert!(
            err("add --allow-principal User:a --consumer --topic t").contains("With --consumer")
        );
        assert!(
            err("add --allow-host 1.2.3.4 --deny-principal User:a --topic t")
                .contains("--allow-host needs --allow-principal")
        );
        // Flags that conflict are clap's refusals.
        let argv = "acls add --allow-principal User:a --producer --operation Read --topic t";
        assert!(Cli::try_parse_from(argv.split_whitespace()).is_err());
        let argv = "acls add --allow-principal User:a --idempotent --topic t";
        assert!(Cli::try_parse_from(argv.split_whitespace()).is_err());
        let argv = "acls list --allow-principal User:a";
        assert!(Cli::try_parse_from(argv.split_whitespace()).is_err());
        let argv = "acls add --resource-pattern-type sideways --topic t";
        assert!(Cli::try_parse_from(argv.split_whitespace()).is_err());
    }

    #[test]
    fn remove_with_only_a_resource_removes_all_its_acls() {
        let map = planned("remove --topic orders --resource-pattern-type prefixed").unwrap();
        let filters = filters_to_remove(&map);
        assert_eq!(filters.len(), 1);
        let (_, fs) = &filters[0];
        assert_eq!(
            fs,
            &vec![AclBindingFilter {
                resource_type: ResourceType::Topic,
                name: Some("orders".into()),
                pattern_type: PatternType::Prefixed,
                ..AclBindingFilter::any()
            }]
        );
    }

    #[test]
    fn remove_with_principals_removes_exactly_those_entries() {
        let map = planned(
            "remove --allow-principal User:alice --operation Read --operation Write \
             --topic orders --resource-pattern-type any",
        )
        .unwrap();
        let filters = filters_to_remove(&map);
        let (_, fs) = &filters[0];
        assert_eq!(fs.len(), 2);
        assert!(fs.iter().all(|f| f.pattern_type == PatternType::Any
            && f.principal.as_deref() == Some("User:alice")
            && f.host.as_deref() == Some("*")
            && f.permission == AclPermissionType::Allow));
        assert_eq!(fs[0].operation, AclOperation::Read);
        assert_eq!(fs[1].operation, AclOperation::Write);
    }

    #[test]
    fn list_filters_cover_everything_or_the_named_resources() {
        let AclsCommand::List { resources, .. } = parse("list") else {
            panic!()
        };
        assert_eq!(
            list_filters(&resources, None),
            vec![AclBindingFilter::any()]
        );
        let AclsCommand::List { resources, .. } =
            parse("list --topic t --cluster --resource-pattern-type match")
        else {
            panic!()
        };
        let filters = list_filters(&resources, Some("User:alice"));
        assert_eq!(filters.len(), 2);
        assert_eq!(filters[0].resource_type, ResourceType::Topic);
        assert_eq!(filters[0].pattern_type, PatternType::Match);
        assert_eq!(filters[1].resource_type, ResourceType::Cluster);
        assert_eq!(filters[1].name.as_deref(), Some(CLUSTER_RESOURCE_NAME));
        assert!(filters
            .iter()
            .all(|f| f.principal.as_deref() == Some("User:alice")));
    }

    #[test]
    fn listing_reads_like_kafka_acls() {
        let map = planned("add --allow-principal User:alice --operation Read --topic foo").unwrap();
        assert_eq!(
            render("Current ACLs for resource", &map),
            "Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=foo, \
             patternType=LITERAL)`:\n\t(principal=User:alice, host=*, operation=READ, \
             permissionType=ALLOW)\n\n"
        );
    }
}
