//! The embedded hydralph loop run by a real bash, with scripted agents: what it writes, when.

use orch_core::{LoopPhase, LoopReport, LoopRuntime, RuntimeLayout, RuntimeRequest, SessionId};
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
    let agent = agent(dir.path(), body);
    use std::os::unix::process::CommandExt;
    let child = Command::new("bash")
        .process_group(0)
        .arg(layout.script())
        .current_dir(dir.path())
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

fn report(l: &Loop) -> Option<LoopReport> {
    LoopReport::parse(&std::fs::read(l.layout.report_file()).ok()?).ok()
}

/// Regression: agent.log was written only when an iteration ended (23 s of silence, then
/// everything at once).
#[test]
fn the_log_shows_what_the_agent_printed_before_its_iteration_ends() {
    let mut l = start(
        "cat > /dev/null; echo first line; while [ ! -e go ]; do sleep 0.05; done; echo '<promise>COMPLETE</promise>'",
        3,
    );
    let log = l.layout.log();
    wait_for("the first line in agent.log", || {
        std::fs::read_to_string(&log).ok()?.contains("first line").then_some(())
    });
    assert_eq!(
        report(&l).expect("report").phase,
        LoopPhase::Running,
        "still in its iteration"
    );
    std::fs::write(l.dir.path().join("go"), "").expect("go");
    let status = l.child.wait().expect("loop ends");
    assert_eq!(status.code(), Some(0));
    let r = report(&l).expect("report");
    assert_eq!((r.phase, r.iteration, r.run), (LoopPhase::Complete, 1, Some(3)));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("===== iteration 1") && text.contains("<promise>COMPLETE</promise>"),
        "{text}"
    );
    assert!(!l.layout.dir().join(".logpipe").exists(), "the pipe is removed");
}

/// Regression: a 50 MB single-line flood took minutes, read a byte per call by mawk's
/// interactive mode; the whole line was logged past the limit.
#[test]
fn a_flood_is_cut_at_the_log_limit_but_the_promise_is_still_found() {
    let mut l = start_with(
        "cat > /dev/null; echo before; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo '<promise>COMPLETE</promise>'",
        1,
        &[("HYDRALPH_LOG_MAX_BYTES", "65536")],
    );
    let status = wait_for("the loop to end", || l.child.try_wait().expect("wait"));
    assert_eq!(status.code(), Some(0), "the promise after the flood was found");
    // Past the limit after the iteration, the log was rotated to agent.log.1.
    let log = std::fs::read(l.layout.dir().join("agent.log.1")).expect("rotated log");
    assert!(!l.layout.log().exists());
    let text = String::from_utf8_lossy(&log);
    let body = &text[text.find("before").expect("the first line is logged")..];
    let cut = body.find("\n[hydralph: ").expect("the cut is said");
    assert_eq!(cut, 65536, "exactly the limit is kept, from the agent's first byte");
    let printed = "before\n".len() + 20_000_000 + "\n".len() + "<promise>COMPLETE</promise>\n".len();
    assert!(
        body[cut..].contains(&format!("{} more bytes of output not logged", printed - 65536)),
        "{}",
        &body[cut..]
    );
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
