//! `hydra ls` answered by the project's running monitor. The monitor runs the refresh itself
//! (the same one transaction under the store's lock, its snapshot through its control-mode
//! tmux client) and sends the statuses back over a Unix socket beside its lock
//! (`.hydra/orchestrator/monitor.sock`, in the project's private directory); `ls` shows them as
//! if it had looked itself. Nothing is answered from memory: every answer is a new look.
//!
//! For `ls --json` the monitor also writes the answer itself (the sessions `ls` would show, as
//! `ls` would print them), sent as raw bytes after the reply's line: `ls` copies them to its
//! output without parsing a status.
//!
//! `ls` looks itself when no monitor listens, when the monitor is another hydra build or
//! watches another tmux server, when its answer does not come within [`ANSWER_WITHIN`] or does
//! not parse, when the monitor does no work for [`IDLE_WITHIN`] while the answer is due (it is
//! stopped or stuck: its socket still accepts; where `/proc` tells), and always with
//! `HYDRA_NO_MONITOR=1`.

use hydra_orchestrator::{NoticeKind, Orchestrator, SessionStatus};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The form of requests and answers; a monitor of another form or build refuses.
const PROTOCOL: u32 = 2;

/// This build: its version and the identity of its executable (inode and modification time),
/// so a monitor started before hydra was rebuilt or upgraded (its executable replaced) answers
/// no `ls` of the new one: the statuses' form is private to one build. Read once per process.
pub fn build() -> &'static str {
    use std::os::unix::fs::MetadataExt;
    static BUILD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILD.get_or_init(|| {
        let exe = std::fs::metadata("/proc/self/exe")
            .or_else(|_| std::env::current_exe().and_then(std::fs::metadata))
            .map(|m| format!("{}:{}.{}", m.ino(), m.mtime(), m.mtime_nsec()))
            .unwrap_or_default();
        format!("{} {exe}", env!("CARGO_PKG_VERSION"))
    })
}

/// How long `ls` waits for the monitor's answer before it looks itself.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How long `ls` waits for the monitor's answer while the monitor uses no CPU at all (a look,
/// or the looks of other `ls` before it, use some) before it looks itself.
pub const IDLE_WITHIN: Duration = Duration::from_secs(1);

/// The largest request the monitor reads.
const MAX_REQUEST: u64 = 64 * 1024;

/// What `ls` asks.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    protocol: u32,
    hydra: String,
    /// The tmux server `ls` would look at (its `Display`).
    server: String,
    /// For `ls --json`: which sessions the monitor writes.
    json: Option<Selection>,
}

/// The sessions `ls` shows: every live one (with `all`, the ended ones too), or those in
/// `states`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Selection {
    /// Ended sessions too.
    pub all: bool,
    /// Only these state words (none: by `all`).
    pub states: Vec<String>,
}

impl Selection {
    /// Whether `s` is shown.
    pub fn shows(&self, s: &SessionStatus) -> bool {
        if self.states.is_empty() {
            self.all || !s.state.is_terminal()
        } else {
            self.states.iter().any(|w| w == s.state_word())
        }
    }
}

/// The monitor's look, as `ls` shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    /// Every session's status, refreshed (none when the answer is `json`).
    pub statuses: Vec<SessionStatus>,
    /// For `ls --json` (a request with a [`Selection`]): the length of the JSON array that follows the
    /// reply's line, `ls --json`'s output without its final newline.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub json_len: Option<usize>,
    /// Those bytes, once read.
    #[serde(skip)]
    pub json: Option<Vec<u8>>,
    /// This project's tmux sessions without a record.
    pub orphans: Vec<String>,
    /// `hydralph-*` tmux sessions without a tag or a record.
    pub untagged: Vec<String>,
    /// What the look noticed (a record moved aside, a read-only project).
    pub notices: Vec<String>,
    /// The monitor's pid.
    pub monitor: u32,
}

/// The monitor's reply.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Answer(Answer),
    Refused(String),
}

/// The socket of the monitor of the project at `root`.
pub fn socket_path(root: &Path) -> PathBuf {
    root.join(".hydra").join("orchestrator").join("monitor.sock")
}

/// Listens on `path` and answers each request with a look of `orch`, one at a time, on a
/// thread of its own, for as long as the process runs. A socket left at `path` is replaced
/// (the caller holds the monitor's lock, so no other monitor listens there).
///
/// Errors: the socket cannot be made (a path longer than a socket's, about 100 bytes).
pub fn serve(orch: Arc<Orchestrator>, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new().name("hydra-serve".into()).spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            let _ = answer(&orch, &conn);
        }
    })?;
    Ok(())
}

