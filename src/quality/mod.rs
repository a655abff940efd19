//! Quality signals of a chapter: offline measures of the ways generated
//! prose most often goes wrong, with no judge model.
//!
//! This module owns the signals' definitions, the default stock phrase list
//! and its override, and the thresholds that turn signals into findings. It
//! is pure: text in, numbers out, no database, no network. Storing the
//! signals with a chapter version and showing them belong to the callers.
//!
//! The signals (the contract's names, `quality: {...}` of a chapter):
//! - `length_score`: LongBench-Write's length score, 100 at the target word
//!   count, 0 at a third of it or four times it, see [`length_score`].
//! - `repetition`: the share of repeated word 4-grams, see [`repetition`].
//! - `repeated_sentences`: the sentences (of at least
//!   [`MIN_SENTENCE_WORDS`] words) that occur more than once, each with its
//!   count: a list rather than a bare number, so the reader can show which.
//! - `stock_phrases`: phrases of an editable list found, each with its count.
//! - `name_variants`: capitalised words close to a known name but not equal.
//!
//! Words, everywhere here, are runs of letters and digits with apostrophes
//! inside a word kept (curly ones made straight), lowercased: "Mira's" is
//! one word, "heart-pounding" two.

mod names;
mod stock;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::maintenance::{Finding, Severity};

pub use names::{NameVariant, known_names, names_in_outline};
pub use stock::{STOCK_PHRASES_FILE, StockPhrase, StockPhrases, StockPhrasesError};

/// Sentences shorter than this are not counted as repeated: "No." or
/// "He nodded." twice in a chapter is ordinary prose, not a loop.
pub const MIN_SENTENCE_WORDS: usize = 4;

/// At most this many repeated sentences are listed (the most repeated
/// first), so a degenerate chapter does not store a second copy of itself.
pub const MAX_LISTED_SENTENCES: usize = 20;

/// Repeated sentences are listed clipped to this many characters.
const MAX_SENTENCE_CHARS: usize = 200;

/// A chapter's quality signals, as stored and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// 0 to 100; 100 at the target word count. One decimal.
    pub length_score: f64,
    /// 0 to 1: the share of word 4-grams that repeat an earlier one. Three
    /// decimals.
    pub repetition: f64,
    pub repeated_sentences: Vec<RepeatedSentence>,
    pub stock_phrases: Vec<StockPhrase>,
    pub name_variants: Vec<NameVariant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepeatedSentence {
    /// The sentence as first written in the chapter (clipped when long).
    pub sentence: String,
    /// How many times it occurs (2 or more).
    pub count: u32,
}

/// What the signals are measured against.
#[derive(Debug, Clone, Copy)]
pub struct Measure<'a> {
    /// The story's `target_words` per chapter.
    pub target_words: u32,
    /// The names a variant is looked for against: see [`known_names`].
    pub known_names: &'a [String],
    pub stock_phrases: &'a StockPhrases,
}

/// What a story's chapters are measured against, when a chapter version is
/// saved: its `target_words`, the names its outline gives (found once per
/// story, not once per chapter) and a stock phrase list (the built-in one
/// unless [`StoryMeasure::with_stock_phrases`] says otherwise).
pub struct StoryMeasure<'a> {
    target_words: u32,
    known_names: Vec<String>,
    stock_phrases: &'a StockPhrases,
}

impl StoryMeasure<'static> {
    pub fn new(target_words: u32, outline: &str) -> StoryMeasure<'static> {
        StoryMeasure::with_bible(target_words, outline, &[])
    }

    /// The same for a story with a bible: its names and aliases are the
    /// names variants are looked for against (the outline's only when the
    /// bible names nothing), as the contract says.
    pub fn with_bible(
        target_words: u32,
        outline: &str,
        bible_names: &[String],
    ) -> StoryMeasure<'static> {
        StoryMeasure {
            target_words,
            known_names: known_names(bible_names, outline),
            stock_phrases: StockPhrases::shared(),
        }
    }
}

impl StoryMeasure<'_> {
    /// The same measure with another stock phrase list (the `--prompts`
    /// override).
    pub fn with_stock_phrases(self, list: &StockPhrases) -> StoryMeasure<'_> {
        StoryMeasure {
            target_words: self.target_words,
            known_names: self.known_names,
            stock_phrases: list,
        }
    }

    pub fn chapter(&self, text: &str) -> Quality {
        Measure {
            target_words: self.target_words,
            known_names: &self.known_names,
            stock_phrases: self.stock_phrases,
        }
        .chapter(text)
    }
}

