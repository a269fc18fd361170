//! The key suite, run on SQLite (temp dir) and on PostgreSQL (fresh schema
//! per test, from PORTCULLIS_TEST_POSTGRES_URL) through the harness of
//! `common` (`both_backends!` generates one `#[tokio::test]` per backend).

use portcullis_store::{testing, KeyRecord, Store, StoreError};

mod common;

use common::{new_key, PG_SUITE};

// ---- suite: bodies taking &Store ------------------------------------------

async fn create_list_get(store: &Store) {
    assert!(store.list_keys().await.unwrap().is_empty());
    assert_eq!(store.get_key("k1").await.unwrap(), None);

    let mut a = new_key("k1", 'a');
    a.created_at = 200;
    let mut b = new_key("k2", 'b');
    b.created_at = 100;
    let rec_a = store.create_key(&a).await.unwrap();
    let rec_b = store.create_key(&b).await.unwrap();
    assert_eq!(rec_a.revoked_at, None);
    assert_eq!(rec_a.last_used_at, None);

    let got = store.get_key("k1").await.unwrap().expect("k1 exists");
    assert_eq!(got, rec_a);
    assert_eq!(got.name, "key k1");
    assert_eq!(got.prefix, "pk-k1");
    assert_eq!(got.hash, "a".repeat(64));
    assert_eq!(got.created_at, 200);

    // Ordered by created_at, not insertion order.
    assert_eq!(store.list_keys().await.unwrap(), vec![rec_b, rec_a]);
    assert_eq!(store.get_key("missing").await.unwrap(), None);
}

async fn list_order_ties_by_id_bytewise(store: &Store) {
    for (id, c) in [("b", '1'), ("B", '2'), ("a", '3'), ("A", '4')] {
        store.create_key(&new_key(id, c)).await.unwrap();
    }
    let ids: Vec<String> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["A", "B", "a", "b"]);
}

async fn duplicate_hash_and_id_conflict(store: &Store) {
    store.create_key(&new_key("k1", 'a')).await.unwrap();
    let rev = store.keys_revision().await.unwrap();

    let err = store.create_key(&new_key("k2", 'a')).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "hash dup: {err:?}");
    let err = store.create_key(&new_key("k1", 'b')).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "id dup: {err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");

    // Failed creates change nothing, not even the revision.
    assert_eq!(store.keys_revision().await.unwrap(), rev);
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
    assert_eq!(store.get_key("k2").await.unwrap(), None);
}

async fn revoke_twice_and_unknown(store: &Store) {
    store.create_key(&new_key("k1", 'a')).await.unwrap();
    store.create_key(&new_key("k2", 'b')).await.unwrap();

    assert!(!store.revoke_key("nope", 10).await.unwrap());
    assert!(store.revoke_key("k1", 1_000).await.unwrap());
    assert!(store.revoke_key("k1", 2_000).await.unwrap());

    let k1 = store.get_key("k1").await.unwrap().unwrap();
    assert_eq!(k1.revoked_at, Some(1_000), "first revocation time is kept");
    let k2 = store.get_key("k2").await.unwrap().unwrap();
    assert_eq!(k2.revoked_at, None, "other keys untouched");
    assert_eq!(store.get_key("nope").await.unwrap(), None);
}

async fn expires_at_round_trip(store: &Store) {
    let mut k = new_key("exp", 'e');
    k.expires_at = Some(4_102_444_800); // 2100-01-01, beyond i32
    store.create_key(&k).await.unwrap();
    store.create_key(&new_key("never", 'f')).await.unwrap();
    let exp = store.get_key("exp").await.unwrap().unwrap();
    assert_eq!(exp.expires_at, Some(4_102_444_800));
    let never = store.get_key("never").await.unwrap().unwrap();
    assert_eq!(never.expires_at, None);
}

async fn models_round_trip(store: &Store) {
    let models = vec![
        "gpt-4o*".to_string(),
        "anthropic/claude-*".to_string(),
        "we\"ird, [model] ü".to_string(),
    ];
    let mut k = new_key("m", 'm');
    k.models = models.clone();
    let created = store.create_key(&k).await.unwrap();
    assert_eq!(created.models, models);
    assert_eq!(store.get_key("m").await.unwrap().unwrap().models, models);
    store.create_key(&new_key("all", 'n')).await.unwrap();
    let all = store.get_key("all").await.unwrap().unwrap();
    assert!(all.models.is_empty());
    let listed: Vec<KeyRecord> = store.list_keys().await.unwrap();
    assert_eq!(listed.iter().find(|r| r.id == "m").unwrap().models, models);
}

