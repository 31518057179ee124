//! A newcomer's first hour: one test per rough edge they hit (each fails if it comes back), and
//! the conveniences they reach for first. Real tmux (private sockets), real git.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::Env;

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra");

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `hydra args` run in `dir`, with no project given.
fn hydra_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(HYDRA)
        .args(args)
        .current_dir(dir)
        .env_remove("HYDRA_TMUX_SOCKET")
        .env("HYDRA_TMUX_SOCKET", "hydra-newcomer-none")
        .output()
        .expect("hydra")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn sleeper(env: &Env) -> String {
    let path = env.root().join("sleeper.sh");
    std::fs::write(&path, "#!/bin/sh\ncat > /dev/null\necho working\nexec sleep 600\n").expect("agent");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_str().expect("utf8").to_owned()
}

#[test]
fn outside_a_project_nothing_is_created_and_the_way_in_is_named() {
    let empty = tempfile::tempdir().expect("tmp");
    for args in [
        &["ls"][..],
        &["status", "abc"],
        &["spawn", "--agent", "sh"],
        &["prune"],
        &["monitor", "--once"],
    ] {
        let out = hydra_in(empty.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("not a hydra project") && stderr(&out).contains("hydra init"),
            "{}",
            stderr(&out)
        );
    }
    assert!(entries(empty.path()).is_empty(), "{:?}", entries(empty.path()));
    let root_had_hydra = Path::new("/.hydra").exists();
    let out = hydra_in(Path::new("/"), &["ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(Path::new("/.hydra").exists(), root_had_hydra, "/.hydra was made");
    // From a subdirectory of a project, the project is found (as git finds .git).
    let env = Env::new();
    let sub = env.root().join("src/deep");
    std::fs::create_dir_all(&sub).expect("sub");
    let out = hydra_in(&sub, &["ls"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!sub.join(".hydra").exists());
}

#[test]
fn every_invalid_value_is_a_usage_error_with_exit_2() {
    let env = Env::new();
    let cases: &[(&[&str], &str)] = &[
        (&["spawn", "--max-duration", "0s"], "0s is out of range"),
        (&["spawn", "--max-duration", "-1h"], "'-1'"),
        (&["spawn", "--max-duration", "1h30"], "max-duration"),
        (&["spawn", "--max-duration", "99999999h"], "out of range"),
        (&["spawn", "--max-iterations", "0"], "0 is out of range"),
        (&["spawn", "--max-iterations", "many"], "not a whole number"),
        (&["spawn", "--parallel", "0"], "parallel"),
        (&["spawn", "--no-progress-limit", "x"], "0 (off)"),
        (&["spawn", "--max-cost", "0"], "USD"),
        (&["spawn", "--name", "Bad Name"], "name"),
        (&["ls", "--state", "sleeping"], "allowed: starting, running"),
        (&["ls", "--color", "purple"], "possible values"),
        (&["status", "-x"], "unexpected argument"),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, needle) in cases {
        let out = env.hydra(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("0ns"), "{}", stderr(&out));
    }
    // The hidden demo agent is never offered.
    let out = env.hydra(&["demo-agen"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains("demo-agent"), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&env.hydra(&["--help"]).stdout).contains("demo-agent"));
}

#[test]
fn a_prd_without_stories_is_refused_and_errors_are_said_once() {
    let env = Env::new();
    std::fs::write(env.root().join("empty.json"), r#"{"userStories":[]}"#).expect("prd");
    let out = env.hydra(&["spawn", "--agent", "sh", "--prd", "empty.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("at least one story"), "{}", stderr(&out));
    assert!(env.ls().is_empty());
    // An ended session: the refusal is said once, with a hint.
    let agent = sleeper(&env);
    let prd = env.prd_file();
    let id = env.ok(&["spawn", "--agent", &agent, "--prd", &prd]).trim().to_owned();
    env.ok(&["kill", &id, "--reason", "wrong PRD"]);
    let out = env.hydra(&["kill", &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("nothing can change it").count(), 1, "{err}");
    let out = env.hydra(&["resume", &id]);
    assert_eq!(stderr(&out).matches("already ended").count(), 1, "{}", stderr(&out));
}

#[test]
fn ended_sessions_show_their_stories_their_age_at_the_end_and_their_reason() {
    let env = Env::new();
    // A worktree starts from a commit.
    support::git(env.root(), &["commit", "-q", "--allow-empty", "-m", "init"]);
    let agent = sleeper(&env);
    let prd = env.prd_file();
    let id = env
        .ok(&[
            "spawn",
            "--agent",
            &agent,
            "--prd",
            &prd,
            "--worktree",
            "--name",
            "doomed",
        ])
        .trim()
        .to_owned();
    env.ok(&["kill", &id, "--reason", "wrong PRD", "--force"]);
    let first = env.ok(&["ls", "--all"]);
    let row = first.lines().find(|l| l.starts_with(&id)).expect("row").to_owned();
    // The branch is shown, and the reason is not hidden by it.
    assert!(
        row.contains(&format!("hydralph/{id}")) && row.ends_with("wrong PRD"),
        "{first}"
    );
    assert!(row.contains("0/2"), "stories done/total: {row}");
    // Time passes after the end (a wait is the point here): an age that kept growing would
    // be at least two seconds past the end; one stopped at the end is at most its span.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let s: serde_json::Value = serde_json::from_str(&env.ok(&["status", &id, "--json"])).expect("json");
    let again: serde_json::Value = serde_json::from_str(&env.ok(&["status", &id, "--json"])).expect("json");
    assert_eq!(s["age_secs"], again["age_secs"]);
    let span = s["ended_at"].as_u64().expect("ended_at") - s["created_at"].as_u64().expect("created_at");
    assert!(
        s["age_secs"].as_u64().is_some_and(|a| a <= span),
        "the age stopped at the end ({span} s after the start): {s}"
    );
    assert_eq!(s["reason"], "wrong PRD");
    assert_eq!(s["stories"], "0/2");
    // status of an ended session does not offer an attach that would fail.
    let status = env.ok(&["status", &id]);
    assert!(!status.contains("hydra attach"), "{status}");
    assert!(status.contains("(ended)"), "{status}");
    let out = env.hydra(&["attach", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("there is nothing to attach to"));
    // A checkpoint pause shows `pausing` while the iteration still runs.
    let prd = env.prd_file();
    let live = env.ok(&["spawn", "--agent", &agent, "--prd", &prd]).trim().to_owned();
    // Once its first iteration runs (the agent then sleeps in it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let s: serde_json::Value = serde_json::from_str(&env.ok(&["status", &live, "--json"])).expect("json");
        if s["state"] == "running" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ran: {s}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    env.ok(&["pause", &live]);
    let row = env
        .ok(&["ls"])
        .lines()
        .find(|l| l.starts_with(&live))
        .map(str::to_owned)
        .expect("row");
    assert!(row.contains("pausing"), "{row}");
    // attach says how to come back before it attaches (here tmux then finds no terminal).
    let out = env.hydra(&["attach", &live]);
    assert!(
        stderr(&out).contains("detach with your tmux prefix then d (C-b d by default)"),
        "{}",
        stderr(&out)
    );
    // A session that has printed nothing says so.
    let quiet = env.root().join("quiet.sh");
    std::fs::write(&quiet, "#!/bin/sh\ncat > /dev/null\nexec sleep 600\n").expect("agent");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&quiet, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let prd = env.prd_file();
    let q = env
        .ok(&["spawn", "--agent", quiet.to_str().expect("utf8"), "--prd", &prd])
        .trim()
        .to_owned();
    let out = env.hydra(&["logs", &q]);
    assert!(stderr(&out).contains("has printed nothing yet"), "{}", stderr(&out));
}

#[test]
fn ids_complete_from_any_unique_prefix_or_a_name_and_ambiguity_lists_the_matches() {
    let env = Env::new();
    let agent = sleeper(&env);
    let mut ids: Vec<String> = Vec::new();
    // 17 hex ids: two share their first character (pigeonhole).
    for k in 0..17 {
        let prd = env.prd_file();
        let mut args = vec!["spawn", "--agent", agent.as_str(), "--prd", prd.as_str()];
        let name = format!("worker-{k}");
        if k == 0 {
            args.extend(["--name", name.as_str()]);
        }
        ids.push(env.ok(&args).trim().to_owned());
    }
    let first = &ids[0];
    let by_name: serde_json::Value = serde_json::from_str(&env.ok(&["status", "worker-0", "--json"])).expect("json");
    assert_eq!(by_name["id"], first.as_str());
    let by_prefix: serde_json::Value = serde_json::from_str(&env.ok(&["status", &first[..6], "--json"])).expect("json");
    assert_eq!(by_prefix["id"], first.as_str());
    let shared = ids
        .iter()
        .find_map(|a| {
            let c = &a[..1];
            (ids.iter().filter(|b| b.starts_with(c)).count() > 1).then(|| c.to_owned())
        })
        .expect("two ids share a first character");
    let out = env.hydra(&["status", &shared]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{shared:?} matches")), "{err}");
    for id in ids.iter().filter(|i| i.starts_with(&shared)) {
        assert!(err.contains(id.as_str()), "{err}");
    }
    // ls --quiet: the ids and names completions use.
    let quiet = env.ok(&["ls", "--quiet"]);
    assert!(
        quiet.lines().any(|l| l == "worker-0") && quiet.lines().any(|l| l == first),
        "{quiet}"
    );
}

#[test]
fn completions_generate_for_bash_zsh_and_fish_and_bash_completes_session_ids() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let text = env.ok(&["completions", shell]);
        for sub in ["spawn", "merge", "top", "completions"] {
            assert!(text.contains(sub), "{shell}: {sub}");
        }
    }
    assert!(env.ok(&["man"]).contains(".TH hydra 1"));
    let agent = sleeper(&env);
    let prd = env.prd_file();
    let id = env
        .ok(&["spawn", "--agent", &agent, "--prd", &prd, "--name", "api"])
        .trim()
        .to_owned();
    // bash, as a person's shell would: the script sourced, then TAB after `hydra status `.
    let script = env.root().join("hydra.bash");
    std::fs::write(&script, env.ok(&["completions", "bash"])).expect("script");
    let bin = Path::new(HYDRA).parent().expect("bin dir").to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\"; COMP_WORDS=(hydra status ''); COMP_CWORD=2; _hydra_with_ids; printf '%s\\n' \"${COMPREPLY[@]}\"")
        .arg("bash")
        .arg(&script)
        .current_dir(env.root())
        .env("PATH", path)
        .env("HYDRA_TMUX_SOCKET", &env.socket)
        .env("XDG_STATE_HOME", env.state())
        .output()
        .expect("bash");
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(
        offered.lines().any(|l| l == id) && offered.lines().any(|l| l == "api"),
        "{offered}\n{}",
        stderr(&out)
    );
}

#[test]
fn a_read_only_project_can_still_be_read() {
    let env = Env::new();
    let agent = sleeper(&env);
    let prd = env.prd_file();
    let id = env.ok(&["spawn", "--agent", &agent, "--prd", &prd]).trim().to_owned();
    env.ok(&["kill", &id]);
    let hydra_dir = env.root().join(".hydra");
    // A read-only bind mount (root ignores permissions); without one, read-only directories.
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg(&hydra_dir)
        .arg(&hydra_dir)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(&hydra_dir)
            .status()
            .is_ok_and(|s| s.success());
    let is_root = rustix::process::geteuid().as_raw() == 0;
    assert!(mounted || !is_root, "root can make a read-only bind mount here");
    if !mounted {
        use std::os::unix::fs::PermissionsExt;
        for d in [".hydra", ".hydra/orchestrator", ".hydra/orchestrator/sessions"] {
            std::fs::set_permissions(env.root().join(d), std::fs::Permissions::from_mode(0o500)).expect("chmod");
        }
    }
    let ls = env.hydra(&["ls", "--all"]);
    let status = env.hydra(&["status", &id]);
    let pause = env.hydra(&["kill", &id]);
    if mounted {
        let _ = Command::new("umount").arg(&hydra_dir).status();
    }
    assert!(ls.status.success(), "{}", stderr(&ls));
    assert!(String::from_utf8_lossy(&ls.stdout).contains(&id));
    assert!(
        stderr(&ls).contains("read-only") && stderr(&ls).contains("nothing can be changed"),
        "{}",
        stderr(&ls)
    );
    assert!(status.status.success(), "{}", stderr(&status));
    assert_eq!(pause.status.code(), Some(1));
    // init in a directory that cannot be written names it.
    let ro = tempfile::tempdir().expect("tmp");
    let mounted = Command::new("mount")
        .arg("--bind")
        .arg(ro.path())
        .arg(ro.path())
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(ro.path())
            .status()
            .is_ok_and(|s| s.success());
    if mounted {
        let out = hydra_in(ro.path(), &["init"]);
        let _ = Command::new("umount").arg(ro.path()).status();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(&ro.path().join(".hydra").display().to_string()),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn the_hydra_mail_note_is_said_once_and_only_when_it_is_configured() {
    let env = Env::new();
    let agent = sleeper(&env);
    let prd = env.prd_file();
    let id = env.ok(&["spawn", "--agent", &agent, "--prd", &prd]).trim().to_owned();
    for args in [&["monitor", "--once"][..], &["prune"], &["pause", &id]] {
        let out = env.hydra(args);
        assert!(!stderr(&out).contains("hydra-mail"), "{args:?}: {}", stderr(&out));
    }
    std::fs::write(
        env.root().join(".hydra/config.toml"),
        format!("socket_path = \"{}\"\n", env.root().join("no-daemon.sock").display()),
    )
    .expect("config.toml");
    for args in [&["monitor", "--once"][..], &["resume", &id], &["kill", &id]] {
        let out = env.hydra(args);
        let err = stderr(&out);
        assert_eq!(
            err.matches("hydra-mail is configured but its daemon is not running; events are not delivered")
                .count(),
            1,
            "{args:?}: {err}"
        );
        assert!(!err.contains("os error"), "{err}");
    }
}
