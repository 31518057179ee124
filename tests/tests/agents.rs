//! Real agent CLIs as the loop meets them, on real tmux: fake `claude`, `codex`, `gemini`,
//! `aider` and `opencode` on PATH that parse their arguments the way each real CLI does (and
//! refuse what it would refuse) run a session to completion through their built-in profile;
//! a usage limit makes the loop wait and retry without using up an iteration; an agent that
//! changes nothing trips the breaker; a blocked reason reaches `ls` and hydra-mail; messages a
//! stopped session never read are reported, then delivered on resume.

use hydra_e2e::{wait_for, write_script, Project};
use orch_mail::test_daemon::TestDaemon;
use std::path::{Path, PathBuf};
use std::process::Output;

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra-under-test");

/// Marks every story of the session's PRD copy done (the work of a real agent).
const MARK_DONE: &str = r#"mark_done() { tmp="$HYDRALPH_PRD.tmp"; jq '.userStories[].passes = true' "$HYDRALPH_PRD" > "$tmp" && mv -f -- "$tmp" "$HYDRALPH_PRD"; }"#;

/// Each fake: how the real CLI takes its prompt and options, per its documentation (see the
/// profiles in orch-core's `agents.rs`).
const FAKES: &[(&str, &str)] = &[
    (
        "claude",
        r#"[ "${1:-}" = "-p" ] || { echo "claude: interactive mode needs a terminal" >&2; exit 2; }; shift
fmt=text; verbose=0
while [ $# -gt 0 ]; do case "$1" in
  --output-format) fmt="$2"; shift 2 ;;
  --verbose) verbose=1; shift ;;
  --dangerously-skip-permissions) shift ;;
  -*) echo "claude: unknown option $1" >&2; exit 2 ;;
  *) echo "claude: a prompt argument and a prompt on stdin" >&2; exit 2 ;;
esac; done
[ "$fmt" = stream-json ] && [ "$verbose" = 0 ] && { echo "Error: --output-format=stream-json requires --verbose" >&2; exit 1; }
prompt="$(cat)"; [ -n "$prompt" ] || { echo "claude: no prompt on stdin" >&2; exit 2; }
mark_done
echo '{"type":"assistant","message":"working"}'
echo '{"type":"result","result":"all done <promise>COMPLETE</promise>","total_cost_usd":0.0123}'"#,
    ),
    (
        "codex",
        r#"[ "${1:-}" = exec ] || { echo "codex: the TUI needs a terminal" >&2; exit 2; }; shift
sandbox=read-only; prompt=""
while [ $# -gt 0 ]; do case "$1" in
  --sandbox) sandbox="$2"; shift 2 ;;
  -) prompt="$(cat)"; shift ;;
  -*) echo "codex: unknown option $1" >&2; exit 2 ;;
  *) prompt="$1"; shift ;;
esac; done
# A prompt on stdin alone is only context: without a prompt argument (or -) there is none.
[ -n "$prompt" ] || { echo "codex exec: no prompt given (pass it as an argument, or - to read stdin)" >&2; exit 2; }
[ "$sandbox" = workspace-write ] || { echo "codex: read-only sandbox, cannot edit files" >&2; exit 1; }
mark_done
echo "done <promise>COMPLETE</promise>""#,
    ),
    (
        "gemini",
        r#"yolo=0; fmt=text; prompt=""
while [ $# -gt 0 ]; do case "$1" in
  -y|--yolo) yolo=1; shift ;;
  --output-format) fmt="$2"; shift 2 ;;
  -p|--prompt) [ $# -ge 2 ] || { echo "Not enough arguments following: p" >&2; exit 42; }; prompt="$2"; shift 2 ;;
  -*) echo "gemini: unknown option $1" >&2; exit 42 ;;
  *) echo "gemini: a positional prompt starts interactive mode" >&2; exit 42 ;;
esac; done
[ -n "$prompt" ] || { echo "gemini: interactive mode needs a terminal" >&2; exit 42; }
[ "$yolo" = 1 ] || { echo "gemini: tool call needs approval" >&2; exit 1; }
mark_done
[ "$fmt" = json ] && echo '{"response":"done <promise>COMPLETE</promise>","stats":{"totalTokens":4321}}'"#,
    ),
    (
        "aider",
        r#"file=""; yes=0
while [ $# -gt 0 ]; do case "$1" in
  --message-file|-f) file="$2"; shift 2 ;;
  --yes-always) yes=1; shift ;;
  --no-pretty|--no-stream) shift ;;
  -*) echo "aider: unknown option $1" >&2; exit 2 ;;
  *) echo "aider: $1 is not a file in the repo" >&2; exit 2 ;;
