//! Decision cost with 100 and 10,000 ACLs (literal, prefixed and wildcard patterns over many
//! topics and principals), and the cost of rebuilding a 10,000-ACL snapshot.
//!
//! Run: `cargo bench -p strom-authorizer -- --quick`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use strom_authorizer::{
    AccessControlEntry, AclBinding, AclId, AclOperation, AclPermissionType, AuthorizerConfig,
    PatternType, ResourcePattern, ResourceType, StandardAuthorizer,
};

/// `count` ACLs: 60% literal topics, 30% prefixed team prefixes, the rest group ACLs, a few
/// wildcards and DENYs, spread over `count / 10` principals.
fn acls(count: usize) -> Vec<(AclId, AclBinding)> {
    let principals = (count / 10).max(1);
    (0..count)
        .map(|i| {
            let principal = format!("User:user-{}", i % principals);
            let (resource_type, name, pattern_type) = match i % 10 {
                0..=5 => (
                    ResourceType::Topic,
                    format!("topic-{i:06}"),
                    PatternType::Literal,
                ),
                6..=8 => (
                    ResourceType::Topic,
                    format!("team-{:04}-", i / 10),
                    PatternType::Prefixed,
                ),
                _ if i % 1000 == 9 => (ResourceType::Topic, "*".to_owned(), PatternType::Literal),
                _ => (
                    ResourceType::Group,
                    format!("group-{i}"),
                    PatternType::Literal,
                ),
            };
            let (operation, permission) = match i % 7 {
                0 => (AclOperation::Write, AclPermissionType::Allow),
                1 => (AclOperation::All, AclPermissionType::Allow),
                2 => (AclOperation::Describe, AclPermissionType::Deny),
                _ => (AclOperation::Read, AclPermissionType::Allow),
            };
            let host = if i % 3 == 0 {
                format!("10.0.{}.{}", (i / 256) % 256, i % 256)
            } else {
                "*".to_owned()
            };
            let binding = AclBinding::new(
                ResourcePattern::new(resource_type, name, pattern_type),
                AccessControlEntry::new(principal, host, operation, permission),
            );
            (AclId::from_u128(i as u128 + 1), binding)
        })
        .collect()
}

fn config() -> AuthorizerConfig {
    AuthorizerConfig {
        super_users: vec!["User:admin".to_owned()],
        allow_everyone_if_no_acl_found: false,
    }
}

fn authorize(c: &mut Criterion) {
    let host: IpAddr = [10, 0, 0, 3].into();
    let mut group = c.benchmark_group("authorize");
    for count in [100usize, 10_000] {
        let authorizer = StandardAuthorizer::new(config(), acls(count));
        let principal = "User:user-3";
        // A literal topic ACL (index 3 is literal, READ ALLOW for user-3).
        group.bench_with_input(
            BenchmarkId::new("literal_hit", count),
            &authorizer,
            |b, a| {
                b.iter(|| {
                    a.authorize(
                        black_box(principal),
                        host,
                        AclOperation::Read,
                        ResourceType::Topic,
                        black_box("topic-000003"),
                    )
                })
            },
        );
        // Covered by a prefixed ACL ("team-0000-"), deeper name.
        group.bench_with_input(
            BenchmarkId::new("prefixed_hit", count),
            &authorizer,
            |b, a| {
                b.iter(|| {
                    a.authorize(
                        black_box("User:user-6"),
                        host,
                        AclOperation::Read,
                        ResourceType::Topic,
                        black_box("team-0000-payments-eu"),
                    )
                })
            },
        );
        // A resource no ACL covers (but the wildcard at 10,000): the full lookup path, denied.
        group.bench_with_input(BenchmarkId::new("miss", count), &authorizer, |b, a| {
            b.iter(|| {
                a.authorize(
                    black_box("User:nobody"),
                    host,
                    AclOperation::Write,
                    ResourceType::Topic,
                    black_box("unrelated-topic"),
                )
            })
        });
        group.bench_with_input(
            BenchmarkId::new("by_resource_type", count),
            &authorizer,
            |b, a| {
                b.iter(|| {
                    a.authorize_by_resource_type(
                        black_box(principal),
                        host,
                        AclOperation::Write,
                        ResourceType::Topic,
                    )
                })
            },
        );
    }
    group.finish();
}

fn rebuild(c: &mut Criterion) {
    let acls = acls(10_000);
    c.bench_function("rebuild/10000", |b| {
        // The clone is setup: the broker hands over ACLs it already owns.
        b.iter_batched(
            || acls.clone(),
            |acls| StandardAuthorizer::new(config(), acls),
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, authorize, rebuild);
criterion_main!(benches);
