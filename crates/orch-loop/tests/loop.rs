//! The embedded hydralph loop run by a real bash, with scripted agents: what it writes, when.

use orch_core::{LoopPhase, LoopReport, LoopRuntime, ReadAsk, RuntimeLayout, RuntimeRequest, SessionId};
use orch_loop::FsLoopRuntime;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Loop {
    dir: tempfile::TempDir,
    layout: RuntimeLayout,
    child: Child,
}

impl Drop for Loop {
    /// Ends the loop and everything it started (its own process group): a test that fails
    /// midway leaves no agent running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Writes an executable agent script through `cp` (never open for writing in this process,
/// which a parallel test's fork could inherit: "Text file busy").
fn agent(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let src = dir.join("agent.src");
    let path = dir.join("agent.sh");
    std::fs::write(&src, format!("#!/usr/bin/env bash\n{body}\n")).expect("agent text");
    assert!(Command::new("cp").arg(&src).arg(&path).status().expect("cp").success());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn start(body: &str, max: u32) -> Loop {
    start_with(body, max, &[])
}

fn start_with(body: &str, max: u32, env: &[(&str, &str)]) -> Loop {
    let dir = tempfile::tempdir().expect("tmp");
    start_at(dir, None, body, max, env, &|_| {})
}

/// A loop whose agent works in `cwd` (its runtime files in a temp dir of their own).
fn start_in(cwd: &Path, body: &str, max: u32, env: &[(&str, &str)]) -> Loop {
    let dir = tempfile::tempdir().expect("tmp");
    start_at(dir, Some(cwd), body, max, env, &|_| {})
}

/// A loop started in `dir` once `prepare` has done what it must find at its first iteration.
fn start_at(
    dir: tempfile::TempDir,
    cwd: Option<&Path>,
    body: &str,
    max: u32,
    env: &[(&str, &str)],
    prepare: &dyn Fn(&RuntimeLayout),
) -> Loop {
    let id = SessionId("loop1".into());
    let rt = FsLoopRuntime::new(dir.path());
    rt.create(&RuntimeRequest {
        id: &id,
        prd: br#"{"userStories":[{"id":"1","title":"t","passes":false}]}"#,
        agent_dir: dir.path(),
        external_loop: None,
    })
    .expect("create");
    let layout = rt.layout(&id);
    prepare(&layout);
    let agent = agent(dir.path(), body);
    use std::os::unix::process::CommandExt;
    let child = Command::new("bash")
        .process_group(0)
        .arg(layout.script())
        .current_dir(cwd.unwrap_or(dir.path()))
        .env("HYDRALPH_SESSION_ID", "loop1")
        .env("HYDRALPH_AGENT", &agent)
        .env("HYDRALPH_MAX_ITERATIONS", max.to_string())
        .env("HYDRALPH_DELAY", "0")
        .env("HYDRALPH_RUN", "3")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash");
    Loop { dir, layout, child }
}

#[track_caller]
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (at most 20 s) until the file at `path` is settled by the read cache's own rule.
fn wait_settled(path: &Path, margin: Duration) {
    let dir = orch_fs::Dir::open(path.parent().expect("a directory"))
        .expect("open")
        .expect("exists");
    let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
    wait_for("the file to settle", || {
        let key = dir.key(name).expect("stat").expect("the file");
        key.settled(std::time::SystemTime::now(), margin).then_some(())
    });
}

fn report(l: &Loop) -> Option<LoopReport> {
    LoopReport::parse(&std::fs::read(l.layout.report_file()).ok()?).ok()
}

/// How the loop's log reader can run: a process substitution (bash 4.4 and later), and the named
/// pipe bash 3.2 needs, asked for here with `HYDRALPH_LOG_FIFO=1`.
const LOG_READERS: [&[(&str, &str)]; 2] = [&[], &[("HYDRALPH_LOG_FIFO", "1")]];

/// Regression: agent.log was written only when an iteration ended (23 s of silence, then
/// everything at once).
#[test]
fn the_log_shows_what_the_agent_printed_before_its_iteration_ends() {
    for reader in LOG_READERS {
        let mut l = start_with(
            "cat > /dev/null; echo first line; while [ ! -e go ]; do sleep 0.05; done; echo '<promise>COMPLETE</promise>'",
            3,
            reader,
        );
        let log = l.layout.log();
        wait_for("the first line in agent.log", || {
            std::fs::read_to_string(&log).ok()?.contains("first line").then_some(())
        });
        assert_eq!(
            report(&l).expect("report").phase,
            LoopPhase::Running,
            "still in its iteration ({reader:?})"
        );
        // The named pipe exists while the iteration runs, only where it is asked for.
        assert_eq!(
            l.layout.dir().join(".logpipe").exists(),
            !reader.is_empty(),
            "{reader:?}"
        );
        std::fs::write(l.dir.path().join("go"), "").expect("go");
        let status = l.child.wait().expect("loop ends");
        assert_eq!(status.code(), Some(0));
        let r = report(&l).expect("report");
        assert_eq!((r.phase, r.iteration, r.run), (LoopPhase::Complete, 1, Some(3)));
        let text = std::fs::read_to_string(&log).expect("log");
        assert!(
            text.contains("===== iteration 1") && text.contains("<promise>COMPLETE</promise>"),
            "{reader:?}: {text}"
        );
        assert!(
            !l.layout.dir().join(".logpipe").exists(),
            "no pipe is left ({reader:?})"
        );
    }
}

/// Regression: a 50 MB single-line flood took minutes, read a byte per call by mawk's
/// interactive mode; the whole line was logged past the limit.
#[test]
fn a_flood_is_cut_at_the_log_limit_but_the_promise_is_still_found() {
    for reader in LOG_READERS {
        let env: Vec<(&str, &str)> = [("HYDRALPH_LOG_MAX_BYTES", "65536")]
            .into_iter()
            .chain(reader.iter().copied())
            .collect();
        let mut l = start_with(
            "cat > /dev/null; echo before; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo '<promise>COMPLETE</promise>'",
            1,
            &env,
        );
        let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
        assert_eq!(
            status.code(),
            Some(0),
            "the promise after the flood was found ({reader:?})"
        );
        // Past the limit after the iteration, the log was rotated to agent.log.1.
        let log = std::fs::read(l.layout.dir().join("agent.log.1")).expect("rotated log");
        assert!(!l.layout.log().exists());
        let text = String::from_utf8_lossy(&log);
        let body = &text[text.find("before").expect("the first line is logged")..];
        let cut = body.find("\n[hydralph: ").expect("the cut is said");
        assert_eq!(
            cut, 65536,
            "exactly the limit is kept, from the agent's first byte ({reader:?})"
        );
        let printed = "before\n".len() + 20_000_000 + "\n".len() + "<promise>COMPLETE</promise>\n".len();
        assert!(
            body[cut..].contains(&format!("{} more bytes of output not logged", printed - 65536)),
            "{}",
            &body[cut..]
        );
    }
}

/// What an agent leaves running in the background (its output elsewhere) does not keep the
/// iteration from ending: only tee writes to the log's reader, so the reader ends with tee.
#[test]
fn an_agent_s_background_process_does_not_hold_the_iteration_open() {
    for reader in LOG_READERS {
        let mut l = start_with(
            "cat > /dev/null; (sleep 60 > /dev/null 2>&1 & echo $! > bg.pid); echo done here; echo '<promise>COMPLETE</promise>'",
            2,
            reader,
        );
        let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
        assert_eq!(status.code(), Some(0), "{reader:?}");
        assert_eq!(report(&l).expect("report").phase, LoopPhase::Complete);
        let text = std::fs::read_to_string(l.layout.log()).expect("log");
        assert!(
            text.contains("done here\n<promise>COMPLETE</promise>"),
            "{reader:?}: {text}"
        );
        // The background process outlived the iteration; it is ended here, not left behind.
        let pid = std::fs::read_to_string(l.dir.path().join("bg.pid")).expect("its pid");
        let pid = pid.trim();
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "still running ({reader:?})"
        );
        let killed = std::process::Command::new("kill").arg(pid).status().expect("kill");
        assert!(killed.success());
    }
}

#[test]
fn a_blocked_agent_reports_its_reason() {
    let mut l = start(
        "cat > /dev/null; echo 'thinking'; echo '<reason>needs the \"staging\" API key</reason>'; echo '<promise>BLOCKED</promise>'",
        3,
    );
    let status = l.child.wait().expect("loop ends");
    assert_eq!(status.code(), Some(2));
    let r = report(&l).expect("report");
    assert_eq!(r.phase, LoopPhase::Blocked);
    assert_eq!(r.reason.as_deref(), Some("needs the \"staging\" API key"));
}

fn status_json(l: &Loop) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(l.layout.report_file()).unwrap_or_default()).unwrap_or_default()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[test]
fn a_usage_limit_waits_for_its_reset_and_runs_the_same_iteration_again() {
    let mut l = start_with(
        "cat > /dev/null; if [ ! -e tried ]; then touch tried; echo \"You've hit your usage limit. Try again in 2 seconds.\"; exit 1; fi; echo '<promise>COMPLETE</promise>'",
        1,
        &[("HYDRALPH_LIMIT_PATTERNS", "something else\nhit your usage limit")],
    );
    let started = now_secs();
    let waiting = wait_for("the waiting report", || {
        let s = status_json(&l);
        (s["status"] == "waiting").then_some(s)
    });
    let until = waiting["until"].as_u64().expect("until");
    assert!(
        (started + 1..=started + 4).contains(&until),
        "until {until}, started {started}"
    );
    assert!(waiting["reason"]
        .as_str()
        .is_some_and(|r| r.contains("hit your usage limit")));
    let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
    assert_eq!(status.code(), Some(0));
    let end = status_json(&l);
    assert_eq!(end["status"], "complete");
    assert_eq!(end["iteration"], 1, "the limited run did not use up the only iteration");
    assert!(now_secs() >= until, "it waited for the reset");
}

