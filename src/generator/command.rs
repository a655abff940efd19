//! A local program as generator: the prompt on its standard input, the text
//! from its standard output.
//!
//! The command line is split like a shell would (`shell-words`) but no shell
//! runs it; write `sh -c '...'` for pipes and redirections. The program is
//! told what it writes through the environment: `STORYFLOW_TASK` (`outline`,
//! `chapter`, `continue` or `summary`), `STORYFLOW_CHAPTER` and
//! `STORYFLOW_CHAPTERS`.
//!
//! A non-zero exit or a timeout (the program is killed) is transient, so the
//! engine retries it; a program that cannot be found or started is
//! permanent; one that exits 0 without text gave a bad answer (asked again,
//! then `GENERATOR_BAD_RESPONSE`). Standard output is returned as raw bytes
//! and cleaned by [`super::clean`] (output that is not UTF-8 is a
//! `GENERATOR_BAD_RESPONSE`). Errors carry the tail of standard error, which
//! is where a program explains itself.
//!
//! Cancelling the task's token kills the program within one poll interval
//! (at most 25 ms) and returns [`GenError::Cancelled`].
//!
//! Invariant: standard input, output and error are served by their own
//! threads, so a program that writes a lot before reading its input, or
//! never reads it, cannot deadlock storyflow.

use crate::run::FailureCode;
use std::io::{self, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{GenError, Generator, RawCompletion, Task, TaskKind};
use crate::cancel::CancelToken;

/// Characters of standard error quoted in a message.
const STDERR_TAIL_CHARS: usize = 500;
/// Bytes of standard error kept (the tail; the rest is read and dropped).
const STDERR_KEEP_BYTES: usize = 16 * 1024;
/// Largest standard output accepted.
const MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;
/// How long to wait for the last output once the program has ended.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

pub struct CommandGenerator {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

impl CommandGenerator {
    pub fn new(command_line: &str, timeout: Duration) -> Result<CommandGenerator, String> {
        let words = shell_words::split(command_line)
            .map_err(|e| format!("the generator command line cannot be parsed: {e}"))?;
        let Some((program, args)) = words.split_first() else {
            return Err("the generator command line is empty; give a program and its arguments, such as \"llm -m mistral\"".into());
        };
        if program.is_empty() {
            return Err("the generator command line names an empty program".into());
        }
        Ok(CommandGenerator {
            program: program.clone(),
            args: args.to_vec(),
            timeout,
        })
    }

    /// Runs the program once with `input` on its standard input; its
    /// standard output as raw bytes.
    fn run(
        &self,
        input: String,
        task: &TaskKind<'_>,
        cancel: &CancelToken,
    ) -> Result<Vec<u8>, GenError> {
        let program = &self.program;
        let mut child = self
            .command(task)
            .spawn()
            .map_err(|e| spawn_error(program, &e))?;
        let deadline = Instant::now() + self.timeout;
        let io = ChildIo::start(&mut child, input);
        let status = self.wait_for_exit(&mut child, &io, deadline, cancel)?;
        if !status.success() {
            let tail = io.stderr_tail(Instant::now() + DRAIN_GRACE);
            return Err(GenError::transient(with_tail(
                format!("`{program}` {}", describe(status)),
                &tail,
            )));
        }
        self.collect_output(&io, deadline)
    }

    /// The program line with its environment: what it is asked to write.
    fn command(&self, task: &TaskKind<'_>) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.env("STORYFLOW_TASK", task.name());
        match (task, task.chapter()) {
            (TaskKind::Outline { chapters }, _) => command
                .env("STORYFLOW_CHAPTERS", chapters.to_string())
                .env_remove("STORYFLOW_CHAPTER"),
            (_, Some(chapter)) => command
                .env("STORYFLOW_CHAPTER", chapter.number.to_string())
                .env("STORYFLOW_CHAPTERS", chapter.total.to_string()),
            (_, None) => command.env_remove("STORYFLOW_CHAPTER"),
        };
        command
    }

    /// Waits for the program to exit; kills it at the deadline or on cancel.
    fn wait_for_exit(
        &self,
        child: &mut Child,
        io: &ChildIo,
        deadline: Instant,
        cancel: &CancelToken,
    ) -> Result<ExitStatus, GenError> {
        let program = &self.program;
        let ended = wait_until(child, deadline, cancel);
        if !matches!(ended, Ok(Ended::Exited(_))) {
            let _ = child.kill();
            let _ = child.wait();
        }
        match ended {
            Ok(Ended::Exited(status)) => Ok(status),
            Ok(Ended::Cancelled) => Err(GenError::Cancelled),
            Ok(Ended::TimedOut) => {
                let tail = io.stderr_tail(Instant::now() + DRAIN_GRACE);
                Err(GenError::transient(with_tail(
                    format!(
                        "`{program}` did not finish within {} and was killed",
                        humantime::format_duration(self.timeout)
                    ),
                    &tail,
                )))
            }
            Err(e) => Err(GenError::transient(format!(
                "could not wait for `{program}`: {e}"
            ))),
        }
    }

    /// The standard output of a program that exited successfully.
    fn collect_output(&self, io: &ChildIo, deadline: Instant) -> Result<Vec<u8>, GenError> {
        let program = &self.program;
        // A program that exited may have left a background process holding
        // its output open: wait for the output no longer than the deadline.
        let drain_by = deadline.max(Instant::now() + DRAIN_GRACE);
        let stdout = io.stdout.recv_deadline(drain_by);
        let tail = io.stderr_tail(drain_by);
        let output = match stdout {
            Some(Ok(Output {
                bytes,
                truncated: false,
            })) => bytes,
            Some(Ok(Output {
                truncated: true, ..
            })) => {
                return Err(GenError::permanent(
                    FailureCode::GeneratorBadResponse,
                    format!(
                        "`{program}` wrote more than {} MiB to standard output",
                        MAX_OUTPUT_BYTES / (1024 * 1024)
                    ),
                ));
            }
            Some(Err(e)) => {
                return Err(GenError::transient(format!(
                    "could not read the output of `{program}`: {e}"
                )));
            }
            None => {
                return Err(GenError::transient(format!(
                    "`{program}` exited but its standard output stayed open (a background process?)"
                )));
            }
        };
        // Cleaning would find this too; here the message can quote stderr.
        if output.iter().all(u8::is_ascii_whitespace) {
            return Err(GenError::BadAnswer {
                message: with_tail(
                    format!("`{program}` exited successfully but wrote no text"),
                    &tail,
                ),
            });
        }
        Ok(output)
    }
}

impl Generator for CommandGenerator {
    fn name(&self) -> &'static str {
        "command"
    }

    fn generate(&self, task: &Task<'_>) -> Result<RawCompletion, GenError> {
        if task.cancel.is_cancelled() {
            return Err(GenError::Cancelled);
        }
        self.run(task.prompt.as_text(), &task.kind, task.cancel)
            .map(RawCompletion::bytes)
    }
}

fn spawn_error(program: &str, error: &io::Error) -> GenError {
    match error.kind() {
        io::ErrorKind::NotFound => GenError::permanent(
            FailureCode::GeneratorRejected,
            format!(
                "the generator program `{program}` was not found; check --generator-cmd and PATH"
            ),
        ),
        io::ErrorKind::PermissionDenied => GenError::permanent(
            FailureCode::GeneratorRejected,
            format!(
                "the generator program `{program}` cannot be executed (permission denied); check --generator-cmd"
            ),
        ),
        _ => GenError::transient(format!("could not start `{program}`: {error}")),
    }
}

/// How a wait for the child ended.
enum Ended {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

/// Polls the child until it exits, the deadline passes or `cancel` is
/// cancelled (which also ends the pause between polls).
fn wait_until(child: &mut Child, deadline: Instant, cancel: &CancelToken) -> io::Result<Ended> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ended::Exited(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Ended::TimedOut);
        }
        if cancel.wait(pause.min(deadline - now)) {
            return Ok(Ended::Cancelled);
        }
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {signal}");
        }
    }
    format!("failed ({status})")
}

