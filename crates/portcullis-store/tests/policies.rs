//! Versioned policies: numbering (also under concurrency), immutability,
//! active/shadow state and the policy revision — on SQLite and PostgreSQL.

mod common;

use portcullis_store::{PolicyState, PolicyVersionSummary, Store, StoreError};

async fn append_get_list(store: &Store) {
    assert!(store.list_policy_versions().await.unwrap().is_empty());
    assert_eq!(store.get_policy_version(1).await.unwrap(), None);

    let doc = "version: 1\nrules:\n  - allow: \"*\"\n# ü\n";
    let v1 = store
        .append_policy_version(doc, "sha256:aa", "u-alice", "first", 100)
        .await
        .unwrap();
    let v2 = store
        .append_policy_version("rules: []", "sha256:bb", "cli", "", 200)
        .await
        .unwrap();
    // Same document again: a new, immutable version, never a rewrite.
    let v3 = store
        .append_policy_version(doc, "sha256:aa", "u-bob", "again", 300)
        .await
        .unwrap();
    assert_eq!((v1, v2, v3), (1, 2, 3));

    let got = store.get_policy_version(1).await.unwrap().unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(got.document, doc);
    assert_eq!(got.hash, "sha256:aa");
    assert_eq!(got.author, "u-alice");
    assert_eq!(got.comment, "first");
    assert_eq!(got.created_at, 100);
    let again = store.get_policy_version(3).await.unwrap().unwrap();
    assert_eq!(
        (again.document.as_str(), again.author.as_str()),
        (doc, "u-bob")
    );
    assert_eq!(store.get_policy_version(1).await.unwrap().unwrap(), got);
    assert_eq!(store.get_policy_version(4).await.unwrap(), None);

    let list = store.list_policy_versions().await.unwrap();
    assert_eq!(
        list[1],
        PolicyVersionSummary {
            version: 2,
            hash: "sha256:bb".into(),
            author: "cli".into(),
            comment: "".into(),
            created_at: 200
        }
    );
    let versions: Vec<i64> = list.iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2, 3]);
}

/// 8 appends at once, from two independent handles (two processes sharing
/// the database): numbers are exactly 1..=8, no duplicates, no gaps.
async fn concurrent_appends_are_gap_free(url: &str) {
    let a = Store::connect(url).await.unwrap();
    let b = Store::connect(url).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                store
                    .append_policy_version(&format!("doc {i}"), &format!("h{i}"), "t", "", i)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (1..=8).collect::<Vec<i64>>());
    let listed: Vec<i64> = a
        .list_policy_versions()
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(listed, (1..=8).collect::<Vec<i64>>());
    // Every version kept its own document.
    for v in 1..=8 {
        let p = b.get_policy_version(v).await.unwrap().unwrap();
        let i = p.hash.trim_start_matches('h');
        assert_eq!(p.document, format!("doc {i}"));
    }
    assert_eq!(a.policy_revision().await.unwrap(), 8);
    a.close().await;
    b.close().await;
}

async fn activate_and_shadow(store: &Store) {
    assert_eq!(store.policy_state().await.unwrap(), PolicyState::default());
    let r0 = store.policy_revision().await.unwrap();
    for i in 1..=3 {
        store
            .append_policy_version(&format!("d{i}"), "h", "a", "", i)
            .await
            .unwrap();
    }
    let r1 = store.policy_revision().await.unwrap();
    assert_eq!(r1, r0 + 3, "every append bumps");

    // Unknown version: NotFound, nothing changes.
    let err = store.activate_policy(9).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.set_shadow_policy(Some(9), 5).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.policy_revision().await.unwrap(), r1);
    assert_eq!(store.policy_state().await.unwrap(), PolicyState::default());

    store.activate_policy(1).await.unwrap();
    let state = store.policy_state().await.unwrap();
    assert_eq!(state.active_version, Some(1));
    assert_eq!(state.shadow_version, None);
    let r2 = store.policy_revision().await.unwrap();
    assert!(r2 > r1);

    // Shadow the active version: refused.
    let err = store.set_shadow_policy(Some(1), 5).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(store.policy_revision().await.unwrap(), r2);

    store.set_shadow_policy(Some(2), 1_000).await.unwrap();
    let shadowing = PolicyState {
        active_version: Some(1),
        shadow_version: Some(2),
        shadow_started_at: Some(1_000),
    };
    assert_eq!(store.policy_state().await.unwrap(), shadowing);
    let r3 = store.policy_revision().await.unwrap();
    assert!(r3 > r2);

    // Discard: shadow cleared, active untouched.
    store.set_shadow_policy(None, 2_000).await.unwrap();
    let discarded = PolicyState {
        active_version: Some(1),
        ..PolicyState::default()
    };
    assert_eq!(store.policy_state().await.unwrap(), discarded);
    let r4 = store.policy_revision().await.unwrap();
    assert!(r4 > r3);

    // Activating another version keeps the shadow running.
    store.set_shadow_policy(Some(2), 3_000).await.unwrap();
    store.activate_policy(3).await.unwrap();
    let state = store.policy_state().await.unwrap();
    assert_eq!(state.active_version, Some(3));
    assert_eq!(state.shadow_version, Some(2));
    assert_eq!(state.shadow_started_at, Some(3_000));

    // Promote: activating the shadow version ends shadow mode.
    store.activate_policy(2).await.unwrap();
    let promoted = PolicyState {
        active_version: Some(2),
        ..PolicyState::default()
    };
    assert_eq!(store.policy_state().await.unwrap(), promoted);

    // Rollback to an older version.
    store.activate_policy(1).await.unwrap();
    assert_eq!(store.policy_state().await.unwrap().active_version, Some(1));
    let r5 = store.policy_revision().await.unwrap();
    assert!(r5 > r4);
    // Versions were never altered by any of this.
    assert_eq!(store.list_policy_versions().await.unwrap().len(), 3);
    assert_eq!(
        store.get_policy_version(2).await.unwrap().unwrap().document,
        "d2"
    );
    // Policy changes do not touch the other counters.
    assert_eq!(store.keys_revision().await.unwrap(), 0);
    assert_eq!(store.identity_revision().await.unwrap(), 0);
}

both_backends!(append_get_list, activate_and_shadow);
both_backends_url!(concurrent_appends_are_gap_free);
