//! The README's tour, run as written: every command of every `sh` block under "## A
//! tour", in the README's order, against a real `berth dev` on the README's addresses
//! (the API on 127.0.0.1:9650, the example's listeners on 8000 and 8001, and 9000/9001
//! the ELBv2 commands make), with its own HOME so that `~/.local/share/berth` is a fresh
//! data dir of the test's. Changing the README changes what this test runs.
//!
//! Each command must exit 0. A block written as a terminal session (`$ curl ...` lines
//! followed by output) must print output of the shape shown: the same text, any
//! 12-hex-digit word (a task's host name) standing for any other.
//!
//! Blocks left out, and why:
//! - "Several machines": `berth server` and `berth agent` on three machines
//!   (tests/multi_host*.rs run them on one).
//! - "TLS beyond loopback": an HTTPS berth on a non-loopback address (tests/dev_tls.rs).
//! - "What a task may make the host do": other `berth dev` starts, with other privilege
//!   policies (tests/privilege_policy.rs).
//! - "Terraform": tests/terraform.rs runs exactly that block.
//! - Blocks that are not `sh` (the `ini` profile, the `yaml` excerpt): files, not
//!   commands.
//!
//! Special cases, each listed in `FOLLOWS` or `SUBSTITUTIONS` below:
//! - a command that follows output (ending in `-f`) never ends: it runs for
//!   `FOLLOW_FOR`, must still be running then with nothing on stderr (what it printed
//!   depends on what happened before it), and is interrupted, as a reader presses Ctrl-C;
//! - `export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...`: the `...` are the keys
//!   `berth dev` printed; the test puts in those of its connection file.
//!
//! Any other placeholder (an all-capitals word such as ARN, NODE or TASK_ID, or `...`)
//! fails the test, naming the line: write the README's command so it runs as pasted
//! (e.g. `TASK=$(aws ... --query ... --output text)` and then `$TASK`).
//!
//! `berth dev` is stopped and every container, network and volume labelled with its
//! node id is removed when the test ends, also when it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Headings under "## A tour" whose blocks are not run (see the list above).
const SKIPPED_SECTIONS: &[&str] = &[
    "Several machines",
    "TLS beyond loopback",
    "What a task may make the host do",
    "Terraform",
];

/// Commands that never end: the last word that makes them follow.
const FOLLOWS: &[&str] = &["-f", "--follow"];
const FOLLOW_FOR: Duration = Duration::from_secs(4);

/// README text standing for values `berth dev` printed, and what the test puts there.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    (
        "AWS_ACCESS_KEY_ID=...",
        "AWS_ACCESS_KEY_ID=$TOUR_ACCESS_KEY_ID",
    ),
    (
        "AWS_SECRET_ACCESS_KEY=...",
        "AWS_SECRET_ACCESS_KEY=$TOUR_SECRET_ACCESS_KEY",
    ),
];

/// All-capitals words in commands that are not placeholders.
const NOT_PLACEHOLDERS: &[&str] = &["HTTP", "HTTPS", "TCP", "UDP"];

/// The addresses the tour uses: the API and the listeners of the example and of the
/// ELBv2 commands.
const TOUR_PORTS: &[u16] = &[9650, 8000, 8001, 9000, 9001];

/// The longest one command of the tour may take (`berth restart` waits for a rollout).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(240);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One `sh` block of the tour: its section, its first line in README.md, its text.
struct Block {
    section: String,
    line: usize,
    text: String,
}

/// The fenced blocks under "## A tour" (up to the next `## ` heading), with the
/// `###` section each is in; `sh` blocks only, and not those of `SKIPPED_SECTIONS`.
fn tour_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut in_tour = false;
    let mut section = String::new();
    let mut open: Option<(String, usize, String)> = None;
    for (index, line) in readme.lines().enumerate() {
        if let Some((lang, start, text)) = open.as_mut() {
            if line.trim_start().starts_with("```") {
                if lang == "sh" && !SKIPPED_SECTIONS.contains(&section.as_str()) {
                    blocks.push(Block {
                        section: section.clone(),
                        line: *start,
                        text: text.clone(),
                    });
                }
                open = None;
            } else {
                text.push_str(line);
                text.push('\n');
            }
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            in_tour = heading.trim() == "A tour";
            section = String::from("A tour");
            continue;
        }
        if !in_tour {
            continue;
        }
        if let Some(heading) = line.strip_prefix("### ") {
            section = heading.trim().to_string();
        } else if let Some(lang) = line.trim_start().strip_prefix("```") {
            open = Some((lang.trim().to_string(), index + 1, String::new()));
        }
    }
    blocks
}

