//! `hydra top`: the live dashboard. The render loop only draws and reads keys; everything
//! that touches tmux, git or the disk runs in a thread of its own and reports back over one
//! channel: the library's watcher (each look, each transition), a worker that runs the
//! actions through the same library calls as the CLI, a reader of the selected session's
//! output, and the key reader. With nothing happening, the loop wakes once a second to age
//! the "12s ago" column.

pub mod app;
pub mod fixtures;
pub mod view;

use crate::context::Ctx;
use anyhow::{bail, Context, Result};
use app::{App, Job, NewSession};
use hydra_orchestrator::{Change, PauseMode, SessionId, SessionStatus, WatchEvent, WatchOptions, WatchStopper};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::Terminal;
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// What the threads tell the render loop.
enum Msg {
    Key(ratatui::crossterm::event::KeyEvent),
    Resize,
    Sessions(Vec<SessionStatus>),
    Change(Box<Change>),
    Done(Result<String, String>),
    Log(SessionId, String),
    Preview(SessionId, String),
}

/// How much of a log the preview and the log view read, from its end.
const PREVIEW_BYTES: u64 = 16 * 1024;
const LOG_VIEW_BYTES: u64 = 4 * 1024 * 1024;

/// The last `max` bytes of `path` as text (`None` when it cannot be read).
fn tail(path: &Path, max: u64) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let start = len.saturating_sub(max);
    f.seek(SeekFrom::Start(start)).ok()?;
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    // From the first whole line when the read began mid-file.
    Some(match (start > 0, text.find('\n')) {
        (true, Some(i)) => text[i + 1..].to_owned(),
        _ => text,
    })
}

/// The terminal in raw mode on the alternate screen; restored when dropped, and by a panic.
struct Screen {
    terminal: Terminal<CrosstermBackend<std::io::Stdout>>,
}

impl Screen {
    fn enter() -> Result<Screen> {
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let mut out = std::io::stdout();
        execute!(out, EnterAlternateScreen).context("cannot open the alternate screen")?;
        let mut terminal = Terminal::new(CrosstermBackend::new(out)).context("cannot use the terminal")?;
        terminal.hide_cursor().ok();
        terminal.clear().ok();
        Ok(Screen { terminal })
    }

    fn leave() {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            LeaveAlternateScreen,
            ratatui::crossterm::cursor::Show
        );
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        Screen::leave();
    }
}

/// `hydra top`.
pub(crate) fn run(ctx: &Ctx) -> Result<i32> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("hydra top needs a terminal; `hydra ls --watch` or `hydra monitor` work without one");
    }
    let (tx, rx) = mpsc::channel::<Msg>();
    // A dashboard looks at least every 5 s, so "active" and the clock rules stay fresh on
    // screen (one tmux call per look).
    let mut watcher = ctx.orch.watch(WatchOptions {
        tick: ctx.settings.monitor_tick().value.min(Duration::from_secs(5)),
        ..WatchOptions::default()
    })?;
    let watch: WatchStopper = watcher.stopper();
    let quit = Arc::new(AtomicBool::new(false));
    let keys = Arc::new(KeyGate::default());
    let selected: Arc<Mutex<Option<SessionId>>> = Arc::default();
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (sel_tx, sel_rx) = mpsc::channel::<()>();

    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        Screen::leave();
        hook(info);
    }));

    std::thread::scope(|scope| -> Result<i32> {
        // The watcher: every look and every transition.
        let t = tx.clone();
        scope.spawn(move || {
            while let Some(ev) = watcher.recv() {
                let msg = match ev {
                    WatchEvent::Looked { statuses } => Msg::Sessions(statuses),
                    WatchEvent::Change(c) => Msg::Change(c),
                    WatchEvent::Error(e) => Msg::Done(Err(e)),
                    _ => continue,
                };
                if t.send(msg).is_err() {
                    break;
                }
            }
        });
        // Keys, paused while another program (tmux attach) has the terminal.
        let (t, q, gate) = (tx.clone(), Arc::clone(&quit), Arc::clone(&keys));
        scope.spawn(move || {
            while !q.load(Ordering::SeqCst) {
                gate.pass();
                if !event::poll(Duration::from_millis(200)).unwrap_or(false) {
                    continue;
                }
                let msg = match event::read() {
                    Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
                    Ok(Event::Resize(..)) => Msg::Resize,
                    _ => continue,
                };
                if t.send(msg).is_err() {
                    break;
                }
            }
        });
        // The selected session's output, read when its log grows.
        let (t, q, sel) = (tx.clone(), Arc::clone(&quit), Arc::clone(&selected));
        let orch = Arc::clone(&ctx.orch);
        scope.spawn(move || {
            let mut last: Option<(SessionId, u64)> = None;
            while !q.load(Ordering::SeqCst) {
                let id = sel.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some(id) = id {
                    let path = orch.runtime_layout(&id).log();
                    let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    let now = Some((id.clone(), len));
                    if now != last {
                        last = now;
                        let text = tail(&path, PREVIEW_BYTES).unwrap_or_default();
                        if t.send(Msg::Preview(id, text)).is_err() {
                            break;
                        }
                    }
                }
                // A new selection wakes it at once; a growing log is seen within 200 ms.
                let _ = sel_rx.recv_timeout(Duration::from_millis(200));
            }
        });
        // The worker: every action, through the library.
        let (t, w) = (tx.clone(), watch.clone());
        scope.spawn(move || {
            for job in job_rx {
                let msg = work(ctx, job);
                if t.send(msg).is_err() {
                    break;
                }
                w.poke();
            }
        });
        drop(tx);

        let outcome = render_loop(ctx, &rx, &job_tx, &sel_tx, &selected, &keys);
        quit.store(true, Ordering::SeqCst);
        watch.stop();
        drop(job_tx);
        drop(sel_tx);
        // The threads end once the channel is gone.
        drop(rx);
        outcome
    })
}

