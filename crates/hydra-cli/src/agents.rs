//! `hydra agents`: the agent profiles — built-in ones and the project's `[agents.NAME]` — with
//! the command each runs and whether its program is on PATH.

use crate::Global;
use anyhow::Result;
use hydra_orchestrator::AgentProfile;

/// Where `program` is found, as a spawn finds it (the same host adapter, the same PATH).
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    use hydra_orchestrator::Host;
    let cwd = std::env::current_dir().ok();
    hydra_orchestrator::adapters::PosixHost::new(std::env::var_os("PATH"), cwd).find_program(program)
}

/// `hydra agents`.
pub fn run(g: &Global) -> Result<i32> {
    // The project's profiles when run in one; the built-ins anywhere.
    let custom: Vec<AgentProfile> = crate::context::project_root(g)
        .ok()
        .and_then(|root| orch_config::Config::load(&root).ok().flatten())
        .map(|(cfg, _)| cfg.agents.iter().map(|(n, a)| a.profile(n)).collect())
        .unwrap_or_default();
    let mut all: Vec<(AgentProfile, &str)> = custom.into_iter().map(|p| (p, "hydra.toml")).collect();
    for p in hydra_orchestrator::builtin_profiles() {
        if !all.iter().any(|(c, _)| c.name == p.name) {
            all.push((p, "built-in"));
        }
    }
    if g.json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|(p, from)| {
                serde_json::json!({
                    "name": p.name, "from": from, "command": p.command, "prompt": p.prompt.as_str(),
                    "on_path": on_path(p.program_name()), "usage_limit": p.usage_limit,
                    "reports_cost": p.cost.is_some(), "interactive": p.interactive, "docs": p.docs,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(0);
    }
    for (p, from) in &all {
        let found = match on_path(p.program_name()) {
            Some(path) => format!("on PATH ({})", path.display()),
            None => "not on PATH".to_owned(),
        };
        println!("{:<10} {from:<10} {found}", p.name);
        println!(
            "           runs: {} {}",
            orch_config::shown(&p.command),
            match p.prompt {
                hydra_orchestrator::PromptMode::Stdin => "< PROMPT",
                hydra_orchestrator::PromptMode::Arg => "PROMPT",
                _ => "PROMPT-FILE",
            }
        );
        if !p.docs.is_empty() {
            println!("           docs: {}", p.docs);
        }
    }
    println!("\n`hydra spawn --agent NAME` uses a profile; any other name runs that program with the prompt on stdin. --flags appends arguments.");
    Ok(0)
}