#[test]
fn reset_times_are_read_from_epochs_and_clock_times() {
    // "resets HH:MM (UTC)" two minutes from now, as Claude Code prints it.
    let t = now_secs() + 120;
    let (h, m) = ((t % 86_400) / 3600, (t % 3600) / 60);
    for (line, lo, hi) in [
        (
            format!("You've hit your session limit · resets {h}:{m:02} (Etc/UTC)"),
            55,
            125,
        ),
        (format!("Claude AI usage limit reached|{}", now_secs() + 300), 295, 305),
        (
            "usage limit reached, try again in 1 hour 2 minutes".to_owned(),
            3715,
            3725,
        ),
    ] {
        let body = format!("cat > /dev/null; echo '{}'", line.replace('\'', ""));
        let l = start_with(
            &body,
            1,
            &[("HYDRALPH_LIMIT_PATTERNS", "limit reached\nhit your session limit")],
        );
        let now = now_secs();
        let s = wait_for("waiting", || {
            let s = status_json(&l);
            (s["status"] == "waiting").then_some(s)
        });
        let wait = s["until"].as_u64().expect("until").saturating_sub(now);
        assert!((lo..=hi).contains(&wait), "{line}: waits {wait} s");
    }
}

#[test]
fn no_progress_blocks_after_k_iterations_and_commits_are_progress() {
    let mut idle = start_with(
        "cat > /dev/null; echo 'thinking about it'",
        10,
        &[("HYDRALPH_NO_PROGRESS_LIMIT", "2")],
    );
    let status = wait_for("the idle loop to block", || idle.child.try_wait().expect("wait"));
    assert_eq!(status.code(), Some(2));
    let s = status_json(&idle);
    assert_eq!(
        (s["status"].as_str(), s["iteration"].as_u64()),
        (Some("blocked"), Some(2))
    );
    assert_eq!(s["reason"], "no progress in 2 iterations");

    // One that commits every iteration (and leaves the tree clean) runs to its limit.
    let body = "cat > /dev/null; n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; \
                git add n; git -c user.name=t -c user.email=t@e.invalid -c commit.gpgsign=false commit -qm \"step $n\"";
    let dir = tempfile::tempdir().expect("tmp");
    let git = |args: &[&str]| {
        assert!(Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .status()
            .expect("git")
            .success());
    };
    git(&["init", "-q"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e.invalid",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    ]);
    let mut busy = start_in(dir.path(), body, 4, &[("HYDRALPH_NO_PROGRESS_LIMIT", "1")]);
    let status = wait_for("the committing loop to end", || busy.child.try_wait().expect("wait"));
    assert_eq!(
        status.code(),
        Some(1),
        "max-iterations, never blocked: {}",
        status_json(&busy)
    );
    assert_eq!(status_json(&busy)["status"], "max-iterations");
}

/// The progress check only reads the repository: `git status` refreshes and rewrites the index
/// when a tracked file's stat data changed (its `index.lock` is one the agent's own git could
/// meet). A further edit of a file that was already changed, and a staged edit, are progress.
#[test]
fn the_progress_check_never_writes_the_index_and_sees_edits_of_changed_files() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().expect("tmp");
    let git = |args: &[&str]| {
        assert!(Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@e.invalid"])
            .args(args)
            .status()
            .expect("git")
            .success());
    };
    std::fs::write(dir.path().join("edited"), "0\n").expect("edited");
    std::fs::write(dir.path().join("staged"), "0\n").expect("staged");
    std::fs::write(dir.path().join("touched"), "same\n").expect("touched");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "init"]);
    // Both files differ from HEAD before the first iteration: only their content moves.
    std::fs::write(dir.path().join("edited"), "1\n").expect("edited");
    std::fs::write(dir.path().join("staged"), "1\n").expect("staged");
    git(&["add", "staged"]);
    // Odd iterations edit the changed file, even ones stage an edit; every one touches a
    // tracked file without changing it (stale stat data: what makes git status rewrite).
    let body = "cat > /dev/null; n=$(wc -l < edited); echo $n >> edited; \
                if [ $((n % 2)) -eq 0 ]; then echo $n >> staged; git add staged; fi; \
                sleep 0.01; touch touched";
    let mut l = start_in(dir.path(), body, 4, &[("HYDRALPH_NO_PROGRESS_LIMIT", "1")]);
    let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
    assert_eq!(
        status.code(),
        Some(1),
        "max-iterations, never blocked: {}",
        status_json(&l)
    );
    // That agent's own `git add` rewrites the index; one that only edits and touches does not,
    // so after its run the index is the file it was.
    let index = dir.path().join(".git/index");
    let stamp = |m: std::fs::Metadata| (m.ino(), m.mtime(), m.mtime_nsec(), m.len());
    let only_edits = "cat > /dev/null; n=$(wc -l < edited); echo $n >> edited; sleep 0.01; touch touched";
    let before = stamp(std::fs::metadata(&index).expect("index"));
    let mut l = start_in(dir.path(), only_edits, 3, &[("HYDRALPH_NO_PROGRESS_LIMIT", "1")]);
    let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
    assert_eq!(status.code(), Some(1), "{}", status_json(&l));
    assert_eq!(
        stamp(std::fs::metadata(&index).expect("index")),
        before,
        "the loop's git calls left the index as it was"
    );
}

