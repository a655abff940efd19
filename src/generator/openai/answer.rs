//! What a successful (2xx) answer of an OpenAI-compatible server holds: the
//! raw content and finish reason of its first choice, or an error object
//! sent with status 200, classified by what it says.

use crate::run::FailureCode;
use serde_json::Value;

use crate::generator::{GenError, RawCompletion, Usage};

/// Characters of a server's error body quoted in a message.
const EXCERPT_CHARS: usize = 200;
/// Words in an error a server sent with status 200 that mean "ask again
/// later" (matched in lowercase).
const TRANSIENT_WORDS: &[&str] = &[
    "overload",
    "rate limit",
    "rate-limit",
    "rate_limit",
    "ratelimit",
    "too many requests",
    "busy",
    "try again",
    "retry",
    "temporarily",
    "service unavailable",
    "capacity",
    "timed out",
    "timeout",
];

/// The raw content of a successful answer and its finish reason. Cleaning
/// and judging the text is [`super::clean`]'s job: an empty or missing
/// content is returned empty (a bad answer, asked again), not refused here.
pub(super) fn parse_completion(body: &str) -> Result<RawCompletion, GenError> {
    let bad = |what: String| GenError::permanent(FailureCode::GeneratorBadResponse, what);
    let value: Value = serde_json::from_str(body).map_err(|_| {
        bad(format!(
            "the llm server's answer is not json: {}",
            quoted_excerpt(body)
        ))
    })?;
    let Some(choice) = value.get("choices").and_then(|c| c.get(0)) else {
        if value.get("error").is_some_and(|e| !e.is_null()) {
            return Err(answered_error(&value, body));
        }
        return Err(bad(format!(
            "the llm server's answer has no choices: {}",
            quoted_excerpt(body)
        )));
    };
    let Some(message) = choice.get("message").filter(|m| m.is_object()) else {
        return Err(bad(format!(
            "the llm server's answer has no message: {}",
            quoted_excerpt(body)
        )));
    };
    let Some(content) = content_text(message.get("content").unwrap_or(&Value::Null)) else {
        return Err(bad(format!(
            "the llm server's answer has message content that is not text: {}",
            quoted_excerpt(body)
        )));
    };
    let reason = choice.get("finish_reason").and_then(Value::as_str);
    Ok(RawCompletion::text(content)
        .with_finish_reason(reason)
        .with_usage(reported_usage(&value)))
}

/// The answer's `usage` when it holds both token counts as numbers; a
/// partial or malformed one is ignored (the estimates stand in), never an
/// error: the text is what matters.
pub(super) fn reported_usage(value: &Value) -> Option<Usage> {
    let usage = value.get("usage")?;
    let count = |field: &str| {
        usage
            .get(field)
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
    };
    Some(Usage {
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
    })
}

/// A message's content: a string, or an array of parts whose text parts are
/// joined; `null` or missing is no text. `None` for anything else.
pub(super) fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::Null => Some(String::new()),
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(parts.iter().filter_map(part_text).collect()),
        _ => None,
    }
}

/// The text of one content part; reasoning, image and other parts have none.
fn part_text(part: &Value) -> Option<&str> {
    if let Value::String(text) = part {
        return Some(text);
    }
    let kind = part.get("type").and_then(Value::as_str);
    if matches!(kind, None | Some("text" | "output_text")) {
        part.get("text").and_then(Value::as_str)
    } else {
        None
    }
}

