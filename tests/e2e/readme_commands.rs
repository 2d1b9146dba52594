//! README.md's commands still work. Every fenced `sh` block of the README is read,
//! command by command. Each `sverka-agent` and `sverka-collector` command is held
//! against the binaries' `--help` (its subcommands, its flags, the values a flag
//! allows) and then run in a sandbox: a temporary folder as the working directory, a
//! collector database of its own that starts with a region (id 1), a municipality
//! (id 2) and a school (id 3), a `pw.txt`, and a password on stdin. Every other
//! command (building, the test suite itself, the demo) must be listed in
//! [`NOT_RUN`] with the reason, so a new README command is either run here or
//! explained there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use sverka_tests::real_collector::collector_binary;
use sverka_tests::{Run, agent_binary, run_command};

/// README commands this test does not run, each with the reason. `sverka-agent` and
/// `sverka-collector` commands listed here are still held against `--help`; a `bash
/// FILE` command's script must exist and mention every `--flag` given to it.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "bash scripts/demo.sh",
        "builds release binaries and keeps a collector serving on 127.0.0.1:8440 until \
         Ctrl-C; run by hand",
    ),
    (
        "bash scripts/test.sh",
        "the whole test suite, which runs this test",
    ),
    (
        "cargo build --release --locked --bin sverka-agent --bin sverka-collector",
        "compiles release binaries; this test runs the same binaries, built for the test",
    ),
];

/// Exit statuses other than 0 that a command may end with here, and why.
const OTHER_EXIT_STATUSES: &[(&str, &[i32], &str)] = &[
    (
        "sverka-agent scan",
        &[1],
        "a banned messenger is installed or running on this machine",
    ),
    ("sverka-agent status", &[2], "this machine is not enrolled"),
    (
        "sverka-collector report weekly",
        &[2],
        "no PC of the sandbox's organizations has reported, so the week has no data \
         (the weekly report never invents figures)",
    ),
];

/// Fenced-block languages that hold commands.
const SHELL_LANGUAGES: &[&str] = &["sh", "shell", "bash"];

/// The sandbox's password (on stdin and in `pw.txt`): long enough for the dashboard.
const PASSWORD: &str = "readme-sandbox-password";

