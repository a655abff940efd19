//! Reads one line of an outline: is it a chapter line, a part heading, or
//! neither, and what is its title. A line is read left to right once: its
//! Markdown (indent, `>`, `#`, list marker, `**`), then a label (`Chapter 3`,
//! `Ch. 3`, `3.`, `Prologue`, `Part One`), then a separator, then the title.
//! Nothing here looks at other lines; choosing which lines are chapters is
//! [`super`]'s job.

use super::number::{leading_digits, leading_number};

/// Titles are cut to this many characters (an outline line can be a page).
const MAX_TITLE_CHARS: usize = 200;

/// A chapter that has a name instead of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Special {
    Prologue,
    Interlude,
    Epilogue,
}

impl Special {
    const ALL: [Special; 3] = [Special::Prologue, Special::Interlude, Special::Epilogue];

    pub(super) fn name(self) -> &'static str {
        match self {
            Special::Prologue => "Prologue",
            Special::Interlude => "Interlude",
            Special::Epilogue => "Epilogue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    /// `Chapter 3`, `Ch. Three`, `**Chapter III:**`: a chapter named as one.
    Named {
        written: u32,
    },
    Special(Special),
    /// `## 3. Arrival` or `**3. Arrival**`: numbered and set apart as a heading.
    NumberedHeading {
        written: u32,
    },
    /// `3. Arrival`, `3) Arrival`: a numbered list item.
    NumberedItem {
        written: u32,
    },
    /// `# Part One`, `Book 2`, `Act III`, `Volume 1`: groups chapters.
    Part,
}

impl LineKind {
    pub(super) fn written(self) -> Option<u32> {
        match self {
            LineKind::Named { written }
            | LineKind::NumberedHeading { written }
            | LineKind::NumberedItem { written } => Some(written),
            LineKind::Special(_) | LineKind::Part => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClassifiedLine {
    pub kind: LineKind,
    /// Leading whitespace, a tab counting four: deeper lines are notes.
    pub indent: usize,
    /// Clean title, possibly empty (the caller supplies `Chapter N`).
    pub title: String,
}

/// The Markdown around a line's text.
struct Markup<'a> {
    indent: usize,
    heading: bool,
    list: bool,
    emphasis: bool,
    text: &'a str,
}

fn markup(line: &str) -> Markup<'_> {
    if line.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        // Most lines: no indent and no Markdown to read.
        return Markup {
            indent: 0,
            heading: false,
            list: false,
            emphasis: false,
            text: line,
        };
    }
    let text = line.trim_start();
    // Only the ASCII spaces and tabs of the indent count; any other
    // whitespace is rare enough to count as one column each.
    let indent = line[..line.len() - text.len()]
        .bytes()
        .map(|b| if b == b'\t' { 4 } else { 1 })
        .sum();
    let text = text.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
    let after_hashes = text.trim_start_matches('#');
    let heading = after_hashes.len() < text.len();
    let mut text = after_hashes.trim_start();
    let mut list = false;
    if let Some(rest) = text.strip_prefix(['-', '*', '+', '•'])
        && rest.starts_with(char::is_whitespace)
    {
        text = rest.trim_start();
        list = true;
    }
    let after_emphasis = text.trim_start_matches(['*', '_']);
    Markup {
        indent,
        heading,
        list,
        emphasis: after_emphasis.len() < text.len(),
        text: after_emphasis.trim_start(),
    }
}

/// What one line of an outline is, if it is a chapter or a part heading.
/// `numbered_items` says whether plain numbered list items are wanted.
pub(super) fn classify(line: &str, numbered_items: bool) -> Option<ClassifiedLine> {
    if line.is_empty() {
        return None;
    }
    let Markup {
        indent,
        heading,
        emphasis,
        text,
        ..
    } = markup(line);
    let lenient = heading || emphasis;
    let (kind, title) = match numbered_prefix(text) {
        Some((written, after)) => {
            // `1. **Chapter 1: The Letter**` is a chapter line in a list.
            let inner = after.trim_start();
            let inner_text = inner.trim_start_matches(['*', '_']);
            let inner_emphasis = inner_text.len() < inner.len();
            match labelled(
                inner_text,
                lenient || inner_emphasis,
                emphasis || inner_emphasis,
            ) {
                Some(found) => found,
                None => {
                    let title = clean_title(after, emphasis);
                    if title.is_empty() || (!numbered_items && !lenient) {
                        return None;
                    }
                    let kind = if lenient {
                        LineKind::NumberedHeading { written }
                    } else {
                        LineKind::NumberedItem { written }
                    };
                    (kind, title)
                }
            }
        }
        None => labelled(text, lenient, emphasis)?,
    };
    Some(ClassifiedLine {
        kind,
        indent,
        title,
    })
}

/// The title of an untitled chapter line, read from the line below it, when
/// that line reads as a title: `The Letter`, `### The Letter`, `**The
/// Letter**`; not a list item, an indented note, a line longer than a title,
/// or one that ends like a sentence or a label (`Mara arrives.`, `Beats:`).
pub(super) fn title_below_heading(line: &str) -> Option<String> {
    const MAX_TITLE_LINE_CHARS: usize = 80;
    let markup = markup(line);
    let text = markup
        .text
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_'));
    if markup.list || markup.indent >= 4 || text.chars().count() > MAX_TITLE_LINE_CHARS {
        return None;
    }
    if text.ends_with(['.', '!', '?', ',', ';', ':']) {
        return None;
    }
    let title = clean_title(text, false);
    (!title.is_empty()).then_some(title)
}

/// `3. ` or `3) `: digits, a dot or parenthesis, then a space (`3.5 million`
/// is not a list item).
fn numbered_prefix(text: &str) -> Option<(u32, &str)> {
    let (written, rest) = leading_digits(text)?;
    let rest = rest.strip_prefix(['.', ')'])?;
    rest.starts_with(char::is_whitespace)
        .then_some((written, rest))
}

/// A line that starts with a label: `Chapter 3`, `Prologue`, `Part One`.
fn labelled(text: &str, lenient: bool, emphasis: bool) -> Option<(LineKind, String)> {
    // Every label starts with one of these letters: most lines stop here.
    let first = text.bytes().next()?.to_ascii_lowercase();
    if !b"cpiebav".contains(&first) {
        return None;
    }
    if let Some(rest) = chapter_keyword(text) {
        let (written, after) = leading_number(rest)?;
        let (region, closed) = after_label(after, lenient)?;
        return Some((
            LineKind::Named { written },
            clean_title(region, emphasis && !closed),
        ));
    }
    for special in Special::ALL {
        if let Some(after) = word_prefix(text, special.name()) {
            let (region, closed) = after_label(after, lenient)?;
            let title = clean_title(region, emphasis && !closed);
            let title = if title.is_empty() {
                special.name().to_string()
            } else {
                format!("{}: {title}", special.name())
            };
            return Some((LineKind::Special(special), title));
        }
    }
    for word in ["part", "book", "act", "volume"] {
        if let Some(rest) = word_prefix(text, word)
            && rest.starts_with(char::is_whitespace)
        {
            let (_, after) = leading_number(rest.trim_start())?;
            let (region, closed) = after_label(after, lenient)?;
            return Some((LineKind::Part, clean_title(region, emphasis && !closed)));
        }
    }
    None
}

/// What follows `word` at the start of `text` (any letter case), when the
/// word ends there (`Prologue:` yes, `Prologues` no).
fn word_prefix<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = &text[word.len()..];
    (head.eq_ignore_ascii_case(word) && !rest.starts_with(|c: char| c.is_alphanumeric()))
        .then_some(rest)
}

