//! What a running run is doing: the `step` of the run object.

use std::borrow::Cow;
use std::fmt;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A run's step. The engine's steps have a fixed text (`outline`,
/// `chapter 3/10`, `chapter 2 (rewrite)`, `finalize`); an external worker
/// reports any text it likes, kept as sent in [`Step::Reported`]. Text reads
/// back as the step that writes exactly it, so it never changes on the way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// Writing the story's outline.
    Outline,
    /// Writing chapter `number`; the run ends after chapter `last`.
    Chapter { number: u32, last: u32 },
    /// Rewriting chapter `number`, and nothing else.
    Rewrite { number: u32 },
    /// Every chapter is saved; the run is being completed.
    Finalize,
    /// What an external worker reported.
    Reported(String),
}

impl Step {
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Step::Outline => "outline".into(),
            Step::Chapter { number, last } => format!("chapter {number}/{last}").into(),
            Step::Rewrite { number } => format!("chapter {number} (rewrite)").into(),
            Step::Finalize => "finalize".into(),
            Step::Reported(text) => text.as_str().into(),
        }
    }

    /// The step whose text is exactly `text`.
    pub fn from_text(text: &str) -> Step {
        let engine_step = match text {
            "outline" => Some(Step::Outline),
            "finalize" => Some(Step::Finalize),
            _ => parse_chapter(text),
        };
        engine_step
            .filter(|step| step.text() == text)
            .unwrap_or_else(|| Step::Reported(text.to_string()))
    }
}

fn parse_chapter(text: &str) -> Option<Step> {
    let rest = text.strip_prefix("chapter ")?;
    if let Some(number) = rest.strip_suffix(" (rewrite)") {
        return Some(Step::Rewrite {
            number: number.parse().ok()?,
        });
    }
    let (number, last) = rest.split_once('/')?;
    Some(Step::Chapter {
        number: number.parse().ok()?,
        last: last.parse().ok()?,
    })
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl serde::Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl ToSql for Step {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.text() {
            Cow::Borrowed(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Cow::Owned(text) => ToSqlOutput::from(text),
        })
    }
}

impl FromSql for Step {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Step::from_text(value.as_str()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_steps_round_trip_and_other_text_is_kept_as_sent() {
        for step in [
            Step::Outline,
            Step::Chapter {
                number: 3,
                last: 10,
            },
            Step::Rewrite { number: 2 },
            Step::Finalize,
        ] {
            assert_eq!(Step::from_text(&step.text()), step);
        }
        assert_eq!(
            Step::from_text("chapter 03/10"),
            Step::Reported("chapter 03/10".into())
        );
        assert_eq!(
            Step::from_text("polishing"),
            Step::Reported("polishing".into())
        );
        assert_eq!(
            Step::Chapter {
                number: 3,
                last: 10
            }
            .to_string(),
            "chapter 3/10"
        );
    }
}
