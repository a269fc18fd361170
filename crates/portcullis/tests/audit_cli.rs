//! `portcullis audit verify|list` through the real binary: an intact chain exits 0, a record
//! edited behind the store's back (trigger dropped) exits 1 naming it; listing filters by
//! actor; `--export jsonl` writes one record per line, oldest first, with hashes.

mod common;

use common::{cli, mock_models, text, Workdir};

#[tokio::test]
async fn verify_list_export_and_tamper() {
    let work = Workdir::new();
    let yaml = format!(
        "store:\n  url: {}\n{}",
        work.store_url(),
        mock_models(&["mock-echo"])
    );
    let config = work.write("portcullis.yaml", yaml);
    let config = config.to_str().unwrap();
    let env = |user: &str| vec![("USER".to_string(), user.to_string())];
    for (user, team) in [("alice", "eng"), ("bob", "ops"), ("alice", "qa")] {
        let out = cli(&env(user), &["teams", "create", team, "--config", config]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    let out = cli(&[], &["audit", "verify", "--config", config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("audit chain intact: 3 record(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("head 3 "), "{stdout}");

    let out = cli(&[], &["audit", "list", "--config", config, "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(all[0]["id"], 3, "newest first");
    let args = ["audit", "list", "--config", config, "--since", "1h"];
    let out = cli(
        &[],
        &[&args[..], &["--actor", "cli:alice", "--json"]].concat(),
    );
    let alice: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets: Vec<&str> = alice
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["qa", "eng"]);
    let table = text(&cli(&[], &["audit", "list", "--config", config]).stdout);
    assert!(
        table.contains("cli:bob") && table.contains("team.create"),
        "{table}"
    );

    let out = cli(
        &[],
        &["audit", "list", "--config", config, "--export", "jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], 1, "oldest first");
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
    assert_eq!(lines[2]["hash"].as_str().unwrap().len(), 64);

    // An attacker with database access edits record 2.
    let pool = sqlx::SqlitePool::connect(&work.store_url()).await.unwrap();
    for sql in [
        "DROP TRIGGER audit_log_no_update",
        "UPDATE audit_log SET actor = 'cli:mallory' WHERE id = 2",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let out = cli(&[], &["audit", "verify", "--config", config]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("BROKEN at record 2"), "{stdout}");
    let out = cli(&[], &["audit", "verify", "--config", config, "--json"]);
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["first_broken"][0], 2);
    assert_eq!(verdict["records"], 3);
}
