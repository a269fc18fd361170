//! Profile parsing and validation: every problem is reported with its path.

use portcullis_guard::{Action, CompiledProfile, Direction, ProfileDef};
use serde_json::json;

#[test]
fn every_problem_has_a_path() {
    let err = ProfileDef::from_value(json!({
        "detectors": {
            "emial": {"action": "redact"},
            "email": {"action": "log", "restore": true},
            "jwt": {"action": "block", "direction": "input", "output_action": "redact"}
        },
        "prompt_injection": {"action": "block", "threshold": 0, "extra_phrases": [" "]},
        "denied_topics": [{"id": "t", "words": []}],
        "custom": [
            {"id": "x", "regex": "(unclosed", "action": "redact"},
            {"id": "x", "words": ["a"], "action": "log"},
            {"id": "both", "regex": "a", "words": ["b"], "action": "log"},
            {"id": "email", "regex": "a*", "action": "log"}
        ],
        "max_prompt_tokens": 0
    }))
    .unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "detectors.email.restore",
            "detectors.emial",
            "detectors.jwt.output_action",
            "prompt_injection.threshold",
            "prompt_injection.extra_phrases[0]",
            "denied_topics[0].words",
            "custom[0].regex",
            "custom[1].id",
            "custom[2]",
            "custom[3].id",
            "custom[3].regex",
            "max_prompt_tokens",
        ]
    );
    assert!(
        err.to_string().contains("custom[1].id: duplicate id"),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_rejected() {
    let err =
        ProfileDef::from_value(json!({"detectors": {"email": {"action": "redact", "mode": 1}}}))
            .unwrap_err();
    assert!(err.to_string().contains("unknown field `mode`"), "{err}");
    assert!(ProfileDef::from_value(json!({"detector": {}})).is_err());
    assert!(ProfileDef::from_value(json!({"detectors": {"email": {"action": "drop"}}})).is_err());
}

#[test]
fn default_profile_actions() {
    let def = ProfileDef::default_profile();
    def.validate().unwrap();
    let aws = &def.detectors["aws_access_key"];
    assert_eq!(aws.action_for(Direction::Input), Some(Action::Block));
    assert_eq!(aws.action_for(Direction::Output), Some(Action::Redact));
    assert_eq!(
        def.detectors["email"].action_for(Direction::Output),
        Some(Action::Redact)
    );
    // Round trip through JSON (the policy document stores it as a JSON value).
    let back = ProfileDef::from_value(serde_json::to_value(&def).unwrap()).unwrap();
    assert_eq!(back, def);

    let p = CompiledProfile::default_profile();
    let key = "AKIAIOSFODNN7EXAMPLE";
    let input = p.scan_text(&format!("my key is {key}"), Direction::Input);
    assert_eq!(
        input.blocked.map(|f| f.rule_id.to_string()).as_deref(),
        Some("aws_access_key")
    );
    assert!(input.redacted.is_none());
    let output = p.scan_text(&format!("use {key}"), Direction::Output);
    assert_eq!(output.redacted.as_deref(), Some("use [AWS_ACCESS_KEY_1]"));
}

#[test]
fn limits() {
    let def = ProfileDef::from_value(json!({"max_prompt_tokens": 100, "max_images": 0})).unwrap();
    let p = CompiledProfile::compile(&def).unwrap();
    assert_eq!(p.max_prompt_tokens(), Some(100));
    assert!(p.check_limits(Some(100), 0).is_ok());
    assert_eq!(
        p.check_limits(Some(101), 0).unwrap_err().rule_id(),
        "max_prompt_tokens"
    );
    assert_eq!(p.check_limits(None, 1).unwrap_err().rule_id(), "max_images");
}
