//! The one place where a generator's raw answer becomes text worth saving.
//!
//! Every backend returns a [`RawCompletion`]: the bytes it received and how
//! the answer ended, untouched. [`clean`] turns it into text and a
//! [`Verdict`], for every kind of piece (outline, chapter, continuation,
//! summary), and [`Cleaned::into_completion`] turns the verdict into what the
//! engine acts on: a [`Completion`] (whole or cut) or a [`GenError`].
//!
//! Reasoning is removed in every form servers send it (see
//! [`without_reasoning`]): `<think>` / `<thinking>` blocks in any letter
//! case, with attributes or whitespace before the `>`, anywhere in the text,
//! any number of them; an opening tag never closed (what follows it is
//! reasoning); a closing tag with no opening one (what precedes it, back to
//! the previous block, is reasoning). Separate `reasoning_content` /
//! `reasoning` fields never reach a [`RawCompletion`]: backends read only the
//! answer's content.
//!
//! Invariants: cleaning is one left-to-right pass over the text (no regex, no
//! backtracking), never panics, and leaves no think tag behind; its output
//! cleaned again is unchanged.

use super::{Completion, GenError, TaskKind};
use crate::run::FailureCode;

/// A generator's answer as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCompletion {
    /// The answer's content; not yet known to be UTF-8.
    pub content: Vec<u8>,
    /// The server's `finish_reason`, when it gave one. A backend that knows
    /// by other means that its answer was cut off says `"length"`.
    pub finish_reason: Option<String>,
    /// The token counts the server reported (`usage`); `None` when it sent
    /// none, as the builtin and command backends never do.
    pub usage: Option<Usage>,
    /// How long the first text took to arrive, for a backend that streams.
    pub first_token: Option<std::time::Duration>,
}

/// Token counts a server reported for one call: what it read of the prompt
/// (less than was sent when it cut the prompt) and what it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl RawCompletion {
    /// Text that ended on its own.
    pub fn text(text: impl Into<String>) -> RawCompletion {
        RawCompletion {
            content: text.into().into_bytes(),
            finish_reason: None,
            usage: None,
            first_token: None,
        }
    }

    /// Bytes that ended on their own (a program's standard output).
    pub fn bytes(content: Vec<u8>) -> RawCompletion {
        RawCompletion {
            content,
            finish_reason: None,
            usage: None,
            first_token: None,
        }
    }

    pub fn with_finish_reason(mut self, reason: Option<&str>) -> RawCompletion {
        self.finish_reason = reason.map(str::to_string);
        self
    }

    pub fn with_usage(mut self, usage: Option<Usage>) -> RawCompletion {
        self.usage = usage;
        self
    }
}

/// What cleaning found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Ended on its own, with text left after cleaning.
    Whole,
    /// Cut off by the length limit (`finish_reason: "length"`, or
    /// `"max_tokens"` as some compatible servers say): worth continuing.
    Cut,
    /// Withheld by the server's content filter: nothing of it may be saved.
    Filtered,
    /// Nothing left once reasoning and whitespace are removed.
    Empty,
    /// Not text at all; the reason says why.
    Bad(String),
}

/// Clean text and its verdict. `text` is empty unless the verdict is
/// [`Verdict::Whole`] or [`Verdict::Cut`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub text: String,
    pub verdict: Verdict,
}

/// Cleans a raw answer. Precedence: not UTF-8 (`Bad`), then the content
/// filter (`Filtered`, whatever text came with it), then nothing left
/// (`Empty`, also when cut: a model that spent its whole answer reasoning),
/// then `Cut` or `Whole`.
pub fn clean(raw: RawCompletion) -> Cleaned {
    let bad = |reason: String| Cleaned {
        text: String::new(),
        verdict: Verdict::Bad(reason),
    };
    let text = match String::from_utf8(raw.content) {
        Ok(text) => text,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            return bad(format!("the answer is not valid UTF-8 (at byte {at})"));
        }
    };
    let reason = raw.finish_reason.as_deref().map(str::trim);
    if reason == Some("content_filter") {
        return Cleaned {
            text: String::new(),
            verdict: Verdict::Filtered,
        };
    }
    let text = without_reasoning(&text);
    let cut = matches!(reason, Some("length" | "max_tokens"));
    let verdict = if text.is_empty() {
        Verdict::Empty
    } else if cut {
        Verdict::Cut
    } else {
        Verdict::Whole
    };
    Cleaned { text, verdict }
}

