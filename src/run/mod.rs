//! The run vocabulary: every word storyflow uses about a generation run,
//! each a type, so that no other module spells one as a string.
//!
//! - [`StoryId`], [`RunId`]: the newtype ids;
//! - [`RunStatus`]: `pending → running → completed | failed | cancelled`
//!   (a failed or cancelled run may be retried: back to `pending`);
//! - [`Step`]: what a running run is doing (`outline`, `chapter N/M`,
//!   `chapter N (rewrite)`, `finalize`, or the text an external worker sent);
//! - [`EventKind`]: the kinds of entry in a run's timeline;
//! - [`FailureCode`]: why a run failed, whether a retry may cure it, and what
//!   a writer does about it;
//! - [`Timestamp`]: the one time format of the database and the API;
//! - [`WorkerId`]: who holds a run's lease.
//!
//! Each converts to and from SQL (`ToSql`/`FromSql`), so SQL binds these
//! values instead of spelling them, and serialises as the contract's text.
//!
//! The run lifecycle, in these words: `create_run` inserts a run `pending`
//! (event `created`). A worker claims it: `running`, lease owner a
//! [`WorkerId`], `attempt + 1` (events `claimed`, and `recovered` when it took
//! the run over from a worker whose lease expired). It enters steps
//! (`outline`, `chapter N/M`, ..., event `step`) and saves chapters (event
//! `chapter`), then `finalize` and `completed`. A failure ends it `failed`
//! with a [`FailureCode`]; a cancel ends it `cancelled`; a shutdown hands it
//! back `pending` (event `released`). `retry` puts a failed or cancelled run
//! back to `pending`, resuming after its last saved chapter. A run claimed
//! too often fails `STUCK_TIMEOUT`; a run whose story is gone fails
//! `STORY_NOT_FOUND` (worker) or `ORPHANED_RUN` (sweep).

/// `Display`, `Serialize`, `ToSql` and `FromSql` for a vocabulary type with
/// `as_str(&self) -> &str` and `from_text(&str) -> Result<Self, String>`.
macro_rules! text_conversions {
    ($name:ty) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::Borrowed(
                    rusqlite::types::ValueRef::Text(self.as_str().as_bytes()),
                ))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<Self> {
                <$name>::from_text(value.as_str()?)
                    .map_err(|e| rusqlite::types::FromSqlError::Other(e.into()))
            }
        }
    };
}
pub(crate) use text_conversions;

/// A closed vocabulary: a `Copy` enum of unit variants, each with its text,
/// and `ALL`, `as_str`, `from_text`, `FromStr` and [`text_conversions`].
/// With `fallback`, text this build does not know reads back as that variant
/// (a row written by another version) instead of failing the whole read.
macro_rules! closed_vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) $(fallback $fallback:ident)? {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            pub fn from_text(text: &str) -> Result<Self, String> {
                if let Some(known) = Self::ALL.iter().copied().find(|v| v.as_str() == text) {
                    return Ok(known);
                }
                let fallback: Option<Self> = None $( .or(Some($name::$fallback)) )?;
                fallback.ok_or_else(|| {
                    format!(
                        "`{text}` is not a {} ({})",
                        $what,
                        Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    )
                })
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::from_text(text)
            }
        }

        $crate::run::text_conversions!($name);
    };
}

mod failure;
mod ids;
mod status;
mod step;
mod time;

pub use failure::FailureCode;
pub use ids::{BibleEntryId, InvalidId, RunId, StoryId};
pub use status::{EventKind, RunStatus};
pub use step::Step;
pub use time::{Timestamp, WorkerId};
