//! The `callstore` command, run as a real process: every subcommand, its output streams and exit
//! statuses, and its answers to bad input.
#![cfg(feature = "cli")]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// A temporary folder holding a store path (not created) and input files.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("calls.redb")
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write an input file");
        path
    }

    /// Runs `callstore --db <db> args...` in the folder.
    fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let db = self.db();
        let mut full: Vec<&str> = vec!["--db", db.to_str().expect("a UTF-8 path")];
        full.extend_from_slice(args);
        run_in(self.dir.path(), &full, stdin)
    }
}

/// What a run left: its exit status and its two streams.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    #[track_caller]
    fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit status {code}: {self:#?}"
        );
        self
    }

    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    fn json_lines(&self) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .map(|l| serde_json::from_str(l).expect("each stdout line is a JSON document"))
            .collect()
    }
}

fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callstore"))
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start callstore");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        // A command that stops early (a bad store) closes its end: not a test failure.
        let _ = pipe.write_all(text.as_bytes());
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for callstore");
    Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(stderr).expect("UTF-8 stderr"),
    }
}

/// One call record as a JSON line.
fn record(sid: &str, account: &str, property: &str, date: u32, from: &str, disp: &str) -> String {
    serde_json::json!({
        "AccountSid": account, "PropertySid": property, "CallSid": sid,
        "Date_Start": date, "From": from, "To": "+1 555 0199", "Disposition": disp,
    })
    .to_string()
}

/// Five calls of account AC1: two properties, three callers.
fn sample() -> String {
    [
        record(
            "CA1",
            "AC1",
            "PR1",
            1_700_000_100,
            "+1 555 0101",
            "Answered",
        ),
        record("CA2", "AC1", "PR1", 1_700_000_200, "+1 555 0102", "Busy"),
        record(
            "CA3",
            "AC1",
            "PR2",
            1_700_000_300,
            "+1 555 0101",
            "Answered",
        ),
        record("CA4", "AC1", "PR2", 1_700_086_400, "", "NoAnswer"),
        record(
            "CA5",
            "AC1",
            "PR1",
            1_700_172_800,
            "+1 555 0102",
            "Answered",
        ),
    ]
    .join("\n")
        + "\n"
}

fn imported_sample() -> Env {
    let env = Env::new();
    let input = env.file("calls.jsonl", &sample());
    env.run(&["import", input.to_str().unwrap()]).ok();
    env
}

fn sids(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|c| c["CallSid"].as_str().expect("a CallSid"))
        .collect()
}

fn error_code(value: &serde_json::Value) -> &str {
    value["ResponseStatus"]["ErrorCode"]
        .as_str()
        .expect("an error envelope")
}

// ---------------------------------------------------------------------------------------------
// Arguments and help

#[test]
fn help_shows_examples() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["--help"], None).ok();
    assert!(run.stdout.contains("Examples:"), "{}", run.stdout);
    assert!(run.stdout.contains("callstore demo"), "{}", run.stdout);
    for sub in [
        "import", "get", "delete", "count", "stats", "generate", "demo",
    ] {
        let run = run_in(dir.path(), &[sub, "--help"], None).ok();
        assert!(run.stdout.contains("callstore "), "{sub}: {}", run.stdout);
        assert!(run.stdout.contains("Example"), "{sub}: {}", run.stdout);
    }
    assert!(
        !dir.path().join("calls.redb").exists(),
        "help creates no store"
    );
}

#[test]
fn unknown_subcommand_and_flag_are_usage_errors() {
    let env = Env::new();
    let run = env.run(&["frobnicate"]).code(2);
    assert!(run.stderr.contains("frobnicate"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    let run = env.run(&["get", "--bogus", "/v2/Calls/CA1"]).code(2);
    assert!(run.stderr.contains("--bogus"), "{}", run.stderr);

    let run = env.run(&["import", "--batch", "0", "x.jsonl"]).code(2);
    assert!(run.stderr.contains("--batch"), "{}", run.stderr);

    // A subcommand without its required arguments.
    env.run(&["get"]).code(2);
    assert!(!env.db().exists(), "usage errors create no store");
}

#[test]
fn db_defaults_to_calls_redb_in_the_working_folder() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, sample()).unwrap();
    run_in(dir.path(), &["import", "in.jsonl"], None).ok();
    assert!(dir.path().join("calls.redb").exists());
    let run = run_in(dir.path(), &["count", "/v2/Accounts/AC1/Calls"], None).ok();
    assert_eq!(run.stdout, "5\n");
}

