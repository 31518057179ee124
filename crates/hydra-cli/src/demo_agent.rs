//! The scripted demo agent of `hydra demo` (`hydra demo-agent`, read before the command line
//! is parsed): a model-free agent that works like a real one on a bare machine. Each call
//! implements the next story of its PRD copy — a file under `stories/`, committed when it works
//! in a git checkout — and marks it passing; `<promise>COMPLETE</promise>` once all pass. A
//! story with `"needs": "..."` blocks (with that as its reason) until an operator's message in
//! the prompt mentions it. With `HYDRA_DEMO_RUNAWAY=1` it only "thinks" and changes nothing.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn commit(file: &str, message: &str) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args([
                "-c",
                "user.name=hydra demo agent",
                "-c",
                "user.email=demo-agent@hydra.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if git(&["rev-parse", "--git-dir"]) {
        git(&["add", "--", file]);
        git(&["commit", "-q", "-m", message, "--", file]);
    }
}

/// Runs one iteration of the demo agent (the loop's `$AGENT`); returns the exit code.
///
/// Reads the prompt on stdin, the PRD from `HYDRALPH_PRD` and the progress file from
/// `HYDRALPH_PROGRESS`; `HYDRA_DEMO_DELAY_MS` (default 300) simulates work.
pub fn run_demo_agent() -> i32 {
    let mut prompt = String::new();
    let _ = std::io::stdin().read_to_string(&mut prompt);
    let delay = std::env::var("HYDRA_DEMO_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    if std::env::var_os("HYDRA_DEMO_RUNAWAY").is_some_and(|v| v == "1") {
        println!("demo-agent: still thinking about the architecture...");
        std::thread::sleep(Duration::from_millis(delay * 2));
        println!("demo-agent: considering another approach (nothing written)");
        return 0;
    }
    let Some(prd_path) = std::env::var_os("HYDRALPH_PRD") else {
        eprintln!("demo-agent: HYDRALPH_PRD is not set; run me from a hydralph loop");
        return 3;
    };
    let text = match std::fs::read_to_string(&prd_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("demo-agent: cannot read the PRD: {e}");
            return 3;
        }
    };
    let mut prd: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("demo-agent: the PRD is not JSON: {e}");
            return 3;
        }
    };
    if prompt.contains("Messages from your operator") {
        println!("demo-agent: read the operator's messages");
    }
    let Some(stories) = prd.get_mut("userStories").and_then(|s| s.as_array_mut()) else {
        eprintln!("demo-agent: the PRD has no userStories");
        return 3;
    };
    let total = stories.len();
    if let Some(story) = stories
        .iter_mut()
        .find(|s| s.get("passes").and_then(|p| p.as_bool()) == Some(false))
    {
        let id = story.get("id").and_then(|v| v.as_str()).unwrap_or("story").to_owned();
        let title = story.get("title").and_then(|t| t.as_str()).unwrap_or("").to_owned();
        if let Some(need) = story.get("needs").and_then(|n| n.as_str()) {
            if !prompt.contains(need) {
                println!("demo-agent: {id} ({title}) cannot go on without the {need}");
                println!("<reason>{id} needs the {need}; send it with `hydra inject`, then `hydra resume`</reason>");
                println!("<promise>BLOCKED</promise>");
                return 0;
            }
        }
        println!("demo-agent: working on {id}: {title}");
        std::thread::sleep(Duration::from_millis(delay));
        let file = format!("stories/{id}.md");
        if std::fs::create_dir_all("stories").is_ok()
            && std::fs::write(&file, format!("# {id}: {title}\n\nDone by the demo agent.\n")).is_ok()
        {
            commit(&file, &format!("{id}: {title}"));
        }
        story["passes"] = serde_json::Value::Bool(true);
        let body = serde_json::to_string_pretty(&prd).unwrap_or_default();
        if orch_fs::write_atomic(Path::new(&prd_path), body.as_bytes(), 0o600).is_err() {
            eprintln!("demo-agent: cannot update the PRD");
            return 1;
        }
        if let Some(progress) = std::env::var_os("HYDRALPH_PROGRESS") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(progress) {
                let _ = writeln!(f, "story {id} ({title}): done by demo-agent");
            }
        }
        println!("demo-agent: {id} passes");
    }
    let done = prd["userStories"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["passes"] == true).count());
    println!("demo-agent: {done}/{total} stories pass");
    if done == total {
        println!("<promise>COMPLETE</promise>");
    }
    0
}