#[test]
fn profile_arguments_and_each_prompt_mode_reach_the_agent() {
    // The agent writes its argv, NUL-separated, and what it read on stdin.
    let body = "printf '%s\\0' \"$@\" > argv; cat > stdin; echo '<promise>COMPLETE</promise>'";
    for mode in ["stdin", "arg", "file"] {
        let mut l = start_with(
            body,
            1,
            &[
                ("HYDRALPH_ARGC", "2"),
                ("HYDRALPH_ARG_1", "--x"),
                ("HYDRALPH_ARG_2", "two words; $(not run)"),
                ("HYDRALPH_PROMPT_MODE", mode),
            ],
        );
        let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
        assert_eq!(status.code(), Some(0), "{mode}");
        let prompt = std::fs::read_to_string(l.layout.prompt()).expect("prompt");
        let argv = std::fs::read(l.dir.path().join("argv")).expect("argv");
        let args: Vec<String> = argv
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(args[..2], ["--x", "two words; $(not run)"], "{mode}");
        let stdin = std::fs::read_to_string(l.dir.path().join("stdin")).expect("stdin");
        match mode {
            "stdin" => {
                assert_eq!(args.len(), 2);
                assert_eq!(stdin.trim_end(), prompt.trim_end());
            }
            "arg" => {
                assert_eq!(args[2].trim_end(), prompt.trim_end());
                assert_eq!(stdin, "");
            }
            _ => {
                let text = std::fs::read_to_string(&args[2]).expect("the prompt file");
                assert_eq!(text.trim_end(), prompt.trim_end());
            }
        }
    }
}