/// An error object sent with status 200, classified by what it says (and by
/// an HTTP-like numeric `code` when it has one): worth asking again later,
/// or permanent.
pub(super) fn answered_error(value: &Value, body: &str) -> GenError {
    let excerpt = error_excerpt(body);
    let error = &value["error"];
    let mut said = excerpt.to_lowercase();
    for field in ["type", "code", "status"] {
        if let Some(text) = error.get(field).and_then(Value::as_str) {
            said.push(' ');
            said.push_str(&text.to_lowercase());
        }
    }
    let status = ["code", "status"]
        .into_iter()
        .find_map(|field| error.get(field).and_then(Value::as_u64));
    let busy_status = status.is_some_and(|s| s == 408 || s == 429 || (500..600).contains(&s));
    if busy_status || TRANSIENT_WORDS.iter().any(|word| said.contains(word)) {
        GenError::transient(format!(
            "the llm server answered with an error (status 200): {excerpt}"
        ))
    } else {
        GenError::permanent(
            FailureCode::GeneratorBadResponse,
            format!("the llm server answered with an error (status 200): {excerpt}"),
        )
    }
}

/// The useful part of an error body: the `error.message` (OpenAI), `message`
/// (vLLM) or `detail` of a JSON error, else the text itself, shortened.
pub(super) fn error_excerpt(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body).ok().and_then(|value| {
        let error = value.get("error");
        [
            error.and_then(|e| e.get("message")),
            error,
            value.get("message"),
            value.get("detail"),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_string))
    });
    shorten(message.as_deref().unwrap_or(body))
}

pub(super) fn quoted_excerpt(body: &str) -> String {
    if body.trim().is_empty() {
        "(an empty body)".into()
    } else {
        format!("`{}`", shorten(body))
    }
}

