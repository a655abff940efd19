use serde_json::json;

use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;

fn serve(flags: &[&str]) -> ServeConfig {
    let argv = ["storyflow", "serve"].iter().chain(flags).copied();
    let Ok(Cli {
        command: Some(Command::Serve(args)),
        ..
    }) = Cli::try_parse_from(argv)
    else {
        panic!("parses: {flags:?}");
    };
    ServeConfig::from_args(&args).expect("valid flags")
}

fn saved(pairs: &[(&str, serde_json::Value)]) -> StoredSettings {
    pairs.iter().fold(StoredSettings::default(), |s, (k, v)| {
        s.with_change(k, Some(v))
    })
}

#[test]
fn a_flag_wins_over_a_saved_value_which_wins_over_the_default() {
    let stored = saved(&[
        ("generator", json!("openai")),
        ("llm_model", json!("saved-model")),
        ("llm_url", json!("http://saved:1/v1")),
        ("context_tokens", json!(4096)),
    ]);
    let plain = resolve(&serve(&[]), &stored);
    assert_eq!(plain.generator, "openai");
    assert_eq!(plain.llm.model, "saved-model");
    assert_eq!(plain.context_tokens, 4096);

    let flagged = resolve(
        &serve(&["--llm-model", "flag-model", "--generator", "builtin"]),
        &stored,
    );
    assert_eq!(flagged.generator, "builtin");
    assert_eq!(flagged.llm.model, "flag-model");
    assert_eq!(flagged.llm.base_url, "http://saved:1/v1");

    let defaults = resolve(&serve(&[]), &StoredSettings::default());
    assert_eq!(defaults.generator, "builtin");
    assert_eq!(defaults.llm.model, crate::config::defaults::LLM_MODEL);
    assert_eq!(
        defaults.context_tokens,
        crate::config::defaults::LLM_CONTEXT_TOKENS
    );
}

#[test]
fn the_command_generator_cannot_be_changed_by_saved_settings() {
    let config = serve(&["--generator", "command", "--generator-cmd", "cat"]);
    let effective = resolve(&config, &saved(&[("generator", json!("openai"))]));
    assert_eq!(effective.generator, "command");
    let shown = to_json(&config, &effective);
    assert_eq!(shown["generator_locked"], true);
    assert!(
        shown["fixed_by_flags"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("generator")))
    );
}

#[test]
fn reads_say_whether_a_key_is_set_and_never_show_it() {
    let effective = resolve(
        &serve(&[]),
        &saved(&[("llm_api_key", json!("sk-never-shown"))]),
    );
    let shown = to_json(&serve(&[]), &effective);
    assert_eq!(shown["llm_api_key_set"], true);
    assert!(!shown.to_string().contains("sk-never-shown"));
    assert!(!format!("{effective:?}").contains("sk-never-shown"));
}

#[test]
fn a_patch_is_checked_field_by_field() {
    let changes = validate_patch(&json!({
        "llm_model": " qwen3 ",
        "llm_api_key": "",
        "outline_model": null,
        "temperature": 0.5,
    }))
    .expect("valid");
    assert!(changes.contains(&("llm_model", Some(json!("qwen3")))));
    assert!(changes.contains(&("llm_api_key", None)));
    assert!(changes.contains(&("outline_model", None)));
    let refused = |body| validate_patch(&body).unwrap_err();
    assert_eq!(
        refused(json!({"generator_cmd": "sh"})).code(),
        "BAD_REQUEST"
    );
    assert_eq!(refused(json!({"nope": 1})).code(), "BAD_REQUEST");
    assert_eq!(refused(json!([1])).code(), "BAD_REQUEST");
    for bad in [
        json!({"generator": "command"}),
        json!({"llm_url": "ftp://x"}),
        json!({"temperature": -1}),
        json!({"context_tokens": 10}),
        json!({"price_input_per_mtok": -0.5}),
        json!({"llm_extra_body": {"messages": []}}),
        json!({"llm_model": ""}),
    ] {
        assert_eq!(refused(bad.clone()).code(), "VALIDATION_FAILED", "{bad}");
    }
    let secret = refused(json!({"llm_api_key": "sk-\u{7}bell"})).to_string();
    assert!(!secret.contains("sk-"), "{secret}");
}

#[test]
fn the_temperature_goes_into_requests_unless_the_extra_body_sets_one() {
    let mut effective = resolve(&serve(&[]), &saved(&[("temperature", json!(0.3))]));
    assert_eq!(effective.request_config("m").extra_body["temperature"], 0.3);
    effective
        .llm
        .extra_body
        .insert("temperature".into(), json!(1.1));
    assert_eq!(effective.request_config("m").extra_body["temperature"], 1.1);
    assert_eq!(effective.request_config("other").model, "other");
}