#[test]
fn the_prompt_and_queued_messages_reach_the_agent_byte_for_byte() {
    // The loop copies them without a program of its own: nothing may be trimmed, escaped,
    // expanded or taken as a format.
    let prompt = "Work on story 1.\n\n  keep this indent \\ and %s %d $HOME `date` $(id)\n\n\n";
    let first = "use the staging key\n";
    let second = "no trailing newline, a tab\there";
    let dir = tempfile::tempdir().expect("tmp");
    let mut l = start_at(
        dir,
        None,
        "cat > stdin; echo '<promise>COMPLETE</promise>'",
        1,
        &[],
        &|layout| {
            std::fs::write(layout.prompt(), prompt).expect("prompt");
            std::fs::create_dir_all(layout.inbox()).expect("inbox");
            std::fs::write(layout.inbox().join("0001.md"), first).expect("first message");
            std::fs::write(layout.inbox().join("0002.md"), second).expect("second message");
        },
    );
    let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
    assert_eq!(status.code(), Some(0));
    let expected = format!("## Messages from your operator (newest last)\n\n{first}\n\n{second}\n\n---\n\n{prompt}");
    let stdin = std::fs::read_to_string(l.dir.path().join("stdin")).expect("stdin");
    assert_eq!(stdin, expected);
    assert_eq!(
        std::fs::read_dir(l.layout.inbox()).expect("inbox").count(),
        0,
        "messages taken"
    );
}

