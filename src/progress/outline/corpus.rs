//! The outline corpus: outlines written as writers write them, one file each
//! under `tests/data/outlines/`, with the expected chapters and warnings in a
//! header (the format is in that folder's README.md). Every failure in every
//! file is reported at once.

use std::path::{Path, PathBuf};

use super::{check_outline, parse_outline};

/// The corpus must keep at least this many outlines that parse cleanly.
const MIN_CLEAN_OUTLINES: usize = 25;

#[derive(Default)]
struct Expected {
    chapters: Option<usize>,
    titles: Vec<String>,
    count: Option<u32>,
    warnings: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/outlines")
}

/// Splits a corpus file into its expectations and its outline (verbatim,
/// Windows line endings included).
fn read_case(text: &str) -> Result<(Expected, &str), String> {
    let Some((header, outline)) = text
        .split_once("%%\n")
        .or_else(|| text.split_once("%%\r\n"))
    else {
        return Err("no `%%` line between header and outline".into());
    };
    let mut expected = Expected::default();
    for line in header.lines() {
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("header line without a key: {line:?}"));
        };
        let value = value.trim();
        let number = || value.parse().map_err(|_| format!("not a number: {line:?}"));
        match key {
            "chapters" => expected.chapters = Some(number()?),
            "title" => expected.titles.push(value.to_string()),
            "count" => expected.count = Some(value.parse().map_err(|_| line.to_string())?),
            "warn" => expected.warnings.push(value.to_string()),
            _ => return Err(format!("unknown header key: {key:?}")),
        }
    }
    Ok((expected, outline))
}

/// What is wrong with one case, if anything.
fn check_case(expected: &Expected, outline: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let entries = parse_outline(outline);
    let titles: Vec<&str> = entries.iter().map(|e| e.title.as_str()).collect();
    if expected.chapters != Some(entries.len()) {
        problems.push(format!(
            "expected {:?} chapters, found {}",
            expected.chapters,
            entries.len()
        ));
    }
    if titles != expected.titles {
        problems.push(format!(
            "expected titles {:?}, found {titles:?}",
            expected.titles
        ));
    }
    let numbers: Vec<u32> = entries.iter().map(|e| e.number).collect();
    let running: Vec<u32> = (1..=entries.len() as u32).collect();
    let warnings = check_outline(outline, expected.count);
    if expected.warnings.is_empty() {
        if !warnings.is_empty() {
            problems.push(format!("expected no warnings, got {warnings:?}"));
        }
        if numbers != running {
            problems.push(format!("a clean outline numbered {numbers:?}"));
        }
    }
    for wanted in &expected.warnings {
        if !warnings.iter().any(|w| w.contains(wanted.as_str())) {
            problems.push(format!(
                "expected a warning with {wanted:?}, got {warnings:?}"
            ));
        }
    }
    problems
}

#[test]
fn every_outline_in_the_corpus_reads_as_expected() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/data/outlines is part of the repository")
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    let (mut clean, mut warned) = (0, 0);
    for path in &paths {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let text = std::fs::read_to_string(path).expect("corpus files are UTF-8");
        let problems = match read_case(&text) {
            Ok((expected, outline)) => {
                if expected.warnings.is_empty() {
                    clean += 1;
                } else {
                    warned += 1;
                }
                check_case(&expected, outline)
            }
            Err(problem) => vec![problem],
        };
        failures.extend(problems.into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(clean >= MIN_CLEAN_OUTLINES, "only {clean} clean outlines");
    assert!(warned >= 4, "only {warned} outlines that must warn");
}

#[test]
fn the_windows_outline_really_has_windows_line_endings() {
    let text = std::fs::read_to_string(corpus_dir().join("14-windows-line-endings.txt"))
        .expect("the corpus has a Windows outline");
    assert!(text.contains("Departure\r\n"));
}