#[test]
fn every_readme_command_runs_or_is_listed_with_a_reason() {
    let workspace = workspace_root();
    let readme = std::fs::read_to_string(workspace.join("README.md")).expect("README.md");
    let commands = readme_commands(&readme).unwrap_or_else(|error| panic!("README.md: {error}"));
    assert!(
        commands
            .iter()
            .any(|command| command.words[0] == "sverka-agent"),
        "README.md names no sverka-agent command in an `sh` block"
    );

    let sandbox = Sandbox::new();
    let mut failures = Vec::new();
    let mut listed_and_seen = BTreeSet::new();
    for command in &commands {
        let text = command.words.join(" ");
        let not_run = NOT_RUN.iter().find(|(listed, _)| *listed == text);
        if not_run.is_some() {
            listed_and_seen.insert(text.clone());
        }
        let outcome = match command.words[0].as_str() {
            "sverka-agent" | "sverka-collector" => {
                check_against_help(&command.words).and_then(|()| match not_run {
                    Some(_) => Ok(()),
                    None => sandbox.run(command),
                })
            }
            _ => match not_run {
                Some(_) => check_script(&workspace, &command.words),
                None => Err(
                    "neither run by this test nor listed in NOT_RUN (tests/e2e/readme_commands.rs) \
                     with the reason"
                        .to_string(),
                ),
            },
        };
        if let Err(error) = outcome {
            failures.push(format!("README.md:{}: `{text}`: {error}", command.line));
        }
    }
    for (listed, _) in NOT_RUN {
        if !listed_and_seen.contains(*listed) {
            failures.push(format!(
                "NOT_RUN lists `{listed}`, which README.md no longer has: remove it"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The parser's own cases: blocks, continuations, comments, quotes, redirections.
#[test]
fn readme_commands_are_read_like_a_shell_reads_them() {
    let text = "intro\n\n```sh\nsverka-agent scan   # a comment\n\n\
                sverka-collector org add --name \"Школа №5\" \\\n    --parent 2\n\
                sverka-collector user add --login a --role administrator < pw.txt\n```\n\n\
                ```toml\nkey = \"sverka-agent not a command\"\n```\n";
    let commands = readme_commands(text).unwrap();
    let words: Vec<Vec<&str>> = commands
        .iter()
        .map(|command| command.words.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        words,
        vec![
            vec!["sverka-agent", "scan"],
            vec![
                "sverka-collector",
                "org",
                "add",
                "--name",
                "Школа №5",
                "--parent",
                "2"
            ],
            vec![
                "sverka-collector",
                "user",
                "add",
                "--login",
                "a",
                "--role",
                "administrator"
            ],
        ]
    );
    assert_eq!(
        commands
            .iter()
            .map(|command| command.line)
            .collect::<Vec<_>>(),
        vec![4, 6, 8]
    );
    assert_eq!(commands[2].stdin.as_deref(), Some("pw.txt"));

    let unmarked = readme_commands("```\nsverka-agent scan\n```\n").unwrap_err();
    assert!(unmarked.contains("language"), "{unmarked}");
    let piped = readme_commands("```sh\nsverka-agent scan | less\n```\n").unwrap_err();
    assert!(piped.contains("`|`"), "{piped}");
}

/// `--help` is enough to refuse a subcommand or flag that does not exist.
#[test]
fn the_help_check_refuses_what_does_not_exist() {
    let words = |text: &str| -> Vec<String> { text.split(' ').map(str::to_string).collect() };
    check_against_help(&words("sverka-agent scan --format json --walk-depth 3")).unwrap();
    check_against_help(&words(
        "sverka-collector --database x.db report coverage --org 1",
    ))
    .unwrap();
    let cases = [
        ("sverka-agent scna", "no subcommand `scna`"),
        ("sverka-agent scan --fromat json", "no flag `--fromat`"),
        ("sverka-agent scan --format yaml", "`yaml` is not one of"),
        ("sverka-collector report", "needs a subcommand"),
        (
            "sverka-collector report coverage --org 1 --tree",
            "no flag `--tree`",
        ),
    ];
    for (command, expected) in cases {
        let error = check_against_help(&words(command)).unwrap_err();
        assert!(error.contains(expected), "{command}: {error}");
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// One command of a fenced `sh` block.
#[derive(Debug)]
struct ReadmeCommand {
    /// 1-based line of the README where it starts.
    line: usize,
    words: Vec<String>,
    /// `< FILE`
    stdin: Option<String>,
}

/// The commands of every fenced shell block. A fenced block must name its language,
/// so that commands cannot hide in an unmarked block.
fn readme_commands(markdown: &str) -> Result<Vec<ReadmeCommand>, String> {
    let mut commands = Vec::new();
    let mut block: Option<(bool, usize)> = None;
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match block {
                None => {
                    let language = info.trim();
                    if language.is_empty() {
                        return Err(format!(
                            "line {number}: a fenced block without a language (`sh` for \
                             commands, `text` or `toml` otherwise)"
                        ));
                    }
                    block = Some((SHELL_LANGUAGES.contains(&language), number));
                }
                Some(_) => {
                    if let Some((start, _)) = pending.take() {
                        return Err(format!(
                            "line {start}: a `\\` continues past the block's end"
                        ));
                    }
                    block = None;
                }
            }
            continue;
        }
        let Some((true, _)) = block else { continue };
        let (start, mut text) = pending.take().unwrap_or((number, String::new()));
        if let Some(continued) = line.strip_suffix('\\') {
            text.push_str(continued);
            text.push(' ');
            pending = Some((start, text));
            continue;
        }
        text.push_str(line);
        if let Some(command) =
            parse_command(&text).map_err(|error| format!("line {start}: {error}"))?
        {
            commands.push(ReadmeCommand {
                line: start,
                ..command
            });
        }
    }
    if let Some((_, start)) = block {
        return Err(format!("the fenced block of line {start} is not closed"));
    }
    Ok(commands)
}

/// Splits one command line into words as a shell would: quotes, backslashes, a `#`
/// comment, and `< FILE`. Other shell syntax is refused: a README command is plain.
fn parse_command(text: &str) -> Result<Option<ReadmeCommand>, String> {
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut characters = text.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            ' ' | '\t' => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '#' if word.is_none() => break,
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(inner) => current.push(inner),
                        None => return Err("an unclosed '".into()),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => current.extend(characters.next()),
                        Some('$' | '`') => {
                            return Err("shell expansion (`$`, backquotes) in a command".into());
                        }
                        Some(inner) => current.push(inner),
                        None => return Err("an unclosed \"".into()),
                    }
                }
            }
            '\\' => word
                .get_or_insert_with(String::new)
                .extend(characters.next()),
            '|' | '&' | ';' | '>' | '$' | '`' | '(' | ')' => {
                return Err(format!(
                    "`{character}`: shell syntax this test does not run (keep README commands \
                     plain, or list the command in NOT_RUN)"
                ));
            }
            other => word.get_or_insert_with(String::new).push(other),
        }
    }
    words.extend(word);
    let mut stdin = None;
    if let Some(position) = words.iter().position(|word| word == "<") {
        let file = words.get(position + 1).ok_or("`<` without a file")?.clone();
        words.drain(position..position + 2);
        stdin = Some(file);
    }
    if words.iter().any(|word| word.starts_with('<')) {
        return Err("`<` glued to its file: write `< FILE`".into());
    }
    Ok((!words.is_empty()).then_some(ReadmeCommand {
        line: 0,
        words,
        stdin,
    }))
}

