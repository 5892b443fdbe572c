//! SCRAM credentials through a real one-node quorum: proposed, refused when invalid, applied,
//! used by a SCRAM-SHA-256/512 login with the quorum as the credential store, removed, and
//! restored from a snapshot after a restart.

mod common;

use std::sync::Arc;

use common::single;
use strom_cluster::metadata::{InvalidRecord, MetadataRecord, ScramProblem};
use strom_cluster::{Quorum, QuorumError};
use strom_security::{
    ClientStep, KafkaPrincipal, Password, SaslClient, SaslServer, ScramClient, ScramCredential,
    ScramCredentialStore, ScramMechanism, ScramServer, Step,
};

fn upsert(user: &str, password: &str, mechanism: ScramMechanism) -> MetadataRecord {
    let c = ScramCredential::generate(password, mechanism, 4096, None).expect("credential");
    MetadataRecord::user_scram_credential(user, mechanism, &c)
}

/// True when `user` logs in with `password`, authenticated as `User:<user>`.
fn logs_in(
    store: &Arc<dyn ScramCredentialStore>,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> bool {
    login(store.clone(), mechanism, user, password) == Some(KafkaPrincipal::user(user))
}

/// One SCRAM exchange against `store`; the principal on success.
fn login(
    store: Arc<dyn ScramCredentialStore>,
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
) -> Option<KafkaPrincipal> {
    let mut client = ScramClient::new(mechanism, user, Password::new(password), false);
    let mut server = ScramServer::new(mechanism, store);
    let first = client.initial_response().ok()?;
    let Step::Continue(challenge) = server.step(&first).ok()? else {
        return None;
    };
    let ClientStep::Send(proof) = client.step(&challenge).ok()? else {
        return None;
    };
    match server.step(&proof).ok()? {
        Step::Done(a) => {
            assert_eq!(client.step(&a.server_bytes).ok()?, ClientStep::Done);
            Some(a.principal)
        }
        Step::Continue(_) => None,
    }
}

async fn propose(q: &Quorum, records: Vec<MetadataRecord>) -> Result<i64, QuorumError> {
    q.propose(move |_| (records.clone(), ()))
        .await
        .map(|(_, img)| img.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_proposed_used_removed_and_snapshotted() {
    common::init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = single(dir.path());
    cfg.snapshot_every_entries = 3;
    cfg.snapshot_keep_entries = 0;
    let q = Quorum::start(cfg.clone()).await.expect("start");

    propose(
        &q,
        vec![
            upsert("alice", "alice-secret", ScramMechanism::Sha256),
            upsert("alice", "alice-512", ScramMechanism::Sha512),
            upsert("bob", "bob-secret", ScramMechanism::Sha512),
        ],
    )
    .await
    .expect("valid credentials");
    let store: Arc<dyn ScramCredentialStore> = q.clone();
    assert!(logs_in(
        &store,
        ScramMechanism::Sha256,
        "alice",
        "alice-secret"
    ));
    assert!(logs_in(
        &store,
        ScramMechanism::Sha512,
        "alice",
        "alice-512"
    ));
    assert!(!logs_in(&store, ScramMechanism::Sha256, "alice", "wrong"));
    assert!(
        !logs_in(&store, ScramMechanism::Sha256, "bob", "bob-secret"),
        "bob has SCRAM-SHA-512 only"
    );

    // Invalid proposals are refused whole, before anything is written.
    let before = q.image().offset;
    let mut bad_iterations = upsert("carol", "c", ScramMechanism::Sha256);
    if let MetadataRecord::UserScramCredential { credential, .. } = &mut bad_iterations {
        credential.iterations = 1000;
    }
    let refused = propose(
        &q,
        vec![upsert("dave", "d", ScramMechanism::Sha256), bad_iterations],
    )
    .await;
    assert!(
        matches!(
            refused,
            Err(QuorumError::Invalid(InvalidRecord::ScramCredential(
                ScramProblem::Iterations
            )))
        ),
        "{refused:?}"
    );
    let empty_name = upsert("", "e", ScramMechanism::Sha512);
    assert!(matches!(
        propose(&q, vec![empty_name]).await,
        Err(QuorumError::Invalid(InvalidRecord::ScramCredential(
            ScramProblem::UserName
        )))
    ));
    assert_eq!(q.image().offset, before, "nothing written");
    assert_eq!(
        q.image().scram_users().collect::<Vec<_>>(),
        ["alice", "bob"]
    );

    // Removal takes effect for the next login; more entries so a snapshot is taken.
    propose(
        &q,
        vec![MetadataRecord::RemoveUserScramCredential {
            name: "alice".into(),
            mechanism: 1,
        }],
    )
    .await
    .expect("remove");
    assert!(!logs_in(
        &store,
        ScramMechanism::Sha256,
        "alice",
        "alice-secret"
    ));
    for i in 0..6 {
        let user = format!("user{i}");
        propose(&q, vec![upsert(&user, "pw", ScramMechanism::Sha256)])
            .await
            .expect("propose");
    }
    common::wait_for_snapshot(dir.path()).await;
    let infos_before: Vec<_> = q.image().scram_credential_infos("alice").collect();
    q.shutdown().await;
    drop(store);
    drop(q);

    let q = Quorum::start(cfg).await.expect("restart");
    let store: Arc<dyn ScramCredentialStore> = q.clone();
    assert_eq!(q.image().scram_users().count(), 8);
    assert_eq!(
        q.image()
            .scram_credential_infos("alice")
            .collect::<Vec<_>>(),
        infos_before
    );
    assert!(logs_in(
        &store,
        ScramMechanism::Sha512,
        "alice",
        "alice-512"
    ));
    assert!(logs_in(&store, ScramMechanism::Sha256, "user5", "pw"));
    q.shutdown().await;
}