impl Cleaned {
    /// What the engine acts on: a whole or cut [`Completion`], or the error
    /// that says why there is nothing to save. `kind` names the piece in
    /// messages.
    pub fn into_completion(self, kind: &TaskKind<'_>) -> Result<Completion, GenError> {
        let what = kind.name();
        match self.verdict {
            Verdict::Whole => Ok(Completion::finished(self.text)),
            Verdict::Cut => Ok(Completion::cut(self.text)),
            Verdict::Filtered => Err(GenError::permanent(
                FailureCode::GeneratorFiltered,
                format!(
                    "the generator's content filter withheld the {what} (finish reason content_filter); nothing of it was saved"
                ),
            )),
            Verdict::Empty => Err(GenError::BadAnswer {
                message: format!(
                    "the generator's answer for the {what} had no text once its reasoning was removed"
                ),
            }),
            Verdict::Bad(reason) => Err(GenError::permanent(
                FailureCode::GeneratorBadResponse,
                format!("the generator's answer for the {what} was unusable: {reason}"),
            )),
        }
    }
}

/// Which way a think tag points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    Open,
    Close,
    /// `<think/>`: an empty block.
    SelfClosed,
}

#[derive(Debug, Clone, Copy)]
struct Tag {
    kind: TagKind,
    start: usize,
    end: usize,
}

/// The text without its reasoning, trimmed. Where a block is removed
/// between two kept parts they are joined by a blank line if a line break
/// surrounded the block, else by a space.
pub fn without_reasoning(text: &str) -> String {
    let mut kept = Joined::default();
    // Start of the text not yet known to be kept or reasoning.
    let mut from = 0;
    let mut inside = false;
    let mut tags = Tags::new(text);
    while let Some(tag) = tags.next_tag() {
        match (inside, tag.kind) {
            (false, TagKind::Open) => {
                kept.push(&text[from..tag.start]);
                inside = true;
            }
            (false, TagKind::SelfClosed) => kept.push(&text[from..tag.start]),
            // A closing tag with no opening one ends reasoning that started
            // where the last block ended (or at the start).
            (false, TagKind::Close) | (true, TagKind::Close) => inside = false,
            // A nested opening tag is more reasoning.
            (true, TagKind::Open | TagKind::SelfClosed) => {}
        }
        from = tag.end;
    }
    if !inside {
        kept.push(&text[from..]);
    }
    kept.text
}

/// Kept parts, joined as [`without_reasoning`] says.
#[derive(Default)]
struct Joined {
    text: String,
    /// A line break ended the last part (or a blank part since).
    break_pending: bool,
}

impl Joined {
    fn push(&mut self, part: &str) {
        let trimmed = part.trim();
        if trimmed.is_empty() {
            self.break_pending |= part.contains('\n');
            return;
        }
        if !self.text.is_empty() {
            let leading = &part[..part.len() - part.trim_start().len()];
            let separator = if self.break_pending || leading.contains('\n') {
                "\n\n"
            } else {
                " "
            };
            self.text.push_str(separator);
        }
        self.text.push_str(trimmed);
        self.break_pending = part[part.trim_end().len()..].contains('\n');
    }
}

/// The think tags of a text, left to right.
///
/// A tag is `<` or `</`, then `think` or `thinking` in any letter case, then
/// `>`, or whitespace or `/` and anything up to the next `>`. A tag that the
/// text ends in, or that runs straight into the next `<`, counts as a tag
/// too, so a broken tag cannot survive and no tag can form where removed
/// text joins what was kept (no whitespace is allowed before the name, and
/// every join puts whitespace in between).
struct Tags<'a> {
    bytes: &'a [u8],
    /// Where the search for the next `<` starts; only moves forward.
    pos: usize,
}