impl Measure<'_> {
    pub fn chapter(&self, text: &str) -> Quality {
        let words = words(text);
        Quality {
            length_score: round_to(length_score(count(words.len()), self.target_words), 1),
            repetition: round_to(repetition(&words), 3),
            repeated_sentences: repeated_sentences(text),
            stock_phrases: self.stock_phrases.find_in(&words),
            name_variants: names::variants(text, self.known_names),
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// LongBench-Write's length score of `words` against `target`: 100 on
/// target; longer, `100·max(0, 1 − (y/x − 1)/3)` (0 at four times the
/// target); shorter, `100·max(0, 1 − (x/y − 1)/2)` (50 at two thirds, 0 at a
/// third). An empty text scores 0; a target of 0 means no target, 100.
pub fn length_score(words: u32, target: u32) -> f64 {
    if target == 0 {
        return 100.0;
    }
    if words == 0 {
        return 0.0;
    }
    let (y, x) = (f64::from(words), f64::from(target));
    let score = if y >= x {
        1.0 - (y / x - 1.0) / 3.0
    } else {
        1.0 - (x / y - 1.0) / 2.0
    };
    100.0 * score.max(0.0)
}

/// The share of repeated word 4-grams: of all the text's word 4-grams, the
/// share that are occurrences beyond the first of a 4-gram occurring more
/// than once, i.e. `(all − distinct) / all`. A text said once scores 0, the
/// same sentence written n times tends to `(n − 1) / n`; fewer than four
/// words score 0.
pub fn repetition(words: &[String]) -> f64 {
    if words.len() < 4 {
        return 0.0;
    }
    // Words as small ids first: hashing four integers per 4-gram is far
    // cheaper than hashing four strings.
    let mut vocabulary: HashMap<&str, u32> = HashMap::new();
    let ids: Vec<u32> = words
        .iter()
        .map(|word| {
            let next = count(vocabulary.len());
            *vocabulary.entry(word.as_str()).or_insert(next)
        })
        .collect();
    let grams = ids.len() - 3;
    let distinct: std::collections::HashSet<&[u32]> = ids.windows(4).collect();
    (grams - distinct.len()) as f64 / grams as f64
}

/// Sentences end at `.`, `!`, `?`, `…` and at line breaks; two sentences are
/// the same when their words (see the module docs) are. Sentences of fewer
/// than [`MIN_SENTENCE_WORDS`] words are ignored. The most repeated first,
/// then in order of first appearance; at most [`MAX_LISTED_SENTENCES`].
pub fn repeated_sentences(text: &str) -> Vec<RepeatedSentence> {
    let mut seen: HashMap<String, (usize, &str, u32)> = HashMap::new();
    for (order, sentence) in sentences(text).enumerate() {
        let key = words(sentence);
        if key.len() < MIN_SENTENCE_WORDS {
            continue;
        }
        seen.entry(key.join(" ")).or_insert((order, sentence, 0)).2 += 1;
    }
    let mut repeated: Vec<(usize, &str, u32)> =
        seen.into_values().filter(|(_, _, n)| *n > 1).collect();
    repeated.sort_by_key(|&(order, _, n)| (std::cmp::Reverse(n), order));
    repeated
        .into_iter()
        .take(MAX_LISTED_SENTENCES)
        .map(|(_, sentence, count)| RepeatedSentence {
            sentence: clip(sentence, MAX_SENTENCE_CHARS),
            count,
        })
        .collect()
}

/// The text's sentences as [`repeated_sentences`] cuts them, trimmed of
/// spaces and quotes.
pub fn sentences(text: &str) -> impl Iterator<Item = &str> {
    text.split(['.', '!', '?', '…', '\n'])
        .map(|s| s.trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '”'))
}

fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The text's words, lowercased (see the module docs).
pub fn words(text: &str) -> Vec<String> {
    word_spans(text)
        .map(|(_, word)| word.to_lowercase())
        .collect()
}

/// Each word with its byte offset, in its original case; apostrophes inside
/// words are straightened.
pub(crate) fn word_spans(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    let is_apostrophe = |c: char| c == '\'' || c == '’';
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while chars.next_if(|&(_, c)| !c.is_alphanumeric()).is_some() {}
        let (start, first) = chars.next()?;
        let mut word = String::from(first);
        loop {
            match chars.peek().copied() {
                Some((_, c)) if c.is_alphanumeric() => {
                    word.push(c);
                    chars.next();
                }
                Some((at, c)) if is_apostrophe(c) => {
                    let next = text[at + c.len_utf8()..].chars().next();
                    if !next.is_some_and(char::is_alphanumeric) {
                        break;
                    }
                    word.push('\'');
                    chars.next();
                }
                _ => break,
            }
        }
        Some((start, word))
    })
}