/// `message`, then what the program said on standard error, if anything.
fn with_tail(message: String, tail: &str) -> String {
    if tail.is_empty() {
        message
    } else {
        format!("{message}; its standard error ends: {tail}")
    }
}

struct Output {
    bytes: Vec<u8>,
    truncated: bool,
}

/// The threads serving a child's standard streams; each reports once.
struct ChildIo {
    stdout: Pending<io::Result<Output>>,
    stderr: Pending<Vec<u8>>,
}

struct Pending<T>(mpsc::Receiver<T>);

impl<T> Pending<T> {
    /// The value, or `None` if it is not ready by `deadline`.
    fn recv_deadline(&self, deadline: Instant) -> Option<T> {
        self.0
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .ok()
    }
}

impl ChildIo {
    fn start(child: &mut Child, input: String) -> ChildIo {
        if let Some(mut stdin) = child.stdin.take() {
            thread::spawn(move || {
                // A program may exit without reading all of it (broken pipe).
                let _ = stdin.write_all(input.as_bytes());
            });
        }
        let (stdout_tx, stdout_rx) = mpsc::channel();
        match child.stdout.take() {
            Some(stdout) => {
                thread::spawn(move || {
                    let _ = stdout_tx.send(read_capped(stdout));
                });
            }
            None => {
                let _ = stdout_tx.send(Ok(Output {
                    bytes: Vec::new(),
                    truncated: false,
                }));
            }
        }
        let (stderr_tx, stderr_rx) = mpsc::channel();
        match child.stderr.take() {
            Some(stderr) => {
                thread::spawn(move || {
                    let _ = stderr_tx.send(read_tail(stderr));
                });
            }
            None => {
                let _ = stderr_tx.send(Vec::new());
            }
        }
        ChildIo {
            stdout: Pending(stdout_rx),
            stderr: Pending(stderr_rx),
        }
    }

