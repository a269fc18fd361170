//! Shared by the store test files: the both-backends harness and fixtures.
//!
//! Each test body is written once as an async fn taking the store (or the
//! database URL); `both_backends!` / `both_backends_url!` generate one
//! `#[tokio::test]` per backend: SQLite in a temp dir, and PostgreSQL in a
//! fresh schema per test (from PORTCULLIS_TEST_POSTGRES_URL; skipped with a
//! `SKIPPED:` line when unset).

#![allow(dead_code)]

use portcullis_store::NewKey;

pub const PG_SUITE: &str = "PostgreSQL store tests";

/// A key with a 64-char hash made of `hash_char`, no team, role `developer`.
pub fn new_key(id: &str, hash_char: char) -> NewKey {
    NewKey {
        id: id.to_string(),
        name: format!("key {id}"),
        prefix: format!("pk-{id}"),
        hash: std::iter::repeat_n(hash_char, 64).collect(),
        models: vec![],
        created_at: 1_700_000_000,
        expires_at: None,
        team: None,
        role: "developer".into(),
        owner: None,
    }
}

/// One test per backend for bodies `async fn(&Store)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("store.db").display());
                    let store = portcullis_store::Store::connect(&url).await.unwrap();
                    assert_eq!(store.backend(), "sqlite");
                    super::$name(&store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(base) =
                        portcullis_store::testing::postgres_base_url($crate::common::PG_SUITE)
                    else {
                        return;
                    };
                    let (url, schema) =
                        portcullis_store::testing::postgres_schema_url(&base).await.unwrap();
                    let store = portcullis_store::Store::connect(&url).await.unwrap();
                    assert_eq!(store.backend(), "postgres");
                    super::$name(&store).await;
                    store.close().await;
                    schema.drop_schema().await.unwrap();
                }
            )*
        }
    };
}

/// One test per backend for bodies `async fn(&str)` that open the store (or
/// raw pools) themselves from the URL of an empty database; they must close
/// everything they open.
#[macro_export]
macro_rules! both_backends_url {
    ($($name:ident),* $(,)?) => {
        mod sqlite_url {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("store.db").display());
                    super::$name(&url).await;
                }
            )*
        }
        mod postgres_url {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(base) =
                        portcullis_store::testing::postgres_base_url($crate::common::PG_SUITE)
                    else {
                        return;
                    };
                    let (url, schema) =
                        portcullis_store::testing::postgres_schema_url(&base).await.unwrap();
                    super::$name(&url).await;
                    schema.drop_schema().await.unwrap();
                }
            )*
        }
    };
}