// ---------------------------------------------------------------------------------------------
// import

#[test]
fn import_reports_a_summary_on_stderr_only() {
    let env = Env::new();
    let input = env.file("calls.jsonl", &sample());
    let run = env.run(&["import", input.to_str().unwrap()]).ok();
    assert!(run.stdout.is_empty(), "{run:#?}");
    let summary = run.stderr.trim_end();
    assert!(
        summary.starts_with("imported 5 calls in ") && summary.ends_with(" calls/s)"),
        "{summary}"
    );
    assert_eq!(
        summary.lines().count(),
        1,
        "no progress bar when not a terminal"
    );
}

#[test]
fn import_reads_several_files_and_stdin_skipping_blank_lines() {
    let env = Env::new();
    let lines: Vec<String> = sample().lines().map(String::from).collect();
    let a = env.file("a.jsonl", &format!("{}\n\n{}\n", lines[0], lines[1]));
    let b = env.file("b.jsonl", &format!("\n  \n{}\r\n", lines[2]));
    let stdin = format!("{}\n\n{}", lines[3], lines[4]); // no final newline
    let run = env
        .run_with_stdin(
            &[
                "import",
                "--batch",
                "2",
                a.to_str().unwrap(),
                "-",
                b.to_str().unwrap(),
            ],
            Some(&stdin),
        )
        .ok();
    assert!(run.stderr.starts_with("imported 5 calls"), "{}", run.stderr);
    let run = env.run(&["get", "/v2/Accounts/AC1/Calls"]).ok();
    assert_eq!(
        sids(&run.json_lines()[0]),
        ["CA1", "CA2", "CA3", "CA4", "CA5"]
    );
}

#[test]
fn import_upserts_by_call_sid() {
    let env = imported_sample();
    let input = env.file(
        "fix.jsonl",
        &(record(
            "CA2",
            "AC1",
            "PR1",
            1_700_000_200,
            "+1 555 0102",
            "Answered",
        ) + "\n"),
    );
    env.run(&["import", input.to_str().unwrap()]).ok();
    let run = env.run(&["get", "/v2/Calls/CA2"]).ok();
    assert_eq!(run.json_lines()[0]["Disposition"], "Answered");
    let run = env.run(&["count", "/v2/Accounts/AC1/Calls"]).ok();
    assert_eq!(run.stdout, "5\n");
}

#[test]
fn bad_record_stops_the_import_and_leaves_its_batch_out() {
    let env = Env::new();
    let mut lines: Vec<String> = sample().lines().map(String::from).collect();
    // Line 4 names a disposition that does not exist.
    lines[3] = record("CA4", "AC1", "PR2", 1_700_086_400, "", "Hung up");
    let input = env.file("calls.jsonl", &(lines.join("\n") + "\n"));
    let run = env
        .run(&["import", "--batch", "2", input.to_str().unwrap()])
        .code(1);
    assert!(run.stdout.is_empty());
    let message = run.stderr.trim_end();
    assert!(message.starts_with("callstore: "), "{message}");
    assert!(message.contains("calls.jsonl"), "names the file: {message}");
    assert!(message.contains("line 4"), "names the line: {message}");
    assert!(message.contains("CA4"), "names the CallSid: {message}");
    assert!(
        message.contains("Disposition"),
        "names the field: {message}"
    );
    assert!(
        message.contains("2 calls"),
        "says what was committed: {message}"
    );
    assert!(!message.contains("panicked"), "{message}");

    // Batch 1 (lines 1-2) stays; batch 2 (lines 3-4) left nothing; line 5 was never read.
    let run = env.run(&["count", "/v2/Accounts/AC1/Calls"]).ok();
    assert_eq!(run.stdout, "2\n");
    let run = env
        .run(&["get", "/v2/Calls/CA2", "/v2/Calls/CA3", "/v2/Calls/CA5"])
        .code(2);
    let answers = run.json_lines();
    assert_eq!(answers[0]["CallSid"], "CA2");
    assert_eq!(error_code(&answers[1]), "NotFound");
    assert_eq!(error_code(&answers[2]), "NotFound");
}

