//! Tests of the worktree adapter with real git in temporary repositories.

use orch_core::{MergeOutcome, RemoveOutcome, SessionId, WorktreeError, WorktreeRequest, Worktrees};
use orch_wt::GitWorktrees;
use std::path::{Path, PathBuf};
use std::process::Command;

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository with one commit, in its own temp dir.
fn repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("repo");
    std::fs::create_dir(&root).expect("mkdir");
    run_git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("README"), "hello\n").expect("write");
    run_git(&root, &["add", "README"]);
    run_git(&root, &["commit", "-q", "-m", "init"]);
    let root = root.canonicalize().expect("canonical");
    (dir, root)
}

fn req(root: &Path, id: &str, branch: &str) -> WorktreeRequest {
    WorktreeRequest {
        repo: root.to_path_buf(),
        branch: branch.into(),
        base: None,
        path: None,
        session: SessionId(id.into()),
        reserved_ports: Vec::new(),
    }
}

fn registry(root: &Path) -> serde_json::Map<String, serde_json::Value> {
    match std::fs::read_to_string(root.join(".hydra/wt-ports.json")) {
        Ok(t) => serde_json::from_str(&t).expect("registry is a JSON map"),
        Err(_) => serde_json::Map::new(),
    }
}

fn branches(root: &Path) -> String {
    run_git(root, &["branch", "--list", "--format=%(refname:short)"])
}

#[test]
fn create_and_remove_round_trip() {
    let (_d, root) = repo();
    let wt = GitWorktrees::new();
    let info = wt.create(&req(&root, "ab12", "hydralph/ab12")).expect("create");
    assert_eq!(info.path, root.join(".hydra/worktrees/hydralph-ab12"));
    assert_eq!(info.port, Some(3001));
    assert!(info.path.join("README").exists());
    assert_eq!(registry(&root)["hydralph/ab12"], 3001);
    // .hydra/ is excluded from the main checkout, not written to .gitignore.
    assert!(run_git(&root, &["status", "--porcelain"]).is_empty());
    assert!(!root.join(".gitignore").exists());
    let listed = wt.list(&root).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].branch.as_str(), listed[0].port, listed[0].exists),
        ("hydralph/ab12", Some(3001), true)
    );
    assert_eq!(
        wt.remove(&root, "hydralph/ab12", false).expect("remove"),
        RemoveOutcome::Removed
    );
    assert!(!info.path.exists());
    assert!(registry(&root).is_empty(), "port freed");
    assert!(branches(&root).contains("hydralph/ab12"), "the branch is never deleted");
    assert_eq!(
        wt.remove(&root, "hydralph/ab12", false).expect("again"),
        RemoveOutcome::NotFound
    );
}