/// Whitespace collapsed, at most [`EXCERPT_CHARS`] characters.
fn shorten(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return collapsed;
    }
    let mut short: String = collapsed.chars().take(EXCERPT_CHARS).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::clean::clean;
    use crate::generator::openai::code;
    use crate::generator::{Completion, TaskKind};

    /// A body as the engine sees it: parsed, then cleaned.
    fn answer(body: &str) -> Result<Completion, GenError> {
        parse_completion(body)
            .and_then(|raw| clean(raw).into_completion(&TaskKind::Outline { chapters: 1 }))
    }

    #[test]
    fn a_completion_yields_its_first_choices_text() {
        let body = r#"{"choices":[{"message":{"role":"assistant","content":"  It rained.\n"},"finish_reason":"stop"}]}"#;
        assert_eq!(answer(body).unwrap(), Completion::finished("It rained."));
        let thinking =
            r#"{"choices":[{"message":{"content":"<think>plan it</think>\n\nIt rained."}}]}"#;
        assert_eq!(answer(thinking).unwrap().text, "It rained.");
    }

    #[test]
    fn the_servers_usage_is_read_when_whole() {
        let body = r#"{"choices":[{"message":{"content":"It rained."}}],"usage":{"prompt_tokens":120,"completion_tokens":7,"total_tokens":127}}"#;
        assert_eq!(
            parse_completion(body).unwrap().usage,
            Some(Usage {
                prompt_tokens: 120,
                completion_tokens: 7
            })
        );
        for body in [
            r#"{"choices":[{"message":{"content":"It rained."}}]}"#,
            r#"{"choices":[{"message":{"content":"It rained."}}],"usage":null}"#,
            r#"{"choices":[{"message":{"content":"It rained."}}],"usage":{"prompt_tokens":120}}"#,
            r#"{"choices":[{"message":{"content":"It rained."}}],"usage":{"prompt_tokens":"x","completion_tokens":3}}"#,
        ] {
            assert_eq!(parse_completion(body).unwrap().usage, None, "{body}");
        }
    }

    #[test]
    fn a_completion_cut_by_the_length_limit_says_so() {
        let body =
            r#"{"choices":[{"message":{"content":"It rained and"},"finish_reason":"length"}]}"#;
        assert_eq!(answer(body).unwrap(), Completion::cut("It rained and"));
    }

    #[test]
    fn a_filtered_completion_is_refused_whatever_its_text() {
        let body = r#"{"choices":[{"message":{"content":"Five harmless words here."},"finish_reason":"content_filter"}]}"#;
        assert_eq!(
            code(&answer(body).unwrap_err()),
            FailureCode::GeneratorFiltered.as_str()
        );
    }

    #[test]
    fn content_given_as_text_parts_is_joined() {
        let body = r#"{"choices":[{"message":{"content":[
            {"type":"reasoning","text":"plan it"},
            {"type":"text","text":"It rained. "},
            {"type":"image_url","image_url":{"url":"x"}},
            {"type":"text","text":"Then it stopped."}
        ]},"finish_reason":"stop"}]}"#;
        assert_eq!(
            answer(body).unwrap(),
            Completion::finished("It rained. Then it stopped.")
        );
    }

    #[test]
    fn separate_reasoning_fields_never_become_text() {
        let body = r#"{"choices":[{"message":{"content":"It rained.","reasoning_content":"SECRET PLAN","reasoning":"MORE PLAN"}}]}"#;
        assert_eq!(answer(body).unwrap(), Completion::finished("It rained."));
        // A model that only reasoned gave a bad answer, worth asking again.
        for body in [
            r#"{"choices":[{"message":{"content":"","reasoning_content":"SECRET PLAN"},"finish_reason":"length"}]}"#,
            r#"{"choices":[{"message":{"content":null,"reasoning":"SECRET PLAN"}}]}"#,
            r#"{"choices":[{"message":{"reasoning":"SECRET PLAN"}}]}"#,
        ] {
            let error = answer(body).unwrap_err();
            assert_eq!(code(&error), "bad answer", "{body}");
            assert!(!error.to_string().contains("SECRET"), "{error}");
        }
    }

    #[test]
    fn malformed_answers_are_bad_responses() {
        for body in [
            "",
            "<html>gateway</html>",
            "{}",
            r#"{"choices":[]}"#,
            r#"{"choices":[{}]}"#,
            r#"{"choices":[{"message":"text"}]}"#,
            r#"{"choices":[{"message":{"content":42}}]}"#,
            r#"{"error":null}"#,
        ] {
            let error = answer(body).unwrap_err();
            assert_eq!(
                code(&error),
                FailureCode::GeneratorBadResponse.as_str(),
                "{body}: {error}"
            );
        }
    }

    #[test]
    fn an_error_sent_with_status_200_is_classified_by_what_it_says() {
        for body in [
            r#"{"error":{"message":"model is overloaded"}}"#,
            r#"{"error":"Server busy, please try again later"}"#,
            r#"{"error":{"message":"Rate limit reached for requests"}}"#,
            r#"{"error":{"message":"upstream failed","code":503}}"#,
            r#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#,
        ] {
            let error = answer(body).unwrap_err();
            assert_eq!(code(&error), "transient", "{body}: {error}");
        }
        for body in [
            r#"{"error":{"message":"model 'x' does not exist","type":"invalid_request_error"}}"#,
            r#"{"error":"invalid api key"}"#,
        ] {
            let error = answer(body).unwrap_err();
            assert_eq!(
                code(&error),
                FailureCode::GeneratorBadResponse.as_str(),
                "{body}: {error}"
            );
        }
        let error = answer(r#"{"error":{"message":"model is overloaded"}}"#).unwrap_err();
        assert!(error.to_string().contains("model is overloaded"), "{error}");
    }

    #[test]
    fn error_bodies_are_quoted_short() {
        assert_eq!(
            error_excerpt(r#"{"error":{"message":"Invalid API key","type":"auth"}}"#),
            "Invalid API key"
        );
        assert_eq!(
            error_excerpt(r#"{"error":"no such model"}"#),
            "no such model"
        );
        assert_eq!(
            error_excerpt(r#"{"object":"error","message":"bad input"}"#),
            "bad input"
        );
        assert_eq!(error_excerpt(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_excerpt("plain\n\ntext  here"), "plain text here");
        let long = "é".repeat(1000);
        let short = error_excerpt(&long);
        assert_eq!(short.chars().count(), EXCERPT_CHARS + 1);
        assert!(short.ends_with('…'));
    }
}
