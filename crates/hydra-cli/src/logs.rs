//! `hydra logs`: the tail of a session's agent log, and `--follow`, which streams what the agent
//! prints (the loop writes the log as the agent prints) and exits once the session has ended.

use crate::context::Ctx;
use anyhow::Result;
use hydra_orchestrator::SessionId;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

/// `hydra logs ID [--lines N] [--follow]`.
pub fn run(ctx: &Ctx, id: &SessionId, lines: usize, follow: bool) -> Result<i32> {
    if follow && ctx.orch.status(id)?.foreign {
        anyhow::bail!(
            "{id} was started by the original hydra tool and keeps no log file to follow; `hydra logs {id}` shows its pane, `hydra attach {id}` follows it live"
        );
    }
    match ctx.orch.logs(id, lines)? {
        Some(text) => println!("{text}"),
        None if !follow => {
            eprintln!("hydra: {id} has printed nothing yet");
        }
        None => {}
    }
    if follow {
        stream(ctx, id)?;
    }
    Ok(0)
}

/// Prints what is appended to the log until the session ends, then what is left.
fn stream(ctx: &Ctx, id: &SessionId) -> Result<()> {
    let path = ctx.orch.runtime_layout(id).log();
    let mut offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut out = std::io::stdout();
    let mut last_check = Instant::now();
    let mut ended = false;
    loop {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0; // rotated
        }
        if len > offset {
            let mut f = std::fs::File::open(&path)?;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            out.write_all(&buf)?;
            out.flush()?;
            offset += buf.len() as u64;
        } else if ended {
            return Ok(());
        }
        // Whether it ended is asked of tmux and the loop (one probe), not read from a record
        // nobody refreshes.
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = Instant::now();
            ended = ctx.orch.status(id)?.state.is_terminal();
            if ended {
                // One more read for what was written last, then out.
                continue;
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}