#[test]
fn existing_branch_is_reused_and_taken_branch_refused() {
    let (_d, root) = repo();
    run_git(&root, &["branch", "feature/x"]);
    let wt = GitWorktrees::new();
    let info = wt
        .create(&req(&root, "s1", "feature/x"))
        .expect("create on existing branch");
    assert_eq!(
        run_git(&info.path, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "feature/x"
    );
    let err = wt
        .create(&req(&root, "s2", "feature/x"))
        .expect_err("checked out elsewhere");
    assert!(matches!(err, WorktreeError::BranchTaken { .. }), "{err}");
    let err = wt
        .create(&req(&root, "s3", "main"))
        .expect_err("main is checked out in the root");
    assert!(matches!(err, WorktreeError::BranchTaken { .. }), "{err}");
    assert!(!root.join(".hydra/worktrees/hydralph-s2").exists());
    assert_eq!(registry(&root).len(), 1);
}

#[test]
fn invalid_branch_names_create_nothing() {
    let (_d, root) = repo();
    let wt = GitWorktrees::new();
    for bad in [
        "a..b",
        "-x",
        "a b",
        "~",
        "hydralph/../x",
        "x.lock",
        "a:b",
        "",
        "@",
        "tab\tx",
    ] {
        let err = wt.create(&req(&root, "inv", bad)).expect_err(bad);
        assert!(matches!(err, WorktreeError::InvalidBranch { .. }), "{bad:?}: {err}");
        assert!(err.to_string().contains("branch"), "{err}");
    }
    assert!(!root.join(".hydra/worktrees").exists());
    assert!(registry(&root).is_empty());
    assert_eq!(branches(&root).trim(), "main");
}

#[test]
fn remove_keeps_dirty_and_unmerged_work_unless_forced() {
    let (_d, root) = repo();
    let wt = GitWorktrees::new();
    let dirty = wt.create(&req(&root, "d1", "hydralph/d1")).expect("create");
    std::fs::write(dirty.path.join("work.txt"), "precious\n").expect("write");
    match wt.remove(&root, "hydralph/d1", false).expect("remove") {
        RemoveOutcome::Kept { path, reasons } => {
            assert_eq!(path, dirty.path);
            assert!(
                reasons[0].contains("uncommitted") && reasons[0].contains("work.txt"),
                "{reasons:?}"
            );
        }
        other => panic!("dirty worktree not kept: {other:?}"),
    }
    assert!(dirty.path.join("work.txt").exists());
    assert_eq!(registry(&root)["hydralph/d1"], 3001, "a kept worktree keeps its port");

    let committed = wt.create(&req(&root, "c1", "hydralph/c1")).expect("create");
    std::fs::write(committed.path.join("f.txt"), "x\n").expect("write");
    run_git(&committed.path, &["add", "f.txt"]);
    run_git(&committed.path, &["commit", "-q", "-m", "agent work"]);
    match wt.remove(&root, "hydralph/c1", false).expect("remove") {
        RemoveOutcome::Kept { reasons, .. } => assert!(reasons[0].contains("1 commit"), "{reasons:?}"),
        other => panic!("unmerged work not kept: {other:?}"),
    }
    // Once the work is on another branch, removal is safe.
    run_git(&root, &["branch", "backup", "hydralph/c1"]);
    assert_eq!(
        wt.remove(&root, "hydralph/c1", false).expect("remove"),
        RemoveOutcome::Removed
    );

    assert_eq!(
        wt.remove(&root, "hydralph/d1", true).expect("forced"),
        RemoveOutcome::Removed
    );
    assert!(!dirty.path.exists());
    assert!(branches(&root).contains("hydralph/d1"));
    assert!(registry(&root).is_empty());
}

#[test]
fn registry_written_by_hydra_wt_is_read_and_ours_is_readable() {
    let (_d, root) = repo();
    std::fs::create_dir_all(root.join(".hydra")).expect("mkdir");
    // hydra-wt's format: a flat, pretty-printed map.
    std::fs::write(
        root.join(".hydra/wt-ports.json"),
        "{\n  \"feature-a\": 3001,\n  \"feature-b\": 3003\n}",
    )
    .expect("write");
    let wt = GitWorktrees::new();
    let info = wt.create(&req(&root, "r1", "hydralph/r1")).expect("create");
    assert_eq!(info.port, Some(3002), "lowest free port");
    let map = registry(&root);
    assert_eq!(map.len(), 3);
    assert_eq!(map["feature-a"], 3001);
    assert_eq!(map["feature-b"], 3003);
    let text = std::fs::read_to_string(root.join(".hydra/wt-ports.json")).expect("read");
    assert!(
        text.contains("\n  \"hydralph/r1\": 3002"),
        "pretty-printed flat map: {text}"
    );
}

#[test]
fn exhausted_range_is_a_clear_error_and_leaves_nothing() {
    let (_d, root) = repo();
    std::fs::create_dir_all(root.join(".hydra")).expect("mkdir");
    std::fs::write(
        root.join(".hydra/wt.toml"),
        "[ports]\nrange_start = 4001\nrange_end = 4001\n",
    )
    .expect("write");
    let wt = GitWorktrees::new();
    assert_eq!(
        wt.create(&req(&root, "e1", "hydralph/e1")).expect("first").port,
        Some(4001)
    );
    let err = wt.create(&req(&root, "e2", "hydralph/e2")).expect_err("exhausted");
    assert!(
        matches!(err, WorktreeError::RangeExhausted { start: 4001, end: 4001 }),
        "{err}"
    );
    assert!(!root.join(".hydra/worktrees/hydralph-e2").exists());
    assert!(!branches(&root).contains("hydralph/e2"));
}

#[test]
fn env_template_artifacts_and_failing_hook() {
    let (_d, root) = repo();
    std::fs::create_dir_all(root.join(".hydra")).expect("mkdir");
    std::fs::write(
        root.join(".env.template"),
        "PORT={{port}}\nBRANCH={{ worktree }}\nROOT={{repo_root}}\n",
    )
    .expect("write");
    std::fs::write(root.join("secret.key"), "k").expect("write");
    std::fs::create_dir(root.join("assets")).expect("mkdir");
    std::fs::write(root.join("assets/a.bin"), "a").expect("write");
    std::fs::write(
        root.join(".hydra/wt.toml"),
        "[ports]\nrange_start = 5001\nrange_end = 5010\n[env]\ntemplate = \".env.template\"\noutput = \".env.local\"\n[artifacts]\nsymlink = [\"secret.key\"]\ncopy = [\"assets\"]\n[hooks]\npost_create = [\"echo \\\"$HYDRA_WT_PORT\\\" > hook-ran\"]\n",
    )
    .expect("write");
    let wt = GitWorktrees::new().with_trust(std::sync::Arc::new(orch_core::TrustAll));
    let info = wt.create(&req(&root, "t1", "hydralph/t1")).expect("create");
    let env = std::fs::read_to_string(info.path.join(".env.local")).expect("env rendered");
    assert_eq!(env, format!("PORT=5001\nBRANCH=hydralph/t1\nROOT={}\n", root.display()));
    assert!(std::fs::symlink_metadata(info.path.join("secret.key"))
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(info.path.join("assets/a.bin")).expect("copied"),
        "a"
    );
    assert_eq!(
        std::fs::read_to_string(info.path.join("hook-ran"))
            .expect("hook ran")
            .trim(),
        "5001"
    );
    // Our own files (env output, artifacts) do not count as the agent's work; the hook's do.
    std::fs::remove_file(info.path.join("hook-ran")).expect("rm");
    assert_eq!(
        wt.remove(&root, "hydralph/t1", false).expect("remove"),
        RemoveOutcome::Removed
    );

    // A failing hook rolls everything back: no worktree, no port, no new branch.
    let toml = std::fs::read_to_string(root.join(".hydra/wt.toml"))
        .expect("read")
        .replace("echo", "exit 3; echo");
    std::fs::write(root.join(".hydra/wt.toml"), toml).expect("write");
    let err = wt.create(&req(&root, "t2", "hydralph/t2")).expect_err("hook fails");
    assert!(matches!(err, WorktreeError::Hook { .. }), "{err}");
    assert!(!root.join(".hydra/worktrees/hydralph-t2").exists());
    assert!(registry(&root).is_empty(), "{:?}", registry(&root));
    assert!(!branches(&root).contains("hydralph/t2"));
    assert!(!run_git(&root, &["worktree", "list"]).contains("hydralph-t2"));
}

#[test]
fn not_a_repository_and_git_missing_are_typed() {
    let dir = tempfile::tempdir().expect("tmp");
    let err = GitWorktrees::new()
        .create(&req(dir.path(), "n1", "hydralph/n1"))
        .expect_err("not a repo");
    assert!(matches!(err, WorktreeError::NotARepo { .. }), "{err}");
    let err = GitWorktrees::with_git("/nonexistent/git")
        .list(dir.path())
        .expect_err("git missing");
    assert!(matches!(err, WorktreeError::GitMissing), "{err}");
}

#[test]
fn existing_target_path_is_refused() {
    let (_d, root) = repo();
    std::fs::create_dir_all(root.join(".hydra/worktrees/hydralph-p1")).expect("mkdir");
    let err = GitWorktrees::new()
        .create(&req(&root, "p1", "hydralph/p1"))
        .expect_err("exists");
    assert!(matches!(err, WorktreeError::PathExists { .. }), "{err}");
    assert!(registry(&root).is_empty());
}

/// The helper process (`src/bin/orch-wt-child.rs`) creating session `id`'s worktree.
fn child(root: &Path, id: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_orch-wt-child"))
        .arg(root)
        .arg(id)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn")
}

#[test]
fn ten_concurrent_creates_get_ten_distinct_ports() {
    let (_d, root) = repo();
    let children: Vec<_> = (0..10).map(|i| child(&root, &format!("c{i}"))).collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    let map = registry(&root);
    assert_eq!(map.len(), 10, "{map:?}");
    let mut ports: Vec<u64> = map.values().map(|v| v.as_u64().expect("port")).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 10, "duplicate ports: {map:?}");
    assert_eq!(GitWorktrees::new().list(&root).expect("list").len(), 10);
}