esac; done
[ -n "$file" ] && [ -s "$file" ] || { echo "aider: no message file" >&2; exit 2; }
[ "$yes" = 1 ] || { echo "aider: would wait for a confirmation" >&2; exit 1; }
mark_done
echo "Applied edit. <promise>COMPLETE</promise>""#,
    ),
    (
        "opencode",
        r#"[ "${1:-}" = run ] || { echo "opencode: the TUI needs a terminal" >&2; exit 2; }; shift
[ $# -ge 1 ] && [ -n "$*" ] || { echo "opencode run: no message" >&2; exit 2; }
mark_done
echo "done <promise>COMPLETE</promise>""#,
    ),
];

fn fake_bin(p: &Project) -> PathBuf {
    let bin = p.dir.path().join("fakebin");
    std::fs::create_dir_all(&bin).expect("bin");
    for (name, body) in FAKES {
        write_script(
            &bin.join(name),
            &format!("#!/usr/bin/env bash\nset -u\n{MARK_DONE}\n{body}\n"),
        );
    }
    bin
}

fn with_path(bin: &Path) -> String {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(&old));
    std::env::join_paths(paths)
        .expect("PATH")
        .to_string_lossy()
        .into_owned()
}

fn hydra(p: &Project, path: &str, args: &[&str]) -> Output {
    p.hydra_cmd(HYDRA, args).env("PATH", path).output().expect("hydra")
}