#[test]
fn a_reported_cost_is_summed_and_the_cost_limit_stops_the_loop() {
    let mut l = start_with(
        "cat > /dev/null; echo 'result: cost=0.40 usd, tokens=1000'",
        10,
        &[
            ("HYDRALPH_COST_PATTERN", "cost=([0-9.]+)"),
            ("HYDRALPH_TOKENS_PATTERN", "tokens=([0-9]+)"),
            ("HYDRALPH_MAX_COST", "1"),
        ],
    );
    let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
    assert_eq!(status.code(), Some(1));
    let s = status_json(&l);
    assert_eq!(s["status"], "max-iterations");
    assert_eq!(s["iteration"], 3, "0.40 + 0.40 + 0.40 reaches 1");
    assert_eq!(s["cost"], "1.200000");
    assert_eq!(s["tokens"], 3000);
    assert!(s["reason"].as_str().is_some_and(|r| r.contains("cost limit")));
}

/// The script finds its directory whether started by an absolute path (as hydra starts it) or
/// a relative one, and counts the PRD copy's stories without any program.
#[test]
fn the_loop_finds_its_directory_and_counts_stories_from_either_kind_of_path() {
    for relative in [false, true] {
        let dir = tempfile::tempdir().expect("tmp");
        let id = SessionId("loop1".into());
        let rt = FsLoopRuntime::new(dir.path());
        rt.create(&RuntimeRequest {
            id: &id,
            prd: br#"{"userStories":[{"id":"1","passes":true},{"id":"2","passes": false},{"id":"3","passes" :true}]}"#,
            agent_dir: dir.path(),
            external_loop: None,
        })
        .expect("create");
        let layout = rt.layout(&id);
        let agent = agent(dir.path(), "cat > /dev/null; echo '<promise>COMPLETE</promise>'");
        let (script, cwd) = if relative {
            (PathBuf::from("hydralph.sh"), layout.dir().to_path_buf())
        } else {
            (layout.script(), dir.path().to_path_buf())
        };
        let status = Command::new("bash")
            .arg(&script)
            .current_dir(&cwd)
            .env("HYDRALPH_SESSION_ID", "loop1")
            .env("HYDRALPH_AGENT", &agent)
            .env("HYDRALPH_DELAY", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("bash");
        assert!(status.success(), "relative {relative}: {status:?}");
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.report_file()).expect("status.json")).expect("json");
        assert_eq!(
            (s["status"].as_str(), s["stories"].as_str()),
            (Some("complete"), Some("2/3")),
            "relative {relative}"
        );
    }
}

/// Reads a loop whose reports are replaced many times a second through `read` (the report, and
/// how many reads the reader's keeping saved so far) until its last report: none was served
/// from what was kept, and the iterations seen only grew.
fn read_to_the_last_report(mut read: impl FnMut() -> (Option<LoopReport>, u64)) {
    let mut iterations = Vec::new();
    wait_for("the loop's last report", || {
        let (report, hits) = read();
        assert_eq!(hits, 0, "a report younger than a second is read again");
        let rep = report?;
        iterations.push(rep.iteration);
        (rep.phase == LoopPhase::MaxIterations).then_some(())
    });
    assert!(iterations.windows(2).all(|w| w[0] <= w[1]), "{iterations:?}");
    assert!(iterations.len() > 3, "{iterations:?}");
}