#[test]
fn unreadable_json_line_is_named_without_a_call_sid() {
    let env = Env::new();
    let first = sample().lines().next().unwrap().to_string();
    let input = env.file(
        "broken.jsonl",
        &format!("{first}\n{{\"CallSid\": \"CA9\", \n"),
    );
    let run = env.run(&["import", input.to_str().unwrap()]).code(1);
    assert!(run.stderr.contains("broken.jsonl"), "{}", run.stderr);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
    assert!(run.stderr.contains("0 calls"), "{}", run.stderr);
    // Line 1 shared the failing batch (default size), so nothing is stored.
    let run = env.run(&["count", "/v2/Accounts/AC1/Calls"]).ok();
    assert_eq!(run.stdout, "0\n");
}

#[test]
fn unknown_field_names_line_and_call_sid() {
    let env = Env::new();
    let input = env.file(
        "calls.jsonl",
        r#"{"AccountSid":"AC1","PropertySid":"PR1","CallSid":"CA7","Date_Start":1,"To":"1","Disposition":"Busy","Colour":"red"}"#,
    );
    let run = env.run(&["import", input.to_str().unwrap()]).code(1);
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);
    assert!(run.stderr.contains("\"CA7\""), "{}", run.stderr);
    assert!(run.stderr.contains("Colour"), "{}", run.stderr);
}

#[test]
fn non_utf8_line_is_a_bad_record() {
    let env = Env::new();
    let path = env.dir.path().join("latin1.jsonl");
    let mut bytes = (sample().lines().next().unwrap().to_string() + "\n").into_bytes();
    bytes.extend_from_slice(b"{\"CallSid\":\"CA\xe9\"}\n");
    std::fs::write(&path, bytes).unwrap();
    let run = env.run(&["import", path.to_str().unwrap()]).code(1);
    assert!(run.stderr.contains("line 2"), "{}", run.stderr);
}

#[test]
fn property_of_another_account_is_mapped_to_its_line() {
    let env = imported_sample();
    let input = env.file(
        "more.jsonl",
        &[
            record(
                "CA10",
                "AC2",
                "PR9",
                1_700_000_000,
                "+1 555 0200",
                "Answered",
            ),
            record(
                "CA11",
                "AC2",
                "PR9",
                1_700_000_001,
                "+1 555 0200",
                "Answered",
            ),
            // PR1 belongs to AC1.
            record(
                "CA12",
                "AC2",
                "PR1",
                1_700_000_002,
                "+1 555 0200",
                "Answered",
            ),
        ]
        .join("\n"),
    );
    let run = env
        .run(&["import", "--batch", "2", input.to_str().unwrap()])
        .code(1);
    assert!(run.stderr.contains("more.jsonl"), "{}", run.stderr);
    assert!(run.stderr.contains("line 3"), "{}", run.stderr);
    assert!(run.stderr.contains("CA12"), "{}", run.stderr);
    assert!(run.stderr.contains("2 calls"), "{}", run.stderr);
    let run = env.run(&["count", "/v2/Accounts/AC2/Calls"]).ok();
    assert_eq!(run.stdout, "2\n");
    let run = env.run(&["count", "/v2/Properties/PR1/Calls"]).ok();
    assert_eq!(run.stdout, "3\n");
}

#[test]
fn missing_input_file_creates_no_store() {
    let env = Env::new();
    let missing = env.dir.path().join("nope.jsonl");
    let run = env.run(&["import", missing.to_str().unwrap()]).code(1);
    assert!(run.stderr.starts_with("callstore: "), "{}", run.stderr);
    assert!(run.stderr.contains("nope.jsonl"), "{}", run.stderr);
    assert!(!env.db().exists());
}

// ---------------------------------------------------------------------------------------------
// get

#[test]
fn get_prints_one_compact_document_per_request() {
    let env = imported_sample();
    let run = env
        .run(&[
            "get",
            "/v2/Calls/CA3",
            "/v2/Properties/PR1/Calls?Unique=Repeat",
            "/v2/Accounts/AC1/Calls?Results_Skip=1&Results_Count=2",
            "/v2/Accounts/NOBODY/Calls",
        ])
        .ok();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let answers = run.json_lines();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0]["CallSid"], "CA3");
    assert_eq!(answers[0]["Date_Start"], "1700000300");
    assert_eq!(answers[0]["From"], "+15550101");
    assert!(answers[0].get("AccountSid").is_none());
    assert_eq!(sids(&answers[1]), ["CA5"]);
    assert_eq!(sids(&answers[2]), ["CA2", "CA3"]);
    assert_eq!(sids(&answers[3]), Vec::<&str>::new());
}