#[test]
fn a_repository_without_commits_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tmp");
    run_git(dir.path(), &["init", "-q", "-b", "main"]);
    let err = GitWorktrees::new()
        .create(&req(dir.path(), "e1", "hydralph/e1"))
        .expect_err("no commit");
    assert!(err.to_string().contains("no commit yet"), "{err}");
    assert!(!dir.path().join(".hydra/worktrees").exists());
}

/// Regression: `git worktree list` in one process failed ("failed to read
/// .git/worktrees/X/commondir") while another process was adding a worktree; worktree
/// operations now hold the registry lock.
#[test]
fn regression_listing_while_other_processes_create_never_fails() {
    let (_d, root) = repo();
    let mut children: Vec<_> = (0..6).map(|i| child(&root, &format!("l{i}"))).collect();
    let wt = GitWorktrees::new();
    let mut lists = 0;
    while children.iter_mut().any(|c| c.try_wait().expect("wait").is_none()) {
        wt.list(&root).expect("list while others create");
        lists += 1;
    }
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    assert!(lists > 0);
    assert_eq!(wt.list(&root).expect("list").len(), 6);
}

/// Trusts exactly the (file, content) pairs it was given.
#[derive(Default)]
struct Trusted(std::sync::Mutex<Vec<(PathBuf, Vec<u8>)>>);

