//! Opening stores: URL handling, SQLite file setup, error messages without
//! passwords, and the PostgreSQL per-test schema helper.

use portcullis_store::{testing, NewKey, Store, StoreError};

const PG_SUITE: &str = "PostgreSQL store tests";
const PASSWORD: &str = "hunter2-S3cr3t";

fn key(id: &str) -> NewKey {
    NewKey {
        id: id.into(),
        name: id.into(),
        prefix: "pk".into(),
        hash: format!("{id:0>64}"),
        models: vec!["*".into()],
        created_at: 1,
        expires_at: None,
        team: None,
        role: "developer".into(),
        owner: None,
    }
}

fn assert_no_password(err: &StoreError) {
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
    assert!(!shown.contains("hunter2"), "password leaked: {shown}");
}

#[tokio::test]
async fn connect_creates_missing_directories_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a/b/c/portcullis.db");
    let store = Store::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert!(db.is_file(), "database file created");
    store.create_key(&key("k1")).await.unwrap();
    let wal = dir.path().join("a/b/c/portcullis.db-wal");
    assert!(wal.exists(), "WAL journal in use");
    store.close().await;

    // Reopening an existing, migrated file works and keeps the data.
    let again = Store::connect(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    assert_eq!(again.list_keys().await.unwrap().len(), 1);
    again.close().await;
}

#[tokio::test]
async fn concurrent_first_open_of_a_fresh_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("race.db").display());
    let (a, b, c) = tokio::join!(
        Store::connect(&url),
        Store::connect(&url),
        Store::connect(&url)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    a.create_key(&key("k1")).await.unwrap();
    assert_eq!(b.keys_revision().await.unwrap(), 1);
    assert_eq!(c.list_keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.create_key(&key("k1")).await.unwrap();
    assert_eq!(store.list_keys().await.unwrap().len(), 1);
    assert_eq!(store.keys_revision().await.unwrap(), 1);
}

#[tokio::test]
async fn bad_url_scheme_is_a_clear_error() {
    for url in [
        "mysql://root:hunter2-S3cr3t@db/app",
        "portcullis.db",
        "",
        "http://x",
    ] {
        let err = Store::connect(url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedUrl { .. }),
            "{url}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("unsupported store URL"), "{msg}");
        assert!(
            msg.contains("sqlite://") && msg.contains("postgres://"),
            "{msg}"
        );
        assert_no_password(&err);
    }
}

#[tokio::test]
async fn sqlite_directory_that_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let url = format!("sqlite://{}", file.join("sub/db.sqlite").display());
    let err = Store::connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot create directory"), "{err}");
}

#[tokio::test]
async fn password_never_in_invalid_postgres_url_error() {
    let url = format!("postgres://admin:{PASSWORD}@127.0.0.1:notaport/app");
    let err = Store::connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("admin:***@127.0.0.1"), "{err}");
    assert_no_password(&err);
}

#[tokio::test]
async fn password_never_in_postgres_connect_error() {
    let Some(base) = testing::postgres_base_url(PG_SUITE) else {
        return;
    };
    // Same server, a database that does not exist: the server answers with
    // an error, after the password was sent (trust auth accepts any).
    let rest = base.split_once("://").unwrap().1;
    let host = rest.rsplit('@').next().unwrap();
    let host = host.split('/').next().unwrap();
    for url in [
        format!("postgres://postgres:{PASSWORD}@{host}/portcullis_no_such_db"),
        format!("postgresql://{host}/no_such_db?user=postgres&password={PASSWORD}"),
    ] {
        let err = Store::connect(&url).await.unwrap_err();
        assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains("postgres store"), "{err}");
        assert_no_password(&err);
    }
}

#[tokio::test]
async fn postgres_schemas_isolate_tests() {
    let Some(base) = testing::postgres_base_url(PG_SUITE) else {
        return;
    };
    let (url_a, schema_a) = testing::postgres_schema_url(&base).await.unwrap();
    let (url_b, schema_b) = testing::postgres_schema_url(&base).await.unwrap();
    assert_ne!(schema_a.schema(), schema_b.schema());
    assert!(schema_a.schema().starts_with("portcullis_test_"));

    let a = Store::connect(&url_a).await.unwrap();
    let b = Store::connect(&url_b).await.unwrap();
    a.create_key(&key("k1")).await.unwrap();
    assert_eq!(a.list_keys().await.unwrap().len(), 1);
    assert!(b.list_keys().await.unwrap().is_empty());
    assert_eq!(b.keys_revision().await.unwrap(), 0);
    a.close().await;
    b.close().await;

    // Explicit drop removes the schema; dropping the guard does too.
    let name_a = schema_a.schema().to_string();
    let name_b = schema_b.schema().to_string();
    schema_a.drop_schema().await.unwrap();
    drop(schema_b);
    for name in [name_a, name_b] {
        let err = Store::connect(&schema_url(&base, &name)).await.unwrap_err();
        // With the schema gone, search_path is empty: migrating cannot
        // create tables.
        assert!(matches!(err, StoreError::Migrate { .. }), "{name}: {err:?}");
    }
}

fn schema_url(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}