#[test]
fn get_exits_2_when_any_request_fails() {
    let env = imported_sample();
    let run = env
        .run(&[
            "get",
            "/v2/Calls/CA1",
            "/v2/Calls/CA404",
            "/v2/Accounts/AC1/Calls?Colour=red",
            "/v2/Accounts/AC1/Calls?Results_Count=-1",
            "/nowhere",
        ])
        .code(2);
    let answers = run.json_lines();
    assert_eq!(
        answers.len(),
        5,
        "every request is answered: {}",
        run.stdout
    );
    assert_eq!(answers[0]["CallSid"], "CA1");
    assert_eq!(error_code(&answers[1]), "NotFound");
    assert_eq!(error_code(&answers[2]), "UnknownParameter");
    assert_eq!(error_code(&answers[3]), "InvalidParameter");
    assert_eq!(error_code(&answers[4]), "NotFound");
    assert!(
        answers[2]["ResponseStatus"]["Message"]
            .as_str()
            .unwrap()
            .contains("Colour")
    );
}

#[test]
fn get_reads_requests_from_stdin() {
    let env = imported_sample();
    let run = env
        .run_with_stdin(
            &["get", "-"],
            Some("/v2/Calls/CA1\n\n/v2/Properties/PR2/Calls\n"),
        )
        .ok();
    let answers = run.json_lines();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["CallSid"], "CA1");
    assert_eq!(sids(&answers[1]), ["CA3", "CA4"]);

    let run = env
        .run_with_stdin(&["get", "-"], Some("/v2/Calls/CA1\n/v2/Calls/CA404\n"))
        .code(2);
    assert_eq!(run.json_lines().len(), 2);
}

#[test]
fn get_pretty_indents_the_same_documents() {
    let env = imported_sample();
    let requests = ["/v2/Calls/CA1", "/v2/Accounts/AC1/Calls", "/v2/Calls/CA404"];
    let compact = env.run(&["get", requests[0], requests[1], requests[2]]);
    let pretty = env.run(&["get", "--pretty", requests[0], requests[1], requests[2]]);
    assert_eq!(compact.code, Some(2));
    assert_eq!(pretty.code, Some(2));
    assert!(pretty.stdout.lines().count() > 3 * 3, "{}", pretty.stdout);
    assert!(
        pretty.stdout.contains("\n  \"CallSid\": \"CA1\""),
        "{}",
        pretty.stdout
    );
    let documents: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&pretty.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("a stream of JSON documents");
    assert_eq!(documents, compact.json_lines());
}

