//! Many heads, one PRD, on real git and real tmux: `--parallel` splits the stories so each is
//! implemented in exactly one branch, progress reaches the project's PRD, `hydra merge` brings
//! every branch home, a conflicting or dirty merge changes nothing, a held story cannot be
//! claimed twice, a shared checkout is warned about, and a failed parallel spawn leaves nothing.
//!
//! The agent is a script that implements the stories it is given: one committed file per
//! story, then `passes: true` in its PRD copy (with jq).

use hydra_e2e::{git, wait_for, Project};
use hydra_orchestrator::Multiplexer;
use std::collections::BTreeSet;
use std::process::Output;

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra-under-test");

const SIX: &str = r#"{
  "title": "six stories",
  "userStories": [
    {"id": "US-1", "title": "one", "passes": false},
    {"id": "US-2", "title": "two", "passes": false},
    {"id": "US-3", "title": "three", "passes": false},
    {"id": "US-4", "title": "four", "passes": false},
    {"id": "US-5", "title": "five", "passes": false},
    {"id": "US-6", "title": "six", "passes": false}
  ]
}
"#;

/// Implements each story of its copy that does not pass: `FILE` (default story-<id>.txt)
/// gets a line, is committed, and the story is marked done.
const IMPLEMENTER: &str = r#"cat > /dev/null
prd="$HYDRALPH_PRD"
for id in $(jq -r '.userStories[] | select(.passes == false) | .id' "$prd"); do
  file="${FILE:-story-$id.txt}"
  echo "$id by $HYDRALPH_SESSION_ID" >> "$file"
  git add -- "$file"
  git -c user.name=agent -c user.email=agent@example.invalid -c commit.gpgsign=false commit -q -m "implement $id"
  tmp="$prd.tmp"
  jq --arg id "$id" '(.userStories[] | select(.id == $id) | .passes) = true' "$prd" > "$tmp" && mv -f -- "$tmp" "$prd"
  echo "implemented $id"
done
echo '<promise>COMPLETE</promise>'"#;

fn hydra(p: &Project, args: &[&str]) -> Output {
    p.hydra(HYDRA, args)
}

#[track_caller]
fn ok(p: &Project, args: &[&str]) -> String {
    p.hydra_ok(HYDRA, args)
}

/// `hydra spawn --agent AGENT --prd prd.json EXTRA...`.
fn spawn_args<'a>(agent: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["spawn", "--agent", agent, "--prd", "prd.json"];
    args.extend_from_slice(extra);
    args
}

fn project() -> (Project, String) {
    let p = Project::new();
    std::fs::write(p.root.join("prd.json"), SIX).expect("prd");
    git(&p.root, &["config", "user.name", "tester"]);
    git(&p.root, &["config", "user.email", "tester@example.invalid"]);
    git(&p.root, &["config", "commit.gpgsign", "false"]);
    let agent = p.agent("implementer.sh", IMPLEMENTER);
    let agent = agent.to_str().expect("utf8").to_owned();
    (p, agent)
}

fn sessions(p: &Project) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(p, &["ls", "--all", "--json"])).expect("json")
}

fn wait_ended(p: &Project, n: usize) -> Vec<serde_json::Value> {
    wait_for(60, "every session to end", || {
        let all = sessions(p);
        (all.len() == n && all.iter().all(|s| s["ended_at"].is_number())).then_some(all)
    })
}

fn project_prd(p: &Project) -> hydra_orchestrator::Prd {
    hydra_orchestrator::Prd::parse(&std::fs::read(p.root.join("prd.json")).expect("prd")).expect("a PRD")
}