    fn stderr_tail(&self, deadline: Instant) -> String {
        self.stderr
            .recv_deadline(deadline)
            .map(|bytes| tail(&String::from_utf8_lossy(&bytes), STDERR_TAIL_CHARS))
            .unwrap_or_default()
    }
}

/// Reads everything, keeping at most [`MAX_OUTPUT_BYTES`].
fn read_capped(stream: impl Read) -> io::Result<Output> {
    let mut bytes = Vec::new();
    let mut limited = stream.take(MAX_OUTPUT_BYTES + 1);
    limited.read_to_end(&mut bytes)?;
    let truncated = bytes.len() as u64 > MAX_OUTPUT_BYTES;
    if truncated {
        bytes.truncate(MAX_OUTPUT_BYTES as usize);
        // Keep reading so the program is not stopped by a full pipe.
        io::copy(&mut limited.into_inner(), &mut io::sink())?;
    }
    Ok(Output { bytes, truncated })
}

/// Reads everything, keeping the last [`STDERR_KEEP_BYTES`].
fn read_tail(mut stream: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                kept.extend_from_slice(&buffer[..n]);
                if kept.len() > 2 * STDERR_KEEP_BYTES {
                    kept.drain(..kept.len() - STDERR_KEEP_BYTES);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    kept
}

/// The last `max` characters of `text`, its lines joined with ` | `.
fn tail(text: &str, max: usize) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    let count = joined.chars().count();
    if count <= max {
        return joined;
    }
    let skipped: String = joined.chars().skip(count - max).collect();
    format!("…{skipped}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::{ChapterRequest, Prompt, StoryContext};
    use crate::store::StoryId;

    fn story(outline: String) -> StoryContext {
        StoryContext {
            story_id: StoryId::random(),
            title: "The Salt Road".into(),
            premise: "A courier crosses a drowned country.".into(),
            outline,
            previous: Vec::new(),
            previous_tail: String::new(),
            brief: Default::default(),
            bible: Vec::new(),
        }
    }

    fn first_chapter() -> ChapterRequest {
        ChapterRequest {
            number: 1,
            total: 2,
            title: "Low Tide".into(),
        }
    }

    /// Asks `generator` for chapter 1 with `extra` appended to the prompt.
    fn ask(generator: &CommandGenerator, extra: &str) -> Result<String, GenError> {
        ask_with(generator, extra, &CancelToken::new())
    }

    fn ask_with(
        generator: &CommandGenerator,
        extra: &str,
        cancel: &CancelToken,
    ) -> Result<String, GenError> {
        let story = story(String::new());
        let chapter = first_chapter();
        let task = Task {
            story: &story,
            kind: TaskKind::Chapter(&chapter),
            prompt: Prompt {
                system: "You are a novelist.".into(),
                user: format!(
                    "Title: The Salt Road\nWrite chapter 1 of 2, titled \"Low Tide\".\n{extra}"
                ),
            },
            max_tokens: 1000,
            cancel,
            live: None,
        };
        crate::generator::ask(generator, &task).map(|completion| completion.text)
    }

    fn run(command_line: &str, timeout: Duration) -> Result<String, GenError> {
        ask(&CommandGenerator::new(command_line, timeout).unwrap(), "")
    }

    fn code(error: &GenError) -> &'static str {
        match error {
            GenError::Permanent { code, .. } => code.as_str(),
            GenError::Transient { .. } => "transient",
            GenError::BadAnswer { .. } => "bad answer",
            GenError::Cancelled => "cancelled",
        }
    }

    #[test]
    fn the_command_line_must_parse_and_name_a_program() {
        for bad in ["", "   ", "echo 'unclosed", "''"] {
            assert!(
                CommandGenerator::new(bad, Duration::from_secs(1)).is_err(),
                "{bad:?} was accepted"
            );
        }
        let generator =
            CommandGenerator::new("llm -m 'big model' --x=\"a b\"", Duration::from_secs(1))
                .unwrap();
        assert_eq!(generator.program, "llm");
        assert_eq!(generator.args, ["-m", "big model", "--x=a b"]);
    }

    #[test]
    fn stderr_tails_are_short_and_on_one_line() {
        assert_eq!(tail("a\n\n b \nc\n", 100), "a | b | c");
        let long = format!("start {}end", "é".repeat(1000));
        let short = tail(&long, 10);
        assert_eq!(short, format!("…{}end", "é".repeat(7)));
    }

    #[cfg(unix)]
    #[test]
    fn the_prompt_goes_in_and_the_text_comes_out() {
        let text = run(
            "sh -c 'grep -q \"The Salt Road\" && echo \"  $STORYFLOW_TASK $STORYFLOW_CHAPTER of $STORYFLOW_CHAPTERS\"'",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(text, "chapter 1 of 2");
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_program_is_transient_and_quotes_its_stderr() {
        let error = run(
            "sh -c 'cat >/dev/null; echo first line >&2; echo model not loaded >&2; exit 3'",
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert_eq!(code(&error), "transient");
        let message = error.to_string();
        assert!(message.contains("`sh` exited with status 3"), "{message}");
        assert!(
            message.ends_with("first line | model not loaded"),
            "{message}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn empty_output_is_a_bad_answer_worth_asking_again() {
        let error = run(
            "sh -c 'echo; echo \"   \"; echo nothing to say >&2'",
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert_eq!(code(&error), "bad answer");
        assert!(error.to_string().contains("nothing to say"), "{error}");
        let error = run(
            "printf '<think>only planning</think>\\n'",
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert_eq!(code(&error), "bad answer", "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn output_is_cleaned_of_reasoning() {
        let text = run(
            "printf 'plan first</think>\\n\\nThe tide turned.\\n<Thinking>more'",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(text, "The tide turned.");
    }

    #[cfg(unix)]
    #[test]
    fn output_that_is_not_utf8_is_a_bad_response() {
        let error = run("printf 'The tide \\377 turned.'", Duration::from_secs(10)).unwrap_err();
        assert_eq!(
            code(&error),
            FailureCode::GeneratorBadResponse.as_str(),
            "{error}"
        );
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn cancel_kills_the_program_at_once() {
        let generator =
            CommandGenerator::new("sh -c 'exec sleep 30'", Duration::from_secs(60)).unwrap();
        let cancel = CancelToken::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                cancel.cancel();
            })
        };
        let started = Instant::now();
        let error = ask_with(&generator, "", &cancel).unwrap_err();
        assert_eq!(error, GenError::Cancelled);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        canceller.join().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_cancelled_task_starts_no_program() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let generator = CommandGenerator::new(
            &format!("touch '{}'", marker.display()),
            Duration::from_secs(10),
        )
        .unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        assert_eq!(ask_with(&generator, "", &cancel), Err(GenError::Cancelled));
        let story = story(String::new());
        let chapter = first_chapter();
        let task = Task {
            story: &story,
            kind: TaskKind::Chapter(&chapter),
            prompt: Prompt::default(),
            max_tokens: 10,
            cancel: &cancel,
            live: None,
        };
        // The backend itself refuses too, not only `ask`.
        assert_eq!(generator.generate(&task), Err(GenError::Cancelled));
        assert!(!marker.exists());
    }

    #[test]
    fn a_missing_program_is_rejected() {
        let error = run(
            "storyflow-no-such-program-7f3a --flag",
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert_eq!(code(&error), FailureCode::GeneratorRejected.as_str());
        assert!(error.to_string().contains("not found"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_slow_program_is_killed_at_the_timeout() {
        let started = Instant::now();
        let error = run(
            "sh -c 'echo thinking >&2; exec sleep 30'",
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert_eq!(code(&error), "transient");
        assert!(started.elapsed() < Duration::from_secs(10), "{error}");
        let message = error.to_string();
        assert!(message.contains("did not finish within 300ms"), "{message}");
        assert!(message.contains("thinking"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_program_that_writes_before_reading_does_not_deadlock() {
        // Both the prompt and the output are far larger than a pipe buffer.
        let outline = "## Chapter 1: Low Tide\n".repeat(20_000);
        let generator = CommandGenerator::new(
            "sh -c 'head -c 1000000 /dev/zero | tr \"\\0\" a; echo; wc -c'",
            Duration::from_secs(20),
        )
        .unwrap();
        let text = ask(&generator, &outline).unwrap();
        let (written, counted) = text.split_once('\n').unwrap();
        assert_eq!(written.len(), 1_000_000);
        let counted: usize = counted.trim().parse().unwrap();
        assert!(counted > outline.len(), "{counted}");
    }

    #[cfg(unix)]
    #[test]
    fn a_program_that_ignores_its_input_still_works() {
        let outline = "## Chapter 1: Low Tide\n".repeat(20_000);
        let generator =
            CommandGenerator::new("echo Chapter text here", Duration::from_secs(10)).unwrap();
        assert_eq!(ask(&generator, &outline).unwrap(), "Chapter text here");
    }
}
