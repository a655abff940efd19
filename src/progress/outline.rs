//! Finds the chapters an outline names.
//!
//! Three forms are recognised, one per line: a Markdown heading
//! (`## Chapter 3: The Storm`), a plain line (`Chapter 3 - The Storm`), and a
//! numbered list item (`3. The Storm`). When any line names a chapter with the
//! word "Chapter", numbered lists are taken to be notes inside chapters and
//! are not counted. The scan is one pass over the text, line by line, with no
//! backtracking: linear in the input whatever it holds.

/// Chapter numbers above this are not chapter numbers (years, typos).
const MAX_CHAPTER_NUMBER: u32 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineEntry {
    pub number: u32,
    pub title: String,
    /// 1-based line of the outline it came from.
    pub line: usize,
}

/// Every chapter line, in the order written (duplicates and gaps kept, for
/// [`check_outline`]).
pub fn outline_entries(outline: &str) -> Vec<OutlineEntry> {
    let mut named = Vec::new();
    let mut numbered = Vec::new();
    for (index, line) in outline.lines().enumerate() {
        if let Some((number, title)) = chapter_line(line) {
            named.push(OutlineEntry {
                number,
                title,
                line: index + 1,
            });
        } else if named.is_empty()
            && let Some((number, title)) = numbered_item(line)
        {
            numbered.push(OutlineEntry {
                number,
                title,
                line: index + 1,
            });
        }
    }
    if named.is_empty() { numbered } else { named }
}

/// The chapters of an outline: one per distinct number, in the order first
/// written. Its length is the outline's chapter count.
pub fn parse_outline(outline: &str) -> Vec<OutlineEntry> {
    let mut seen = std::collections::HashSet::new();
    outline_entries(outline)
        .into_iter()
        .filter(|entry| seen.insert(entry.number))
        .collect()
}

/// Problems in an outline that would surprise a writer mid-run.
pub fn check_outline(outline: &str, explicit_count: Option<u32>) -> Vec<String> {
    let entries = outline_entries(outline);
    let mut warnings = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut previous: Option<u32> = None;
    for entry in &entries {
        if !seen.insert(entry.number) {
            warnings.push(format!(
                "line {}: chapter {} appears more than once",
                entry.line, entry.number
            ));
        } else if let Some(prev) = previous {
            if entry.number < prev {
                warnings.push(format!(
                    "line {}: chapter {} comes after chapter {prev}",
                    entry.line, entry.number
                ));
            } else if entry.number > prev + 1 {
                warnings.push(format!(
                    "line {}: chapter {} follows chapter {prev}; chapters {}-{} are missing",
                    entry.line,
                    entry.number,
                    prev + 1,
                    entry.number - 1
                ));
            }
        }
        previous = Some(previous.map_or(entry.number, |p| p.max(entry.number)));
    }
    if let (Some(explicit), false) = (explicit_count, seen.is_empty())
        && explicit as usize != seen.len()
    {
        warnings.push(format!(
            "the chapter count is {explicit} but the outline names {} chapters",
            seen.len()
        ));
    }
    warnings
}

/// `## Chapter 3: The Storm`, `Chapter 3 - The Storm`, `**Chapter 3.** The Storm`.
fn chapter_line(line: &str) -> Option<(u32, String)> {
    let rest = line.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '#' | '*' | '_' | '>' | '-')
    });
    let keyword = rest.get(..7)?;
    if !keyword.eq_ignore_ascii_case("chapter") {
        return None;
    }
    let rest = &rest[7..];
    let after_space = rest.trim_start();
    if after_space.len() == rest.len() {
        return None; // "Chapters", "Chapter3"
    }
    let (number, rest) = leading_number(after_space)?;
    let title = rest
        .trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, ':' | '.' | '-' | '–' | '—' | ')' | '*' | '_')
        })
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_' | '#'));
    Some((number, title_or_default(title, number)))
}

