//! The one error type of storyflow and the one place where each failure is
//! given its contract code, HTTP status and command-line exit code.
//!
//! Messages are lowercase, without a trailing period, name the id involved,
//! and leave the next step to `hint()`. `Internal` carries the real cause for
//! the log only: clients see a generic message and a request id.

use serde_json::{Value, json};

use crate::run::{BibleEntryId, FailureCode, InvalidId, RunId, StoryId};

/// Exit codes of the command line (see the contract's Command line section).
pub mod exit {
    pub const OK: u8 = 0;
    pub const PROBLEMS_FOUND: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const DATABASE: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("story {0} does not exist")]
    StoryNotFound(StoryId),
    #[error("run {0} does not exist")]
    RunNotFound(RunId),
    #[error("story {story} has no bible entry {entry}")]
    BibleEntryNotFound { story: StoryId, entry: BibleEntryId },
    #[error("chapter {chapter} of story {story} has no version {version}")]
    VersionNotFound {
        story: StoryId,
        chapter: u32,
        version: u32,
    },
    #[error("no route for {method} {path}")]
    NotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static [&'static str],
    },
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("chapter {chapter} of story {story} is locked")]
    ChapterLocked { story: StoryId, chapter: u32 },
    #[error("{message}")]
    Conflict {
        message: String,
        details: Value,
        hint: String,
    },
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json, not {0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{message}")]
    Forbidden { message: String, hint: String },
    #[error("the database is busy")]
    DatabaseBusy,
    /// A bounded resource (live viewers) is taken; try again later.
    #[error("{message}")]
    Unavailable { message: String, hint: String },
    #[error("the disk is full; nothing was saved")]
    DatabaseFull,
    /// The database file cannot be opened or is not a storyflow database.
    #[error("cannot use the database {path}: {reason}")]
    DatabaseUnusable { path: String, reason: String },
    /// A backup could not be written (before a repair, or on the timer).
    #[error("{0}")]
    BackupFailed(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// Answered by the HTTP layer before a request is routed.
    #[error("{}", .0.message())]
    Protocol(ProtocolError),
}

/// What the HTTP layer refuses before routing (a malformed head is a plain
/// `BadRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// The request did not arrive within `--http-timeout-s`.
    Timeout,
    /// An `Expect` header other than `100-continue`.
    Expectation,
    /// An HTTP version past 1.1.
    Version,
}

