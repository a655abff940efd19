//! `GET /api/search` on a 10-million-word database, through the real server
//! on a loopback port: p50/p95/p99 over ~200 queries of four kinds (a common
//! word, a rare word, two words, a common word within one story). Target:
//! p95 under 50 ms.
//!
//! `cargo bench --bench search` — `SEARCH_BENCH_WORDS=500000` for a quick
//! run on less data. The database is generated once (seeded, so always the
//! same text) and kept under `target/bench-data/`; later runs reuse it.
//!
//! The text: sentences drawn from a vocabulary of 4,000 made-up words with a
//! skewed (Zipf-like) frequency, so a few words are in every chapter and the
//! tail words in a few hundred; ~1,500 words a chapter, 20 chapters a story.
//! It is inserted in one transaction through plain SQL, so the schema's own
//! triggers build the FTS index exactly as a chapter save does.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, params};
use serde_json::Value;
use storyflow::store::Store;

#[path = "support/mod.rs"]
mod support;

use support::{Row, Server, percentile, print_table};

/// Bumped when the generated text changes, so a stale cache is not reused.
const DATA_VERSION: u32 = 1;
const VOCABULARY: usize = 4_000;
const WORDS_PER_CHAPTER: usize = 1_500;
const CHAPTERS_PER_STORY: usize = 20;
const SEED: u64 = 0x5eed_2026;
/// Words that occur once each in the whole database, in known chapters.
const NEEDLES: [&str; 5] = [
    "astrolabe",
    "quinquireme",
    "zephyrine",
    "obsidianite",
    "marigoldwick",
];

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ren", "sa", "tor", "vel", "an", "is", "dun", "fe", "gar", "hol", "jin",
    "mor", "ne", "pa", "quil", "ro", "sen", "tu", "vor", "wy", "zel",
];

/// The vocabulary: made-up words of two or three syllables, no duplicates.
fn vocabulary(rng: &mut fastrand::Rng) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut words = Vec::with_capacity(VOCABULARY);
    while words.len() < VOCABULARY {
        let syllables = 2 + rng.usize(0..2);
        let word: String = (0..syllables)
            .map(|_| SYLLABLES[rng.usize(0..SYLLABLES.len())])
            .collect();
        if seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// A word index skewed to the front: index 0 is the most frequent.
fn skewed(rng: &mut fastrand::Rng) -> usize {
    let r = rng.f64();
    ((r * r * r) * VOCABULARY as f64) as usize
}

fn chapter_text(rng: &mut fastrand::Rng, words: &[String]) -> String {
    let mut text = String::with_capacity(WORDS_PER_CHAPTER * 8);
    let mut written = 0;
    while written < WORDS_PER_CHAPTER {
        let length = 6 + rng.usize(0..14);
        for i in 0..length {
            let word = &words[skewed(rng)];
            if i == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(word);
            }
        }
        text.push_str(if rng.u8(0..8) == 0 { "! " } else { ". " });
        written += length;
    }
    text
}

fn story_id(i: usize) -> String {
    format!("20000000-0000-4000-8000-{i:012}")
}