fn render_loop(
    ctx: &Ctx,
    rx: &mpsc::Receiver<Msg>,
    jobs: &mpsc::Sender<Job>,
    sel_tx: &mpsc::Sender<()>,
    selected: &Mutex<Option<SessionId>>,
    keys: &KeyGate,
) -> Result<i32> {
    let mut screen = Screen::enter()?;
    let mut app = App::new(ctx.root.display().to_string(), crate::now(), ctx.color);
    let mut last_tick = Instant::now();
    loop {
        app.now = crate::now();
        let size = screen.terminal.size().context("cannot read the terminal size")?;
        app.page = view::page(ratatui::layout::Rect::new(0, 0, size.width, size.height));
        app.keep_visible();
        screen.terminal.draw(|f| view::draw(f, &app)).context("cannot draw")?;
        // Tell the output reader which session is selected.
        {
            let mut s = selected.lock().unwrap_or_else(|e| e.into_inner());
            if *s != app.selected {
                s.clone_from(&app.selected);
                let _ = sel_tx.send(());
            }
        }
        let wait = Duration::from_secs(1).saturating_sub(last_tick.elapsed());
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                last_tick = Instant::now();
                None
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
        };
        // Everything that is already waiting, then one frame.
        let mut pending: Vec<Msg> = first.into_iter().collect();
        pending.extend(rx.try_iter());
        for msg in pending {
            match msg {
                Msg::Key(k) => match app.key(k) {
                    Some(Job::Quit) => return Ok(0),
                    Some(Job::Attach(id)) => {
                        attach(ctx, &mut screen, &mut app, &id, keys);
                    }
                    Some(job) => {
                        let _ = jobs.send(job);
                    }
                    None => {}
                },
                Msg::Resize => {
                    screen.terminal.autoresize().ok();
                }
                Msg::Sessions(s) => app.set_sessions(s),
                Msg::Change(c) => app.changed(&c),
                Msg::Done(outcome) => app.done(outcome),
                Msg::Log(id, text) => app.show_log(id, &text),
                Msg::Preview(id, text) => app.preview = Some((id, text)),
            }
        }
    }
}