/// What follows `Chapter `, `Chap. `, `Ch. `, `Ch.` or `Ch `.
fn chapter_keyword(text: &str) -> Option<&str> {
    if let Some(rest) = word_prefix(text, "chapter") {
        // "Chapter3" is a typo or a name, not a heading.
        return rest
            .starts_with(char::is_whitespace)
            .then(|| rest.trim_start());
    }
    for short in ["chap", "ch"] {
        if let Some(rest) = word_prefix(text, short) {
            if let Some(after_dot) = rest.strip_prefix('.') {
                return Some(after_dot.trim_start());
            }
            return rest
                .starts_with(char::is_whitespace)
                .then(|| rest.trim_start());
        }
    }
    None
}

/// The title region after a label's number, and whether an emphasis marker
/// closed right after the number (`**Chapter 1**: …`). `None` when what
/// follows reads as prose (`Chapter 3 is where…`, `Chapter 3, where…`).
fn after_label(rest: &str, lenient: bool) -> Option<(&str, bool)> {
    let after_close = rest.trim_start_matches(['*', '_']);
    let closed = after_close.len() < rest.len();
    let s = after_close;
    if s.trim().is_empty() {
        return Some(("", closed));
    }
    if let Some(after) = s.strip_prefix([':', ')', '—', '–']) {
        return Some((after, closed));
    }
    if let Some(after) = s.strip_prefix('.') {
        // "Chapter 3. The Storm", not "Chapter 3.5".
        return after
            .starts_with(|c: char| c.is_whitespace() || c == '*' || c == '_')
            .then_some((after, closed));
    }
    let trimmed = s.trim_start();
    if trimmed.len() == s.len() {
        return None;
    }
    if let Some(after) = trimmed.strip_prefix([':', '-', '—', '–']) {
        return Some((after, closed));
    }
    let lowercase_word = trimmed.starts_with(char::is_lowercase);
    (lenient || closed || !lowercase_word).then_some((trimmed, closed))
}