/// Writes the database at `path` (through a temporary name, so an
/// interrupted run leaves no half-written cache).
fn generate(path: &Path, total_words: usize) -> rusqlite::Result<()> {
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    drop(Store::open(&partial, 1).map_err(|e| rusqlite::Error::InvalidPath(e.to_string().into()))?);
    let mut conn = Connection::open(&partial)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    let mut rng = fastrand::Rng::with_seed(SEED);
    let words = vocabulary(&mut rng);
    let chapters = total_words.div_ceil(WORDS_PER_CHAPTER);
    let stories = chapters.div_ceil(CHAPTERS_PER_STORY);
    let now = "2026-12-01T00:00:00.000Z";
    let tx = conn.transaction()?;
    {
        let mut story = tx.prepare(
            "INSERT INTO stories (id, title, premise, chapter_count, created_at, updated_at)
             VALUES (?1, ?2, 'A generated story.', ?3, ?4, ?4)",
        )?;
        let mut chapter = tx.prepare(
            "INSERT INTO chapters (story_id, number, title, content, word_count, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for s in 0..stories {
            story.execute(params![
                story_id(s),
                format!("Story {s}"),
                CHAPTERS_PER_STORY as i64,
                now
            ])?;
            for n in 1..=CHAPTERS_PER_STORY {
                let index = s * CHAPTERS_PER_STORY + n - 1;
                let mut text = chapter_text(&mut rng, &words);
                if let Some(needle) = NEEDLES
                    .get(index / 997)
                    .filter(|_| index.is_multiple_of(997))
                {
                    text.push_str(&format!("The {needle} waited."));
                }
                let count = text.split_whitespace().count();
                chapter.execute(params![
                    story_id(s),
                    n as i64,
                    format!("Part {n}"),
                    text,
                    count as i64,
                    now
                ])?;
            }
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
    drop(conn);
    std::fs::rename(&partial, path).map_err(|e| rusqlite::Error::InvalidPath(e.to_string().into()))
}

fn cached_database(total_words: usize) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("target/bench-data");
    let path = dir.join(format!("search-v{DATA_VERSION}-{total_words}.db"));
    if path.exists() {
        println!("reusing {}", path.display());
    } else {
        let started = Instant::now();
        generate(&path, total_words).expect("generate the search database");
        println!(
            "generated {total_words} words into {} in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    path
}

/// The four kinds of query, 50 of each, drawn with a fixed seed.
fn queries(stories: usize) -> Vec<(&'static str, String)> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let words = vocabulary(&mut rng);
    let mut rng = fastrand::Rng::with_seed(SEED + 1);
    let mut all = Vec::new();
    for i in 0..50 {
        let common = &words[rng.usize(0..20)];
        let rare = &words[rng.usize(VOCABULARY - 500..VOCABULARY)];
        let mid = &words[rng.usize(100..1_000)];
        all.push(("common word", format!("q={common}")));
        let rare_query = if i % 10 == 0 {
            NEEDLES[i / 10 % NEEDLES.len()]
        } else {
            rare
        };
        all.push(("rare word", format!("q={rare_query}")));
        all.push(("two words", format!("q={common}+{mid}")));
        let story = story_id(rng.usize(0..stories));
        all.push((
            "common word, one story",
            format!("q={common}&story_id={story}"),
        ));
    }
    all
}

fn main() {
    let total_words = support::env_number("SEARCH_BENCH_WORDS", 10_000_000);
    let db = cached_database(total_words);
    let stories = total_words
        .div_ceil(WORDS_PER_CHAPTER)
        .div_ceil(CHAPTERS_PER_STORY);
    let server = Server::start(&db, &["--workers", "0"]);
    let agent = support::agent();
    let queries = queries(stories);
    let timed = |query: &str| -> (f64, usize) {
        let started = Instant::now();
        let response = agent
            .get(server.url(&format!("/api/search?{query}")))
            .call()
            .expect("search answers");
        let status = response.status().as_u16();
        let body: Value = response.into_body().read_json().expect("search JSON");
        let elapsed = started.elapsed().as_secs_f64() * 1e3;
        assert_eq!(status, 200, "{query}: {body}");
        (elapsed, body["hits"].as_array().map_or(0, Vec::len))
    };
    // Warm the page cache and the statement cache, as a running server is.
    for (_, query) in queries.iter().take(20) {
        timed(query);
    }
    let mut by_kind: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut all = Vec::new();
    let mut empty = 0;
    for (kind, query) in &queries {
        let (ms, hits) = timed(query);
        empty += usize::from(hits == 0);
        all.push(ms);
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, samples)) => samples.push(ms),
            None => by_kind.push((kind, vec![ms])),
        }
    }
    let p95 = percentile(&all, 95.0);
    let mut rows = vec![
        Row::new(
            "GET /api/search p50 ms",
            format!("{:.1}", percentile(&all, 50.0)),
            "",
            None,
        ),
        Row::new(
            "GET /api/search p95 ms",
            format!("{p95:.1}"),
            "< 50 ms",
            Some(p95 < 50.0),
        ),
        Row::new(
            "GET /api/search p99 ms",
            format!("{:.1}", percentile(&all, 99.0)),
            "",
            None,
        ),
    ];
    for (kind, samples) in &by_kind {
        rows.push(Row::new(
            &format!("  p95 ms, {kind}"),
            format!("{:.1}", percentile(samples, 95.0)),
            "",
            None,
        ));
    }
    rows.push(Row::new("queries with no hit", empty.to_string(), "", None));
    // The same queries asking for the largest page (50 hits, each with its
    // snippet) rather than the default screen of 20.
    let largest: Vec<f64> = queries
        .iter()
        .map(|(_, query)| timed(&format!("{query}&limit=50")).0)
        .collect();
    rows.push(Row::new(
        "  p95 ms with limit=50",
        format!("{:.1}", percentile(&largest, 95.0)),
        "",
        None,
    ));
    print_table(
        &format!(
            "search: {} queries over {total_words} words ({stories} stories of {CHAPTERS_PER_STORY} chapters), {} cores",
            all.len(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        &rows,
    );
}
