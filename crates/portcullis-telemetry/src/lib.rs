//! portcullis-telemetry
