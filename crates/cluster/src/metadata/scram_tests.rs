//! Tests of SCRAM credentials in the metadata: the record rules, applying and removing, the
//! lookups the broker serves logins and DescribeUserScramCredentials from, snapshots, and that
//! no key is ever printed.

use strom_security::{ScramCredential, ScramMechanism};

use super::{
    InvalidRecord, MetadataImage, MetadataRecord, ScramCredentialInfo, ScramProblem,
    MAX_SCRAM_USER_NAME_LEN,
};

fn credential(password: &str, mechanism: ScramMechanism, iterations: u32) -> ScramCredential {
    ScramCredential::generate(password, mechanism, iterations, None).expect("credential")
}

fn upsert(user: &str, mechanism: ScramMechanism, iterations: u32) -> MetadataRecord {
    let c = credential("secret", mechanism, iterations);
    MetadataRecord::user_scram_credential(user, mechanism, &c)
}

fn problem(r: &MetadataRecord) -> Option<ScramProblem> {
    match r.validate() {
        Err(InvalidRecord::ScramCredential(p)) => Some(p),
        Ok(()) => None,
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// The record with one field changed.
fn with(mut r: MetadataRecord, f: impl FnOnce(&mut MetadataRecord)) -> MetadataRecord {
    f(&mut r);
    r
}

#[test]
fn records_are_checked() {
    use ScramProblem as P;
    let sha256 = upsert("alice", ScramMechanism::Sha256, 4096);
    let sha512 = upsert("alice", ScramMechanism::Sha512, 16384);
    assert_eq!(problem(&sha256), None);
    assert_eq!(problem(&sha512), None);
    let set = |f: fn(&mut String, &mut i8, &mut i32, &mut Vec<u8>, &mut Vec<u8>)| {
        with(sha256.clone(), |r| {
            if let MetadataRecord::UserScramCredential {
                name,
                mechanism,
                credential: c,
            } = r
            {
                f(
                    name,
                    mechanism,
                    &mut c.iterations,
                    &mut c.salt.0,
                    &mut c.stored_key.0,
                );
            }
        })
    };
    assert_eq!(problem(&set(|n, _, _, _, _| n.clear())), Some(P::UserName));
    assert_eq!(
        problem(&set(
            |n, _, _, _, _| *n = "é".repeat(MAX_SCRAM_USER_NAME_LEN)
        )),
        None,
        "255 characters, more bytes"
    );
    assert_eq!(
        problem(&set(
            |n, _, _, _, _| *n = "a".repeat(MAX_SCRAM_USER_NAME_LEN + 1)
        )),
        Some(P::UserName)
    );
    assert_eq!(
        problem(&set(|n, _, _, _, _| *n = "a\u{1b}[31m".into())),
        Some(P::UserName)
    );
    assert_eq!(problem(&set(|_, m, _, _, _| *m = 0)), Some(P::Mechanism));
    assert_eq!(problem(&set(|_, m, _, _, _| *m = 3)), Some(P::Mechanism));
    assert_eq!(
        problem(&set(|_, _, i, _, _| *i = 4095)),
        Some(P::Iterations)
    );
    assert_eq!(
        problem(&set(|_, _, i, _, _| *i = 16385)),
        Some(P::Iterations)
    );
    assert_eq!(problem(&set(|_, _, i, _, _| *i = -1)), Some(P::Iterations));
    assert_eq!(problem(&set(|_, _, _, s, _| s.clear())), Some(P::Salt));
    assert_eq!(
        problem(&set(|_, _, _, s, _| *s = vec![1; 1025])),
        Some(P::Salt)
    );
    assert_eq!(problem(&set(|_, _, _, _, k| k.push(0))), Some(P::KeyLength));
    // A SHA-256 credential stored under SHA-512: its keys are too short for that hash.
    assert_eq!(problem(&set(|_, m, _, _, _| *m = 2)), Some(P::KeyLength));
    let remove = |name: &str, mechanism| MetadataRecord::RemoveUserScramCredential {
        name: name.into(),
        mechanism,
    };
    assert_eq!(problem(&remove("alice", 1)), None);
    assert_eq!(problem(&remove("", 1)), Some(P::UserName));
    assert_eq!(problem(&remove("alice", 9)), Some(P::Mechanism));
    // Out of Kafka's range even before it reaches the record's i32.
    let huge = ScramCredential {
        iterations: u32::MAX,
        ..credential("x", ScramMechanism::Sha256, 4096)
    };
    let r = MetadataRecord::user_scram_credential("bob", ScramMechanism::Sha256, &huge);
    assert_eq!(problem(&r), Some(P::Iterations));
}

#[test]
fn applied_credentials_are_looked_up_replaced_and_removed() {
    let mut img = MetadataImage::default();
    let alice256 = credential("pw", ScramMechanism::Sha256, 8192);
    let alice512 = credential("pw", ScramMechanism::Sha512, 4096);
    img.apply_records(&[
        MetadataRecord::user_scram_credential("alice", ScramMechanism::Sha256, &alice256),
        MetadataRecord::user_scram_credential("alice", ScramMechanism::Sha512, &alice512),
        upsert("bob", ScramMechanism::Sha512, 4096),
    ])
    .expect("valid");
    assert_eq!(
        img.scram_credential(ScramMechanism::Sha256, "alice"),
        Some(alice256)
    );
    assert_eq!(
        img.scram_credential(ScramMechanism::Sha512, "alice"),
        Some(alice512)
    );
    assert_eq!(img.scram_credential(ScramMechanism::Sha256, "bob"), None);
    assert_eq!(img.scram_users().collect::<Vec<_>>(), ["alice", "bob"]);
    let info = |mechanism, iterations| ScramCredentialInfo {
        mechanism,
        iterations,
    };
    assert_eq!(
        img.scram_credential_infos("alice").collect::<Vec<_>>(),
        [
            info(ScramMechanism::Sha256, 8192),
            info(ScramMechanism::Sha512, 4096)
        ]
    );
    assert_eq!(img.scram_credential_infos("carol").count(), 0);

    // Replaced, then removed one mechanism at a time; a user without any is gone.
    img.apply(&upsert("alice", ScramMechanism::Sha256, 16384));
    assert_eq!(
        img.scram_credential(ScramMechanism::Sha256, "alice")
            .map(|c| c.iterations),
        Some(16384)
    );
    for mechanism in [1, 2] {
        img.apply(&MetadataRecord::RemoveUserScramCredential {
            name: "alice".into(),
            mechanism,
        });
    }
    assert_eq!(img.scram_users().collect::<Vec<_>>(), ["bob"]);
    // Removing what is not there does nothing.
    img.apply(&MetadataRecord::RemoveUserScramCredential {
        name: "nobody".into(),
        mechanism: 1,
    });
    assert_eq!(img.scram_users().count(), 1);

    // An invalid record is skipped on apply, whoever wrote it.
    let mut bad = upsert("mallory", ScramMechanism::Sha256, 4096);
    if let MetadataRecord::UserScramCredential { credential, .. } = &mut bad {
        credential.iterations = 1;
    }
    assert!(img.apply_records(std::slice::from_ref(&bad)).is_err());
    img.apply(&bad);
    assert_eq!(
        img.scram_credential(ScramMechanism::Sha256, "mallory"),
        None
    );
}

#[test]
fn snapshots_keep_credentials_and_drop_invalid_ones() {
    let mut img = MetadataImage::default();
    img.apply_records(&[
        upsert("alice", ScramMechanism::Sha256, 4096),
        upsert("bob", ScramMechanism::Sha512, 4096),
    ])
    .expect("valid");
    let json = serde_json::to_string(&img).expect("snapshot");
    let mut back: MetadataImage = serde_json::from_str(&json).expect("restore");
    assert_eq!(back.drop_invalid(), 0);
    assert_eq!(
        back.scram_credential(ScramMechanism::Sha512, "bob"),
        img.scram_credential(ScramMechanism::Sha512, "bob")
    );
    // A snapshot edited (or written by a buggy version) with a credential no record may make.
    let forged = json.replace("\"iterations\":4096", "\"iterations\":12");
    let mut back: MetadataImage = serde_json::from_str(&forged).expect("restore");
    assert_eq!(back.drop_invalid(), 2);
    assert_eq!(back.scram_users().count(), 0);
    // A snapshot from before SCRAM credentials existed has none.
    let old: MetadataImage =
        serde_json::from_str(r#"{"topics":{},"names_by_id":{},"brokers":{},"broker_configs":{},"offset":3,"next_producer_id":0}"#)
            .expect("old snapshot");
    assert_eq!(old.scram_users().count(), 0);
}

#[test]
fn keys_are_never_printed() {
    let c = credential("pw", ScramMechanism::Sha256, 4096);
    let r = MetadataRecord::user_scram_credential("alice", ScramMechanism::Sha256, &c);
    let mut img = MetadataImage::default();
    img.apply(&r);
    let b64 = |b: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    for shown in [format!("{r:?}"), format!("{img:?}")] {
        assert!(shown.contains("bytes hidden"), "{shown}");
        for key in [&c.stored_key, &c.server_key, &c.salt] {
            assert!(!shown.contains(&b64(key)), "{shown}");
            assert!(!shown.contains(&format!("{:?}", key)), "{shown}");
        }
    }
    // In the log they are base64 (the record must carry them).
    let json = serde_json::to_string(&r).expect("json");
    assert!(json.contains(&b64(&c.server_key)));
    // Flat, as Kafka's record: the credential's fields sit beside the name.
    assert!(json.contains(r#""iterations":4096"#) && !json.contains("credential"));
    assert_eq!(
        serde_json::from_str::<MetadataRecord>(&json).expect("decode"),
        r
    );
}
