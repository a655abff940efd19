//! When things happened, and who holds a run.

use std::fmt;
use std::time::SystemTime;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

/// `2026-11-29T19:08:16.123Z`: the one timestamp format of the database and
/// the API. Fixed width (RFC 3339, UTC, milliseconds), so SQLite compares
/// timestamps correctly as text (`lease_expires_at < ?now`). Text read back
/// from the database is taken as it is, so an odd legacy value can still be
/// shown instead of failing the read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct Timestamp(String);

impl Timestamp {
    pub fn at(time: SystemTime) -> Timestamp {
        Timestamp(humantime::format_rfc3339_millis(time).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The time it names; `None` for text that is not a timestamp.
    pub fn time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.0).ok()
    }

    /// How long before `now` it was, in whole seconds (negative when in the
    /// future); `None` for text that is not a timestamp.
    pub fn age_seconds(&self, now: SystemTime) -> Option<i64> {
        let then = self.time()?;
        Some(match now.duration_since(then) {
            Ok(ago) => ago.as_secs() as i64,
            Err(ahead) => -(ahead.duration().as_secs() as i64),
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Timestamp(String::column_result(value)?))
    }
}

/// Who holds a run's lease: a worker thread of one storyflow process
/// (`worker-0@4242-1a2b3c4d`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct WorkerId(String);

impl WorkerId {
    /// Worker `n` of this process; `process` tells processes apart.
    pub fn new(n: usize, process: &str) -> WorkerId {
        WorkerId(format!("worker-{n}@{process}"))
    }

    /// A worker with exactly this name, for tests that follow one by name.
    #[cfg(test)]
    pub fn named(name: &str) -> WorkerId {
        WorkerId(name.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql for WorkerId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
    }
}

impl FromSql for WorkerId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(WorkerId(String::column_result(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_fixed_width_and_sort_as_text() {
        let a = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let b = a + Duration::from_millis(1);
        let (ta, tb) = (Timestamp::at(a), Timestamp::at(b));
        assert_eq!(ta.as_str().len(), tb.as_str().len());
        assert!(ta < tb);
        assert_eq!(ta.time(), Some(a));
        assert_eq!(ta.age_seconds(a + Duration::from_secs(5)), Some(5));
    }
}