#[test]
fn get_on_a_missing_store_names_it_and_creates_nothing() {
    let env = Env::new();
    let run = env.run(&["get", "/v2/Calls/CA1"]).code(1);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.starts_with("callstore: "), "{}", run.stderr);
    assert!(run.stderr.contains("calls.redb"), "{}", run.stderr);
    assert!(!env.db().exists(), "get must not create a store");
    for args in [
        &["count", "/v2/Accounts/AC1/Calls"][..],
        &["stats"],
        &["delete", "CA1"],
    ] {
        let run = env.run(args).code(1);
        assert!(
            run.stderr.contains("calls.redb"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!env.db().exists(), "{args:?} must not create a store");
    }
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let env = Env::new();
    let input = env.file("calls.jsonl", &sample());
    let contents: Vec<u8> = b"this is not a callstore file\n"
        .iter()
        .copied()
        .cycle()
        .take(10_000)
        .collect();
    std::fs::write(env.db(), &contents).unwrap();
    let runs: [&[&str]; 6] = [
        &["get", "/v2/Calls/CA1"],
        &["count", "/v2/Accounts/AC1/Calls"],
        &["stats"],
        &["delete", "CA1"],
        &["import", input.to_str().unwrap()],
        &["import", "-"],
    ];
    for args in runs {
        let run = env.run_with_stdin(args, Some(&sample())).code(1);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(
            run.stderr.starts_with("callstore: "),
            "{args:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("calls.redb"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        assert_eq!(
            std::fs::read(env.db()).unwrap(),
            contents,
            "{args:?} changed the file"
        );
    }
    // An empty file is not a store either.
    std::fs::write(env.db(), b"").unwrap();
    let run = env.run(&["get", "/v2/Calls/CA1"]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// count, delete, stats

#[test]
fn count_ignores_paging_and_reports_api_errors() {
    let env = imported_sample();
    let count = |request: &str| env.run(&["count", request]);
    assert_eq!(count("/v2/Accounts/AC1/Calls").ok().stdout, "5\n");
    assert_eq!(
        count("/v2/Accounts/AC1/Calls?Results_Count=1&Results_Skip=1")
            .ok()
            .stdout,
        "5\n"
    );
    assert_eq!(
        count("/v2/Accounts/AC1/Calls?Unique=Unique").ok().stdout,
        "2\n"
    );
    assert_eq!(
        count("/v2/Properties/PR1/Calls?Disposition=Answered")
            .ok()
            .stdout,
        "2\n"
    );
    assert_eq!(count("/v2/Properties/PR404/Calls").ok().stdout, "0\n");
    assert_eq!(count("/v2/Calls/CA1").ok().stdout, "1\n");

    for (request, code) in [
        ("/v2/Calls/CA404", "NotFound"),
        (
            "/v2/Accounts/AC1/Calls?Unique=Sometimes",
            "InvalidParameter",
        ),
        (
            "/v2/Accounts/AC1/Calls?Date_From=5&Date_To=4",
            "InvalidParameter",
        ),
        (
            "/v2/Accounts/AC1/Calls?Disposition=Busy&disposition=IVR",
            "DuplicateParameter",
        ),
        ("/v3/Calls", "NotFound"),
    ] {
        let run = count(request).code(2);
        assert_eq!(error_code(&run.json_lines()[0]), code, "{request}");
        assert!(run.stderr.is_empty(), "{request}: {}", run.stderr);
    }
}

#[test]
fn delete_removes_calls_and_says_how_many() {
    let env = imported_sample();
    let run = env.run(&["delete", "CA1", "CA404", "CA5"]).ok();
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("deleted 2 calls"), "{}", run.stderr);
    env.run(&["get", "/v2/Calls/CA1"]).code(2);
    let run = env.run(&["get", "/v2/Accounts/AC1/Calls"]).ok();
    assert_eq!(sids(&run.json_lines()[0]), ["CA2", "CA3", "CA4"]);
    // CA3 is now the first call of +15550101 in AC1.
    let run = env
        .run(&["get", "/v2/Accounts/AC1/Calls?Unique=Unique"])
        .ok();
    assert_eq!(sids(&run.json_lines()[0]), ["CA2", "CA3"]);

    let run = env.run(&["delete", "CA1"]).ok();
    assert!(run.stderr.contains("deleted 0 calls"), "{}", run.stderr);
}

#[test]
fn stats_prints_an_aligned_table() {
    let env = imported_sample();
    let run = env.run(&["stats"]).ok();
    let rows: Vec<(&str, &str)> = run
        .stdout
        .lines()
        .map(|l| l.split_at(l.find("  ").expect("two columns")))
        .collect();
    let keys: Vec<&str> = rows.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "calls",
            "accounts",
            "properties",
            "segments",
            "file size",
            "format version",
            "date range"
        ],
        "{}",
        run.stdout
    );
    let column = |line: &str| line.len() - line[line.find("  ").unwrap()..].trim_start().len();
    let first = column(run.stdout.lines().next().unwrap());
    assert!(
        run.stdout.lines().all(|l| column(l) == first),
        "aligned: {}",
        run.stdout
    );
    let value = |key: &str| {
        rows.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.trim())
            .unwrap()
    };
    assert_eq!(value("calls"), "5");
    assert_eq!(value("accounts"), "1");
    assert_eq!(value("properties"), "2");
    assert!(value("file size").contains("bytes"), "{}", run.stdout);
    assert!(
        value("date range").contains("2023-11-14") && value("date range").contains("2023-11-16"),
        "{}",
        run.stdout
    );
    assert!(
        value("date range").contains("1700000100") && value("date range").contains("1700172800"),
        "{}",
        run.stdout
    );
}