impl orch_core::Trust for Trusted {
    fn is_trusted(&self, file: &Path, contents: &[u8]) -> bool {
        self.0
            .lock()
            .expect("trusted")
            .iter()
            .any(|(f, c)| f == file && c == contents)
    }
}

/// Regression: a cloned repository that committed `.hydra/wt.toml` with a `post_create` hook
/// ran it on the first worktree, with no question asked.
#[test]
fn hooks_of_an_untrusted_wt_toml_never_run_and_nothing_is_made() {
    let (_d, root) = repo();
    std::fs::create_dir_all(root.join(".hydra")).expect("mkdir");
    let wt_toml = root.join(".hydra/wt.toml");
    std::fs::write(&wt_toml, "[hooks]\npost_create = [\"touch pwned\"]\n").expect("write");
    let trusted = std::sync::Arc::new(Trusted::default());
    let wt = GitWorktrees::new().with_trust(trusted.clone());
    let err = wt.create(&req(&root, "u1", "hydralph/u1")).expect_err("untrusted");
    match &err {
        WorktreeError::Untrusted { file, commands } => {
            assert_eq!(file, &wt_toml);
            assert_eq!(commands, &["touch pwned"]);
        }
        other => panic!("not Untrusted: {other}"),
    }
    let nothing_made = |why: &str| {
        assert!(!root.join(".hydra/worktrees/hydralph-u1").exists(), "{why}: worktree");
        assert!(registry(&root).is_empty(), "{why}: port");
        assert!(!branches(&root).contains("hydralph/u1"), "{why}: branch");
    };
    nothing_made("untrusted");
    // Trusted as it is: the hook runs.
    trusted
        .0
        .lock()
        .expect("trusted")
        .push((wt_toml.clone(), std::fs::read(&wt_toml).expect("read")));
    let info = wt.create(&req(&root, "u1", "hydralph/u1")).expect("trusted");
    assert!(info.path.join("pwned").exists(), "the trusted hook ran");
    wt.remove(&root, "hydralph/u1", true).expect("remove");
    // Edited: refused again until trusted again.
    std::fs::write(&wt_toml, "[hooks]\npost_create = [\"touch pwned2\"]\n").expect("edit");
    let err = wt.create(&req(&root, "u2", "hydralph/u2")).expect_err("edited");
    assert!(matches!(err, WorktreeError::Untrusted { .. }), "{err}");
    assert!(!root.join(".hydra/worktrees/hydralph-u2").exists());
    // The default adapter trusts nothing.
    let err = GitWorktrees::new()
        .create(&req(&root, "u3", "hydralph/u3"))
        .expect_err("default");
    assert!(matches!(err, WorktreeError::Untrusted { .. }), "{err}");
    // A wt.toml without hooks needs no trust.
    std::fs::write(&wt_toml, "[ports]\nrange_start = 4001\nrange_end = 4005\n").expect("write");
    let info = GitWorktrees::new()
        .create(&req(&root, "u4", "hydralph/u4"))
        .expect("no hooks");
    assert_eq!(info.port, Some(4001));
}

