//! Saving an imported manuscript: the story and its chapters in one
//! transaction, each chapter's first version `imported`.

use rusqlite::params;

use super::model::{Story, word_count};
use super::stories::{MAX_CHAPTER_CHARS, insert_story};
use super::versions::{ChapterSource, VersionRecord, add_version};
use super::{NewStory, Store};
use crate::error::{Error, Result};

/// One chapter of a manuscript, as split at its heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedChapter {
    pub number: u32,
    pub title: String,
    pub content: String,
}

impl Store {
    /// Creates a story with the chapters of a manuscript. Nothing is saved
    /// unless everything is.
    pub fn import_story(&self, new: &NewStory, chapters: &[ImportedChapter]) -> Result<Story> {
        new.validate()?;
        if chapters.is_empty() {
            return Err(Error::validation(
                "markdown",
                "no chapter headings found; start each chapter with a heading such as `## Chapter 1: Arrival` or `Chapter One`",
            ));
        }
        if let Some(pair) = chapters.windows(2).find(|w| w[1].number <= w[0].number) {
            return Err(Error::validation(
                "markdown",
                format!(
                    "chapter {} follows chapter {}; chapters must be numbered in order without repeats",
                    pair[1].number, pair[0].number
                ),
            ));
        }
        for chapter in chapters {
            let chars = chapter.content.chars().count();
            if chars > MAX_CHAPTER_CHARS {
                return Err(Error::validation(
                    "markdown",
                    format!(
                        "chapter {} is {chars} characters long; the limit is {MAX_CHAPTER_CHARS}",
                        chapter.number
                    ),
                ));
            }
        }
        let story = new.to_story(self.now());
        self.write(|tx| {
            insert_story(tx, &story)?;
            for chapter in chapters {
                tx.prepare_cached(
                    "INSERT INTO chapters (story_id, number, title, content, word_count, summary, run_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, '', NULL, ?6)",
                )?
                .execute(params![
                    story.id,
                    chapter.number,
                    chapter.title,
                    chapter.content,
                    word_count(&chapter.content),
                    story.created_at
                ])?;
                add_version(
                    tx,
                    &self.stock_phrases,
                    &VersionRecord {
                        story: &story.id,
                        number: chapter.number,
                        source: ChapterSource::Imported,
                        title: &chapter.title,
                        content: &chapter.content,
                        run_id: None,
                        at: &story.created_at,
                    },
                )?;
            }
            Ok(())
        })?;
        Ok(story)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    fn chapter(number: u32, content: &str) -> ImportedChapter {
        ImportedChapter {
            number,
            title: format!("Part {number}"),
            content: content.into(),
        }
    }

    #[test]
    fn chapters_are_saved_byte_for_byte_as_imported_versions() {
        let (store, _dir) = temp_store();
        let new = NewStory {
            title: "Imported".into(),
            chapter_count: Some(8),
            ..Default::default()
        };
        let text = "  First line.\n\n\tSecond paragraph — with “quotes”.";
        let story = store
            .import_story(&new, &[chapter(1, text), chapter(2, "Two.")])
            .unwrap();
        let saved = store.chapters(&story.id).unwrap();
        assert_eq!(saved.len(), 2);
        assert_eq!(saved[0].content, text);
        assert_eq!(saved[0].summary, "");
        let history = store.chapter_versions(&story.id, 1).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].source, ChapterSource::Imported);
    }

    #[test]
    fn bad_manuscripts_save_nothing() {
        let (store, _dir) = temp_store();
        let new = NewStory {
            title: "Nothing".into(),
            ..Default::default()
        };
        let err = store.import_story(&new, &[]).unwrap_err();
        assert!(err.to_string().contains("no chapter headings"), "{err}");
        let err = store
            .import_story(&new, &[chapter(2, "a"), chapter(2, "b")])
            .unwrap_err();
        assert!(matches!(err, Error::Validation { .. }), "{err}");
        assert!(store.list_stories(10, 0).unwrap().is_empty());
    }
}