/// Where the key reader stops while another program (tmux attach) has the terminal: closing
/// the gate returns once the reader has finished its current wait for a key and stopped, so
/// no key meant for that program is read here.
#[derive(Default)]
struct KeyGate {
    state: Mutex<Gate>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct Gate {
    closed: bool,
    reader_stopped: bool,
}

impl KeyGate {
    /// The reader's side: waits here while the gate is closed.
    fn pass(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while g.closed {
            g.reader_stopped = true;
            self.changed.notify_all();
            g = self.changed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        g.reader_stopped = false;
    }

    /// Stops the reader (within its 200 ms wait for a key; at most 1 s, should it hang).
    fn close(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.closed = true;
        let deadline = Instant::now() + Duration::from_secs(1);
        while !g.reader_stopped && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            g = self.changed.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Lets the reader go on.
    fn open(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = false;
        self.changed.notify_all();
    }
}

/// Gives the terminal to `tmux attach` until it detaches (inside tmux, a switch returns at
/// once), then takes it back.
fn attach(ctx: &Ctx, screen: &mut Screen, app: &mut App, id: &SessionId, keys: &KeyGate) {
    if app.selected_status().is_some_and(|s| s.state.is_terminal()) {
        app.done(Err(format!("{id} has ended; there is nothing to attach to")));
        return;
    }
    // The key reader stops reading before tmux reads the terminal.
    keys.close();
    Screen::leave();
    let outcome = ctx.orch.attach(id);
    let _ = terminal::enable_raw_mode();
    let _ = execute!(std::io::stdout(), EnterAlternateScreen);
    let _ = screen.terminal.hide_cursor();
    let _ = screen.terminal.clear();
    keys.open();
    match outcome {
        Ok(()) => app.done(Ok(format!("back from {id}"))),
        Err(e) => app.done(Err(format!("cannot attach to {id}: {e}"))),
    }
}

/// Runs `job` through the library; what to tell the user.
fn work(ctx: &Ctx, job: Job) -> Msg {
    let orch = &ctx.orch;
    let said = |r: hydra_orchestrator::Result<String>| Msg::Done(r.map_err(|e| e.to_string()));
    match job {
        Job::Pause(id, PauseMode::Freeze) => said(
            orch.pause_with(&id, PauseMode::Freeze)
                .map(|()| format!("{id} frozen (r resumes it)")),
        ),
        Job::Pause(id, mode) => said(
            orch.pause_with(&id, mode)
                .map(|()| format!("{id} pausing: the loop stops before its next iteration")),
        ),
        Job::Resume(id) => said(orch.resume(&id).map(|()| format!("{id} resumed"))),
        Job::Inject(id, text) => said(
            orch.inject(&id, &text)
                .map(|()| format!("message queued for {id}'s next prompt")),
        ),
        Job::Kill(id, reason) => said(orch.kill(&id, &reason).map(|r| match r.worktree_kept {
            Some((path, why)) => format!(
                "{id} killed ({reason}); its worktree {} is kept: {}",
                path.display(),
                why.join("; ")
            ),
            None => format!("{id} killed ({reason})"),
        })),
        Job::ReadLog(id) => {
            let path = orch.runtime_layout(&id).log();
            match tail(&path, LOG_VIEW_BYTES) {
                Some(text) if !text.is_empty() => Msg::Log(id, text),
                _ => Msg::Done(Err(format!("{id} has printed nothing yet"))),
            }
        }
        Job::Spawn(form) => match spawn(ctx, form) {
            Ok(id) => Msg::Done(Ok(format!("started {id}"))),
            Err(e) => Msg::Done(Err(e)),
        },
        Job::Quit | Job::Attach(_) => Msg::Done(Ok(String::new())),
    }
}

/// Starts the session of the form with `hydra spawn`'s defaults and checks.
fn spawn(ctx: &Ctx, form: NewSession) -> std::result::Result<SessionId, String> {
    let text = |s: String| {
        let t = s.trim().to_owned();
        (!t.is_empty()).then_some(t)
    };
    let max_iterations = match text(form.max_iterations) {
        Some(t) => Some(crate::parse_iterations(&t).map_err(|e| format!("max iterations: {e}"))?),
        None => None,
    };
    let req = crate::SpawnRequest {
        agent: text(form.agent),
        prd: text(form.prd).map(Into::into),
        max_iterations,
        worktree: form.worktree,
        branch: text(form.branch),
        ..crate::SpawnRequest::default()
    };
    let config = crate::session_config(ctx, req).map_err(|e| format!("{e:#}"))?;
    ctx.orch.spawn(config).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn closing_the_key_gate_returns_once_the_reader_has_stopped() {
        let gate = Arc::new(KeyGate::default());
        let passes = Arc::new(AtomicUsize::new(0));
        let quit = Arc::new(AtomicBool::new(false));
        let reader = {
            let (gate, passes, quit) = (Arc::clone(&gate), Arc::clone(&passes), Arc::clone(&quit));
            std::thread::spawn(move || {
                while !quit.load(Ordering::SeqCst) {
                    gate.pass();
                    passes.fetch_add(1, Ordering::SeqCst);
                    std::thread::yield_now();
                }
            })
        };
        gate.close();
        assert!(
            gate.state.lock().expect("gate").reader_stopped,
            "close returned before the reader stopped"
        );
        let held = passes.load(Ordering::SeqCst);
        assert_eq!(passes.load(Ordering::SeqCst), held, "a stopped reader does not go on");
        gate.open();
        let deadline = Instant::now() + Duration::from_secs(5);
        while passes.load(Ordering::SeqCst) == held {
            assert!(Instant::now() < deadline, "the reader did not go on once opened");
            std::thread::yield_now();
        }
        quit.store(true, Ordering::SeqCst);
        reader.join().expect("reader");
    }
}
