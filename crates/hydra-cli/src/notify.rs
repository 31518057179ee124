//! Notifications of the transitions a user chose: a command of theirs (an argv, never a shell
//! string; the event as JSON on its stdin and in `HYDRA_*` variables; ended after a timeout),
//! a desktop notification, a message in their tmux status line, a terminal bell. A session's
//! first transition is told at once; more transitions of it within the coalescing window are
//! told as one, the latest, when the window ends. Failures are logged, never fatal.

use crate::settings::Notify;
use hydra_orchestrator::{Change, SessionStatus, Timestamp};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where notifications go, and what the thread that sends them needs.
pub struct Notifier {
    tx: mpsc::Sender<Change>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The event a notification carries, as its command receives it.
pub fn event_json(change: &Change, project: &std::path::Path, at: Timestamp) -> serde_json::Value {
    let s = &change.status;
    serde_json::json!({
        "event": format!("session:{}", s.state_word()),
        "session": s.id.as_str(),
        "name": s.name,
        "state": s.state_word(),
        "from": change.from,
        "reason": s.state.reason(),
        "detail": s.state.to_string(),
        "iteration": s.iteration,
        "stories": s.stories,
        "project": project,
        "at": at.to_rfc3339(),
    })
}

/// The one line a person reads: `hydra: api-refactor blocked: needs the staging key`.
pub fn headline(s: &SessionStatus) -> String {
    let who = s.name.clone().unwrap_or_else(|| s.id.to_string());
    match s.state.reason() {
        Some(r) => format!("hydra: {who} {}: {r}", s.state_word()),
        None => format!("hydra: {who} {}", s.state),
    }
}

/// tmux expands `#` formats in a message, and `#(...)` runs a shell command: every `#` of the
/// text is doubled, so the text is shown as it is and never run.
pub fn tmux_literal(text: &str) -> String {
    text.replace('#', "##")
}

impl Notifier {
    /// A notifier for `settings` in the project at `project`.
    pub fn start(settings: Notify, project: PathBuf) -> Notifier {
        let (tx, rx) = mpsc::channel::<Change>();
        let thread = std::thread::Builder::new()
            .name("hydra-notify".into())
            .spawn(move || run(&settings, &project, &rx))
            .ok();
        Notifier { tx, thread }
    }

    /// Tells `change` if its state is one the user chose.
    pub fn tell(&self, change: &Change) {
        let _ = self.tx.send(change.clone());
    }

    /// Sends what is still waiting for its window and stops.
    pub fn finish(mut self) {
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(settings: &Notify, project: &std::path::Path, rx: &mpsc::Receiver<Change>) {
    let mut last: BTreeMap<String, Instant> = BTreeMap::new();
    let mut pending: BTreeMap<String, (Change, Instant)> = BTreeMap::new();
    let window = settings.coalesce.value;
    loop {
        let due = pending.values().map(|(_, t)| *t).min();
        let got = match due {
            Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(change) => {
                if !settings.on.value.iter().any(|s| s == change.status.state_word()) {
                    continue;
                }
                let key = change.status.id.to_string();
                let now = Instant::now();
                match last.get(&key) {
                    Some(t) if now.duration_since(*t) < window => {
                        pending.insert(key, (change, *t + window));
                    }
                    _ => {
                        last.insert(key.clone(), now);
                        pending.remove(&key);
                        send(settings, project, &change);
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                for (_, (change, _)) in std::mem::take(&mut pending) {
                    send(settings, project, &change);
                }
                return;
            }
        }
        let now = Instant::now();
        let ready: Vec<String> = pending
            .iter()
            .filter(|(_, (_, t))| *t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ready {
            if let Some((change, _)) = pending.remove(&key) {
                last.insert(key, now);
                send(settings, project, &change);
            }
        }
    }
}

fn send(settings: &Notify, project: &std::path::Path, change: &Change) {
    let line = headline(&change.status);
    if let Some(argv) = &settings.command.value {
        run_command(argv, settings.timeout.value, change, project);
    }
    if settings.desktop.value {
        desktop(&line, &change.status);
    }
    if settings.tmux.value {
        // The user's own tmux (their default server), if they are in one.
        let shown = Command::new("tmux")
            .args(["display-message", "-d", "5000", &tmux_literal(&line)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = shown {
            tracing::debug!("no tmux status message: {e}");
        }
    }
    if settings.bell.value {
        let mut err = std::io::stderr();
        let _ = err.write_all(b"\x07");
        let _ = err.flush();
    }
}

/// Starts the user's command with the event; a thread waits for it and ends it at the timeout.
fn run_command(argv: &[String], timeout: Duration, change: &Change, project: &std::path::Path) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let s = &change.status;
    let json = event_json(change, project, crate::now()).to_string();
    let child = Command::new(program)
        .args(args)
        .env("HYDRA_EVENT", format!("session:{}", s.state_word()))
        .env("HYDRA_SESSION", s.id.as_str())
        .env("HYDRA_STATE", s.state_word())
        .env("HYDRA_REASON", s.state.reason().unwrap_or(""))
        .env("HYDRA_NAME", s.name.as_deref().unwrap_or(""))
        .env("HYDRA_PROJECT", project)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("notification command {program:?} did not start: {e}");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // One line: a command that appends its input to a file makes JSON lines.
        let _ = stdin.write_all(format!("{json}\n").as_bytes());
    }
    let program = program.clone();
    let _ = std::thread::Builder::new()
        .name("hydra-notify-cmd".into())
        .spawn(move || {
            let deadline = Instant::now() + timeout;
            loop {
                match child.try_wait() {
                    Ok(Some(status)) if status.success() => return,
                    Ok(Some(status)) => {
                        let mut err = String::new();
                        if let Some(mut e) = child.stderr.take() {
                            let _ = std::io::Read::read_to_string(&mut e, &mut err);
                        }
                        tracing::warn!("notification command {program:?} failed ({status}): {}", err.trim());
                        return;
                    }
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        tracing::warn!("notification command {program:?} ran past {timeout:?} and was ended");
                        return;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => {
                        tracing::warn!("notification command {program:?}: {e}");
                        return;
                    }
                }
            }
        });
}

#[cfg(feature = "desktop-notify")]
fn desktop(line: &str, s: &SessionStatus) {
    let shown = notify_rust::Notification::new()
        .summary(line)
        .body(&s.state.to_string())
        .appname("hydra")
        .show();
    if let Err(e) = shown {
        tracing::debug!("no desktop notification: {e}");
    }
}

#[cfg(not(feature = "desktop-notify"))]
fn desktop(_line: &str, _s: &SessionStatus) {
    tracing::debug!("desktop notifications are not built in (feature desktop-notify)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmux_never_expands_or_runs_what_is_in_a_message() {
        assert_eq!(
            tmux_literal("#(touch pwned) #{pane_pid} ##"),
            "##(touch pwned) ##{pane_pid} ####"
        );
    }
}