/// The story files a branch added (relative to main's first commit).
fn story_files(p: &Project, branch: &str) -> BTreeSet<String> {
    git(&p.root, &["ls-tree", "-r", "--name-only", branch])
        .lines()
        .filter(|f| f.starts_with("story-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn parallel_three_over_six_stories_then_every_branch_merged_home() {
    let (p, agent) = project();
    let out = ok(&p, &spawn_args(&agent, &["--parallel", "3"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let ids: Vec<String> = lines
        .iter()
        .map(|l| l.split_whitespace().next().expect("id").to_owned())
        .collect();
    let claimed: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).expect("stories"))
        .collect();
    assert_eq!(claimed, ["US-1,US-2", "US-3,US-4", "US-5,US-6"]);
    let all = wait_ended(&p, 3);
    for s in &all {
        assert_eq!(s["state"], "completed", "{s}");
        assert_eq!(s["stories"], "2/2", "each counts its own claims: {s}");
    }
    // Progress reached the project's PRD; only `passes` changed.
    assert_eq!(project_prd(&p).counts(), (6, 6));
    let text = std::fs::read_to_string(p.root.join("prd.json")).expect("prd");
    assert_eq!(text, SIX.replace("\"passes\": false", "\"passes\": true"));
    let ls = ok(&p, &["ls", "--all"]);
    assert!(ls.ends_with("PRD prd.json: 6/6 stories pass\n"), "{ls}");

    // Each story implemented in exactly one branch.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for id in &ids {
        let files = story_files(&p, &format!("hydralph/{id}"));
        assert_eq!(files.len(), 2, "{id}: {files:?}");
        for f in files {
            assert!(seen.insert(f.clone()), "{f} implemented twice");
        }
        let diff = ok(&p, &["diff", id]);
        assert!(diff.contains("2 commits since main at"), "{diff}");
        assert!(diff.contains("implement US-"), "{diff}");
    }
    assert_eq!(seen.len(), 6);
    // Merged home, one after the other.
    for id in &ids {
        let out = ok(&p, &["merge", id]);
        assert!(out.contains(&format!("merged hydralph/{id} into main")), "{out}");
    }
    assert_eq!(story_files(&p, "main"), seen, "main holds all six");
    // Merged: the kept worktrees can go now, without force; the branches stay.
    for id in &ids {
        ok(&p, &["worktree", "rm", id]);
        assert!(git(&p.root, &["branch", "--list", &format!("hydralph/{id}")]).contains(id));
    }
    assert_eq!(
        git(&p.root, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
}

#[test]
fn a_second_merge_that_conflicts_is_refused_and_main_is_untouched() {
    let (p, agent) = project();
    let mut ids = Vec::new();
    for story in ["US-1", "US-2"] {
        let out = p
            .hydra_cmd(HYDRA, &spawn_args(&agent, &["--worktree", "--stories", story]))
            .env("FILE", "shared.txt")
            .output()
            .expect("hydra");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    wait_ended(&p, 2);
    ok(&p, &["merge", &ids[0]]);
    let head = git(&p.root, &["rev-parse", "HEAD"]);
    let out = hydra(&p, &["merge", &ids[1]]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflicts with main in shared.txt") && err.contains("the merge was undone"),
        "{err}"
    );
    assert_eq!(git(&p.root, &["rev-parse", "HEAD"]), head, "main untouched");
    assert_eq!(
        git(&p.root, &["status", "--porcelain", "--untracked-files=no"]),
        "",
        "clean"
    );
    assert_eq!(
        std::fs::read_to_string(p.root.join("shared.txt")).expect("shared"),
        format!("US-1 by {}\n", ids[0])
    );
}

#[test]
fn a_held_story_cannot_be_claimed_and_a_dirty_target_refuses_the_merge() {
    let (p, agent) = project();
    let sleeper = p.agent("sleeper.sh", "cat > /dev/null; exec sleep 600");
    let sleeper = sleeper.to_str().expect("utf8");
    let holder = ok(
        &p,
        &spawn_args(sleeper, &["--stories", "US-3", "--name", "holder", "--worktree"]),
    );
    let holder = holder.trim();
    let out = hydra(&p, &spawn_args(sleeper, &["--stories", "US-2,US-3"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("\"US-3\" is held by live session {holder} (holder)")),
        "{err}"
    );
    // A session that finishes, then a merge while main holds an uncommitted edit.
    let id = ok(&p, &spawn_args(&agent, &["--worktree", "--stories", "US-1"]));
    let id = id.trim();
    wait_for(60, "US-1's session to complete", || {
        (sessions(&p).iter().any(|s| s["id"] == id && s["state"] == "completed")).then_some(())
    });
    std::fs::write(p.root.join("README.md"), "# edited, not committed\n").expect("edit");
    let head = git(&p.root, &["rev-parse", "HEAD"]);
    let out = hydra(&p, &["merge", id]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("uncommitted changes") && err.contains("README.md"),
        "{err}"
    );
    assert_eq!(git(&p.root, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(p.root.join("README.md")).expect("readme"),
        "# edited, not committed\n"
    );
    // A live session's branch is not merged without --force.
    let out = hydra(&p, &["merge", holder]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("it is running; merge once it has ended"), "{err}");
}

#[test]
fn a_shared_checkout_is_warned_about_and_exclusive_refuses_it() {
    let (p, _) = project();
    let sleeper = p.agent("sleeper.sh", "cat > /dev/null; exec sleep 600");
    let sleeper = sleeper.to_str().expect("utf8");
    let a = ok(&p, &spawn_args(sleeper, &["--stories", "US-1"]));
    let out = hydra(&p, &spawn_args(sleeper, &["--stories", "US-2"]));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "as live session {} does, without a worktree of its own",
            a.trim()
        )),
        "{err}"
    );
    let out = hydra(&p, &spawn_args(sleeper, &["--stories", "US-4", "--exclusive"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already works in"));
    assert_eq!(sessions(&p).len(), 2, "the refused one left no record");
}

#[test]
fn a_parallel_spawn_that_fails_leaves_no_session_worktree_branch_or_port() {
    let (p, agent) = project();
    // Two ports for three sessions: the third spawn fails.
    std::fs::write(
        p.root.join(".hydra/wt.toml"),
        "[ports]\nrange_start = 3001\nrange_end = 3002\n",
    )
    .expect("wt.toml");
    let branches_before = git(&p.root, &["branch", "--list"]);
    let out = hydra(&p, &spawn_args(&agent, &["--parallel", "3"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no free port"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sessions(&p).is_empty(), "no record left");
    assert_eq!(git(&p.root, &["branch", "--list"]), branches_before, "no branch left");
    assert_eq!(
        git(&p.root, &["worktree", "list", "--porcelain"])
            .matches("worktree ")
            .count(),
        1
    );
    let ports = std::fs::read_to_string(p.root.join(".hydra/wt-ports.json")).unwrap_or_else(|_| "{}".into());
    let ports: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&ports).expect("registry");
    assert!(ports.is_empty(), "ports left: {ports:?}");
    assert!(
        p.tmux().snapshot().map(|s| s.sessions().is_empty()).unwrap_or(true),
        "no tmux session left"
    );
    assert_eq!(project_prd(&p).counts(), (0, 6), "nothing claimed");
    // And the stories are free again: a parallel spawn of two takes them all.
    let out = ok(&p, &spawn_args(&agent, &["--parallel", "2"]));
    assert_eq!(out.lines().count(), 2, "{out}");
}