#[test]
fn compact_merges_segments_and_keeps_every_answer() {
    let env = Env::new();
    // Three imports of one batch each: three segments, then a delete.
    let lines: Vec<String> =
        callstore::generate::Generator::new(&callstore::generate::GenerateOptions {
            calls: 3_000,
            seed: 5,
            accounts: 3,
        })
        .map(|c| callstore::generate::call_to_ingest_json(&c))
        .collect();
    for (i, part) in lines.chunks(1_000).enumerate() {
        let input = env.file(&format!("part{i}.jsonl"), &(part.join("\n") + "\n"));
        env.run(&["import", input.to_str().unwrap()]).ok();
    }
    let first = callstore::Call::from_json(&lines[0]).unwrap();
    env.run(&["delete", &first.call_sid]).ok();
    let requests = [
        format!(
            "/v2/Accounts/{}/Calls?Results_Count=5000",
            first.account_sid
        ),
        format!(
            "/v2/Accounts/{}/Calls?Unique=Repeat&Results_Skip=7",
            first.account_sid
        ),
        format!("/v2/Properties/{}/Calls?Unique=Unique", first.property_sid),
        format!(
            "/v2/Calls/{}",
            callstore::Call::from_json(&lines[1]).unwrap().call_sid
        ),
    ];
    let answers = |env: &Env| -> Vec<String> {
        requests
            .iter()
            .map(|r| env.run(&["get", r]).stdout)
            .collect()
    };
    let segments = |env: &Env| -> String {
        let run = env.run(&["stats"]).ok();
        run.stdout
            .lines()
            .find(|l| l.starts_with("segments"))
            .unwrap()
            .split_whitespace()
            .last()
            .unwrap()
            .to_string()
    };
    let before = answers(&env);
    assert_eq!(segments(&env), "3");
    let run = env.run(&["compact"]).ok();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.starts_with("compacted "), "{}", run.stderr);
    assert!(run.stderr.contains("segments 3 -> 1"), "{}", run.stderr);
    assert_eq!(segments(&env), "1");
    assert_eq!(answers(&env), before);
    assert!(before[0].matches("CallSid").count() > 100, "{}", before[0]);
}

#[test]
fn stats_of_an_empty_store() {
    let env = Env::new();
    let input = env.file("empty.jsonl", "\n\n");
    let run = env.run(&["import", input.to_str().unwrap()]).ok();
    assert!(run.stderr.starts_with("imported 0 calls"), "{}", run.stderr);
    let run = env.run(&["stats"]).ok();
    assert!(run.stdout.starts_with("calls "), "{}", run.stdout);
    assert!(run.stdout.contains("no calls"), "{}", run.stdout);
}

// ---------------------------------------------------------------------------------------------
// generate

#[test]
fn generate_writes_the_same_bytes_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["generate", "--calls", "100000", "--seed", "1"];
    let first = run_in(dir.path(), &args, None).ok();
    let second = run_in(dir.path(), &args, None).ok();
    assert!(first.stderr.is_empty(), "{}", first.stderr);
    assert_eq!(first.stdout.lines().count(), 100_000);
    assert!(first.stdout == second.stdout, "two runs differ");
    let other = run_in(
        dir.path(),
        &["generate", "--calls", "1000", "--seed", "2"],
        None,
    )
    .ok();
    assert_eq!(other.stdout.lines().count(), 1_000);
    assert!(
        !first
            .stdout
            .starts_with(other.stdout.lines().next().unwrap()),
        "another seed, other calls"
    );
    assert!(
        !dir.path().join("calls.redb").exists(),
        "generate makes no store"
    );
}

#[test]
fn generate_and_demo_refuse_bad_arguments() {
    let env = Env::new();
    for (args, named) in [
        (&["generate", "--calls", "abc"][..], "--calls"),
        (&["generate", "--calls", "-5"], "--calls"),
        (&["generate", "--calls", "10", "--seed", "x"], "--seed"),
        (
            &["generate", "--calls", "10", "--accounts", "0"],
            "--accounts",
        ),
        (&["generate"], "--calls"),
        (&["demo", "--calls", "abc"], "--calls"),
        (&["demo", "--calls", "0"], "--calls"),
        (&["demo", "--seed", "-1"], "--seed"),
    ] {
        let run = env.run(args).code(2);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(named), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("error: "),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert!(!env.db().exists(), "usage errors create no store");
}

/// Calls generated, imported through `import -`, and the generated records as JSON.
fn generated_store(calls: u64, seed: u64) -> (Env, Vec<serde_json::Value>) {
    let env = Env::new();
    let calls = calls.to_string();
    let seed = seed.to_string();
    let generated = env
        .run(&["generate", "--calls", &calls, "--seed", &seed])
        .ok();
    let run = env
        .run_with_stdin(&["import", "-"], Some(&generated.stdout))
        .ok();
    assert!(
        run.stderr
            .starts_with(&format!("imported {} calls", with_commas(&calls))),
        "{}",
        run.stderr
    );
    let records = generated
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    (env, records)
}

fn with_commas(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The most frequent value of `field` among `records`, skipping nulls.
fn most_common<'a>(records: impl Iterator<Item = &'a serde_json::Value>, field: &str) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for r in records {
        if let Some(v) = r[field].as_str() {
            *counts.entry(v).or_default() += 1;
        }
    }
    let (value, _) = counts.into_iter().fold(
        ("", 0),
        |best, (v, n)| if n > best.1 { (v, n) } else { best },
    );
    value.to_string()
}