/// One command to run: its text, where it is, and (for `$ ` session lines) the output
/// the README shows for it.
struct Step {
    section: String,
    line: usize,
    command: String,
    expected: Option<Vec<String>>,
}

/// Whether `text` is a whole shell command (quotes closed, no trailing `\`).
fn complete(text: &str) -> bool {
    Command::new("bash")
        .args(["-n", "-c", text])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
        && !text.trim_end().ends_with('\\')
}

fn steps_of(block: &Block) -> Vec<Step> {
    let mut steps = Vec::new();
    let session = block.text.lines().any(|l| l.starts_with("$ "));
    let mut pending = String::new();
    let mut start = 0;
    for (offset, line) in block.text.lines().enumerate() {
        let line_no = block.line + 1 + offset;
        if session {
            if let Some(command) = line.strip_prefix("$ ") {
                steps.push(Step {
                    section: block.section.clone(),
                    line: line_no,
                    command: command.to_string(),
                    expected: Some(Vec::new()),
                });
            } else if let Some(step) = steps.last_mut() {
                if !line.trim().is_empty() {
                    step.expected.as_mut().unwrap().push(line.to_string());
                }
            }
            continue;
        }
        if pending.is_empty() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            start = line_no;
        }
        pending.push_str(line);
        pending.push('\n');
        if complete(&pending) {
            steps.push(Step {
                section: block.section.clone(),
                line: start,
                command: std::mem::take(&mut pending).trim_end().to_string(),
                expected: None,
            });
        }
    }
    assert!(
        pending.is_empty(),
        "README.md line {start}: a command that never ends (an open quote or a trailing \\): {pending}"
    );
    steps
}

