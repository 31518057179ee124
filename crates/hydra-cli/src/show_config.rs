//! `hydra config`: the effective configuration, where each value comes from, and the trust of
//! each project file that can start programs.

use crate::context::Ctx;
use crate::settings::{pick, Set, Source};
use anyhow::Result;
use orch_config::format_duration;
use std::time::Duration;

fn row<T: std::fmt::Display>(rows: &mut Vec<(String, String, Source)>, key: &str, set: Set<T>) {
    rows.push((key.to_owned(), set.value.to_string(), set.source));
}

fn d(set: Set<Duration>) -> Set<String> {
    Set {
        value: format_duration(set.value),
        source: set.source,
    }
}

/// `hydra config [--json]`.
pub fn run(ctx: &Ctx) -> Result<i32> {
    let c = &ctx.settings.config;
    let mut rows: Vec<(String, String, Source)> = Vec::new();
    row(
        &mut rows,
        "spawn.agent",
        pick(None, c.spawn.agent.clone(), "claude".to_owned()),
    );
    row(
        &mut rows,
        "spawn.flags",
        pick(None, c.spawn.flags.clone(), String::new()),
    );
    row(
        &mut rows,
        "spawn.max_iterations",
        pick(None, c.spawn.max_iterations, 10),
    );
    row(
        &mut rows,
        "spawn.max_duration",
        d(pick(
            None,
            c.spawn.max_duration.map(|x| x.0),
            Duration::from_secs(4 * 3600),
        )),
    );
    row(&mut rows, "spawn.worktree", pick(None, c.spawn.worktree, false));
    row(&mut rows, "spawn.exclusive", pick(None, c.spawn.exclusive, false));
    row(&mut rows, "health.stuck_after", d(ctx.settings.stuck_after(None)));
    row(
        &mut rows,
        "health.no_progress_limit",
        ctx.settings.no_progress_limit(None),
    );
    row(&mut rows, "monitor.auto", ctx.settings.monitor_auto());
    row(&mut rows, "monitor.tick", d(ctx.settings.monitor_tick()));
    let n = ctx.settings.notify();
    row(
        &mut rows,
        "notify.on",
        Set {
            value: n.on.value.join(", "),
            source: n.on.source,
        },
    );
    row(
        &mut rows,
        "notify.command",
        Set {
            value: n
                .command
                .value
                .as_deref()
                .map(orch_config::shown)
                .unwrap_or_else(|| "(none)".into()),
            source: n.command.source,
        },
    );
    row(&mut rows, "notify.timeout", d(n.timeout));
    row(&mut rows, "notify.desktop", n.desktop);
    row(&mut rows, "notify.tmux", n.tmux);
    row(&mut rows, "notify.bell", n.bell);
    row(&mut rows, "notify.coalesce", d(n.coalesce));
    for (name, a) in &c.agents {
        rows.push((format!("agents.{name}"), orch_config::shown(&a.command), Source::File));
    }
    let files = crate::trust::files(&ctx.root)?;
    let store = crate::trust::store().ok();
    let standing = |r: &crate::trust::Runs| match &store {
        Some(s) => crate::trust::standing(s, r),
        None if r.commands.is_empty() => "runs nothing; needs no trust",
        None => "not trusted (no trust file: HOME is not set)",
    };
    let trust_all = std::env::var_os("HYDRA_TRUST_ALL").is_some_and(|v| v == "1");
    if ctx.g.json {
        let values: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v, s)| (k.clone(), serde_json::json!({"value": v, "from": s.word()})))
            .collect();
        let files: Vec<_> = files
            .iter()
            .map(|r| serde_json::json!({"file": r.file, "runs": r.commands, "trust": standing(r)}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "project": ctx.root,
                "values": values,
                "files": files,
                "trust_all": trust_all,
                "events": ctx.orch.delivery_problem().unwrap_or_else(|| "delivered (or hydra-mail not configured)".into()),
            })
        );
        return Ok(0);
    }
    println!("project  {}", ctx.root.display());
    let width = rows.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    let vwidth = rows
        .iter()
        .map(|(_, v, _)| v.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for (k, v, s) in &rows {
        println!("{k:width$}  {v:vwidth$}  {}", s.word());
    }
    println!();
    if files.is_empty() {
        println!("no project file starts a program");
    }
    for r in &files {
        println!("{}: {}", r.file.display(), standing(r));
        for c in &r.commands {
            println!("  {c}");
        }
    }
    if trust_all {
        println!("HYDRA_TRUST_ALL=1: every file is trusted in this environment");
    }
    if let Some(p) = ctx.orch.delivery_problem() {
        println!("{p}");
    }
    Ok(0)
}
