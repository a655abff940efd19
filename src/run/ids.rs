//! Newtype ids, so that a run id can never be passed where a story id is
//! expected. Ids are UUIDs, written in lowercase hyphenated form; ids read
//! back from the database are taken as they are, so that a legacy row with an
//! odd id can still be reported (and cleaned up) instead of failing the read.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

macro_rules! uuid_id {
    ($name:ident, $what:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                $name(uuid::Uuid::new_v4().hyphenated().to_string())
            }

            /// Parses user input; any UUID spelling is accepted and normalised.
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                uuid::Uuid::try_parse(text.trim())
                    .map(|id| $name(id.hyphenated().to_string()))
                    .map_err(|_| InvalidId {
                        kind: $what,
                        text: truncate_for_message(text),
                    })
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0.as_bytes())))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                Ok($name(String::column_result(value)?))
            }
        }
    };
}

uuid_id!(StoryId, "story");
uuid_id!(RunId, "run");
uuid_id!(BibleEntryId, "bible entry");

/// A string that is not a UUID where one was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a valid {kind} id (expected a UUID such as 3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60)"
)]
pub struct InvalidId {
    pub kind: &'static str,
    pub text: String,
}

/// Keeps error messages short when the input was huge.
fn truncate_for_message(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_case_and_rejects_garbage() {
        let id = StoryId::parse("3251C7D5-8F0E-4C52-9D7A-1B2C3D4E5F60").unwrap();
        assert_eq!(id.as_str(), "3251c7d5-8f0e-4c52-9d7a-1b2c3d4e5f60");
        let err = RunId::parse("abc").unwrap_err();
        assert_eq!(err.kind, "run");
        assert!(err.to_string().contains("`abc` is not a valid run id"));
    }

    #[test]
    fn huge_input_is_truncated_in_the_message() {
        let err = StoryId::parse(&"x".repeat(10_000)).unwrap_err();
        assert!(err.to_string().len() < 200);
    }
}
