//! Trust as a user meets it: a repository whose committed `.hydra/wt.toml` has a hook runs
//! nothing until `hydra trust`, again after every edit; the trust file is the user's, outside
//! the project.

mod support;

use support::{git, Env};

/// A project as cloned: a commit with a PRD and a wt.toml whose hook leaves a marker.
fn cloned(env: &Env) {
    let root = env.root();
    std::fs::create_dir_all(root.join(".hydra")).expect("mkdir");
    std::fs::write(
        root.join("prd.json"),
        r#"{"userStories":[{"id":"1","title":"a","passes":false}]}"#,
    )
    .expect("prd");
    std::fs::write(
        root.join(".hydra/wt.toml"),
        "[ports]\nrange_start = 3101\nrange_end = 3110\n[hooks]\npost_create = [\"touch pwned\"]\n",
    )
    .expect("wt.toml");
    git(root, &["add", "prd.json"]);
    git(root, &["commit", "-q", "-m", "init"]);
}

fn spawn_worktree(env: &Env) -> std::process::Output {
    let prd = env.prd();
    env.hydra(&[
        "spawn",
        "--agent",
        "sh",
        "--flags",
        "-c true",
        "--prd",
        &prd,
        "--worktree",
    ])
}

#[track_caller]
fn nothing_made(env: &Env) {
    let root = env.root();
    assert!(!root.join("pwned").exists());
    let worktrees = root.join(".hydra/worktrees");
    let left: Vec<_> = std::fs::read_dir(&worktrees)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "worktrees left: {left:?}");
    assert!(
        !git(root, &["branch", "--list", "hydralph/*"]).contains("hydralph/"),
        "a branch was left"
    );
    let ports = std::fs::read_to_string(root.join(".hydra/wt-ports.json")).unwrap_or_default();
    assert!(!ports.contains("hydralph/"), "a port was left: {ports}");
    assert!(env.ls().is_empty(), "a record was left");
}

#[test]
fn a_cloned_wt_toml_hook_runs_only_after_hydra_trust_and_again_after_each_edit() {
    let env = Env::new();
    cloned(&env);
    let out = spawn_worktree(&env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("wt.toml") && err.contains("touch pwned") && err.contains("hydra trust"),
        "{err}"
    );
    nothing_made(&env);

    // Not without a question (no terminal here): it shows what would run and stops.
    let out = env.hydra(&["trust"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("touch pwned"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    nothing_made(&env);

    let text = env.ok(&["trust", "--yes"]);
    assert!(text.contains("trusted"), "{text}");
    let store = env.state().join("hydra/trusted.json");
    assert!(store.is_file(), "the trust file is the user's");
    let root = env.root().canonicalize().expect("root");
    assert!(!store.starts_with(&root), "the trust file is outside the project");
    assert!(std::fs::read_to_string(&store).expect("store").contains("wt.toml"));

    let out = spawn_worktree(&env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let wt = env.root().join(format!(".hydra/worktrees/hydralph-{id}"));
    assert!(wt.join("pwned").exists(), "the trusted hook ran in the worktree");
    env.ok(&["kill", &id, "--force"]);

    // An edit is untrusted until trusted again.
    std::fs::write(
        env.root().join(".hydra/wt.toml"),
        "[ports]\nrange_start = 3101\nrange_end = 3110\n[hooks]\npost_create = [\"touch pwned2\"]\n",
    )
    .expect("edit");
    let out = spawn_worktree(&env);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("touch pwned2"));
    let list = env.ok(&["trust", "--list"]);
    assert!(list.contains("changed since trusted"), "{list}");
    env.ok(&["trust", "--yes"]);
    let out = spawn_worktree(&env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Revoked: refused again; HYDRA_TRUST_ALL=1 trusts everything.
    env.ok(&["trust", "--revoke"]);
    assert_eq!(spawn_worktree(&env).status.code(), Some(1));
    let prd = env.prd();
    let out = env.hydra_env(
        &[
            "spawn",
            "--agent",
            "sh",
            "--flags",
            "-c true",
            "--prd",
            &prd,
            "--worktree",
        ],
        "",
        &[("HYDRA_TRUST_ALL", "1")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_project_whose_files_run_nothing_needs_no_trust() {
    let env = Env::new();
    let text = env.ok(&["trust"]);
    assert!(text.contains("nothing to trust"), "{text}");
}