/// The limits past which a signal becomes a finding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// A length score below this is a finding (default 50: under two thirds
    /// or over two and a half times the target).
    pub min_length_score: f64,
    /// A repetition share above this is a finding (default 0.15).
    pub max_repetition: f64,
    /// More distinct repeated sentences than this is a finding (default 0:
    /// any sentence of four words or more written twice).
    pub max_repeated_sentences: usize,
    /// More stock phrases than this per 1000 words is a finding (default 2).
    pub max_stock_phrases_per_1000_words: f64,
    /// More name variants than this is a finding (default 0: any).
    pub max_name_variants: usize,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            min_length_score: 50.0,
            max_repetition: 0.15,
            max_repeated_sentences: 0,
            max_stock_phrases_per_1000_words: 2.0,
            max_name_variants: 0,
        }
    }
}

/// Finding codes, one per signal.
pub const CODE_LENGTH: &str = "CHAPTER_LENGTH";
pub const CODE_REPETITION: &str = "CHAPTER_REPETITIVE";
pub const CODE_REPEATED_SENTENCES: &str = "CHAPTER_REPEATED_SENTENCES";
pub const CODE_STOCK_PHRASES: &str = "CHAPTER_STOCK_PHRASES";
pub const CODE_NAME_VARIANTS: &str = "CHAPTER_NAME_VARIANTS";

impl Thresholds {
    /// The findings of chapter `number` (of `words` words) for `diagnose
    /// --story`. Stock phrases are `info` (a matter of style); the others are
    /// warnings, since each is a defect a writer would want fixed.
    pub fn findings(&self, number: u32, words: u32, quality: &Quality) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut add = |severity, code, message: String| {
            findings.push(Finding {
                severity,
                code,
                message: format!("chapter {number}: {message}"),
            })
        };
        if quality.length_score < self.min_length_score {
            add(
                Severity::Warning,
                CODE_LENGTH,
                format!(
                    "length score {} (below {}) with {words} words; regenerate it or adjust target_words",
                    quality.length_score, self.min_length_score
                ),
            );
        }
        if quality.repetition > self.max_repetition {
            add(
                Severity::Warning,
                CODE_REPETITION,
                format!(
                    "{:.0}% of its word 4-grams are repeats (above {:.0}%); regenerate it",
                    quality.repetition * 100.0,
                    self.max_repetition * 100.0
                ),
            );
        }
        if quality.repeated_sentences.len() > self.max_repeated_sentences {
            let first = &quality.repeated_sentences[0];
            add(
                Severity::Warning,
                CODE_REPEATED_SENTENCES,
                format!(
                    "{} sentence(s) occur more than once, e.g. \"{}\" {} times",
                    quality.repeated_sentences.len(),
                    first.sentence,
                    first.count
                ),
            );
        }
        let stock: u32 = quality.stock_phrases.iter().map(|p| p.count).sum();
        let per_1000 = if words == 0 {
            0.0
        } else {
            f64::from(stock) * 1000.0 / f64::from(words)
        };
        if per_1000 > self.max_stock_phrases_per_1000_words {
            let listed: Vec<&str> = quality
                .stock_phrases
                .iter()
                .map(|p| p.phrase.as_str())
                .collect();
            add(
                Severity::Info,
                CODE_STOCK_PHRASES,
                format!(
                    "{per_1000:.1} stock phrases per 1000 words (above {}): {}",
                    self.max_stock_phrases_per_1000_words,
                    listed.join(", ")
                ),
            );
        }
        if quality.name_variants.len() > self.max_name_variants {
            let listed: Vec<String> = quality
                .name_variants
                .iter()
                .map(|v| format!("{} (for {})", v.name, v.like))
                .collect();
            add(
                Severity::Warning,
                CODE_NAME_VARIANTS,
                format!("names close to known ones: {}", listed.join(", ")),
            );
        }
        findings
    }
}

#[cfg(test)]
mod tests;
