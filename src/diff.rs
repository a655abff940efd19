//! Word-level differences between two versions of a chapter, for the
//! history view and `chapter history --diff`.
//!
//! The diff itself is the `similar` crate's (Patience over word tokens,
//! with a time limit so a pathological pair of chapters approximates instead
//! of stalling a request thread); this module only groups its changes into
//! runs a page or a terminal can show.

use std::time::Duration;

use serde::Serialize;
use similar::{Algorithm, ChangeTag, TextDiffConfig};

/// How long one diff may take before `similar` settles for a coarser answer.
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// What a run of words did between the two versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffOp {
    Equal,
    Delete,
    Insert,
}

/// A run of text with one fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffPart {
    pub op: DiffOp,
    pub text: String,
}

/// The diff of two texts and how many words each side changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WordDiff {
    pub parts: Vec<DiffPart>,
    pub words_deleted: u32,
    pub words_inserted: u32,
}

/// The word-level diff from `old` to `new`; whitespace stays with the runs,
/// so joining the `equal` and `delete` parts gives `old` back byte for byte
/// and joining `equal` and `insert` gives `new`.
pub fn word_diff(old: &str, new: &str) -> WordDiff {
    let diff = TextDiffConfig::default()
        .algorithm(Algorithm::Patience)
        .timeout(DIFF_TIMEOUT)
        .diff_words(old, new);
    let mut parts: Vec<DiffPart> = Vec::new();
    let (mut words_deleted, mut words_inserted) = (0u32, 0u32);
    for change in diff.iter_all_changes() {
        let op = match change.tag() {
            ChangeTag::Equal => DiffOp::Equal,
            ChangeTag::Delete => DiffOp::Delete,
            ChangeTag::Insert => DiffOp::Insert,
        };
        let text = change.value();
        if !text.trim().is_empty() {
            match op {
                DiffOp::Delete => words_deleted += 1,
                DiffOp::Insert => words_inserted += 1,
                DiffOp::Equal => {}
            }
        }
        match parts.last_mut() {
            Some(last) if last.op == op => last.text.push_str(text),
            _ => parts.push(DiffPart {
                op,
                text: text.to_string(),
            }),
        }
    }
    WordDiff {
        parts,
        words_deleted,
        words_inserted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(diff: &WordDiff, keep: DiffOp) -> String {
        diff.parts
            .iter()
            .filter(|p| p.op == DiffOp::Equal || p.op == keep)
            .map(|p| p.text.as_str())
            .collect()
    }

    #[test]
    fn names_the_changed_words_and_keeps_both_sides_whole() {
        let old = "The courier crossed the drowned plain at dawn.\n\nShe did not look back.";
        let new = "The courier crossed the flooded plain at dusk.\n\nShe did not look back.";
        let diff = word_diff(old, new);
        let deleted: Vec<&str> = diff
            .parts
            .iter()
            .filter(|p| p.op == DiffOp::Delete)
            .map(|p| p.text.trim())
            .collect();
        let inserted: Vec<&str> = diff
            .parts
            .iter()
            .filter(|p| p.op == DiffOp::Insert)
            .map(|p| p.text.trim())
            .collect();
        assert_eq!(deleted, ["drowned", "dawn."]);
        assert_eq!(inserted, ["flooded", "dusk."]);
        assert_eq!((diff.words_deleted, diff.words_inserted), (2, 2));
        assert_eq!(side(&diff, DiffOp::Delete), old);
        assert_eq!(side(&diff, DiffOp::Insert), new);
    }

    #[test]
    fn identical_and_empty_texts() {
        let same = word_diff("one two", "one two");
        assert_eq!(same.parts.len(), 1);
        assert_eq!(same.parts[0].op, DiffOp::Equal);
        let from_nothing = word_diff("", "new words");
        assert_eq!(from_nothing.words_inserted, 2);
        assert_eq!(side(&from_nothing, DiffOp::Insert), "new words");
    }
}