async fn revision_bumps_on_create_and_revoke_not_touch(store: &Store) {
    let r0 = store.keys_revision().await.unwrap();
    store.create_key(&new_key("k1", 'a')).await.unwrap();
    let r1 = store.keys_revision().await.unwrap();
    assert!(r1 > r0, "create bumps: {r0} -> {r1}");

    store.touch_key("k1", 5_000).await.unwrap();
    assert_eq!(
        store.keys_revision().await.unwrap(),
        r1,
        "touch does not bump"
    );

    assert!(store.revoke_key("k1", 6_000).await.unwrap());
    let r2 = store.keys_revision().await.unwrap();
    assert!(r2 > r1, "revoke bumps: {r1} -> {r2}");

    assert!(!store.revoke_key("unknown", 6_000).await.unwrap());
    assert_eq!(store.keys_revision().await.unwrap(), r2, "no-op revoke");
}

async fn touch_records_last_use(store: &Store) {
    store.create_key(&new_key("k1", 'a')).await.unwrap();
    store.touch_key("k1", 5_000).await.unwrap();
    assert_eq!(
        store.get_key("k1").await.unwrap().unwrap().last_used_at,
        Some(5_000)
    );
    store.touch_key("k1", 6_000).await.unwrap();
    assert_eq!(
        store.get_key("k1").await.unwrap().unwrap().last_used_at,
        Some(6_000)
    );
    // A late, out-of-order touch never moves it backwards.
    store.touch_key("k1", 5_500).await.unwrap();
    assert_eq!(
        store.get_key("k1").await.unwrap().unwrap().last_used_at,
        Some(6_000)
    );
    // Unknown ids are ignored.
    store.touch_key("unknown", 7_000).await.unwrap();
}

async fn team_role_owner_round_trip(store: &Store) {
    let mut k = new_key("k1", 'a');
    k.team = Some("payments".into());
    k.role = "security-admin".into();
    k.owner = Some("u-alice".into());
    let created = store.create_key(&k).await.unwrap();
    assert_eq!(created.team.as_deref(), Some("payments"));
    assert_eq!(created.role, "security-admin");
    assert_eq!(created.owner.as_deref(), Some("u-alice"));
    assert_eq!(store.get_key("k1").await.unwrap().unwrap(), created);
    store.create_key(&new_key("k2", 'b')).await.unwrap();
    let k2 = store.get_key("k2").await.unwrap().unwrap();
    assert_eq!(
        (k2.team, k2.role.as_str(), k2.owner),
        (None, "developer", None)
    );
    assert_eq!(store.list_keys().await.unwrap()[0], created);
}

async fn rotate_key_is_atomic(store: &Store) {
    let mut old = new_key("old", 'a');
    old.team = Some("t1".into());
    old.role = "viewer".into();
    old.owner = Some("svc-batch".into());
    old.models = vec!["gpt-*".into()];
    old.expires_at = Some(9_000);
    store.create_key(&old).await.unwrap();
    let rev = store.keys_revision().await.unwrap();

    let mut new = new_key("new", 'b');
    new.name = old.name.clone();
    new.models = old.models.clone();
    new.team = old.team.clone();
    new.role = old.role.clone();
    new.owner = old.owner.clone();
    new.created_at = 1_000;
    let rotated = store
        .rotate_key("old", &new, 1_000)
        .await
        .unwrap()
        .expect("rotated");
    assert_eq!(rotated.id, "new");
    assert_eq!(rotated.revoked_at, None);
    assert_eq!(store.get_key("new").await.unwrap().unwrap(), rotated);
    assert_eq!(rotated.team.as_deref(), Some("t1"));
    assert_eq!(rotated.role, "viewer");
    assert_eq!(rotated.owner.as_deref(), Some("svc-batch"));
    assert_eq!(rotated.models, ["gpt-*"]);
    let old_rec = store.get_key("old").await.unwrap().unwrap();
    assert_eq!(old_rec.revoked_at, Some(1_000));
    let rev2 = store.keys_revision().await.unwrap();
    assert!(rev2 > rev, "rotate bumps: {rev} -> {rev2}");

    // Already revoked or unknown: None, nothing created, no bump.
    let again = new_key("again", 'c');
    assert_eq!(store.rotate_key("old", &again, 2_000).await.unwrap(), None);
    assert_eq!(store.rotate_key("nope", &again, 2_000).await.unwrap(), None);
    assert_eq!(store.get_key("again").await.unwrap(), None);
    assert_eq!(store.keys_revision().await.unwrap(), rev2);
    assert_eq!(
        store.get_key("old").await.unwrap().unwrap().revoked_at,
        Some(1_000)
    );

    // A conflicting new key (same hash as an existing one) rolls back the
    // revocation too: the old key stays active.
    let clash = new_key("clash", 'b');
    let err = store.rotate_key("new", &clash, 3_000).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.get_key("new").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(store.get_key("clash").await.unwrap(), None);
    assert_eq!(store.keys_revision().await.unwrap(), rev2);
}

