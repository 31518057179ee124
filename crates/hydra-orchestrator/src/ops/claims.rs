//! Claims: which PRD stories each session works on, so sessions sharing one PRD never do the
//! same story twice. A live session holds the stories it claimed; a spawn claims the stories
//! it is given (refused when another live session holds one) or, given none, every story not
//! done that no live session holds. Decided inside the spawn's transaction, under the store
//! lock, so two spawns cannot claim the same story.

use crate::error::{Error, Result};
use orch_core::{ConfigError, Prd, SessionConfig, SessionId, SessionRecord};
use std::path::Path;

fn bad(why: String) -> Error {
    Error::Config(ConfigError::new("stories", why))
}

/// Whether `rec` holds its claims now: alive (or still being made).
fn holds(rec: &SessionRecord) -> bool {
    !rec.state.is_terminal() || rec.spawning.is_some()
}

fn who(rec: &SessionRecord) -> String {
    match &rec.name {
        Some(n) => format!("{} ({n})", rec.id),
        None => rec.id.to_string(),
    }
}

/// The stories of the PRD at `prd_path` held by live sessions, each with its holder.
pub(crate) fn held<'r>(records: &'r [SessionRecord], prd_path: &Path) -> Vec<(&'r str, &'r SessionRecord)> {
    records
        .iter()
        .filter(|r| holds(r) && r.prd_path == prd_path)
        .flat_map(|r| r.claimed.iter().flatten().map(move |s| (s.as_str(), r)))
        .collect()
}

/// The stories a new session of `cfg` claims.
///
/// Errors: `Config` (field `stories`): an id the PRD does not have, a story already done, a
/// story a live session holds (naming it), or nothing left to claim.
pub(crate) fn claim(cfg: &SessionConfig, prd: &Prd, records: &[SessionRecord]) -> Result<Vec<String>> {
    let taken = held(records, &cfg.prd_path);
    let file = cfg.prd_path.display();
    match &cfg.stories {
        Some(asked) => {
            for s in asked {
                let Some(story) = prd.story(s) else {
                    let ids: Vec<&str> = prd.stories.iter().map(|s| s.id.as_str()).collect();
                    return Err(bad(format!(
                        "{s:?} is not a story of {file}; its stories: {}",
                        ids.join(", ")
                    )));
                };
                if story.passes {
                    return Err(bad(format!("{s:?} already passes in {file}; nothing to do for it")));
                }
                if let Some((_, holder)) = taken.iter().find(|(t, _)| t == s) {
                    return Err(bad(format!(
                        "{s:?} is held by live session {}; wait for it to end, or claim other stories",
                        who(holder)
                    )));
                }
            }
            Ok(asked.clone())
        }
        None => {
            let free: Vec<String> = prd
                .work_order()
                .into_iter()
                .filter(|s| !taken.iter().any(|(t, _)| *t == s.id))
                .map(|s| s.id.clone())
                .collect();
            if !free.is_empty() {
                return Ok(free);
            }
            if prd.stories.iter().all(|s| s.passes) {
                return Err(bad(format!(
                    "every story of {file} passes; there is nothing left to do"
                )));
            }
            let holders: Vec<String> = taken.iter().map(|(s, r)| format!("{s} by {}", who(r))).collect();
            Err(bad(format!(
                "every story of {file} not done yet is held by a live session ({}); wait for one to end, or give other stories",
                holders.join(", ")
            )))
        }
    }
}

/// A live session that works in `dir` without a worktree of its own.
pub(crate) fn sharing<'r>(records: &'r [SessionRecord], dir: &Path) -> Option<&'r SessionRecord> {
    records
        .iter()
        .find(|r| holds(r) && !r.use_worktree && r.agent_dir() == dir)
}

/// The sentence that names the session sharing a checkout.
pub(crate) fn sharing_note(id: &SessionId, dir: &Path, other: &SessionRecord) -> String {
    format!(
        "{id} works in {}, as live session {} does, without a worktree of its own: their edits can collide (a worktree per session avoids it; exclusive refuses it)",
        dir.display(),
        who(other)
    )
}