/// Commits `file` with `text` in the checkout `dir`.
fn commit_file(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).expect("write");
    run_git(dir, &["add", file]);
    run_git(dir, &["commit", "-q", "-m", &format!("edit {file}")]);
}

/// A repository whose merges have an identity (as a user's would).
fn repo_with_identity() -> (tempfile::TempDir, PathBuf) {
    let (d, root) = repo();
    run_git(&root, &["config", "user.name", "test"]);
    run_git(&root, &["config", "user.email", "test@example.invalid"]);
    run_git(&root, &["config", "commit.gpgsign", "false"]);
    (d, root)
}

#[test]
fn a_new_branch_says_where_it_came_from_and_what_it_changed() {
    let (_d, root) = repo_with_identity();
    let wt = GitWorktrees::new();
    let info = wt.create(&req(&root, "aaaa0001", "feat/a")).expect("create");
    assert!(info.created_branch);
    assert_eq!(info.base_branch.as_deref(), Some("main"));
    let base = info.base_commit.clone().expect("base commit");
    commit_file(&info.path, "a.txt", "one\n");
    commit_file(&info.path, "b.txt", "two\n");
    let ch = wt.changes(&root, &base, "feat/a", true).expect("changes");
    let subjects: Vec<&str> = ch.commits.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(subjects, ["edit b.txt", "edit a.txt"], "newest first");
    assert!(
        ch.stat.contains("a.txt") && ch.stat.contains("2 files changed"),
        "{}",
        ch.stat
    );
    assert!(ch.patch.as_deref().is_some_and(|p| p.contains("+one")));
    assert!(matches!(
        wt.changes(&root, "--exec=boom", "feat/a", false),
        Err(WorktreeError::BadBase { .. })
    ));
    // A branch with commits is never deleted; a fresh one at its base is.
    assert!(!wt.delete_branch(&root, "feat/a").expect("delete"));
    let fresh = wt.create(&req(&root, "aaaa0002", "feat/fresh")).expect("create");
    wt.remove(&root, "feat/fresh", false).expect("remove");
    assert!(fresh.created_branch);
    assert!(wt.delete_branch(&root, "feat/fresh").expect("delete"));
    assert!(!branches(&root).contains("feat/fresh"));
    assert!(!wt.delete_branch(&root, "no/such").expect("absent"));
}