fn binary(program: &str) -> &'static Path {
    match program {
        "sverka-agent" => agent_binary(),
        "sverka-collector" => collector_binary(),
        other => panic!("not one of Sverka's programs: {other}"),
    }
}

/// What `--help` says about one command level.
#[derive(Debug, Default)]
struct Help {
    subcommands: BTreeSet<String>,
    /// `--flag` → (takes a value, its possible values when listed).
    flags: Vec<(String, bool, Vec<String>)>,
    shorts: BTreeSet<String>,
}

fn help(program: &str, path: &[String]) -> Result<Help, String> {
    let mut command = Command::new(binary(program));
    command.args(path).arg("--help");
    let run = run_command(command);
    if run.code != 0 {
        return Err(format!(
            "`{program} {} --help` failed: {}",
            path.join(" "),
            run.stderr
        ));
    }
    let mut help = Help::default();
    let mut section = "";
    for line in run.stdout.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            section = line;
            continue;
        }
        let trimmed = line.trim_start();
        if section == "Commands:" && line.starts_with("  ") && !line.starts_with("   ") {
            if let Some(name) = trimmed.split_whitespace().next()
                && name != "help"
            {
                help.subcommands.insert(name.to_string());
            }
        } else if trimmed.starts_with('-') {
            let (spec, description) = trimmed.split_once("  ").unwrap_or((trimmed, ""));
            let possible: Vec<String> = description
                .split_once("[possible values: ")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(values, _)| values.split(", ").map(str::to_string).collect())
                .unwrap_or_default();
            for part in spec.split(", ") {
                let mut pieces = part.split_whitespace();
                let Some(name) = pieces.next() else { continue };
                let takes_value = pieces.next().is_some_and(|value| value.starts_with('<'));
                if name.starts_with("--") {
                    help.flags
                        .push((name.to_string(), takes_value, possible.clone()));
                } else {
                    help.shorts.insert(name.to_string());
                }
            }
        }
    }
    Ok(help)
}