impl ProtocolError {
    fn message(self) -> &'static str {
        match self {
            ProtocolError::Timeout => "the request did not arrive in time",
            ProtocolError::Expectation => {
                "the Expect header asks for something this server does not do"
            }
            ProtocolError::Version => "only HTTP/1.0 and HTTP/1.1 are served",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            // The same names as the run failure codes for the same causes.
            Error::StoryNotFound(_) => FailureCode::StoryNotFound.as_str(),
            Error::RunNotFound(_) => "RUN_NOT_FOUND",
            Error::NotFound { .. }
            | Error::VersionNotFound { .. }
            | Error::BibleEntryNotFound { .. } => "NOT_FOUND",
            Error::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Error::BadRequest(_) | Error::InvalidId(_) => "BAD_REQUEST",
            Error::InvalidJson(_) => "INVALID_JSON",
            Error::Validation { .. } => "VALIDATION_FAILED",
            Error::Conflict { .. } | Error::ChapterLocked { .. } => "CONFLICT",
            Error::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Error::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Error::Unauthorized(_) => "UNAUTHORIZED",
            Error::Forbidden { .. } => "FORBIDDEN",
            Error::DatabaseBusy => "DATABASE_BUSY",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::DatabaseFull => FailureCode::DatabaseFull.as_str(),
            Error::DatabaseUnusable { .. } | Error::Internal(_) => "INTERNAL",
            Error::BackupFailed(_) => "BACKUP_FAILED",
            Error::Protocol(ProtocolError::Timeout) => "REQUEST_TIMEOUT",
            Error::Protocol(ProtocolError::Expectation) => "EXPECTATION_FAILED",
            Error::Protocol(ProtocolError::Version) => "HTTP_VERSION_NOT_SUPPORTED",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) | Error::InvalidId(_) | Error::InvalidJson(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden { .. } => 403,
            Error::StoryNotFound(_)
            | Error::RunNotFound(_)
            | Error::NotFound { .. }
            | Error::VersionNotFound { .. }
            | Error::BibleEntryNotFound { .. } => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::Conflict { .. } | Error::ChapterLocked { .. } => 409,
            Error::PayloadTooLarge { .. } => 413,
            Error::UnsupportedMediaType(_) => 415,
            Error::Validation { .. } => 422,
            Error::DatabaseBusy | Error::Unavailable { .. } => 503,
            Error::DatabaseFull => 507,
            Error::DatabaseUnusable { .. } | Error::Internal(_) | Error::BackupFailed(_) => 500,
            Error::Protocol(ProtocolError::Timeout) => 408,
            Error::Protocol(ProtocolError::Expectation) => 417,
            Error::Protocol(ProtocolError::Version) => 505,
        }
    }

    /// The command line's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::DatabaseBusy
            | Error::DatabaseFull
            | Error::DatabaseUnusable { .. }
            | Error::BackupFailed(_)
            | Error::Internal(_) => exit::DATABASE,
            _ => exit::USAGE,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::StoryNotFound(_) => "list stories with GET /api/stories or `storyflow story list`".into(),
            Error::RunNotFound(_) => "list runs with GET /api/runs or `storyflow diagnose --all`".into(),
            Error::NotFound { .. } => "the API lives under /api; see /api/openapi.json".into(),
            Error::BibleEntryNotFound { .. } => "list the story's bible with GET /api/stories/{id}/bible or `storyflow bible list`".into(),
            Error::VersionNotFound { .. } => "list the chapter's versions with GET .../chapters/{n}/versions or `storyflow chapter history`".into(),
            Error::MethodNotAllowed { allowed, .. } => format!("allowed: {}", allowed.join(", ")),
            Error::InvalidId(_) => "ids are UUIDs as returned by the API".into(),
            Error::InvalidJson(_) => "send a JSON object, for example {\"title\": \"The Storm\"}".into(),
            Error::Validation { .. } => "correct the named field and try again".into(),
            Error::PayloadTooLarge { .. } => "send a smaller body".into(),
            Error::ChapterLocked { .. } => {
                "unlock it first (PATCH the chapter with {\"locked\": false})".into()
            }
            Error::UnsupportedMediaType(_) => "set Content-Type: application/json".into(),
            Error::Unauthorized(_) => "send Authorization: Bearer <token>".into(),
            Error::Forbidden { hint, .. }
            | Error::Conflict { hint, .. }
            | Error::Unavailable { hint, .. } => hint.clone(),
            Error::DatabaseBusy => "the database is locked by another writer; try again in a moment".into(),
            Error::DatabaseFull => "free disk space, then try again".into(),
            Error::DatabaseUnusable { .. } => {
                "check the path given with --db or STORYFLOW_DB; it must be a storyflow SQLite file or not exist yet".into()
            }
            Error::Internal(_) => "the server log has the details under this request id".into(),
            Error::BackupFailed(_) => {
                "nothing was changed: storyflow backs up before every repair; fix the backup directory or free space, then try again".into()
            }
            Error::Protocol(ProtocolError::Timeout) => {
                "send the whole request within the server's --http-timeout-s".into()
            }
            Error::Protocol(ProtocolError::Expectation) => {
                "leave the Expect header out, or send Expect: 100-continue".into()
            }
            Error::Protocol(ProtocolError::Version) => "use HTTP/1.1".into(),
            Error::BadRequest(_) => return None,
        })
    }

    pub fn details(&self) -> Value {
        match self {
            Error::StoryNotFound(id) => json!({ "story_id": id }),
            Error::RunNotFound(id) => json!({ "run_id": id }),
            Error::BibleEntryNotFound { story, entry } => {
                json!({ "story_id": story, "entry_id": entry })
            }
            Error::VersionNotFound {
                story,
                chapter,
                version,
            } => json!({ "story_id": story, "chapter": chapter, "version": version }),
            Error::Validation { field, .. } => json!({ "field": field }),
            Error::Conflict { details, .. } => details.clone(),
            Error::ChapterLocked { story, chapter } => {
                json!({ "story_id": story, "chapter": chapter, "locked": true })
            }
            Error::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            Error::MethodNotAllowed { allowed, .. } => json!({ "allowed": allowed }),
            Error::InvalidId(e) => json!({ "kind": e.kind }),
            _ => json!({}),
        }
    }

    /// The contract's error body. Internal causes never reach the client.
    pub fn to_json(&self, request_id: &str) -> Value {
        let message = match self {
            Error::Internal(_) | Error::DatabaseUnusable { .. } => {
                format!("internal error (request id {request_id})")
            }
            other => other.to_string(),
        };
        let mut details = self.details();
        if self.status() >= 500 {
            details["request_id"] = json!(request_id);
        }
        let mut error = json!({
            "code": self.code(),
            "message": message,
            "status": self.status(),
            "details": details,
        });
        if let Some(hint) = self.hint() {
            error["hint"] = json!(hint);
        }
        json!({ "error": error })
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::DatabaseBusy,
            Some(ErrorCode::DiskFull) => Error::DatabaseFull,
            _ => Error::Internal(format!("sqlite: {err}")),
        }
    }
}

impl From<r2d2::Error> for Error {
    /// The pool only fails when no connection frees up in time.
    fn from(_: r2d2::Error) -> Self {
        Error::DatabaseBusy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let err = Error::Internal("sqlite: no such table: secrets".into());
        let body = err.to_json("req-1").to_string();
        assert!(!body.contains("secrets"));
        assert!(body.contains("req-1"));
        assert_eq!(err.status(), 500);
    }

    #[test]
    fn every_error_body_has_the_contract_shape() {
        let err = Error::validation("title", "must not be empty");
        let body = err.to_json("r");
        assert_eq!(body["error"]["code"], "VALIDATION_FAILED");
        assert_eq!(body["error"]["status"], 422);
        assert_eq!(body["error"]["details"]["field"], "title");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("title:")
        );
    }

    #[test]
    fn busy_and_full_sqlite_errors_keep_their_meaning() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert_eq!(Error::from(busy).code(), "DATABASE_BUSY");
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(Error::from(full).status(), 507);
    }
}