impl<'a> Tags<'a> {
    fn new(text: &'a str) -> Tags<'a> {
        Tags {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn next_tag(&mut self) -> Option<Tag> {
        while let Some(offset) = self.bytes[self.pos..].iter().position(|&b| b == b'<') {
            let start = self.pos + offset;
            if let Some(tag) = self.tag_at(start) {
                self.pos = tag.end;
                return Some(tag);
            }
            self.pos = start + 1;
        }
        self.pos = self.bytes.len();
        None
    }

    /// The tag starting at the `<` at `start`, if it is one. Only a tag's
    /// own bytes are read past its name, so the whole scan stays linear.
    fn tag_at(&self, start: usize) -> Option<Tag> {
        let bytes = self.bytes;
        let mut at = start + 1;
        let closing = bytes.get(at) == Some(&b'/');
        if closing {
            at += 1;
        }
        at += [&b"thinking"[..], b"think"]
            .into_iter()
            .find(|name| starts_with_ignoring_case(&bytes[at..], name))?
            .len();
        let kind = if closing {
            TagKind::Close
        } else {
            TagKind::Open
        };
        let tag = |kind, end| Some(Tag { kind, start, end });
        match bytes.get(at) {
            None | Some(b'<') => tag(kind, at),
            Some(b'>') => tag(kind, at + 1),
            Some(&b) if b == b'/' || b.is_ascii_whitespace() => {
                match bytes[at..].iter().position(|&b| b == b'>') {
                    None => tag(kind, bytes.len()),
                    Some(offset) => {
                        let gt = at + offset;
                        let self_closed = !closing && bytes[gt - 1] == b'/';
                        let kind = if self_closed {
                            TagKind::SelfClosed
                        } else {
                            kind
                        };
                        tag(kind, gt + 1)
                    }
                }
            }
            Some(_) => None,
        }
    }
}

fn starts_with_ignoring_case(haystack: &[u8], lowercase_name: &[u8]) -> bool {
    haystack.len() >= lowercase_name.len()
        && haystack[..lowercase_name.len()].eq_ignore_ascii_case(lowercase_name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cleaned(text: &str) -> String {
        without_reasoning(text)
    }

    #[test]
    fn text_without_reasoning_is_only_trimmed() {
        assert_eq!(
            cleaned("  It rained.\n\nThen it stopped.\n"),
            "It rained.\n\nThen it stopped."
        );
        assert_eq!(
            cleaned("a < b and b > c; <thinker> <b>bold</b>"),
            "a < b and b > c; <thinker> <b>bold</b>"
        );
    }

    #[test]
    fn a_leading_block_is_removed() {
        assert_eq!(
            cleaned("<think>plan it</think>\n\nIt rained."),
            "It rained."
        );
    }

    #[test]
    fn every_letter_case_and_both_names_are_reasoning() {
        for text in [
            "<Think>plan</Think>It rained.",
            "<THINK>plan</THINK>It rained.",
            "<thinking>plan</thinking>It rained.",
            "<Thinking>plan</THINKING>It rained.",
            "<think>plan</thinking>It rained.",
        ] {
            assert_eq!(cleaned(text), "It rained.", "{text}");
        }
    }

    #[test]
    fn attributes_and_whitespace_inside_the_tag_are_allowed() {
        for text in [
            "<think >plan</think >It rained.",
            "<think\n>plan</think\n>It rained.",
            "<thinking type=\"internal\" id='1'>plan</thinking>It rained.",
            "<think/>It rained.",
            "<think />It rained.",
        ] {
            assert_eq!(cleaned(text), "It rained.", "{text:?}");
        }
    }

    #[test]
    fn text_before_and_after_a_block_is_kept() {
        assert_eq!(
            cleaned("The harbour was quiet.\n<think>what next?</think>\nThe courier left."),
            "The harbour was quiet.\n\nThe courier left."
        );
        assert_eq!(
            cleaned("The harbour was quiet. <think>what next?</think> The courier left."),
            "The harbour was quiet. The courier left."
        );
    }

    #[test]
    fn every_block_is_removed() {
        assert_eq!(
            cleaned("<think>one</think>First.\n\n<THINKING>two</THINKING>\n\nSecond."),
            "First.\n\nSecond."
        );
        assert_eq!(
            cleaned("<think>a<think>nested</think>b</think>End."),
            "End."
        );
    }

    #[test]
    fn an_opening_tag_never_closed_makes_the_rest_reasoning() {
        assert_eq!(
            cleaned("It rained.\n<think>and then I should"),
            "It rained."
        );
        assert_eq!(cleaned("<think>all of it is planning"), "");
        assert_eq!(cleaned("It rained. <think"), "It rained.");
        assert_eq!(cleaned("It rained. <thinking mode=deep"), "It rained.");
    }

    #[test]
    fn a_closing_tag_alone_makes_what_precedes_it_reasoning() {
        assert_eq!(
            cleaned("I should open with rain.</think>\n\nIt rained."),
            "It rained."
        );
        assert_eq!(cleaned("plan</THINKING>It rained."), "It rained.");
        // Back to the previous block only: the first kept part stays.
        assert_eq!(
            cleaned("<think>a</think>Kept.\n<think>b</think>more plan</think>\nEnd."),
            "Kept.\n\nEnd."
        );
    }

    #[test]
    fn multibyte_text_around_tags_is_kept_whole() {
        assert_eq!(cleaned("Été — <think>ü</think> “Ω”"), "Été — “Ω”");
    }

    #[test]
    fn the_verdict_follows_the_finish_reason_and_the_text() {
        let verdict = |text: &[u8], reason: Option<&str>| {
            clean(RawCompletion::bytes(text.to_vec()).with_finish_reason(reason)).verdict
        };
        assert_eq!(verdict(b"It rained.", Some("stop")), Verdict::Whole);
        assert_eq!(verdict(b"It rained.", None), Verdict::Whole);
        assert_eq!(verdict(b"It rained and", Some("length")), Verdict::Cut);
        assert_eq!(verdict(b"It rained and", Some("max_tokens")), Verdict::Cut);
        assert_eq!(
            verdict(b"Five words of safe text", Some("content_filter")),
            Verdict::Filtered
        );
        assert_eq!(verdict(b"  \n ", Some("stop")), Verdict::Empty);
        assert_eq!(
            verdict(b"<think>only planning", Some("length")),
            Verdict::Empty
        );
        assert!(
            matches!(verdict(b"It \xff rained.", Some("stop")), Verdict::Bad(reason) if reason.contains("UTF-8"))
        );
        let cut = clean(
            RawCompletion::text("<Think>x</Think>It rained and").with_finish_reason(Some("length")),
        );
        assert_eq!(
            cut,
            Cleaned {
                text: "It rained and".into(),
                verdict: Verdict::Cut
            }
        );
    }

    #[test]
    fn verdicts_become_completions_or_the_contracts_errors() {
        let kind = TaskKind::Outline { chapters: 2 };
        let completion = |text: &str, reason| {
            clean(RawCompletion::text(text).with_finish_reason(reason)).into_completion(&kind)
        };
        assert_eq!(
            completion("It rained.", None),
            Ok(Completion::finished("It rained."))
        );
        assert_eq!(
            completion("It rained and", Some("length")),
            Ok(Completion::cut("It rained and"))
        );
        let Err(GenError::Permanent { code, message }) = completion("x", Some("content_filter"))
        else {
            panic!("a filtered answer was accepted");
        };
        assert_eq!(code, FailureCode::GeneratorFiltered);
        assert!(message.contains("outline"), "{message}");
        assert!(matches!(
            completion("<think>x</think>", None),
            Err(GenError::BadAnswer { .. })
        ));
        let bad = clean(RawCompletion::bytes(b"\xc3(".to_vec())).into_completion(&kind);
        assert!(
            matches!(bad, Err(GenError::Permanent { code, .. }) if code == FailureCode::GeneratorBadResponse)
        );
    }

    #[test]
    fn long_adversarial_text_is_cleaned_in_linear_time() {
        let inputs = [
            "<think ".repeat(200_000),
            "<think".repeat(200_000),
            "</think>x".repeat(200_000),
            "<thinkin".repeat(200_000),
            format!("<think {}", "a".repeat(2_000_000)),
        ];
        let started = std::time::Instant::now();
        for input in &inputs {
            let out = cleaned(input);
            assert!(!out.to_ascii_lowercase().contains("<think>"));
        }
        // A bound for quadratic blow-ups (hours on these inputs), not a
        // benchmark: generous so a loaded machine never fails it.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
    }

    /// Text made of story words, tag fragments and whitespace in any mix.
    fn tagged_text() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("<think>".to_string()),
            Just("</think>".to_string()),
            Just("<THINKING>".to_string()),
            Just("</Thinking>".to_string()),
            Just("<think".to_string()),
            Just("</".to_string()),
            Just("<".to_string()),
            Just(">".to_string()),
            Just("/".to_string()),
            Just("think".to_string()),
            Just("ing".to_string()),
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("é".to_string()),
            "[a-zA-Z<>/ \n]{0,6}",
            any::<String>(),
        ];
        prop::collection::vec(pieces, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn has_tag(text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        ["<think>", "</think>", "<thinking>", "</thinking>"]
            .iter()
            .any(|tag| lower.contains(tag))
            || Tags::new(text).next_tag().is_some()
    }

    proptest! {
        #[test]
        fn cleaning_never_panics_and_never_leaves_a_tag(text in tagged_text()) {
            let out = cleaned(&text);
            prop_assert!(!has_tag(&out), "{:?} -> {:?}", text, out);
            prop_assert_eq!(cleaned(&out), out.clone());
            let _ = clean(RawCompletion::text(text).with_finish_reason(Some("length")));
        }

        #[test]
        fn any_bytes_are_judged_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let result = clean(RawCompletion::bytes(bytes));
            if let Verdict::Whole = result.verdict {
                prop_assert!(!has_tag(&result.text));
            }
        }
    }
}