/// The first `**` or `__` in `text`.
fn find_strong(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    bytes
        .windows(2)
        .position(|pair| pair == b"**" || pair == b"__")
}

fn trim_separators(text: &str) -> &str {
    text.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, ':' | '.' | '-' | '–' | '—' | ')')
    })
}

/// The title in the text after a label, without Markdown. `bold_open` says
/// the line opened a `**` that is not closed yet: its close ends the title
/// (`**Chapter 1: The Letter** – Mara gets a letter` is titled `The Letter`),
/// unless it comes first (`**Chapter 1:** The Letter`). A title that opens
/// with a bold span is that span (`1. **The Letter** – …`).
fn clean_title(region: &str, bold_open: bool) -> String {
    let mut title = trim_separators(region);
    // Most titles are plain words: nothing more to strip.
    let plain = title.trim_end();
    if !bold_open
        && plain.len() <= MAX_TITLE_CHARS
        && plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
    {
        return plain.to_string();
    }
    let mut cut = false;
    if bold_open && let Some(close) = find_strong(title) {
        if close == 0 {
            title = trim_separators(&title[2..]);
        } else {
            title = &title[..close];
            cut = true;
        }
    }
    if !cut
        && find_strong(title) == Some(0)
        && let Some(close) = find_strong(&title[2..])
        && !title[2..2 + close].trim().is_empty()
    {
        title = &title[2..2 + close];
    }
    let unmarked;
    let title = if find_strong(title).is_some() {
        unmarked = title.replace("**", "").replace("__", "");
        unmarked.as_str()
    } else {
        title
    };
    let title = without_closing_hashes(title.trim())
        .trim_end_matches(|c: char| {
            c.is_whitespace() || matches!(c, ':' | '—' | '–' | '-' | '*' | '_')
        })
        .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '_'));
    // A title of at most MAX_TITLE_CHARS bytes has at most as many chars.
    match title.char_indices().nth(MAX_TITLE_CHARS) {
        Some((cut, _)) if title.len() > MAX_TITLE_CHARS => title[..cut].trim_end().to_string(),
        _ => title.to_string(),
    }
}

/// `Arrival ##` → `Arrival`; `Learning C#` is left alone.
fn without_closing_hashes(title: &str) -> &str {
    let stripped = title.trim_end_matches('#');
    if stripped.len() < title.len()
        && (stripped.is_empty() || stripped.ends_with(char::is_whitespace))
    {
        stripped
    } else {
        title
    }
}