/// `+` and other bytes a query string cannot hold as they are, percent-encoded.
fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn generated_calls_import_and_count_agrees_with_get() {
    let (env, records) = generated_store(20_000, 5);
    let run = env.run(&["stats"]).ok();
    assert!(run.stdout.starts_with("calls "), "{}", run.stdout);
    assert!(
        run.stdout.lines().next().unwrap().ends_with(" 20,000"),
        "{}",
        run.stdout
    );

    let account = most_common(records.iter(), "AccountSid");
    let of_account = || {
        records
            .iter()
            .filter(|r| r["AccountSid"] == account.as_str())
    };
    let property = most_common(of_account(), "PropertySid");
    let to = most_common(of_account(), "To");
    let endpoint = most_common(of_account(), "Endpoint");
    let source = most_common(of_account(), "Attribution_Source");
    let medium = most_common(of_account(), "Attribution_Medium");
    let campaign = most_common(of_account(), "Attribution_Campaign");
    let content = most_common(records.iter(), "Attribution_Content");
    let call_sid = records[records.len() / 2]["CallSid"].as_str().unwrap();
    let a = format!("/v2/Accounts/{}/Calls", enc(&account));
    let p = format!("/v2/Properties/{}/Calls", enc(&property));
    let (month_start, month_end) = (1_719_792_000, 1_722_470_400); // July 2024, UTC
    let requests = [
        a.clone(),
        p.clone(),
        format!("{a}?Date_From={month_start}&Date_To={month_end}"),
        format!("{a}?Disposition=Busy,NoAnswer"),
        format!("{p}?To={}", enc(&to)),
        format!("{a}?Endpoint={}", enc(&endpoint)),
        format!(
            "{a}?Attribution_Source={}&Attribution_Medium={}",
            enc(&source),
            enc(&medium)
        ),
        format!("{a}?Attribution_Campaign={}&Results_Skip=3", enc(&campaign)),
        format!(
            "/v2/Accounts/{}/Calls?Attribution_Content={}",
            enc(&account),
            enc(&content)
        ),
        format!("{a}?Prompts_keys=1;2,1"),
        format!("{a}?Unique=Unique"),
        format!("{p}?Unique=Repeat&Disposition=Answered"),
        format!("{a}?Results_Skip=1000"),
        format!("{a}?Date_From={month_start}&Unique=Repeat&Prompts_keys=2"),
    ];
    let mut nonzero = 0;
    for request in &requests {
        let count: u64 = env
            .run(&["count", request])
            .ok()
            .stdout
            .trim()
            .parse()
            .unwrap();
        let skip: u64 = request.split_once("Results_Skip=").map_or(0, |(_, rest)| {
            rest.split('&').next().unwrap().parse().unwrap()
        });
        let sep = if request.contains('?') { '&' } else { '?' };
        let run = env
            .run(&["get", &format!("{request}{sep}Results_Count=1000000")])
            .ok();
        let page = run.json_lines();
        let page = page[0].as_array().expect("a page");
        // The count ignores Results_Skip; the page leaves the first `skip` out.
        assert_eq!(count.saturating_sub(skip), page.len() as u64, "{request}");
        if count > skip {
            nonzero += 1;
        }
    }
    assert!(
        nonzero >= requests.len() - 2,
        "requests that match something: {nonzero}"
    );

    let run = env.run(&["count", &format!("/v2/Calls/{call_sid}")]).ok();
    assert_eq!(run.stdout, "1\n");
    let run = env.run(&["get", &format!("/v2/Calls/{call_sid}")]).ok();
    assert_eq!(run.json_lines()[0]["CallSid"], call_sid);
}

// ---------------------------------------------------------------------------------------------
// demo

