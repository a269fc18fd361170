//! The RBAC matrix: every built-in role x every admin endpoint (and the data-plane chat
//! call), the expected status written out explicitly, asserted over real HTTP against an
//! in-process gateway. Callers sit in team-a; "other" targets belong to team-b.

mod common;

use common::{add_identity_key, expect_error, Harness};
use portcullis_store::{AuditQuery, NewUser};

const ROLES: [&str; 5] = ["admin", "security-admin", "auditor", "developer", "viewer"];

const POLICY: &str =
    "version: 1\nteams:\n  team-a:\n    models: [gpt-test]\n  team-b:\n    models: [gpt-test]\n";

/// One cell row: request (method, path, body) and the status per role, in the order of
/// [`ROLES`]: admin, security-admin, auditor, developer, viewer.
/// Placeholders: `{own}` a team-a key owned by the caller, `{other}` a team-b key,
/// `{user}` a team-a user.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, Option<&str>, [u16; 5])] = &[
    //                                                                          adm  sec  aud  dev  view
    ("GET",  "/api/v1/me",                      None,                          [200, 200, 200, 200, 200]),
    ("GET",  "/api/v1/keys",                    None,                          [200, 200, 200, 200, 200]),
    ("GET",  "/api/v1/keys?team=team-b",        None,                          [200, 200, 200, 403, 403]),
    ("POST", "/api/v1/keys",                    Some(r#"{"name":"k","role":"developer"}"#), [201, 403, 403, 201, 403]),
    ("POST", "/api/v1/keys",                    Some(r#"{"name":"k","role":"viewer"}"#),    [201, 201, 403, 403, 403]),
    // Grant escalation: nobody but an admin can mint an admin key.
    ("POST", "/api/v1/keys",                    Some(r#"{"name":"k","role":"admin"}"#),     [201, 403, 403, 403, 403]),
    // Cross-team creation.
    ("POST", "/api/v1/keys",                    Some(r#"{"name":"k","role":"viewer","team":"team-b"}"#), [201, 201, 403, 403, 403]),
    ("POST", "/api/v1/keys/{own}/revoke",       None,                          [200, 200, 403, 200, 403]),
    ("POST", "/api/v1/keys/{other}/revoke",     None,                          [200, 200, 403, 403, 403]),
    ("POST", "/api/v1/keys/{own}/rotate",       None,                          [200, 200, 403, 200, 403]),
    ("POST", "/api/v1/keys/{other}/rotate",     None,                          [200, 200, 403, 403, 403]),
    ("POST", "/api/v1/keys/{own}/expire",       Some(r#"{"at": 4102444800}"#), [200, 200, 403, 200, 403]),
    ("POST", "/api/v1/keys/{other}/expire",     Some(r#"{"at": null}"#),       [200, 200, 403, 403, 403]),
    ("GET",  "/api/v1/users",                   None,                          [200, 200, 200, 403, 403]),
    ("POST", "/api/v1/users",                   Some(r#"{"name":"{fresh}","role":"viewer"}"#), [201, 403, 403, 403, 403]),
    ("POST", "/api/v1/users/{user}/disable",    None,                          [200, 403, 403, 403, 403]),
    ("GET",  "/api/v1/teams",                   None,                          [200, 200, 200, 403, 200]),
    ("POST", "/api/v1/teams",                   Some(r#"{"name":"{fresh}"}"#), [201, 403, 403, 403, 403]),
    ("GET",  "/api/v1/roles",                   None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/policies",                None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/policies/active",         None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/policies/1",              None,                          [200, 200, 200, 403, 403]),
    ("POST", "/api/v1/policies/validate",       Some(POLICY),                  [200, 200, 200, 403, 403]),
    ("POST", "/api/v1/policies/diff",           Some(POLICY),                  [200, 200, 200, 403, 403]),
    ("POST", "/api/v1/policies",                Some(POLICY),                  [201, 201, 403, 403, 403]),
    ("POST", "/api/v1/policies/1/rollback",     None,                          [200, 200, 403, 403, 403]),
    // No shadow version is running: allowed callers get 404, refused ones 403.
    ("GET",  "/api/v1/policies/shadow",         None,                          [404, 404, 404, 403, 403]),
    ("POST", "/api/v1/policies/shadow/promote", None,                          [404, 404, 403, 403, 403]),
    ("POST", "/api/v1/policies/shadow/discard", None,                          [404, 404, 403, 403, 403]),
    ("GET",  "/api/v1/usage",                   None,                          [200, 200, 200, 200, 200]),
    ("GET",  "/api/v1/usage?team=team-a",       None,                          [200, 200, 200, 403, 200]),
    ("GET",  "/api/v1/usage?team=team-b",       None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/usage?key_id={other}",    None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/audit",                   None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/logs",                    None,                          [200, 403, 200, 403, 403]),
    ("GET",  "/api/v1/reports/compliance?format=json", None,                   [200, 403, 200, 403, 403]),
    ("GET",  "/api/v1/audit/config",            None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/alerts",                  None,                          [200, 200, 200, 403, 403]),
    ("GET",  "/api/v1/openapi.json",            None,                          [200, 200, 200, 200, 200]),
    // The data plane: models:invoke under the active policy.
    ("CHAT", "gpt-test",                        None,                          [200, 403, 403, 200, 403]),
];

async fn setup() -> Harness {
    let h = Harness::start().await;
    h.apply_policy(POLICY, false).await;
    h
}

#[tokio::test]
async fn every_role_against_every_endpoint() {
    let h = setup().await;
    let mut failures = Vec::new();
    let mut fresh = 0;
    for (i, role) in ROLES.iter().enumerate() {
        let owner = format!("u-{role}");
        let (caller_id, secret) =
            add_identity_key(&h.store, Some("team-a"), role, Some(&owner)).await;
        for (method, path, body, expected) in MATRIX {
            // Fresh targets per cell, so earlier cells (revoke, disable) change nothing here.
            let (own, _) =
                add_identity_key(&h.store, Some("team-a"), "developer", Some(&owner)).await;
            let (other, _) =
                add_identity_key(&h.store, Some("team-b"), "developer", Some("u-b")).await;
            fresh += 1;
            let user_id = format!("user_t{fresh}");
            h.store
                .create_user(&NewUser {
                    id: user_id.clone(),
                    name: format!("user-{fresh}"),
                    email: None,
                    team: Some("team-a".into()),
                    role: "viewer".into(),
                    created_at: 0,
                })
                .await
                .unwrap();
            h.gateway.state.refresh_keys().await.unwrap();
            let fill = |s: &str| {
                s.replace("{own}", &own)
                    .replace("{other}", &other)
                    .replace("{user}", &user_id)
                    .replace("{fresh}", &format!("fresh-{fresh}"))
            };
            let status = if *method == "CHAT" {
                h.chat_as(&secret, path).await.status().as_u16()
            } else {
                let body = body.map(fill);
                let r = h.admin(&secret, method, &fill(path), body.as_deref()).await;
                let status = r.status().as_u16();
                if status == 403 {
                    let code = if *method == "CHAT" {
                        "policy_denied"
                    } else {
                        "permission_denied"
                    };
                    expect_error(r, 403, code).await;
                }
                status
            };
            if status != expected[i] {
                failures.push(format!(
                    "{role:>14} {method} {path} {body:?}: got {status}, want {}",
                    expected[i]
                ));
            }
        }
        let denied = h
            .store
            .list_audit(&AuditQuery {
                actor: Some(caller_id.clone()),
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let denials = MATRIX
            .iter()
            .filter(|row| row.0 != "CHAT" && row.3[i] == 403)
            .count();
        let logged = denied.iter().filter(|e| e.outcome == "denied").count();
        assert_eq!(
            logged, denials,
            "{role}: every refused admin call is audited"
        );
    }
    assert!(
        failures.is_empty(),
        "RBAC matrix mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn team_isolation_hides_other_teams_keys_and_usage() {
    let h = setup().await;
    let (_, a_dev) = add_identity_key(&h.store, Some("team-a"), "developer", Some("alice")).await;
    let (a_own, _) = add_identity_key(&h.store, Some("team-a"), "developer", Some("alice")).await;
    let (a_mate, _) = add_identity_key(&h.store, Some("team-a"), "developer", Some("bob")).await;
    let (b_key, b_secret) =
        add_identity_key(&h.store, Some("team-b"), "developer", Some("carol")).await;
    let (_, admin) = add_identity_key(&h.store, None, "admin", Some("root")).await;
    h.gateway.state.refresh_keys().await.unwrap();
    // Usage of the team-b key.
    assert_eq!(h.chat_as(&b_secret, "gpt-test").await.status(), 200);

    let list = |key: String| {
        let h = &h;
        async move {
            let r = h.admin(&key, "GET", "/api/v1/keys", None).await;
            assert_eq!(r.status(), 200);
            let body: serde_json::Value = r.json().await.unwrap();
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let seen = list(a_dev.clone()).await;
    assert!(seen.contains(&a_own), "own keys are listed");
    assert!(
        !seen.contains(&a_mate),
        "a teammate's keys are not a developer's"
    );
    assert!(
        !seen.contains(&b_key),
        "team-b keys are invisible to team-a"
    );
    let all = list(admin.clone()).await;
    assert!(all.contains(&b_key) && all.contains(&a_mate));
    let all_json = h
        .admin(&admin, "GET", "/api/v1/keys", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !all_json.contains("pcl_") || !all_json.contains(&b_secret),
        "no secrets"
    );
    assert!(!all_json.contains("\"hash\""), "no key hashes in listings");

    let r = h
        .admin(
            &a_dev,
            "POST",
            &format!("/api/v1/keys/{b_key}/revoke"),
            None,
        )
        .await;
    expect_error(r, 403, "permission_denied").await;
    assert!(h
        .store
        .get_key(&b_key)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    let r = h
        .admin(
            &a_dev,
            "POST",
            &format!("/api/v1/keys/{a_mate}/revoke"),
            None,
        )
        .await;
    expect_error(r, 403, "permission_denied").await;

    // Usage: the team-b row is recorded (the writer flushes within ~0.5 s), visible to the
    // admin and never to the team-a developer.
    let mut rows = 0;
    for _ in 0..40 {
        let r = h
            .admin(&admin, "GET", "/api/v1/usage?team=team-b", None)
            .await;
        let body: serde_json::Value = r.json().await.unwrap();
        rows = body["data"].as_array().unwrap().len();
        if rows > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(rows, 1, "admin sees team-b usage");
    let r = h.admin(&a_dev, "GET", "/api/v1/usage", None).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(!body.to_string().contains(&b_key), "{body}");
    let r = h
        .admin(&a_dev, "GET", "/api/v1/usage?team=team-b", None)
        .await;
    expect_error(r, 403, "permission_denied").await;
}

#[tokio::test]
async fn default_deny_on_the_admin_listener() {
    let h = setup().await;
    let anon = |path: &str| h.client.get(h.admin_url(path)).send();
    assert_eq!(anon("/healthz").await.unwrap().status(), 200);
    assert_eq!(anon("/readyz").await.unwrap().status(), 200);
    for path in [
        "/api/v1/me",
        "/api/v1/keys",
        "/api/v1/policies",
        "/api/v1/nope",
        "/api/v1/openapi.json",
    ] {
        let r = anon(path).await.unwrap();
        expect_error(r, 401, "invalid_api_key").await;
    }
    let r = h.admin("pcl_not_a_key", "GET", "/api/v1/me", None).await;
    expect_error(r, 401, "invalid_api_key").await;
}

#[tokio::test]
async fn created_keys_work_and_secrets_are_shown_once() {
    let h = setup().await;
    let (_, admin) = add_identity_key(&h.store, Some("team-a"), "admin", Some("root")).await;
    h.gateway.state.refresh_keys().await.unwrap();
    let r = h
        .admin(
            &admin,
            "POST",
            "/api/v1/keys",
            Some(r#"{"name":"svc","role":"developer","expires_in":"30d"}"#),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_string();
    assert!(created["expires_at"].as_i64().unwrap() > 0);
    assert_eq!(
        h.chat_as(&secret, "gpt-test").await.status(),
        200,
        "usable at once"
    );
    let id = created["id"].as_str().unwrap();
    let r = h
        .admin(&admin, "POST", &format!("/api/v1/keys/{id}/rotate"), None)
        .await;
    let rotated: serde_json::Value = r.json().await.unwrap();
    let new_secret = rotated["key"].as_str().unwrap();
    assert_eq!(
        h.chat_as(&secret, "gpt-test").await.status(),
        401,
        "old key refused"
    );
    assert_eq!(h.chat_as(new_secret, "gpt-test").await.status(), 200);
    let list = h
        .admin(&admin, "GET", "/api/v1/keys", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&secret) && !list.contains(new_secret));
    let r = h
        .admin(
            &admin,
            "POST",
            "/api/v1/keys",
            Some(r#"{"name":"x","role":"root"}"#),
        )
        .await;
    expect_error(r, 400, "invalid_request").await;
}
