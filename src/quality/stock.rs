//! The stock phrase list: built in from `static/stock_phrases.txt`, replaced
//! by a file of the same name in the `--prompts` directory, and matched as
//! whole word sequences, so case, line breaks and punctuation between words
//! do not hide a phrase and "tapestry" never matches inside "tapestries".

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::words;

/// The list's file name, built in and in the `--prompts` directory.
pub const STOCK_PHRASES_FILE: &str = "stock_phrases.txt";

const BUILTIN: &str = include_str!("../../static/stock_phrases.txt");

#[derive(Debug, thiserror::Error)]
pub enum StockPhrasesError {
    #[error("cannot read the stock phrases file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the stock phrases file {path} is not UTF-8 text (invalid bytes after byte {valid_up_to}); save it as UTF-8"
    )]
    NotUtf8 { path: PathBuf, valid_up_to: usize },
    #[error("{origin}:{line}: a stock phrase needs at least one word")]
    NoWords { origin: String, line: usize },
}

/// One phrase found in a chapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockPhrase {
    /// As written in the list.
    pub phrase: String,
    pub count: u32,
}

/// The phrases to look for, each as written and as its words.
#[derive(Debug, Clone)]
pub struct StockPhrases {
    phrases: Vec<(String, Vec<String>)>,
}

impl StockPhrases {
    /// The built-in list, or `stock_phrases.txt` in `prompts_dir` when that
    /// file exists. An override replaces the list (as a prompt override
    /// replaces its template): an empty file turns the signal off.
    pub fn load(prompts_dir: Option<&Path>) -> Result<StockPhrases, StockPhrasesError> {
        let file = prompts_dir
            .map(|dir| dir.join(STOCK_PHRASES_FILE))
            .filter(|path| path.is_file());
        match file {
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|source| StockPhrasesError::Read {
                    path: path.clone(),
                    source,
                })?;
                let source = String::from_utf8(bytes).map_err(|e| StockPhrasesError::NotUtf8 {
                    path: path.clone(),
                    valid_up_to: e.utf8_error().valid_up_to(),
                })?;
                StockPhrases::parse(&source, &path.display().to_string())
            }
            None => StockPhrases::builtin(),
        }
    }

    pub fn builtin() -> Result<StockPhrases, StockPhrasesError> {
        StockPhrases::parse(BUILTIN, "static/stock_phrases.txt (built in)")
    }

    /// The built-in list, parsed once for the process. It is part of this
    /// build and tested to parse; were it not to, no phrase is flagged
    /// rather than a request failing.
    pub fn shared() -> &'static StockPhrases {
        static SHARED: std::sync::OnceLock<StockPhrases> = std::sync::OnceLock::new();
        SHARED.get_or_init(|| {
            StockPhrases::builtin().unwrap_or(StockPhrases {
                phrases: Vec::new(),
            })
        })
    }

    /// One phrase a line; blank lines and lines starting with `#` skipped.
    pub fn parse(source: &str, origin: &str) -> Result<StockPhrases, StockPhrasesError> {
        let mut phrases = Vec::new();
        for (index, line) in source.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let phrase_words = words(line);
            if phrase_words.is_empty() {
                return Err(StockPhrasesError::NoWords {
                    origin: origin.to_string(),
                    line: index + 1,
                });
            }
            phrases.push((line.to_string(), phrase_words));
        }
        Ok(StockPhrases { phrases })
    }

    pub fn len(&self) -> usize {
        self.phrases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// The phrases occurring in `text_words` (lowercased words, see
    /// [`super::words`]), each with its count: the most frequent first, then
    /// in the list's order.
    pub fn find_in(&self, text_words: &[String]) -> Vec<StockPhrase> {
        // Only the places where a phrase's first word stands are compared.
        let mut starts: HashMap<&str, Vec<usize>> = HashMap::new();
        for (at, word) in text_words.iter().enumerate() {
            starts.entry(word.as_str()).or_default().push(at);
        }
        let mut found: Vec<StockPhrase> = self
            .phrases
            .iter()
            .filter_map(|(phrase, phrase_words)| {
                let first = phrase_words.first()?;
                let count = starts
                    .get(first.as_str())?
                    .iter()
                    .filter(|&&at| text_words[at..].starts_with(phrase_words))
                    .count();
                (count > 0).then(|| StockPhrase {
                    phrase: phrase.clone(),
                    count: super::count(count),
                })
            })
            .collect();
        found.sort_by_key(|p| std::cmp::Reverse(p.count));
        found
    }

    #[cfg(test)]
    pub(super) fn word_lists(&self) -> impl Iterator<Item = &[String]> {
        self.phrases.iter().map(|(_, w)| w.as_slice())
    }
}
