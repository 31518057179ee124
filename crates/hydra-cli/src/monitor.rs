//! `hydra monitor`: the watcher in the foreground (or, with `--detach`, in the background), one
//! line per transition, notifications, and `ralph:*` pulses fed back. One monitor per project
//! (a lock file); it remembers what it told (a cursor file), so a restarted monitor misses
//! nothing and repeats nothing; it exits by itself when no live session is left.

use crate::context::Ctx;
use crate::notify::Notifier;
use anyhow::{bail, Context, Result};
use hydra_orchestrator::{Change, Orchestrator, WatchEvent, WatchOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The files of the project's monitor.
pub struct Files {
    pub lock: PathBuf,
    pub pid: PathBuf,
    pub log: PathBuf,
    pub cursor: PathBuf,
    /// Where it answers `hydra ls` (see `served`).
    pub socket: PathBuf,
    /// The running monitor's hydra build (`served::build`), and `background` when `--detach`
    /// or a spawn started it.
    pub build: PathBuf,
}

impl Files {
    pub fn of(root: &Path) -> Files {
        let dir = root.join(".hydra").join("orchestrator");
        Files {
            lock: dir.join("monitor.lock"),
            pid: dir.join("monitor.pid"),
            log: dir.join("monitor.log"),
            cursor: dir.join("monitor.seen"),
            socket: crate::served::socket_path(root),
            build: dir.join("monitor.build"),
        }
    }
}

/// The pid of the project's running monitor, if one holds the lock.
pub fn running(root: &Path) -> Option<u32> {
    let files = Files::of(root);
    let dir = files.lock.parent()?;
    if !dir.is_dir() {
        return None;
    }
    match orch_fs::try_lock_exclusive(&files.lock) {
        Ok(Some(_free)) => None,
        // Held by another process: the monitor.
        Ok(None) => written_pid(root).or(Some(0)),
        Err(_) => None,
    }
}

/// The pid the project's monitor wrote (it may have ended since: [`running`] asks the lock).
pub fn written_pid(root: &Path) -> Option<u32> {
    std::fs::read_to_string(Files::of(root).pid).ok()?.trim().parse().ok()
}

/// The monitor's lock, or `None` when another monitor holds it. [`running`] takes the lock for
/// an instant to see whether it is free, so a monitor starting while another command asks (two
/// spawns at once, each starting the monitor) tries again for 100 ms before it gives up: a
/// monitor that holds it does so for as long as it runs.
fn take_lock(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    take_lock_trying(path, 10)
}

/// [`take_lock`] with `retries` more tries, 10 ms apart.
fn take_lock_trying(path: &Path, retries: u32) -> std::io::Result<Option<std::fs::File>> {
    for _ in 0..retries {
        if let Some(lock) = orch_fs::try_lock_exclusive(path)? {
            return Ok(Some(lock));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    orch_fs::try_lock_exclusive(path)
}

/// One line of the monitor: `2026-11-26T10:00:00.000Z  a1b2c3d4 api  running -> blocked  ...`.
pub fn line(change: &Change, at: hydra_orchestrator::Timestamp, color: bool) -> String {
    let s = &change.status;
    let who = match &s.name {
        Some(n) => format!("{} {n}", s.id),
        None => s.id.to_string(),
    };
    let word = crate::output::painted(s.state_word(), &s.state, color);
    let from = change.from.as_deref().map(|f| format!("{f} -> ")).unwrap_or_default();
    let mut out = format!("{}  {who}  {from}{word}", at.to_rfc3339());
    if let Some(reason) = s.state.reason() {
        out.push_str(&format!("  {reason}"));
    } else if !matches!(s.state, hydra_orchestrator::SessionState::Starting) {
        out.push_str(&format!("  iteration {}", s.iteration));
        if let Some(st) = &s.stories {
            out.push_str(&format!(", {st} stories"));
        }
    }
    out
}

/// One NDJSON line of `monitor --json`.
pub fn json_line(change: &Change, at: hydra_orchestrator::Timestamp) -> String {
    let mut v = change.status.to_json();
    v["at"] = at.to_rfc3339().into();
    v["from"] = change.from.clone().into();
    v.to_string()
}

/// `hydra monitor --once`: one look, every session's state, then exit.
pub fn once(ctx: &Ctx) -> Result<i32> {
    let statuses = ctx.orch.try_list()?;
    let at = crate::now();
    for s in statuses {
        let change = hydra_orchestrator::Change::first_seen(s);
        if ctx.g.json {
            println!("{}", json_line(&change, at));
        } else {
            println!("{}", line(&change, at, ctx.color));
        }
    }
    ctx.finish();
    Ok(0)
}

/// `hydra monitor --stop`.
pub fn stop(root: &Path) -> Result<i32> {
    match end(root)? {
        Some(pid) => println!("monitor stopped (pid {pid})"),
        None => println!("no monitor is running for this project"),
    }
    Ok(0)
}

/// Ends the project's running monitor (it ends after the look it is in) and waits until it
/// has; its pid, or `None` when none ran.
///
/// Errors: its pid is unknown, it cannot be signalled, or it has not ended within 10 s.
fn end(root: &Path) -> Result<Option<u32>> {
    let Some(pid) = running(root) else {
        return Ok(None);
    };
    if pid == 0 {
        bail!("a monitor holds the lock but its pid file is missing; end it yourself");
    }
    // The monitor leads its own process group (its tmux waiter is in it too).
    let group = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .context("bad pid in the monitor's pid file")?;
    rustix::process::kill_process_group(group, rustix::process::Signal::TERM)
        .or_else(|_| rustix::process::kill_process(group, rustix::process::Signal::TERM))
        .with_context(|| format!("cannot end the monitor (pid {pid})"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(root).is_some() {
        if Instant::now() >= deadline {
            bail!("the monitor (pid {pid}) did not end within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Some(pid))
}

/// `hydra monitor --detach`: starts the monitor in the background of this project.
pub fn detach(ctx: &Ctx) -> Result<i32> {
    if let Some(pid) = running(&ctx.root) {
        println!("a monitor is already running for this project (pid {pid})");
        return Ok(0);
    }
    let pid = start_background(&ctx.root, ctx.g.tmux_socket.as_deref())?;
    let files = Files::of(&ctx.root);
    println!(
        "monitor started in the background (pid {pid}); log {}; `hydra monitor --stop` ends it",
        files.log.display()
    );
    Ok(0)
}

/// After a spawn (`[monitor] auto`, on by default): starts the project's monitor in the
/// background unless one runs, so that the sessions' duration and stuck rules are kept and
/// their transitions told while nobody runs a command, and so that `hydra ls` is answered by it.
/// Says on stderr what it did; a monitor that another command started meanwhile is not an
/// error.
///
/// A background monitor of another hydra build (one started before hydra was rebuilt or
/// upgraded) is replaced: it would not answer this build's `ls`, and a record of a newer form
/// is beyond it. A monitor someone runs in the foreground is left alone.
pub fn start_for_spawn(root: &Path, socket: Option<&str>) {
    let replaced = match running(root) {
        None => None,
        Some(_) if !background_of_another_build(root) => return,
        Some(pid) => {
            match end(root) {
                Ok(_) => Some(pid),
                Err(e) => {
                    eprintln!("hydra: the project's monitor (pid {pid}) is of another hydra build and was not replaced: {e:#}");
                    return;
                }
            }
        }
    };
    match start_background(root, socket) {
        Ok(pid) => match replaced {
            Some(old) => eprintln!(
                "hydra: the project's monitor (pid {old}) was of another hydra build; monitor {pid} replaces it"
            ),
            None => eprintln!(
                "hydra: monitor started in the background (pid {pid}): it keeps the sessions' limits and \
                 tells their transitions; it ends with the last live session (`[monitor] auto = false` \
                 turns this off)"
            ),
        },
        // Two spawns at once: the other one's monitor holds the lock.
        Err(_) if running(root).is_some() => {}
        Err(e) => eprintln!("hydra: no monitor watches these sessions: {e:#}"),
    }
}

/// Whether the running monitor was started in the background by another hydra build. One that
/// wrote no `monitor.build` (a build older than the file) is not: where it runs is unknown, and
/// a monitor someone watches in the foreground is not ended behind their back.
fn background_of_another_build(root: &Path) -> bool {
    match std::fs::read_to_string(Files::of(root).build) {
        Ok(text) => {
            let mut lines = text.lines();
            let build = lines.next().unwrap_or_default();
            lines.next() == Some("background") && build != crate::served::build()
        }
        Err(_) => false,
    }
}

/// Starts `hydra monitor` for `root` as a background process of its own process group, its
/// output appended to the monitor log; returns its pid once it holds the lock.
///
/// Errors: it cannot be started, or it ends before it holds the lock (its log says why).
pub fn start_background(root: &Path, socket: Option<&str>) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let files = Files::of(root);
    if let Some(dir) = files.log.parent() {
        orch_fs::mkdir_private_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&files.log)
        .with_context(|| format!("cannot open {}", files.log.display()))?;
    // Where this start's own lines begin (the log is appended to).
    let start_of_ours = log.metadata().map_or(0, |m| m.len());
    let exe = std::env::current_exe().context("cannot find the hydra executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("monitor").arg("--background").arg("--project").arg(root);
    if let Some(s) = socket {
        cmd.args(["--tmux-socket", s]);
    }
    let mut child = cmd
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the monitor")?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Up once it holds the lock and has written its pid (what `--stop` reads).
        let written = std::fs::read_to_string(&files.pid).is_ok_and(|t| t.trim() == pid.to_string());
        if written && running(root) == Some(pid) {
            return Ok(pid);
        }
        if let Some(status) = child.try_wait()? {
            let why = last_line_from(&files.log, start_of_ours)
                .map(|l| {
                    let l = l.strip_prefix("hydra: ").unwrap_or(&l);
                    format!(": {}", l.strip_prefix("error: ").unwrap_or(l))
                })
                .unwrap_or_default();
            bail!("the monitor ended at once ({status}){why}; see {}", files.log.display());
        }
        if Instant::now() >= deadline {
            bail!("the monitor did not start within 10 s; see {}", files.log.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The last line that is not blank of `path` from byte `from` on, if any (only that part is
/// read: the log is appended to by every monitor the project has had).
fn last_line_from(path: &Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(std::io::SeekFrom::Start(from)).ok()?;
    let mut ours = Vec::new();
    file.read_to_end(&mut ours).ok()?;
    String::from_utf8_lossy(&ours)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

/// Feeds `ralph:*` pulses from hydra-mail into session states (when the project has a daemon).
fn follow_pulses(orch: Arc<Orchestrator>) {
    let _ = std::thread::Builder::new().name("hydra-pulses".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async move {
            let channels = [
                "ralph:started",
                "ralph:iteration",
                "ralph:complete",
                "ralph:blocked",
                "ralph:max-iterations",
            ];
            let Ok(mut sub) = orch.subscribe(&channels) else {
                return;
            };
            while let Some(p) = sub.next().await {
                let o = Arc::clone(&orch);
                let _ = tokio::task::spawn_blocking(move || o.apply_pulse(&p)).await;
            }
        });
    });
}

/// `hydra monitor`: runs until no live session is left (or it is stopped).
pub fn run(ctx: &Ctx, background: bool) -> Result<i32> {
    let files = Files::of(&ctx.root);
    if let Some(dir) = files.lock.parent() {
        orch_fs::mkdir_private_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let Some(_lock) = take_lock(&files.lock).with_context(|| format!("cannot open {}", files.lock.display()))? else {
        let pid = running(&ctx.root).unwrap_or(0);
        bail!("a monitor is already running for this project (pid {pid}); `hydra monitor --stop` ends it");
    };
    let notify = ctx.settings.notify();
    let commands: Vec<String> = ctx
        .settings
        .config
        .commands()
        .into_iter()
        .filter(|c| c.starts_with("[notify]"))
        .collect();
    ctx.settings
        .require_trust("notifications", &commands, ctx.config_trusted())?;
    orch_fs::write_atomic(&files.pid, format!("{}\n", std::process::id()).as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", files.pid.display()))?;
    let how = if background { "background" } else { "foreground" };
    orch_fs::write_atomic(
        &files.build,
        format!("{}\n{how}\n", crate::served::build()).as_bytes(),
        0o600,
    )
    .with_context(|| format!("cannot write {}", files.build.display()))?;
    // The hydra-mail note, once.
    ctx.notices(true);
    let notifier = Notifier::start(notify, ctx.root.clone());
    follow_pulses(Arc::clone(&ctx.orch));
    // `hydra ls` asks this monitor to look; without the socket it looks itself.
    let serving = match crate::served::serve(Arc::clone(&ctx.orch), &files.socket) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "hydra: `hydra ls` cannot ask this monitor ({}: {e}); it looks itself",
                files.socket.display()
            );
            false
        }
    };
    let mut watcher = ctx.orch.watch(WatchOptions {
        tick: ctx.settings.monitor_tick().value,
        cursor: Some(files.cursor.clone()),
        ..WatchOptions::default()
    })?;
    // SIGTERM (`--stop`), Ctrl-C and a closed terminal end the monitor after the look it is
    // in: what it has seen is printed and told before it exits, never half.
    let stopper = watcher.stopper();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot handle signals")?;
    let signal_handle = signals.handle();
    let _ = std::thread::Builder::new().name("hydra-signals".into()).spawn(move || {
        if signals.forever().next().is_some() {
            stopper.stop();
        }
    });
    let mut out = std::io::stdout();
    let code = loop {
        let Some(event) = watcher.recv() else { break 0 };
        match event {
            WatchEvent::Change(change) => {
                let at = crate::now();
                let text = if ctx.g.json {
                    json_line(&change, at)
                } else {
                    line(&change, at, ctx.color)
                };
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
                notifier.tell(&change);
            }
            WatchEvent::Looked { statuses } => {
                if !statuses.iter().any(|s| !s.state.is_terminal()) {
                    if !ctx.g.json {
                        let _ = writeln!(
                            out,
                            "{}  no live session left; the monitor exits",
                            crate::now().to_rfc3339()
                        );
                    }
                    break 0;
                }
                for n in ctx.orch.take_notices() {
                    eprintln!("hydra: {n}");
                }
            }
            WatchEvent::Error(e) => eprintln!("hydra: {e}"),
            _ => {}
        }
    };
    signal_handle.close();
    watcher.stop();
    notifier.finish();
    let _ = ctx.orch.flush_events(Duration::from_secs(1));
    if serving {
        let _ = std::fs::remove_file(&files.socket);
    }
    let _ = std::fs::remove_file(&files.pid);
    let _ = std::fs::remove_file(&files.build);
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_taken_once_a_passing_probe_lets_go_and_never_from_a_monitor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("monitor.lock");
        // A probe (`running`) holding the lock for a moment; the tries outlast a slow machine's
        // scheduling of the thread that lets go (the production 100 ms need only outlast a
        // probe's instant).
        let probe = orch_fs::try_lock_exclusive(&path).expect("lock").expect("free");
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            drop(probe);
        });
        assert!(take_lock_trying(&path, 1000).expect("lock").is_some());
        letting_go.join().expect("the probe");
        // A monitor holds it for as long as it runs.
        let monitor = take_lock(&path).expect("lock");
        assert!(monitor.is_some());
        assert!(take_lock(&path).expect("lock").is_none());
    }
}