/// Walks the command's words along `--help`: each bare word where subcommands are
/// expected must be one, each flag must exist at its level, a value must be one of
/// those listed, and the command must reach a level without subcommands.
fn check_against_help(words: &[String]) -> Result<(), String> {
    let program = words[0].as_str();
    let mut path: Vec<String> = Vec::new();
    let mut level = help(program, &path)?;
    let mut rest = words[1..].iter();
    while let Some(word) = rest.next() {
        let here = || {
            format!(
                "`{program}{}{}`",
                if path.is_empty() { "" } else { " " },
                path.join(" ")
            )
        };
        if word.starts_with("--") {
            let (name, inline_value) = match word.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (word.as_str(), None),
            };
            let Some((_, takes_value, possible)) =
                level.flags.iter().find(|(flag, _, _)| flag == name)
            else {
                let known: Vec<&str> = level
                    .flags
                    .iter()
                    .map(|(flag, _, _)| flag.as_str())
                    .collect();
                return Err(format!(
                    "{} has no flag `{name}` (it has {})",
                    here(),
                    known.join(", ")
                ));
            };
            if *takes_value {
                let value = match inline_value {
                    Some(value) => value,
                    None => rest
                        .next()
                        .ok_or_else(|| format!("`{name}` needs a value"))?
                        .clone(),
                };
                if !possible.is_empty() && !possible.contains(&value) {
                    return Err(format!(
                        "`{value}` is not one of {name}'s values ({})",
                        possible.join(", ")
                    ));
                }
            }
        } else if word.starts_with('-') && word.len() > 1 {
            if !level.shorts.contains(word.as_str()) {
                return Err(format!("{} has no flag `{word}`", here()));
            }
        } else if !level.subcommands.is_empty() {
            if !level.subcommands.contains(word.as_str()) {
                let known: Vec<&str> = level.subcommands.iter().map(String::as_str).collect();
                return Err(format!(
                    "{} has no subcommand `{word}` (it has {})",
                    here(),
                    known.join(", ")
                ));
            }
            path.push(word.clone());
            level = help(program, &path)?;
        }
        // Otherwise a positional argument (`catalog set FILE`).
    }
    if !level.subcommands.is_empty() {
        return Err(format!(
            "`{program} {}` needs a subcommand ({})",
            path.join(" "),
            level
                .subcommands
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// A `bash FILE ...` command's script exists and mentions every flag it is given.
fn check_script(workspace: &Path, words: &[String]) -> Result<(), String> {
    if words[0] != "bash" {
        return Ok(());
    }
    let script = words.get(1).ok_or("`bash` without a script")?;
    let text = std::fs::read_to_string(workspace.join(script))
        .map_err(|error| format!("cannot read {script}: {error}"))?;
    for flag in words[2..].iter().filter(|word| word.starts_with("--")) {
        if !text.contains(flag.as_str()) {
            return Err(format!("{script} does not handle `{flag}`"));
        }
    }
    Ok(())
}

/// A working folder and a collector database of the test's own.
struct Sandbox {
    folder: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let sandbox = Sandbox {
            folder: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::write(
            sandbox.folder.path().join("pw.txt"),
            format!("{PASSWORD}\n"),
        )
        .expect("pw.txt");
        let setup = [
            [
                "org",
                "add",
                "--name",
                "Регион (песочница)",
                "--kind",
                "region",
            ]
            .as_slice(),
            &[
                "org",
                "add",
                "--name",
                "Муниципалитет (песочница)",
                "--kind",
                "municipality",
                "--parent",
                "1",
            ],
            &[
                "org",
                "add",
                "--name",
                "Школа (песочница)",
                "--kind",
                "school",
                "--parent",
                "2",
                "--expected-pcs",
                "1",
            ],
        ];
        for (index, args) in setup.iter().enumerate() {
            let mut words = vec!["sverka-collector".to_string()];
            words.extend(args.iter().map(|word| word.to_string()));
            let run = sandbox.execute(&words, None);
            assert_eq!(
                (run.code, run.stdout.trim()),
                (0, (index + 1).to_string().as_str()),
                "sandbox setup {args:?}: {}",
                run.stderr
            );
        }
        sandbox
    }

    fn execute(&self, words: &[String], stdin_file: Option<&str>) -> Run {
        let folder = self.folder.path();
        let mut command = Command::new(binary(&words[0]));
        command
            .args(&words[1..])
            .current_dir(folder)
            .env("SVERKA_COLLECTOR_DATA_DIR", folder.join("collector"))
            .env("HOME", folder)
            .env_remove("XDG_DATA_HOME");
        for variable in [
            "SVERKA_COLLECTOR_DATABASE",
            "SVERKA_COLLECTOR_LISTEN",
            "SVERKA_SERVER_URL",
            "SVERKA_ENROLL_SECRET",
            "SVERKA_CA_FILE",
            "SVERKA_ALLOW_HTTP",
        ] {
            command.env_remove(variable);
        }
        match stdin_file {
            Some(file) => {
                let file = std::fs::File::open(folder.join(file))
                    .unwrap_or_else(|error| panic!("stdin from {file}: {error}"));
                command.stdin(file);
            }
            None => {
                let path = folder.join(".stdin");
                std::fs::write(&path, format!("{PASSWORD}\n")).expect("stdin file");
                command.stdin(Stdio::from(std::fs::File::open(path).expect("stdin")));
            }
        }
        run_command(command)
    }

    fn run(&self, command: &ReadmeCommand) -> Result<(), String> {
        let run = self.execute(&command.words, command.stdin.as_deref());
        let text = command.words.join(" ");
        let allowed = OTHER_EXIT_STATUSES
            .iter()
            .find(|(prefix, _, _)| text == *prefix || text.starts_with(&format!("{prefix} ")))
            .map_or(&[][..], |(_, codes, _)| *codes);
        if run.stderr.contains("Usage:") {
            return Err(format!("the command line was refused:\n{}", run.stderr));
        }
        if run.code != 0 && !allowed.contains(&run.code) {
            return Err(format!(
                "exit status {} in the sandbox {}:\nstdout: {}\nstderr: {}",
                run.code,
                self.folder.path().display(),
                run.stdout,
                run.stderr
            ));
        }
        Ok(())
    }
}
