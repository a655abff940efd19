//! Name variants: a capitalised word one or two letters away from a known
//! name ("Myra" in a story about Mira, "Thomas" for Tomas), the slip a model
//! makes when it loses track of its cast.
//!
//! A word is a name candidate when it is capitalised (with lowercase letters
//! after the first: "NASA" is not), at least three letters long, and not in
//! the common word list (`common_words.txt` beside this file). That list
//! holds the words that open sentences and lines of dialogue, so a
//! candidate is taken wherever it stands, sentence-initial or not. Known
//! names are compared word by word ("Mira Okafor" knows "Mira" and
//! "Okafor"), case-insensitively; a candidate equal to a known name is never
//! a variant.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::word_spans;

const COMMON_WORDS: &str = include_str!("common_words.txt");

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_WORDS
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .collect()
});

/// A name in the chapter close to a known one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameVariant {
    /// As written in the chapter.
    pub name: String,
    /// The known name it is close to.
    pub like: String,
    pub count: u32,
}

/// The names variants are looked for against: the bible's names when the
/// story has any, else the names found in its outline.
pub fn known_names(bible_names: &[String], outline: &str) -> Vec<String> {
    if bible_names.iter().any(|name| !name.trim().is_empty()) {
        bible_names.to_vec()
    } else {
        names_in_outline(outline)
    }
}

/// Name candidates in the outline's text, in order of first appearance,
/// skipping heading lines (`# Title`, `## Chapter 1: The Long Night`), whose
/// title case would make every word look like a name.
pub fn names_in_outline(outline: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in outline.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        for name in candidates(line) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn candidates(text: &str) -> impl Iterator<Item = String> + '_ {
    word_spans(text).filter_map(|(_, word)| {
        let word = word.strip_suffix("'s").map(str::to_string).unwrap_or(word);
        is_name_like(&word).then_some(word)
    })
}

fn is_name_like(word: &str) -> bool {
    let mut chars = word.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let rest: Vec<char> = chars.collect();
    first.is_uppercase()
        && rest.len() >= 2
        && rest.iter().all(|c| c.is_alphabetic())
        && rest.iter().any(|c| c.is_lowercase())
        && !COMMON.contains(word.to_lowercase().as_str())
}

/// The edit distance still taken for a slip: one letter in names under
/// seven letters ("Mira"/"Myra"), two in longer ones ("Kasimir"/"Casimer").
fn max_distance(letters: usize) -> usize {
    if letters >= 7 { 2 } else { 1 }
}

/// The name variants in `text`: the most frequent first, then in order of
/// first appearance.
pub(super) fn variants(text: &str, known: &[String]) -> Vec<NameVariant> {
    let known_words: Vec<(String, String)> = known
        .iter()
        .flat_map(|name| word_spans(name).map(|(_, word)| word))
        .filter(|word| word.chars().count() >= 3)
        .map(|word| (word.to_lowercase(), word))
        .collect();
    let closest_known = |name: &str| {
        let lower = name.to_lowercase();
        if known_words.iter().any(|(known, _)| *known == lower) {
            return None;
        }
        let letters = lower.chars().count();
        known_words
            .iter()
            .map(|(known, original)| (strsim::levenshtein(&lower, known), original))
            .filter(|(distance, original)| {
                *distance <= max_distance(letters.min(original.chars().count()))
            })
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, original)| original.clone())
    };
    // A chapter names the same few people many times: judge each name once.
    let mut judged: HashMap<String, Option<String>> = HashMap::new();
    let mut found: HashMap<String, (usize, String, u32)> = HashMap::new();
    for (order, name) in candidates(text).enumerate() {
        let like = judged
            .entry(name.clone())
            .or_insert_with(|| closest_known(&name));
        if let Some(like) = like {
            found
                .entry(name)
                .or_insert_with(|| (order, like.clone(), 0))
                .2 += 1;
        }
    }
    let mut variants: Vec<(String, (usize, String, u32))> = found.into_iter().collect();
    variants.sort_by_key(|(_, (order, _, count))| (std::cmp::Reverse(*count), *order));
    variants
        .into_iter()
        .map(|(name, (_, like, count))| NameVariant { name, like, count })
        .collect()
}