/// Reads one request from `conn` and writes the reply.
fn answer(orch: &Orchestrator, conn: &UnixStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(ANSWER_WITHIN))?;
    let mut line = String::new();
    BufReader::new(conn.take(MAX_REQUEST)).read_line(&mut line)?;
    let mut payload = None;
    let reply = match serde_json::from_str::<Request>(&line) {
        Err(e) => Reply::Refused(format!("not a request: {e}")),
        Ok(r) if r.protocol != PROTOCOL || r.hydra != build() => Reply::Refused(format!(
            "this monitor is another hydra build ({}, protocol {PROTOCOL})",
            build()
        )),
        Ok(r) if r.server != orch.server().to_string() => {
            Reply::Refused(format!("this monitor watches {}", orch.server()))
        }
        Ok(request) => match orch.refresh() {
            Ok(mut statuses) => {
                let orphans = orch.last_orphans();
                if let Some(selection) = &request.json {
                    let mut bytes = Vec::new();
                    crate::json_seq(
                        &mut bytes,
                        statuses.iter().filter(|s| selection.shows(s)).map(SessionStatus::json),
                    )?;
                    payload = Some(bytes);
                    statuses = Vec::new();
                }
                Reply::Answer(Answer {
                    statuses,
                    json_len: payload.as_ref().map(Vec::len),
                    json: None,
                    orphans: orphans.tmux_sessions,
                    untagged: orphans.untagged_sessions,
                    // Events the monitor could not deliver are its own log's concern.
                    notices: orch
                        .take_notices()
                        .into_iter()
                        .filter(|n| n.kind != NoticeKind::EventsNotDelivered)
                        .map(|n| n.to_string())
                        .collect(),
                    monitor: std::process::id(),
                })
            }
            Err(e) => Reply::Refused(format!("its look failed: {e}")),
        },
    };
    let mut out = std::io::BufWriter::new(conn);
    serde_json::to_writer(&mut out, &reply)?;
    out.write_all(b"\n")?;
    if let Some(bytes) = payload {
        out.write_all(&bytes)?;
    }
    out.flush()
}

/// The look of the monitor of the project at `root` (see the module documentation), with the
/// written answer for `json`, or `None` when `ls` must look itself; why is logged at `-v`.
pub fn ask(root: &Path, orch: &Orchestrator, json: Option<Selection>) -> Option<Answer> {
    if crate::settings::no_monitor() {
        return None;
    }
    let path = socket_path(root);
    // No socket, or one whose monitor is gone (refused): no monitor.
    let conn = UnixStream::connect(&path).ok()?;
    match request(&conn, orch, json, crate::monitor::written_pid(root)) {
        Ok(Reply::Answer(a)) => {
            tracing::info!("answered by the project's monitor (pid {})", a.monitor);
            Some(a)
        }
        Ok(Reply::Refused(why)) => {
            tracing::info!("the project's monitor did not answer ({why}); looking here");
            None
        }
        Err(e) => {
            tracing::info!("no answer from the project's monitor ({e}); looking here");
            None
        }
    }
}

/// Waits until the monitor's answer starts to arrive on `input`: at most [`ANSWER_WITHIN`],
/// and at most [`IDLE_WITHIN`] at a time in which monitor `pid` uses no CPU.
fn await_answer(input: &mut BufReader<&UnixStream>, conn: &UnixStream, pid: Option<u32>) -> std::io::Result<()> {
    let due = std::time::Instant::now() + ANSWER_WITHIN;
    let cpu_ticks = hydra_orchestrator::adapters::PosixHost::cpu_ticks;
    let mut used = pid.and_then(cpu_ticks);
    loop {
        let left = due.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("none within {} s", ANSWER_WITHIN.as_secs()),
            ));
        }
        let wait = if used.is_some() { left.min(IDLE_WITHIN) } else { left };
        conn.set_read_timeout(Some(wait))?;
        match input.fill_buf() {
            Ok(_) => return Ok(()),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                let now = pid.and_then(cpu_ticks);
                if used.is_some() && now == used {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("it did no work for {} s: stopped or stuck", IDLE_WITHIN.as_secs()),
                    ));
                }
                used = now;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn request(
    conn: &UnixStream,
    orch: &Orchestrator,
    json: Option<Selection>,
    pid: Option<u32>,
) -> std::io::Result<Reply> {
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let req = Request {
        protocol: PROTOCOL,
        hydra: build().to_owned(),
        server: orch.server().to_string(),
        json,
    };
    let mut line = serde_json::to_vec(&req)?;
    line.push(b'\n');
    let mut w: &UnixStream = conn;
    w.write_all(&line)?;
    let mut input = BufReader::with_capacity(64 * 1024, conn);
    await_answer(&mut input, conn, pid)?;
    // It has begun: the rest follows.
    conn.set_read_timeout(Some(ANSWER_WITHIN))?;
    let mut text = String::new();
    input.read_line(&mut text)?;
    let mut reply: Reply = serde_json::from_str(&text)?;
    if let Reply::Answer(a) = &mut reply {
        if let Some(len) = a.json_len {
            let mut bytes = vec![0; len];
            input.read_exact(&mut bytes)?;
            a.json = Some(bytes);
        }
    }
    Ok(reply)
}