/// The request kinds the demo shows, as it names them.
const DEMO_KINDS: [&str; 14] = [
    "account page",
    "property page",
    "month ",
    "disposition",
    "to number",
    "endpoint",
    "source + medium",
    "campaign, skipped",
    "prompts keys",
    "unique callers",
    "repeat callers",
    "deep skip",
    "one call",
    "invalid request",
];

#[test]
fn demo_shows_every_kind_of_request_and_removes_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_in(dir.path(), &["demo", "--calls", "20000"], None).ok();
    let lines = run.lines();
    for kind in DEMO_KINDS {
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(kind) && l.contains(" GET /v2/"))
            .unwrap_or_else(|| panic!("no {kind:?} request: {}", run.stdout));
        let result = lines[at + 1];
        let timed = ["µs", "ms", " s"].iter().any(|unit| result.contains(unit));
        assert!(timed, "{kind}: no time: {result}");
        if kind == "invalid request" {
            assert!(
                result.contains("\"ErrorCode\":\"InvalidParameter\""),
                "{result}"
            );
        } else {
            let matches = result.split_whitespace().next().unwrap().replace(',', "");
            assert!(
                matches.parse::<u64>().is_ok(),
                "{kind}: no match count: {result}"
            );
            assert!(result.contains("match"), "{kind}: {result}");
        }
    }
    assert!(
        run.stdout.contains("imported 20,000 calls in "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("calls/s"), "{}", run.stdout);
    assert!(run.stdout.contains("file size"), "{}", run.stdout);
    // The store was made in a temporary folder, not in the working folder, and removed.
    assert!(!dir.path().join("calls.redb").exists());
    let store = run
        .stdout
        .split_whitespace()
        .find(|w| w.ends_with("calls.redb"))
        .expect("the demo names its store");
    let folder = Path::new(store).parent().unwrap();
    assert!(folder.starts_with(std::env::temp_dir()), "{store}");
    assert!(!folder.exists(), "{} is left behind", folder.display());
}

#[test]
fn demo_with_db_keeps_its_store_and_never_overwrites_one() {
    let env = Env::new();
    let run = env.run(&["demo", "--calls", "3000", "--seed", "9"]).ok();
    assert!(run.stdout.contains("kept"), "{}", run.stdout);
    let run = env.run(&["count", "/v2/Accounts/AC1/Calls"]).ok();
    assert_eq!(run.stdout, "0\n");
    let run = env.run(&["stats"]).ok();
    assert!(
        run.stdout.lines().next().unwrap().ends_with(" 3,000"),
        "{}",
        run.stdout
    );

    let before = std::fs::read(env.db()).unwrap();
    let run = env.run(&["demo", "--calls", "3000"]).code(1);
    assert!(run.stderr.contains("calls.redb"), "{}", run.stderr);
    assert!(
        std::fs::read(env.db()).unwrap() == before,
        "the store was changed"
    );
}

#[test]
fn import_writes_segments_of_the_size_asked() {
    let env = Env::new();
    let input = env.file("calls.jsonl", &sample());
    let path = input.to_str().unwrap();
    let run = env.run(&["import", "--batch", "1", "--segment-rows", "2", path]);
    assert!(run.ok().stderr.starts_with("imported 5 calls"));
    // Five calls in segments of two: 2, 2 and 1 (too few to merge).
    let run = env.run(&["stats"]).ok();
    assert!(run.stdout.contains("segments        3\n"), "{}", run.stdout);
    let run = env.run(&["get", "/v2/Accounts/AC1/Calls"]).ok();
    assert_eq!(
        sids(&run.json_lines()[0]),
        ["CA1", "CA2", "CA3", "CA4", "CA5"]
    );
    let run = env.run(&["import", "--segment-rows", "0", path]).code(2);
    assert!(run.stderr.contains("--segment-rows"), "{}", run.stderr);
}

/// Ctrl-C (SIGINT) during the demo removes its temporary store, and the command exits as an
/// interrupted one does (130).
#[cfg(unix)]
#[test]
fn an_interrupted_demo_removes_its_store() {
    let temp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_callstore"))
        .args(["demo", "--calls", "5000000"])
        .env("TMPDIR", temp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The store file is made once the demo can remove it.
    let store = || {
        fs::read_dir(temp.path())
            .unwrap()
            .filter_map(|e| Some(e.ok()?.path().join("calls.redb")))
            .find(|p| p.exists())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no demo store appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let left: Vec<_> = fs::read_dir(temp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