/// The command without its comments (a `#` after a blank, outside quotes).
fn without_comments(command: &str) -> String {
    let mut out = String::new();
    for line in command.lines() {
        let (mut single, mut double, mut previous) = (false, false, ' ');
        let mut kept = String::new();
        for c in line.chars() {
            match c {
                '\'' if !double => single = !single,
                '"' if !single => double = !double,
                '#' if !single && !double && previous.is_whitespace() => break,
                _ => {}
            }
            kept.push(c);
            previous = c;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// The placeholders left in a command: all-capitals words that are not a variable's
/// use (`$TG`) or name (`TG=`), and `...`.
fn placeholders(command: &str) -> Vec<String> {
    let text = without_comments(command);
    let mut found = Vec::new();
    if text.contains("...") {
        found.push("...".to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !(chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let before = start.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i).copied();
        let capitals = word.len() >= 2
            && word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            && word.chars().any(|c| c.is_ascii_uppercase());
        let variable = matches!(before, Some('$' | '{')) || after == Some('=');
        if capitals && !variable && !NOT_PLACEHOLDERS.contains(&word.as_str()) {
            found.push(word);
        }
    }
    found
}

/// The step's command with `SUBSTITUTIONS` made; panics, telling the README's author
/// what to do, when a placeholder is left.
fn runnable(step: &Step) -> String {
    let mut command = step.command.clone();
    for (text, with) in SUBSTITUTIONS {
        command = command.replace(text, with);
    }
    let left = placeholders(&command);
    assert!(
        left.is_empty(),
        "README.md line {} ({}): `{}` has the placeholder(s) {left:?}: the tour runs \
             every command as pasted, so write it runnable (e.g. `X=$(aws ... --query ... \
             --output text)` before it, then `$X`), or, if it truly cannot run on one \
             machine, put it in a section that crates/berth/tests/readme_tour.rs skips",
        step.line,
        step.section,
        step.command
    );
    command
}

/// A command follows when it ends in one of `FOLLOWS` (`berth logs ... -f`; in
/// `berth apply -f FILE` the `-f` names a file).
fn follows(command: &str) -> bool {
    without_comments(command)
        .split_whitespace()
        .last()
        .is_some_and(|word| FOLLOWS.contains(&word))
}

/// A 12-hex-digit word (a container's host name) as `<hex>`, for comparing shapes.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() == 12 && word.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push_str("<hex>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.trim_end().chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Names what listens on `port`, for the message when a tour port is taken.
fn holder_of(port: u16) -> String {
    let out = Command::new("ss")
        .args(["-ltnpH", &format!("sport = :{port}")])
        .output();
    match out {
        Ok(out) if !out.stdout.is_empty() => String::from_utf8_lossy(&out.stdout).trim().into(),
        _ => "(ss names no process: another user's, or one that is just closing)".into(),
    }
}

/// The tour's own HOME, its `berth dev`, and the cleanup of both.
struct Tour {
    home: tempfile::TempDir,
    dev: Option<Child>,
    berth_dir: PathBuf,
}

impl Tour {
    fn data_dir(&self) -> PathBuf {
        self.home.path().join(".local/share/berth")
    }

    fn log(&self) -> PathBuf {
        self.home.path().join("berth-dev.log")
    }

    fn state_file(&self) -> PathBuf {
        self.home.path().join("tour-shell-state")
    }

    /// A command of the tour's shell: the README's commands see its HOME, the berth
    /// built with this test first on PATH, the repository as the working directory,
    /// and the variables earlier commands set.
    fn shell(&self, script: &str) -> Command {
        let path = format!(
            "{}:{}",
            self.berth_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(script)
            .current_dir(repo_root())
            .env("HOME", self.home.path())
            .env("PATH", path)
            .env("TOUR_STATE", self.state_file())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (name, _) in std::env::vars() {
            if name.starts_with("AWS_") && name != "AWS_EC2_METADATA_DISABLED"
                || name.starts_with("BERTH_")
                || name == "XDG_DATA_HOME"
            {
                command.env_remove(name);
            }
        }
        command
    }

    /// `berth dev` as the tour describes it: no flags, so 127.0.0.1:9650 and
    /// `~/.local/share/berth`; its listeners on loopback, as every test's are.
    fn start_dev(&mut self) {
        let log = std::fs::File::create(self.log()).expect("log file");
        let child = self
            .shell("exec berth dev")
            .env("BERTH_LB_ADDRESS", "127.0.0.1")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start berth dev");
        self.dev = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = self
                .shell("berth ps >/dev/null 2>&1")
                .status()
                .is_ok_and(|s| s.success());
            if ready && self.data_dir().join("node-id").exists() {
                return;
            }
            if let Some(Ok(Some(status))) = self.dev.as_mut().map(Child::try_wait) {
                panic!("berth dev exited with {status}:\n{}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "berth dev did not come up in 60 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        support::tail(&std::fs::read_to_string(self.log()).unwrap_or_default(), 60)
    }

    /// The keys `berth dev` generated, from its connection file.
    fn keys(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.data_dir().join("connection.json"))
            .expect("berth dev's connection file");
        let connection: serde_json::Value = serde_json::from_str(&text).expect("its JSON");
        (
            connection["access_key_id"].as_str().unwrap().to_string(),
            connection["secret_access_key"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    /// Runs one step; panics naming it, with its output, when it fails.
    fn run(&self, step: &Step, keys: &(String, String)) {
        let command = runnable(step);
        let follow = follows(&command);
        // Earlier commands' variables, then the command, then what it left set.
        let script = format!(
            "set -a\n[ -f \"$TOUR_STATE\" ] && . \"$TOUR_STATE\"\n{}{command}\nrc=$?\n\
             export -p > \"$TOUR_STATE.new\" && mv \"$TOUR_STATE.new\" \"$TOUR_STATE\"\nexit $rc\n",
            if follow { "exec " } else { "" }
        );
        let out_path = self.home.path().join("step.out");
        let err_path = self.home.path().join("step.err");
        let mut child = self
            .shell(&script)
            .env("TOUR_ACCESS_KEY_ID", &keys.0)
            .env("TOUR_SECRET_ACCESS_KEY", &keys.1)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("run bash");
        let limit = if follow { FOLLOW_FOR } else { COMMAND_TIMEOUT };
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let what = format!(
            "README.md line {} ({}): `{}`\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            step.line, step.section, step.command
        );
        eprintln!("ran {what}");
        match (follow, status) {
            // What it printed depends on what happened before (member's nginx logs only
            // requests, and none came yet): it must follow, and complain of nothing.
            (true, None) => assert!(
                stderr.trim().is_empty(),
                "a follow wrote to stderr in {FOLLOW_FOR:?}: {what}"
            ),
            (true, Some(status)) => panic!("a follow ended by itself ({status}): {what}"),
            (false, None) => panic!("no end within {COMMAND_TIMEOUT:?}: {what}"),
            (false, Some(status)) => assert!(status.success(), "exited with {status}: {what}"),
        }
        if let Some(expected) = &step.expected {
            let got: Vec<String> = stdout.lines().map(shape).collect();
            let want: Vec<String> = expected.iter().map(|l| shape(l)).collect();
            assert_eq!(
                got, want,
                "the output is not of the shape the README shows: {what}"
            );
        }
    }
}

impl Drop for Tour {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            eprintln!("--- berth dev log ---\n{}", self.log_tail());
        }
        let _ = self
            .shell("berth dev --stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut child) = self.dev.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(node) = std::fs::read_to_string(self.data_dir().join("node-id")) {
            support::remove_labelled_by(&format!("label=berth.node={}", node.trim()));
        }
    }
}

#[test]
fn the_readme_tour_runs_as_written() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let blocks = tour_blocks(&readme);
    let steps: Vec<Step> = blocks.iter().flat_map(steps_of).collect();
    // The test reads the README it means to: the tour's main commands are among its steps.
    for must in [
        "berth apply -f examples/our-project.yaml",
        "curl http://127.0.0.1:8000/",
        "elbv2 describe-target-health",
        "berth down -f examples/our-project.yaml",
    ] {
        assert!(
            steps.iter().any(|s| s.command.contains(must)),
            "the tour's steps have no `{must}`: README.md's \"A tour\" changed shape"
        );
    }
    // Placeholders fail before anything starts.
    for step in &steps {
        runnable(step);
    }
    for port in TOUR_PORTS {
        if std::net::TcpListener::bind(("0.0.0.0", *port)).is_err() {
            panic!(
                "the README's tour uses port {port}, which is taken on this machine: {}",
                holder_of(*port)
            );
        }
    }
    support::require_docker();
    support::require_images();
    support::aws_v2();

    let berth = PathBuf::from(env!("CARGO_BIN_EXE_berth"));
    let mut tour = Tour {
        home: tempfile::tempdir().expect("a HOME for the tour"),
        dev: None,
        berth_dir: berth.parent().unwrap().to_path_buf(),
    };
    tour.start_dev();
    let keys = tour.keys();
    for step in &steps {
        if step.expected.is_some() && step.command.contains("127.0.0.1:8000") {
            // The balancer counts a task only once its target passed its checks: wait
            // until the address answers (as up.sh does) before the session is shown.
            let _ = tour
                .shell(
                    "for _ in $(seq 1 150); do curl -sf -o /dev/null http://127.0.0.1:8000/ \
                     && curl -sf -o /dev/null http://127.0.0.1:8001/ && break; sleep 0.4; done",
                )
                .status();
        }
        tour.run(step, &keys);
    }
}

/// How the tour reads the README: the rules above, on lines of the kinds it has.
#[test]
fn the_tour_reader_finds_placeholders_follows_and_output_shapes() {
    assert_eq!(
        placeholders("berth stop -c our-project TASK_ID"),
        ["TASK_ID"]
    );
    assert_eq!(
        placeholders("aws $E elbv2 create-listener --load-balancer-arn ARN --protocol HTTP"),
        ["ARN"]
    );
    assert_eq!(placeholders("export AWS_ACCESS_KEY_ID=... X=1"), ["..."]);
    assert!(
        placeholders("TG=$(aws $E elbv2 x --query 'A[0].B' --output text) # ARN ...").is_empty()
    );
    assert!(placeholders("berth drain $(hostname) --undo").is_empty());
    assert!(follows("berth logs -c our-project member -f   # --tail N"));
    assert!(!follows("berth apply -f examples/our-project.yaml"));
    assert_eq!(
        shape("member 5f0c8d2e9a41 asked board: board answers from 0a9d4e71c3b8"),
        shape("member 75eff6dc28ea asked board: board answers from 23ef6b2ace75")
    );
    assert_ne!(
        shape("member answers from 5f0c8d2e9a41"),
        shape("board answers from 5f0c8d2e9a41")
    );
    let block = Block {
        section: "s".into(),
        line: 10,
        text: "# a comment\nberth ps\naws x --a '[{\"b\":\n  1}]' \\\n    --c d\n".into(),
    };
    let steps = steps_of(&block);
    assert_eq!(steps.len(), 2);
    assert_eq!((steps[0].line, steps[0].command.as_str()), (12, "berth ps"));
    assert_eq!(steps[1].line, 13);
    assert!(steps[1].command.ends_with("--c d"));
    let session = Block {
        section: "s".into(),
        line: 1,
        text: "$ curl http://x/   # comment\nmember answers from 5f0c8d2e9a41\n".into(),
    };
    let steps = steps_of(&session);
    assert_eq!(
        steps[0].expected.as_deref(),
        Some(&["member answers from 5f0c8d2e9a41".to_string()][..])
    );
}
