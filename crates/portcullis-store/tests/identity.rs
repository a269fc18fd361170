//! Users, teams, the identity revision, and migrating a database created by
//! migration 0001 only — on SQLite and PostgreSQL.

mod common;

use std::borrow::Cow;
use std::path::Path;

use portcullis_store::{NewUser, Store, StoreError, TeamRecord};
use sqlx::migrate::Migrator;

fn user(id: &str, name: &str, created_at: i64) -> NewUser {
    NewUser {
        id: id.into(),
        name: name.into(),
        email: Some(format!("{name}@example.com")),
        team: Some("payments".into()),
        role: "developer".into(),
        created_at,
    }
}

async fn users_create_get_list(store: &Store) {
    assert!(store.list_users().await.unwrap().is_empty());
    assert_eq!(store.get_user("u1").await.unwrap(), None);

    let mut admin = user("u2", "root", 100);
    admin.team = None;
    admin.email = None;
    admin.role = "admin".into();
    let a = store.create_user(&user("u1", "alice", 200)).await.unwrap();
    let r = store.create_user(&admin).await.unwrap();
    assert_eq!(a.disabled_at, None);
    assert_eq!(a.email.as_deref(), Some("alice@example.com"));
    assert_eq!(store.get_user("u1").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_user("u2").await.unwrap(), Some(r.clone()));
    assert_eq!(r.team, None);
    assert_eq!(r.role, "admin");
    // Ordered by created_at, then id bytewise.
    store.create_user(&user("U3", "bob", 200)).await.unwrap();
    let ids: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, ["u2", "U3", "u1"]);
}

async fn users_conflict_on_id_and_name(store: &Store) {
    store.create_user(&user("u1", "alice", 1)).await.unwrap();
    let rev = store.identity_revision().await.unwrap();
    let err = store
        .create_user(&user("u1", "other", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "id dup: {err:?}");
    let err = store
        .create_user(&user("u2", "alice", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "name dup: {err:?}");
    assert_eq!(store.identity_revision().await.unwrap(), rev);
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

async fn disable_user_twice_and_unknown(store: &Store) {
    store.create_user(&user("u1", "alice", 1)).await.unwrap();
    store.create_user(&user("u2", "bob", 1)).await.unwrap();
    let r0 = store.identity_revision().await.unwrap();
    assert!(store.disable_user("u1", 500).await.unwrap());
    let r1 = store.identity_revision().await.unwrap();
    assert!(r1 > r0, "disable bumps");
    assert!(store.disable_user("u1", 900).await.unwrap());
    assert!(!store.disable_user("nope", 900).await.unwrap());
    assert_eq!(
        store.identity_revision().await.unwrap(),
        r1,
        "no-ops do not bump"
    );
    let u1 = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!(u1.disabled_at, Some(500), "first disable time kept");
    assert_eq!(
        store.get_user("u2").await.unwrap().unwrap().disabled_at,
        None
    );
}

async fn teams_create_list_conflict(store: &Store) {
    assert!(store.list_teams().await.unwrap().is_empty());
    let r0 = store.identity_revision().await.unwrap();
    let t = store
        .create_team("payments", "Payments squad", 10)
        .await
        .unwrap();
    assert_eq!(
        t,
        TeamRecord {
            name: "payments".into(),
            description: "Payments squad".into(),
            created_at: 10
        }
    );
    let r1 = store.identity_revision().await.unwrap();
    assert!(r1 > r0, "team create bumps");
    store.create_team("Search", "", 5).await.unwrap();
    store.create_team("ads", "", 20).await.unwrap();
    let err = store
        .create_team("payments", "again", 30)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let names: Vec<String> = store
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["Search", "ads", "payments"], "bytewise order");
    assert_eq!(store.list_teams().await.unwrap()[2], t);
    // Creating users bumps the same counter; keys do not.
    let r2 = store.identity_revision().await.unwrap();
    store.create_user(&user("u1", "alice", 1)).await.unwrap();
    let r3 = store.identity_revision().await.unwrap();
    assert!(r3 > r2);
    store.create_key(&common::new_key("k1", 'a')).await.unwrap();
    assert_eq!(store.identity_revision().await.unwrap(), r3);
}

/// A database created by an older Portcullis (migration 0001 only) is
/// migrated on open: existing keys become team-less developers, new tables
/// and revision rows exist, and the append-only tables refuse changes.
async fn migrates_from_0001_only(url: &str) {
    let sqlite = url.starts_with("sqlite:");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(if sqlite { "sqlite" } else { "postgres" });
    let mut old = Migrator::new(dir.as_path()).await.unwrap();
    let only_first: Vec<_> = old
        .migrations
        .iter()
        .filter(|m| m.version == 1)
        .cloned()
        .collect();
    assert_eq!(only_first.len(), 1);
    old.migrations = Cow::Owned(only_first);
    let insert_old_key = "INSERT INTO api_keys (id, name, prefix, hash, models, created_at) \
                          VALUES ('legacy', 'legacy key', 'pk-l', 'h-legacy', '[\"*\"]', 7)";
    if sqlite {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
            .await
            .unwrap();
        old.run(&pool).await.unwrap();
        sqlx::query(insert_old_key).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        old.run(&pool).await.unwrap();
        sqlx::query(insert_old_key).execute(&pool).await.unwrap();
        pool.close().await;
    }

    let store = Store::connect(url).await.unwrap();
    let legacy = store.get_key("legacy").await.unwrap().unwrap();
    assert_eq!(legacy.role, "developer");
    assert_eq!((legacy.team, legacy.owner), (None, None));
    assert_eq!(legacy.models, ["*"]);
    assert_eq!(store.policy_revision().await.unwrap(), 0);
    assert_eq!(store.identity_revision().await.unwrap(), 0);
    assert_eq!(store.policy_state().await.unwrap(), Default::default());
    let v = store
        .append_policy_version("a: 1", "h", "me", "", 1)
        .await
        .unwrap();
    assert_eq!(v, 1);
    store.create_team("t", "", 1).await.unwrap();
    store.close().await;

    // Reopening an up-to-date database is a no-op; the data is kept.
    let store = Store::connect(url).await.unwrap();
    assert_eq!(store.list_teams().await.unwrap().len(), 1);
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
    store.close().await;

    // Defence in depth: the database itself refuses to rewrite history.
    let forbidden = [
        "UPDATE policy_versions SET document = 'x'",
        "DELETE FROM policy_versions",
        "UPDATE audit_log SET actor = 'x'",
        "DELETE FROM audit_log",
    ];
    let store = Store::connect(url).await.unwrap();
    store
        .append_audit(&portcullis_store::NewAuditEntry {
            at: 1,
            actor: "a".into(),
            action: "x".into(),
            target: "t".into(),
            outcome: "ok".into(),
            detail: serde_json::json!({}),
        })
        .await
        .unwrap();
    store.close().await;
    for sql in forbidden {
        let refused = if sqlite {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let r = sqlx::query(sql).execute(&pool).await;
            pool.close().await;
            r.is_err()
        } else {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let r = sqlx::query(sql).execute(&pool).await;
            pool.close().await;
            r.is_err()
        };
        assert!(refused, "`{sql}` must be refused");
    }
}

both_backends!(
    users_create_get_list,
    users_conflict_on_id_and_name,
    disable_user_twice_and_unknown,
    teams_create_list_conflict,
);

both_backends_url!(migrates_from_0001_only);
