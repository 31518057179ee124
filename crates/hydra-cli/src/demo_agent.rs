//! The scripted demo agent of `hydra demo`: a model-free agent that marks the next story of its
//! PRD as passing each call, so the whole lifecycle runs on a bare machine.

use std::io::Read;
use std::time::Duration;

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
    let next = stories
        .iter_mut()
        .find(|s| s.get("passes").and_then(|p| p.as_bool()) == Some(false));
    if let Some(story) = next {
        let id = story.get("id").map(|v| v.to_string()).unwrap_or_default();
        let title = story.get("title").and_then(|t| t.as_str()).unwrap_or("").to_owned();
        println!("demo-agent: working on story {id}: {title}");
        std::thread::sleep(Duration::from_millis(delay));
        story["passes"] = serde_json::Value::Bool(true);
        let body = serde_json::to_string_pretty(&prd).unwrap_or_default();
        if orch_fs::write_atomic(std::path::Path::new(&prd_path), body.as_bytes(), 0o600).is_err() {
            eprintln!("demo-agent: cannot update the PRD");
            return 1;
        }
        if let Some(progress) = std::env::var_os("HYDRALPH_PROGRESS") {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(progress) {
                let _ = writeln!(f, "story {id} ({title}): done by demo-agent");
            }
        }
        println!("demo-agent: story {id} passes");
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