/// `3. The Storm` or `3) The Storm`, not indented (nested items are scenes).
fn numbered_item(line: &str) -> Option<(u32, String)> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let (number, rest) = leading_number(line)?;
    let rest = rest.strip_prefix('.').or_else(|| rest.strip_prefix(')'))?;
    if !rest.starts_with(char::is_whitespace) {
        return None; // "3.5 million"
    }
    let title = rest
        .trim()
        .trim_matches(|c: char| matches!(c, '*' | '_'))
        .trim();
    if title.is_empty() {
        return None;
    }
    Some((number, title_or_default(title, number)))
}

fn leading_number(text: &str) -> Option<(u32, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 6 {
        return None;
    }
    let number: u32 = text[..digits].parse().ok()?;
    (1..=MAX_CHAPTER_NUMBER)
        .contains(&number)
        .then_some((number, &text[digits..]))
}

fn title_or_default(title: &str, number: u32) -> String {
    const MAX_TITLE_CHARS: usize = 200;
    if title.is_empty() {
        format!("Chapter {number}")
    } else {
        title.chars().take(MAX_TITLE_CHARS).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(outline: &str) -> Vec<u32> {
        parse_outline(outline).iter().map(|e| e.number).collect()
    }

    #[test]
    fn the_three_contract_forms() {
        let headings = "# Book\n## Chapter 1: Dawn\nText.\n## Chapter 2: The Storm\n";
        assert_eq!(numbers(headings), [1, 2]);
        assert_eq!(parse_outline(headings)[1].title, "The Storm");
        let plain = "Chapter 1 - Dawn\nchapter 2 — Dusk\nCHAPTER 3\n";
        assert_eq!(numbers(plain), [1, 2, 3]);
        assert_eq!(parse_outline(plain)[2].title, "Chapter 3");
        let list = "1. Dawn\n2) Dusk\n3. Night\n";
        assert_eq!(
            parse_outline(list)
                .iter()
                .map(|e| e.title.as_str())
                .collect::<Vec<_>>(),
            ["Dawn", "Dusk", "Night"]
        );
    }

    #[test]
    fn lists_inside_chapters_are_scenes_not_chapters() {
        let outline = "## Chapter 1: Dawn\n1. wake\n2. eat\n## Chapter 2: Dusk\n1. sleep\n";
        assert_eq!(numbers(outline), [1, 2]);
        assert_eq!(numbers("1. Dawn\n   1. wake\n2. Dusk\n"), [1, 2]);
    }

    #[test]
    fn prose_is_not_mistaken_for_chapters() {
        assert_eq!(
            numbers("Chapters are many.\n3.5 million people\nChapter3 x\n2024 was a year"),
            Vec::<u32>::new()
        );
        assert_eq!(numbers("Chapter 99999999: too big\n"), Vec::<u32>::new());
    }

    #[test]
    fn duplicates_count_once_and_are_reported() {
        let outline = "Chapter 1: A\nChapter 2: B\nChapter 2: B again\nChapter 10: C\nChapter 45: D\nChapter 3: E";
        assert_eq!(numbers(outline), [1, 2, 10, 45, 3]);
        let warnings = check_outline(outline, Some(3));
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("chapter 2 appears more than once")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("chapters 11-44 are missing")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("chapter 3 comes after chapter 45")),
            "{warnings:?}"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("chapter count is 3 but the outline names 5")),
            "{warnings:?}"
        );
        assert!(check_outline("1. a\n2. b", Some(2)).is_empty());
    }

    #[test]
    fn hostile_text_neither_panics_nor_blows_up() {
        let inputs = [
            "#".repeat(100_000),
            "Chapter ".repeat(50_000),
            "9".repeat(100_000),
            "é\u{0}Chapter\u{301} 1:".repeat(10_000),
            "Chapter 1".to_string() + &"\n".repeat(100_000),
            "1.".repeat(100_000),
        ];
        for input in &inputs {
            let _ = parse_outline(input);
            let _ = check_outline(input, Some(1));
        }
    }
}