#[test]
fn merges_go_in_whole_or_not_at_all() {
    let (_d, root) = repo_with_identity();
    let wt = GitWorktrees::new();
    let a = wt.create(&req(&root, "aaaa0001", "feat/a")).expect("a");
    let b = wt.create(&req(&root, "aaaa0002", "feat/b")).expect("b");
    commit_file(&a.path, "README", "from a\n");
    commit_file(&a.path, "a.txt", "a\n");
    commit_file(&b.path, "README", "from b\n");
    let head = run_git(&root, &["rev-parse", "HEAD"]);

    // A target with uncommitted changes is refused, untouched; untracked files do not count.
    std::fs::write(root.join("notes.txt"), "wip").expect("write");
    std::fs::write(root.join("README"), "edited, not committed\n").expect("write");
    match wt.merge(&root, "feat/a", "main", false, "merge a").expect("merge") {
        MergeOutcome::Dirty { checkout, files } => {
            assert_eq!(checkout, root);
            assert_eq!(files, ["README"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(run_git(&root, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        std::fs::read_to_string(root.join("README")).expect("r"),
        "edited, not committed\n"
    );
    run_git(&root, &["checkout", "--", "README"]);

    let merged = wt
        .merge(&root, "feat/a", "main", false, "hydra: merge feat/a")
        .expect("merge");
    assert!(matches!(merged, MergeOutcome::Merged { .. }), "{merged:?}");
    assert!(root.join("a.txt").exists());
    assert_eq!(
        run_git(&root, &["log", "-1", "--format=%s"]).trim(),
        "hydra: merge feat/a"
    );
    assert_eq!(
        wt.merge(&root, "feat/a", "main", false, "again").expect("again"),
        MergeOutcome::UpToDate
    );

    // b touches the same lines: refused with the file named, main as it was, clean.
    let before = run_git(&root, &["rev-parse", "HEAD"]);
    for squash in [false, true] {
        match wt.merge(&root, "feat/b", "main", squash, "merge b").expect("merge b") {
            MergeOutcome::Conflict { files } => assert_eq!(files, ["README"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(run_git(&root, &["rev-parse", "HEAD"]), before);
        assert_eq!(
            run_git(&root, &["status", "--porcelain", "--untracked-files=no"]),
            "",
            "nothing half-merged"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("notes.txt")).expect("n"),
            "wip",
            "untracked kept"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("README")).expect("readme"),
            "from a\n"
        );
    }
    assert_eq!(
        wt.merge(&root, "feat/b", "nowhere", false, "m").expect("target"),
        MergeOutcome::NotCheckedOut
    );
}

#[test]
fn a_squash_merge_makes_one_commit() {
    let (_d, root) = repo_with_identity();
    let wt = GitWorktrees::new();
    let a = wt.create(&req(&root, "aaaa0001", "feat/a")).expect("a");
    commit_file(&a.path, "x.txt", "x\n");
    commit_file(&a.path, "y.txt", "y\n");
    let before: usize = run_git(&root, &["rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .expect("n");
    let out = wt
        .merge(&root, "feat/a", "main", true, "hydra: squash feat/a")
        .expect("merge");
    assert!(matches!(out, MergeOutcome::Merged { .. }), "{out:?}");
    let after: usize = run_git(&root, &["rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .expect("n");
    assert_eq!(after, before + 1);
    assert!(root.join("x.txt").exists() && root.join("y.txt").exists());
    assert_eq!(
        wt.merge(&root, "feat/a", "main", true, "again").expect("again"),
        MergeOutcome::UpToDate
    );
}

/// `.hydra/wt.toml` exactly as `hydra-wt init` writes it (`toml::to_string_pretty` of its
/// defaults): an env template that no one has created yet, and worktrees in `../`.
const HYDRA_WT_INIT: &str = "[ports]\nrange_start = 3001\nrange_end = 3099\n\n[env]\ntemplate = \".env.template\"\noutput = \".env.local\"\n\n[worktrees]\ndirectory = \"../\"\n";

fn write_wt_toml(root: &Path, text: &str) {
    std::fs::create_dir_all(root.join(".hydra")).expect("mkdir");
    std::fs::write(root.join(".hydra/wt.toml"), text).expect("wt.toml");
}

#[test]
fn hydra_wt_init_config_works_without_its_template_and_puts_worktrees_where_hydra_wt_looks() {
    let (_d, root) = repo();
    write_wt_toml(&root, HYDRA_WT_INIT);
    let wt = GitWorktrees::new();
    let expected = root.parent().expect("parent").join("hydralph/ab12");
    assert_eq!(
        wt.path_for(&root, "hydralph/ab12").expect("path"),
        Some(expected.clone()),
        "hydra-wt's <directory>/<branch>, relative to the repository root"
    );
    let mut r = req(&root, "ab12", "hydralph/ab12");
    r.path = wt.path_for(&root, "hydralph/ab12").expect("path");
    let info = wt.create(&r).expect("a missing template is a warning, not a failure");
    assert_eq!(info.path, expected);
    assert!(expected.join("README").exists());
    assert!(!expected.join(".env.local").exists());
    assert_eq!(info.warnings.len(), 1, "{:?}", info.warnings);
    assert!(info.warnings[0].contains(".env.template"), "{:?}", info.warnings);
    // git records the worktree at the same (resolved) path, so list and remove find it.
    assert!(run_git(&root, &["worktree", "list", "--porcelain"]).contains(&format!("worktree {}", expected.display())));
    assert_eq!(wt.list(&root).expect("list")[0].path, expected);
    assert_eq!(
        wt.remove(&root, "hydralph/ab12", false).expect("remove"),
        RemoveOutcome::Removed
    );
    assert!(!expected.exists());
    // Without [worktrees], the caller's default place.
    write_wt_toml(&root, "[ports]\nrange_start = 3001\nrange_end = 3099\n");
    assert_eq!(wt.path_for(&root, "x").expect("path"), None);
    // The branch is checked before a path is made from it.
    assert!(matches!(
        wt.path_for(&root, "../../etc"),
        Err(WorktreeError::InvalidBranch { .. })
    ));
}

#[test]
fn env_templates_render_with_tera_like_hydra_wt() {
    let (_d, root) = repo();
    std::fs::write(
        root.join(".env.template"),
        "PORT={{ port }}\nAPI_PORT={{ port + 1 }}\nNAME={{ worktree | upper }}\nDB=app_{{ worktree | slugify }}\nUUID={{ project_uuid }}\nROOT={{ repo_root }}\n{% if port > 3000 %}HIGH=yes{% endif %}\n",
    )
    .expect("template");
    write_wt_toml(
        &root,
        "[ports]\nrange_start = 4001\nrange_end = 4009\n[env]\ntemplate = \".env.template\"\noutput = \"config/.env.local\"\n",
    );
    let wt = GitWorktrees::new();
    let info = wt.create(&req(&root, "t1", "feat/login")).expect("create");
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    let env = std::fs::read_to_string(info.path.join("config/.env.local")).expect("rendered");
    assert_eq!(
        env,
        format!(
            "PORT=4001\nAPI_PORT=4002\nNAME=FEAT/LOGIN\nDB=app_feat-login\nUUID=unknown\nROOT={}\nHIGH=yes\n",
            root.display()
        )
    );
    // A template Tera refuses fails the create, names the file, and leaves nothing behind.
    std::fs::write(root.join(".env.template"), "X={{ no_such_variable }}\n").expect("template");
    let err = wt.create(&req(&root, "t2", "feat/two")).expect_err("bad template");
    let text = err.to_string();
    assert!(
        text.contains(".env.template") && text.contains("no_such_variable"),
        "{text}"
    );
    assert!(!root.join(".hydra/worktrees/hydralph-t2").exists());
    assert!(!registry(&root).contains_key("feat/two"));
    assert!(!branches(&root).contains("feat/two"));
}

#[test]
fn ports_held_by_sessions_are_not_handed_out_again_and_lost_entries_are_restored() {
    let (_d, root) = repo();
    let wt = GitWorktrees::new();
    let a = wt.create(&req(&root, "aa11", "hydralph/aa11")).expect("a");
    assert_eq!(a.port, Some(3001));
    // `hydra-wt remove hydralph/aa11` run from another shell drops the entry of a live worktree.
    std::fs::write(root.join(".hydra/wt-ports.json"), "{}\n").expect("registry emptied");
    let mut r = req(&root, "bb22", "hydralph/bb22");
    r.reserved_ports = vec![3001];
    let b = wt.create(&r).expect("b");
    assert_eq!(b.port, Some(3002), "the port a session holds is never handed out twice");

    let holds = [
        orch_core::PortHold {
            branch: "hydralph/aa11".into(),
            port: 3001,
        },
        orch_core::PortHold {
            branch: "hydralph/bb22".into(),
            port: 3002,
        },
    ];
    // Without repair: reported, nothing written.
    let found = wt.reconcile_ports(&root, &holds, false).expect("check");
    assert_eq!(
        found,
        vec![orch_core::PortRepair::Restored {
            branch: "hydralph/aa11".into(),
            port: 3001
        }]
    );
    assert!(!registry(&root).contains_key("hydralph/aa11"));
    // With repair: the entry is back, in hydra-wt's format.
    wt.reconcile_ports(&root, &holds, true).expect("repair");
    assert_eq!(registry(&root)["hydralph/aa11"], 3001);
    assert_eq!(wt.reconcile_ports(&root, &holds, true).expect("again"), vec![]);

    // A lost port that hydra-wt has since given to another branch cannot be restored: told.
    let mut map = registry(&root);
    map.remove("hydralph/aa11");
    map.insert("other".into(), 3001.into());
    std::fs::write(
        root.join(".hydra/wt-ports.json"),
        serde_json::to_string_pretty(&map).expect("json"),
    )
    .expect("registry");
    let found = wt.reconcile_ports(&root, &holds, true).expect("check");
    assert_eq!(
        found,
        vec![orch_core::PortRepair::Taken {
            branch: "hydralph/aa11".into(),
            port: 3001,
            by: "other".into()
        }]
    );
    assert_eq!(
        registry(&root)["other"],
        3001,
        "another tool's entry is never taken away"
    );
}

#[test]
fn the_original_loops_files_in_a_worktree_are_not_work() {
    let (_d, root) = repo();
    let wt = GitWorktrees::new();
    let info = wt.create(&req(&root, "cc33", "hydralph/cc33")).expect("create");
    // The original tool's loop keeps its files in `<worktree>/.hydra/ralph/`; a repository it
    // made the worktree in has no exclude rule for them.
    std::fs::write(root.join(".git/info/exclude"), "").expect("no exclude");
    let ralph = info.path.join(".hydra/ralph");
    std::fs::create_dir_all(&ralph).expect("mkdir");
    for f in [
        "prd.json",
        "status.json",
        "prompt.md",
        "hydralph.sh",
        "progress.txt",
        ".pause",
    ] {
        std::fs::write(ralph.join(f), "x\n").expect("loop file");
    }
    assert!(run_git(&info.path, &["status", "--porcelain", "--untracked-files=all"]).contains(".hydra/ralph/"));
    assert_eq!(
        wt.remove(&root, "hydralph/cc33", false).expect("remove"),
        RemoveOutcome::Removed
    );

    // Real work beside them is still kept.
    let info = wt.create(&req(&root, "dd44", "hydralph/dd44")).expect("create");
    std::fs::create_dir_all(info.path.join(".hydra/ralph")).expect("mkdir");
    std::fs::write(info.path.join(".hydra/ralph/status.json"), "{}").expect("loop file");
    std::fs::write(info.path.join("feature.rs"), "fn main() {}\n").expect("work");
    match wt.remove(&root, "hydralph/dd44", false).expect("remove") {
        RemoveOutcome::Kept { reasons, .. } => {
            assert!(
                reasons[0].contains("1 uncommitted") && reasons[0].contains("feature.rs"),
                "{reasons:?}"
            )
        }
        other => panic!("work must be kept: {other:?}"),
    }
}