#[track_caller]
fn ok(p: &Project, path: &str, args: &[&str]) -> String {
    let out = hydra(p, path, args);
    assert!(
        out.status.success(),
        "hydra {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(p: &Project, path: &str, id: &str) -> serde_json::Value {
    serde_json::from_str(&ok(p, path, &["status", id, "--json"])).expect("json")
}

#[test]
fn each_builtin_profile_runs_its_cli_headless_to_completion() {
    let p = Project::new();
    let path = with_path(&fake_bin(&p));
    let listed = ok(&p, &path, &["agents"]);
    for (name, _) in FAKES {
        let row = listed.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        // "not on PATH" contains "on PATH": the found path is what tells them apart.
        assert!(row.contains("built-in") && row.contains("on PATH ("), "{listed}");
    }
    let mut ids = Vec::new();
    for (name, _) in FAKES {
        let prd = p.prd();
        let id = ok(
            &p,
            &path,
            &["spawn", "--agent", name, "--prd", prd.to_str().expect("utf8")],
        );
        ids.push((name, id.trim().to_owned()));
    }
    for (name, id) in &ids {
        let s = wait_for(30, "the session to end", || {
            let s = status(&p, &path, id);
            s["ended_at"].is_number().then_some(s)
        });
        assert_eq!(s["state"], "completed", "{name}: {s}");
        assert_eq!(s["iteration"], 1, "{name}");
    }
    let claude = &ids[0].1;
    assert_eq!(status(&p, &path, claude)["cost_usd"], 0.0123);
    let gemini = &ids[2].1;
    assert_eq!(status(&p, &path, gemini)["tokens"], 4321);
}

#[test]
fn a_usage_limit_is_waited_out_without_using_up_an_iteration() {
    let p = Project::new();
    let path = with_path(&fake_bin(&p));
    // A profile of the project's own: a CLI that hits its limit once, with a reset 2 s ahead.
    let agent = p.agent(
        "limited.sh",
        "cat > /dev/null; if [ ! -e \"$HYDRALPH_SESSION_ID.tried\" ]; then touch \"$HYDRALPH_SESSION_ID.tried\"; echo \"You've hit your usage limit. Try again in 3 seconds.\"; exit 1; fi; echo '<promise>COMPLETE</promise>'",
    );
    std::fs::write(
        p.root.join(".hydra/hydra.toml"),
        format!(
            "[agents.limited]\ncommand = [{:?}]\nusage_limit = [\"hit your usage limit\"]\n",
            agent.display()
        ),
    )
    .expect("hydra.toml");
    // A profile starts a program: it runs only once the file is trusted.
    let refused = hydra(
        &p,
        &path,
        &[
            "spawn",
            "--agent",
            "limited",
            "--prd",
            "prd.json",
            "--max-iterations",
            "1",
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("hydra trust"));
    ok(&p, &path, &["trust", "--yes"]);
    let id = spawn(&p, &path, "limited", "prd.json", &["--max-iterations", "1"]);
    let id = id.as_str();
    let row = wait_for(20, "the waiting row", || {
        let ls = ok(&p, &path, &["ls"]);
        ls.lines()
            .find(|l| l.starts_with(id) && l.contains("waiting"))
            .map(str::to_owned)
    });
    assert!(row.contains("usage limit until"), "{row}");
    let detail = ok(&p, &path, &["status", id]);
    assert!(detail.contains(&format!("`hydra resume {id}` retries now")), "{detail}");
    let s = wait_for(30, "the session to complete", || {
        let s = status(&p, &path, id);
        (s["state"] == "completed").then_some(s)
    });
    assert_eq!(s["iteration"], 1, "the limited run was not counted: {s}");
}

#[test]
fn nothing_changed_trips_the_breaker_and_the_reason_reaches_ls_and_hydra_mail() {
    let p = Project::new();
    let daemon = TestDaemon::start(&p.dir.path().join("mail.sock")).expect("daemon");
    TestDaemon::write_config(&p.root, daemon.socket()).expect("config.toml");
    let path = with_path(&fake_bin(&p));
    let idle = p.agent("idle.sh", "cat > /dev/null; echo 'looked around, changed nothing'");
    let prd = p.prd();
    let id = spawn(
        &p,
        &path,
        path_str(&idle),
        path_str(&prd),
        &["--no-progress-limit", "2"],
    );
    let id = id.as_str();
    let row = wait_for(30, "the blocked row", || {
        let ls = ok(&p, &path, &["ls"]);
        ls.lines()
            .find(|l| l.starts_with(id) && l.contains("blocked"))
            .map(str::to_owned)
    });
    assert!(row.contains("no progress in 2 iterations"), "{row}");
    // An agent's own reason, too.
    let blocker = p.agent(
        "blocker.sh",
        "cat > /dev/null; echo 'checking the API'; echo '<reason>needs the STAGING_KEY secret</reason>'; echo '<promise>BLOCKED</promise>'",
    );
    let prd = p.prd();
    let b = spawn(&p, &path, path_str(&blocker), path_str(&prd), &[]);
    let b = b.as_str();
    let row = wait_for(30, "the second blocked row", || {
        let ls = ok(&p, &path, &["ls"]);
        ls.lines()
            .find(|l| l.starts_with(b) && l.contains("blocked"))
            .map(str::to_owned)
    });
    assert!(row.contains("needs the STAGING_KEY secret"), "{row}");
    let events = wait_for(20, "session:blocked on hydra-mail", || {
        let h = daemon.history("session:blocked");
        (h.iter().any(|m| m.contains(b)) && h.iter().any(|m| m.contains(id))).then_some(h)
    });
    assert!(
        events.iter().any(|m| m.contains("needs the STAGING_KEY secret")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|m| m.contains("no progress in 2 iterations")),
        "{events:?}"
    );
}

#[test]
fn messages_a_stopped_session_never_read_are_reported_then_delivered_on_resume() {
    let p = Project::new();
    let path = with_path(&fake_bin(&p));
    // Blocks until an operator's message arrives, then records its prompt and completes.
    let agent = p.agent(
        "asker.sh",
        "prompt=\"$(cat)\"; if printf '%s' \"$prompt\" | grep -q 'use key'; then printf '%s' \"$prompt\" > \"$HYDRALPH_SESSION_ID.prompt\"; echo '<promise>COMPLETE</promise>'; else echo '<reason>which key?</reason>'; echo '<promise>BLOCKED</promise>'; fi",
    );
    let prd = p.prd();
    let id = spawn(&p, &path, path_str(&agent), path_str(&prd), &[]);
    let id = id.as_str();
    wait_for(30, "blocked", || {
        (status(&p, &path, id)["state"] == "blocked").then_some(())
    });
    // Typing would not reach it: queued instead, and said so.
    let live = hydra(&p, &path, &["inject", id, "--live", "use key K-42"]);
    assert_eq!(live.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&live.stderr).contains("queued for its next prompt instead"));
    let ls = ok(&p, &path, &["ls"]);
    let row = ls.lines().find(|l| l.starts_with(id)).unwrap_or_default();
    assert!(row.contains("1 queued message never delivered"), "{ls}");
    assert!(ok(&p, &path, &["status", id]).contains("1 queued message never delivered (kept in its inbox"));
    ok(&p, &path, &["resume", id]);
    wait_for(30, "completed", || {
        (status(&p, &path, id)["state"] == "completed").then_some(())
    });
    let prompt = std::fs::read_to_string(p.root.join(format!("{id}.prompt"))).expect("the prompt it read");
    assert!(prompt.contains("use key K-42"), "{prompt}");
    assert_eq!(status(&p, &path, id)["undelivered_messages"], 0);
}

#[test]
fn an_unknown_agent_name_runs_that_program_and_a_missing_one_is_refused() {
    let p = Project::new();
    let path = with_path(&fake_bin(&p));
    let out = hydra(
        &p,
        &path,
        &["spawn", "--agent", "no-such-agent-cli", "--prd", "prd.json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"no-such-agent-cli\" is not an executable on PATH"));
}

/// `hydra spawn --agent AGENT --prd PRD EXTRA...`, which must succeed: the new session's id.
#[track_caller]
fn spawn(p: &Project, path: &str, agent: &str, prd: &str, extra: &[&str]) -> String {
    let mut args = vec!["spawn", "--agent", agent, "--prd", prd];
    args.extend_from_slice(extra);
    ok(p, path, &args).trim().to_owned()
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf8")
}
