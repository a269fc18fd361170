//! Store errors and the URL redaction that keeps credentials out of them.

use std::path::PathBuf;

/// Everything that can go wrong in the store.
///
/// Messages are meant to be shown to operators as-is (CLI output, startup
/// logs), so they name the store URL — always with any password redacted —
/// and never carry a password in either `Display` or `Debug`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend the store knows, so nothing was opened.
    #[error(
        "unsupported store URL `{url}`: expected `sqlite://<path>`, `sqlite::memory:`, \
         `postgres://...` or `postgresql://...`"
    )]
    UnsupportedUrl {
        /// The URL with credentials redacted.
        url: String,
    },

    /// The URL has a known scheme but cannot be parsed.
    #[error("invalid store URL `{url}`: {message}")]
    InvalidUrl {
        /// The URL with credentials redacted.
        url: String,
        /// Why parsing failed (credentials scrubbed).
        message: String,
    },

    /// The directory that should hold the SQLite file could not be created.
    #[error("cannot create directory `{}` for the SQLite store: {source}", path.display())]
    CreateDir {
        /// The directory we tried to create.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// The database could not be opened or reached.
    #[error("cannot connect to the {backend} store at `{url}`: {message}")]
    Connect {
        /// "sqlite" or "postgres".
        backend: &'static str,
        /// The URL with credentials redacted.
        url: String,
        /// The driver's explanation (credentials scrubbed).
        message: String,
    },

    /// The schema migrations could not be applied (for example the database
    /// was migrated by a newer Portcullis, or a migration failed).
    #[error("cannot migrate the {backend} store at `{url}`: {message}")]
    Migrate {
        /// "sqlite" or "postgres".
        backend: &'static str,
        /// The URL with credentials redacted.
        url: String,
        /// The migrator's explanation (credentials scrubbed).
        message: String,
    },

    /// A write collided with existing data (duplicate id, hash or name).
    #[error("conflict: {0}")]
    Conflict(String),

    /// The operation names something that does not exist (for example
    /// activating a policy version that was never appended).
    #[error("not found: {0}")]
    NotFound(String),

    /// The caller passed a value the store refuses to write (for example an
    /// audit outcome other than `ok`, `denied` or `error`).
    #[error("invalid input: {0}")]
    Invalid(String),

    /// A stored value could not be decoded (for example a malformed JSON
    /// column written by hand).
    #[error("invalid data in the store: {0}")]
    Corrupt(String),

    /// A query failed after the store was opened. sqlx query errors do not
    /// contain the connection URL.
    #[error("store query failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// Maps a failed write to [`StoreError::Conflict`] when it violated a unique
/// constraint, so callers (the CLI, the admin API) can answer 409 instead of 500.
pub(crate) fn map_write_error(err: sqlx::Error, what: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
            return StoreError::Conflict(format!("{what} already exists ({})", db.message()));
        }
    }
    StoreError::Database(err)
}

/// Redacts credentials from a store URL so it can be logged or shown:
/// `postgres://user:secret@host/db?password=x` becomes
/// `postgres://user:***@host/db?password=***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_query(url);
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(&redact_query(&rest[authority_end..]));
    out
}

/// Replaces the value of any `password=` query parameter with `***`.
fn redact_query(s: &str) -> String {
    let Some(q) = s.find('?') else {
        return s.to_string();
    };
    let (head, query) = s.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{head}{}", parts.join("&"))
}

/// The secrets present in a URL (userinfo password and `password=` query
/// values, both raw and percent-decoded), used to scrub driver messages.
fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            if let Some((_, pw)) = authority[..at].split_once(':') {
                secrets.push(pw.to_string());
            }
        }
    }
    if let Some(q) = url.find('?') {
        for pair in url[q + 1..].split(['&', '#']) {
            if let Some((k, v)) = pair.split_once('=') {
                if k.eq_ignore_ascii_case("password") {
                    secrets.push(v.to_string());
                }
            }
        }
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    secrets.retain(|s| !s.is_empty());
    // Longest first so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// Removes every secret of `url` from `message` (defence in depth: drivers
/// should not echo passwords, but a future one might).
pub(crate) fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_string();
    for secret in url_secrets(url) {
        out = out.replace(&secret, "***");
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let (hi, lo) = (bytes[i + 1], bytes[i + 2]);
            if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() {
                out.push(hex_value(hi) << 4 | hex_value(lo));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(
            redact_url("postgres://user:s3cret@db.example:5432/app"),
            "postgres://user:***@db.example:5432/app"
        );
        assert_eq!(
            redact_url("postgresql://user@db/app"),
            "postgresql://user@db/app"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss@host/db"),
            "postgres://u:***@host/db"
        );
    }

    #[test]
    fn redacts_password_query_parameter() {
        assert_eq!(
            redact_url("postgres://host/db?user=a&password=hunter2&sslmode=require"),
            "postgres://host/db?user=a&password=***&sslmode=require"
        );
    }

    #[test]
    fn scrubs_raw_and_decoded_passwords() {
        let url = "postgres://u:p%40ss@host/db";
        assert_eq!(scrub("bad p%40ss and p@ss", url), "bad *** and ***");
    }
}