async fn set_key_expiry_bumps(store: &Store) {
    store.create_key(&new_key("k1", 'a')).await.unwrap();
    let r0 = store.keys_revision().await.unwrap();
    assert!(store
        .set_key_expiry("k1", Some(4_102_444_800))
        .await
        .unwrap());
    assert_eq!(
        store.get_key("k1").await.unwrap().unwrap().expires_at,
        Some(4_102_444_800)
    );
    let r1 = store.keys_revision().await.unwrap();
    assert!(r1 > r0);
    assert!(store.set_key_expiry("k1", None).await.unwrap());
    assert_eq!(store.get_key("k1").await.unwrap().unwrap().expires_at, None);
    let r2 = store.keys_revision().await.unwrap();
    assert!(r2 > r1);
    assert!(!store.set_key_expiry("nope", Some(1)).await.unwrap());
    assert_eq!(store.keys_revision().await.unwrap(), r2, "unknown: no bump");
}

async fn ping_and_backend(store: &Store) {
    store.ping().await.unwrap();
    assert!(["sqlite", "postgres"].contains(&store.backend()));
}

/// The CLI + gateway case: two independent handles on one database.
async fn two_handles_see_each_other(url: &str) {
    let cli = Store::connect(url).await.unwrap();
    let gateway = Store::connect(url).await.unwrap();
    let rev = gateway.keys_revision().await.unwrap();

    cli.create_key(&new_key("k1", 'a')).await.unwrap();
    assert!(gateway.keys_revision().await.unwrap() > rev);
    assert_eq!(gateway.list_keys().await.unwrap().len(), 1);

    let rev = gateway.keys_revision().await.unwrap();
    assert!(cli.revoke_key("k1", 42).await.unwrap());
    assert!(gateway.keys_revision().await.unwrap() > rev);
    let k1 = gateway.get_key("k1").await.unwrap().unwrap();
    assert_eq!(k1.revoked_at, Some(42));

    gateway.touch_key("k1", 99).await.unwrap();
    assert_eq!(
        cli.get_key("k1").await.unwrap().unwrap().last_used_at,
        Some(99)
    );
    cli.close().await;
    gateway.close().await;
}

// ---- harness ------------------------------------------------------------

both_backends!(
    create_list_get,
    list_order_ties_by_id_bytewise,
    duplicate_hash_and_id_conflict,
    revoke_twice_and_unknown,
    expires_at_round_trip,
    models_round_trip,
    revision_bumps_on_create_and_revoke_not_touch,
    touch_records_last_use,
    ping_and_backend,
    team_role_owner_round_trip,
    rotate_key_is_atomic,
    set_key_expiry_bumps,
);

#[tokio::test]
async fn sqlite_two_handles_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    two_handles_see_each_other(&url).await;
}

#[tokio::test]
async fn postgres_two_handles_same_schema() {
    let Some(base) = testing::postgres_base_url(PG_SUITE) else {
        return;
    };
    let (url, schema) = testing::postgres_schema_url(&base).await.unwrap();
    two_handles_see_each_other(&url).await;
    schema.drop_schema().await.unwrap();
}