#[test]
fn a_cached_reading_serves_only_reports_that_settled() {
    // Iterations of 50 ms: the loop replaces its report many times a second, then ends.
    let l = start("cat > /dev/null; sleep 0.05", 12);
    let id = SessionId("loop1".into());
    let cached = FsLoopRuntime::new(l.dir.path()).with_read_cache(Duration::from_secs(1));
    let fresh = FsLoopRuntime::new(l.dir.path());
    read_to_the_last_report(|| {
        let r = cached.read_many(&[ReadAsk::new(&id)]).pop().expect("one reading");
        (r.report, cached.cache_hits())
    });
    // Settled: the next readings come from the cache, and equal a reading of the file.
    wait_settled(&l.layout.report_file(), Duration::from_secs(1));
    let first = cached.read_many(&[ReadAsk::new(&id)]);
    assert_eq!(cached.cache_hits(), 0, "kept now, not yet served");
    // A single reading (a loop seen ended is read anew) leaves the kept reports alone.
    assert_eq!(cached.read(&id), fresh.read(&id));
    let second = cached.read_many(&[ReadAsk::new(&id)]);
    assert_eq!(cached.cache_hits(), 1);
    assert_eq!(first, second);
    assert_eq!(second, fresh.read_many(&[ReadAsk::new(&id)]));
    // Replaced (a new file by rename): read again.
    let path = l.layout.report_file();
    let text = std::fs::read_to_string(&path).expect("report");
    let next = text.replace("\"max-iterations\"", "\"blocked\"");
    std::fs::write(path.with_extension("new"), &next).expect("write");
    std::fs::rename(path.with_extension("new"), &path).expect("rename");
    let third = cached.read_many(&[ReadAsk::new(&id)]).pop().expect("one reading");
    assert_eq!(third.report.map(|r| r.phase), Some(LoopPhase::Blocked));
    assert_eq!(cached.cache_hits(), 1);
}

#[test]
fn a_packed_reading_serves_only_reports_that_settled_across_processes() {
    // Iterations of 50 ms: the loop replaces its report many times a second, then ends.
    let l = start("cat > /dev/null; sleep 0.05", 12);
    let id = SessionId("loop1".into());
    let pack = l.dir.path().join("reports.pack");
    // Each short-lived process makes its runtime anew; what it keeps is the pack on disk.
    let process = || FsLoopRuntime::new(l.dir.path()).with_pack(&pack, Duration::from_secs(1));
    let fresh = FsLoopRuntime::new(l.dir.path());
    read_to_the_last_report(|| {
        let rt = process();
        let r = rt.read_many(&[ReadAsk::new(&id)]).pop().expect("one reading");
        (r.report, rt.cache_hits())
    });
    // Settled: packed by the next reading, served to the one after, equal to the file's.
    wait_settled(&l.layout.report_file(), Duration::from_secs(1));
    let first = process().read_many(&[ReadAsk::new(&id)]);
    assert!(pack.exists());
    let rt = process();
    let second = rt.read_many(&[ReadAsk::new(&id)]);
    assert_eq!(rt.cache_hits(), 1);
    assert_eq!(first, second);
    assert_eq!(second, fresh.read_many(&[ReadAsk::new(&id)]));
    // A single reading (a loop seen ended is read anew) does not go through the pack.
    let rt = process();
    assert_eq!(rt.read(&id), fresh.read(&id));
    assert_eq!(rt.cache_hits(), 0);
    // Replaced (a new file by rename): read again.
    let path = l.layout.report_file();
    let text = std::fs::read_to_string(&path).expect("report");
    let next = text.replace("\"max-iterations\"", "\"blocked\"");
    std::fs::write(path.with_extension("new"), &next).expect("write");
    std::fs::rename(path.with_extension("new"), &path).expect("rename");
    let rt = process();
    let third = rt.read_many(&[ReadAsk::new(&id)]).pop().expect("one reading");
    assert_eq!(third.report.map(|r| r.phase), Some(LoopPhase::Blocked));
    assert_eq!(rt.cache_hits(), 0);
}
