//! The `logs` and `reports` sections: defaults, parsing, and every problem with its path.

use portcullis_config::{load_str, ReportFormat};
use std::time::Duration;

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn defaults_keep_request_logs_thirty_days_and_schedule_nothing() {
    let c = load_str("", &no_env).unwrap().config;
    assert!(c.logs.enabled);
    assert_eq!(c.logs.retention.0, Duration::from_secs(30 * 86_400));
    assert_eq!(c.logs.queue, 65_536);
    assert!(c.reports.compliance.is_none());
}

#[test]
fn logs_and_a_report_schedule_parse() {
    let yaml = "logs: {enabled: false, retention: 90d, queue: 1000}\n\
                reports:\n  compliance: {every: 24h, dir: ./reports, format: csv}\n";
    let c = load_str(yaml, &no_env).unwrap().config;
    assert!(!c.logs.enabled);
    assert_eq!(c.logs.retention.0, Duration::from_secs(90 * 86_400));
    assert_eq!(c.logs.queue, 1000);
    let schedule = c.reports.compliance.unwrap();
    assert_eq!(schedule.every.0, Duration::from_secs(86_400));
    assert_eq!(schedule.dir.to_str(), Some("./reports"));
    assert_eq!(schedule.format, ReportFormat::Csv);
    let html = load_str("reports: {compliance: {every: 1h, dir: r}}", &no_env).unwrap();
    assert_eq!(
        html.config.reports.compliance.unwrap().format,
        ReportFormat::Html
    );
}

#[test]
fn bad_values_are_reported_with_their_paths() {
    let yaml = "logs: {retention: 10s, queue: 0, colour: red}\n\
                reports: {compliance: {every: 30s, dir: '', format: pdf}}\n";
    let err = load_str(yaml, &no_env).unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert!(paths.contains(&"logs.colour"), "{err}");
    assert!(paths.contains(&"reports.compliance.format"), "{err}");
    let yaml = "logs: {retention: 10s, queue: 0}\n\
                reports: {compliance: {every: 30s, dir: ''}}\n";
    let err = load_str(yaml, &no_env).unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "logs.retention",
            "logs.queue",
            "reports.compliance.every",
            "reports.compliance.dir"
        ],
        "{err}"
    );
}
