//! The quality signals stored with each chapter version (`chapter_versions.
//! quality`, JSON): measured when the version is saved, read back for the
//! chapter JSON, the reader and `diagnose --story`.
//!
//! Decisions:
//! - The signals are measured in [`super::versions::add_version`], inside
//!   the transaction that writes the version: every way a chapter is saved
//!   (generated, edited, regenerated, restored, imported) passes there, so
//!   none can store a version without its quality. Measuring is offline
//!   and takes well under a millisecond for a chapter.
//! - A restore measures the restored text again rather than copying the old
//!   version's value: the same text against the same story gives the same
//!   signals, and when the writer has changed `target_words` or the outline
//!   since, the signals of the chapter as it now stands are the useful ones.
//! - Versions saved before schema 0010 have no stored quality (NULL). The
//!   read path measures those from their text, in memory, as every read did
//!   before; a read never writes (a GET takes no write lock), and
//!   `health-check --fix` does not backfill them: the cost of measuring an
//!   old chapter on read is what it always was, and it ends as soon as the
//!   chapter is saved again. A stored value this build cannot read (written
//!   by another version) is measured again the same way.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::{Store, StoryId};
use crate::error::{Error, Result};
use crate::quality::{Quality, StockPhrases, StoryMeasure};

/// The signals of `content` as a version of a chapter of `story`, as the
/// JSON stored in `chapter_versions.quality`.
pub(super) fn measure_version(
    conn: &Connection,
    story: &StoryId,
    stock_phrases: &StockPhrases,
    content: &str,
) -> Result<String> {
    let measure = story_measure(conn, story)?.with_stock_phrases(stock_phrases);
    serde_json::to_string(&measure.chapter(content))
        .map_err(|e| Error::Internal(format!("cannot write quality signals as JSON: {e}")))
}

/// What a story's chapters are measured against: one place, so that what a
/// measure reads of the story (its target, its outline, its bible's names)
/// changes in one spot.
fn story_measure(conn: &Connection, story: &StoryId) -> Result<StoryMeasure<'static>> {
    let (target_words, outline): (u32, String) = conn
        .prepare_cached("SELECT target_words, outline FROM stories WHERE id = ?1")?
        .query_row(params![story], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let bible_names = super::bible::bible_names_in(conn, story)?;
    Ok(StoryMeasure::with_bible(
        target_words,
        &outline,
        &bible_names,
    ))
}

impl Store {
    /// The quality of each chapter's current version, by chapter number.
    pub fn chapter_qualities(&self, story: &StoryId) -> Result<BTreeMap<u32, Quality>> {
        self.current_qualities(story, None)
    }

    /// The quality of one chapter's current version; `VALIDATION_FAILED`
    /// naming `number` when the chapter is not written.
    pub fn chapter_quality(&self, story: &StoryId, number: u32) -> Result<Quality> {
        self.current_qualities(story, Some(number))?
            .remove(&number)
            .ok_or_else(|| super::stories::chapter_not_written(story, number))
    }

    /// One statement for the stored values; the text is read only for a
    /// version that has none, and the story only if one needs measuring.
    fn current_qualities(
        &self,
        story: &StoryId,
        number: Option<u32>,
    ) -> Result<BTreeMap<u32, Quality>> {
        let conn = self.conn()?;
        let rows: Vec<(u32, Option<String>, Option<String>)> = conn
            .prepare_cached(
                "SELECT c.number, v.quality, CASE WHEN v.quality IS NULL THEN c.content END
                 FROM chapters c
                 LEFT JOIN chapter_versions v
                     ON v.story_id = c.story_id AND v.number = c.number
                     AND v.version = (SELECT max(m.version) FROM chapter_versions m
                                      WHERE m.story_id = c.story_id AND m.number = c.number)
                 WHERE c.story_id = ?1 AND (?2 IS NULL OR c.number = ?2)",
            )?
            .query_map(params![story, number], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut measure: Option<StoryMeasure<'_>> = None;
        let mut qualities = BTreeMap::new();
        for (chapter, stored, content) in rows {
            if let Some(quality) = stored.and_then(|json| serde_json::from_str(&json).ok()) {
                qualities.insert(chapter, quality);
                continue;
            }
            let content = match content {
                Some(content) => content,
                // Stored but unreadable: its text was not selected.
                None => conn
                    .prepare_cached(
                        "SELECT content FROM chapters WHERE story_id = ?1 AND number = ?2",
                    )?
                    .query_row(params![story, chapter], |row| row.get(0))?,
            };
            if measure.is_none() {
                let story_measure = story_measure(&conn, story)?;
                measure = Some(story_measure.with_stock_phrases(&self.stock_phrases));
            }
            if let Some(measure) = &measure {
                qualities.insert(chapter, measure.chapter(&content));
            }
        }
        Ok(qualities)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::testing::temp_store;
    use crate::store::{ImportedChapter, NewStory};

    fn stored(store: &Store, story: &StoryId, number: u32) -> Vec<Option<String>> {
        store
            .conn()
            .unwrap()
            .prepare("SELECT quality FROM chapter_versions WHERE story_id = ?1 AND number = ?2 ORDER BY version")
            .unwrap()
            .query_map(params![story, number], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn an_imported_chapter_is_measured_against_the_stores_list_when_saved() {
        let (store, _dir) = temp_store();
        let list = StockPhrases::parse("salt wind\n", "test").unwrap();
        let store = store.with_stock_phrases(Arc::new(list));
        let story = store
            .import_story(
                &NewStory {
                    title: "Imported".into(),
                    ..Default::default()
                },
                &[ImportedChapter {
                    number: 1,
                    title: "One".into(),
                    content: "The salt wind rose. A testament to the salt wind.".into(),
                }],
            )
            .unwrap()
            .id;
        let versions = stored(&store, &story, 1);
        let quality: Quality = serde_json::from_str(versions[0].as_deref().unwrap()).unwrap();
        let phrases: Vec<(&str, u32)> = quality
            .stock_phrases
            .iter()
            .map(|p| (p.phrase.as_str(), p.count))
            .collect();
        assert_eq!(phrases, [("salt wind", 2)], "only the store's list counts");
        assert_eq!(store.chapter_quality(&story, 1).unwrap(), quality);
        assert_eq!(store.chapter_qualities(&story).unwrap()[&1], quality);
    }

    #[test]
    fn a_missing_or_unreadable_stored_value_is_measured_on_read_and_not_written() {
        let (store, _dir) = temp_store();
        let story = store
            .import_story(
                &NewStory {
                    title: "Old".into(),
                    ..Default::default()
                },
                &[ImportedChapter {
                    number: 1,
                    title: "One".into(),
                    content: "The same words again. The same words again. The same words again."
                        .into(),
                }],
            )
            .unwrap()
            .id;
        let measured = store.chapter_quality(&story, 1).unwrap();
        assert_eq!(measured.repeated_sentences[0].count, 3);
        for legacy in [None, Some("{}")] {
            store
                .write_one(|conn| {
                    conn.execute(
                        "UPDATE chapter_versions SET quality = ?2 WHERE story_id = ?1",
                        params![story, legacy],
                    )?;
                    Ok(())
                })
                .unwrap();
            assert_eq!(
                store.chapter_quality(&story, 1).unwrap(),
                measured,
                "{legacy:?}"
            );
            assert_eq!(stored(&store, &story, 1), [legacy.map(str::to_string)]);
        }
        let err = store.chapter_quality(&story, 2).unwrap_err();
        assert!(matches!(err, Error::Validation { .. }), "{err}");
    }
}
