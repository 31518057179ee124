//! [`Tmux`], the [`Multiplexer`] adapter, and its configuration.

use crate::command::{outcome, run, start, tmux_argv};
use crate::control::{ControlClient, ControlError};
use crate::parse::{parse_snapshot, SNAPSHOT_FORMAT, TAG_OPTION};
use crate::watch::{TmuxWatch, WAKE_COMMAND};
use orch_core::{
    AttachCommand, Multiplexer, MuxError, MuxServer, MuxSnapshot, MuxWatch, PaneInfo, PendingSnapshot, SpawnSpec,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How to reach and configure tmux.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmuxConfig {
    /// The tmux program (`tmux`, looked up on `PATH`).
    pub program: PathBuf,
    /// The server.
    pub server: MuxServer,
    /// Scrollback kept per pane, set on servers we own (named or path sockets). The user's
    /// default server keeps its own setting: it is a server-wide option and not ours to change.
    pub history_limit: u32,
    /// Whether the process runs inside a tmux client (`$TMUX` set): attach then switches the
    /// client instead of nesting one. The caller reads the environment, not this adapter.
    pub inside_tmux: bool,
    /// A project tag: snapshots then go through one persistent control-mode client (`tmux -C`)
    /// attached read-only to a live session carrying this tag, instead of a tmux process each
    /// (about half the server's cost). For long-lived processes (a monitor, a dashboard, an
    /// embedder); `None` (the default) keeps no client.
    pub control_tag: Option<String>,
    /// Whether the commands that only read (listings, `display-message -p`, `capture-pane`,
    /// `has-session`), and a new session on a server that runs, go through this crate's own
    /// client on the server's socket instead of a tmux process each (see the `native` module;
    /// a command it cannot carry still runs as a process). On by default;
    /// `HYDRA_TMUX_NATIVE=0` in the environment turns it off.
    pub native_client: bool,
}

impl Default for TmuxConfig {
    fn default() -> Self {
        TmuxConfig {
            program: PathBuf::from("tmux"),
            server: MuxServer::Default,
            history_limit: 2000,
            inside_tmux: false,
            control_tag: None,
            native_client: std::env::var_os("HYDRA_TMUX_NATIVE").is_none_or(|v| v != "0"),
        }
    }
}

impl TmuxConfig {
    /// A config for the private server `tmux -L name`.
    pub fn with_socket_name(name: &str) -> Self {
        TmuxConfig {
            server: MuxServer::Name(name.to_owned()),
            ..Self::default()
        }
    }

    /// A config for `server`.
    pub fn for_server(server: MuxServer) -> Self {
        TmuxConfig {
            server,
            ..Self::default()
        }
    }
}

/// The tmux adapter. Cheap to share; it holds no connection, unless its configuration asks for
/// a control-mode client ([`TmuxConfig::control_tag`]), which it ends when dropped.
#[derive(Debug, Default)]
pub struct Tmux {
    config: TmuxConfig,
    calls: AtomicU64,
    /// Commands run through the control-mode client.
    control_calls: AtomicU64,
    /// Commands answered through this crate's own client (see `TmuxConfig::native_client`).
    native_calls: AtomicU64,
    /// The control-mode client (with a `control_tag` only).
    control: std::sync::Mutex<Control>,
    /// The panes' processes the latest snapshot saw, which this adapter's watches wait on
    /// (`None` until a snapshot is taken).
    panes: crate::watch::SeenPanes,
    /// Dead panes' processes whose lost exit status this adapter already made the server
    /// look for (see `settled`): once each, so a pane tmux never gives a status for (a
    /// signal's end on tmux before 3.3, which has no `pane_dead_signal`) costs one try.
    nudged: std::sync::Mutex<std::collections::HashSet<u32>>,
}

/// The adapter's control-mode client, and when it may try to attach one.
#[derive(Debug, Default)]
struct Control {
    /// The client, once attached.
    client: Option<ControlClient>,
    /// No attach is tried before this time, after one was refused (a tmux before 3.2 refuses
    /// every attach with flags, and each try costs a tmux process).
    retry_after: Option<std::time::Instant>,
}

/// How long an adapter waits after a refused control-mode attach before it tries again.
const ATTACH_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads of a snapshot after the server was made to reap its children, at most.
const REAP_READS: usize = 5;

/// Largest chunk of text sent in one `send-keys` call: tmux refuses commands much larger.
const SEND_CHUNK: usize = 8 * 1024;

impl Tmux {
    /// An adapter for `config`.
    pub fn new(config: TmuxConfig) -> Self {
        Tmux {
            config,
            calls: AtomicU64::new(0),
            control_calls: AtomicU64::new(0),
            native_calls: AtomicU64::new(0),
            control: std::sync::Mutex::default(),
            panes: crate::watch::SeenPanes::default(),
            nudged: std::sync::Mutex::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &TmuxConfig {
        &self.config
    }

    /// How many tmux processes this adapter has run (for benchmarks and call-count tests).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many commands this adapter has run through its control-mode client.
    pub fn control_calls(&self) -> u64 {
        self.control_calls.load(Ordering::Relaxed)
    }

    /// How many of its commands this adapter has had answered through its own client on the
    /// server's socket instead of a tmux process (see [`TmuxConfig::native_client`]).
    pub fn native_calls(&self) -> u64 {
        self.native_calls.load(Ordering::Relaxed)
    }

    /// A session made through this crate's own client when a server runs (see the `native`
    /// module; the client sends this process's environment, as tmux's does, for
    /// `update-environment`). `None` when the server did not run the command (none runs, or
    /// it speaks another protocol): the tmux process then makes it, starting a server if
    /// needed. An answer the client does not understand is an error, not a second try: the
    /// session may exist, and the spawn's rollback ends it.
    fn create_natively(&self, args: &[&str]) -> Option<Result<std::process::Output, MuxError>> {
        let request = crate::native::Request::send(&self.config, args, true)?;
        let answer = request.finish();
        if answer == Err(crate::native::Unanswered::NotRun) {
            return None;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        Some(match answer {
            Ok(out) => {
                self.native_calls.fetch_add(1, Ordering::Relaxed);
                outcome(&self.config, "new-session", Ok(out))
            }
            Err(_) => Err(MuxError::Io {
                op: "new-session".to_owned(),
                source: std::io::Error::other("tmux's answer was not understood; the session may exist"),
            }),
        })
    }

    /// `request`'s answer as a process's outcome, counted; `None` when the answer was not
    /// one the client understands.
    fn answered(&self, op: &str, request: crate::native::Request) -> Option<Result<std::process::Output, MuxError>> {
        let out = request.finish().ok()?;
        self.native_calls.fetch_add(1, Ordering::Relaxed);
        Some(outcome(&self.config, op, Ok(out)))
    }

    /// Every pane of the server: through the control-mode client when one is attached, else
    /// through the adapter's own client or a tmux process. A client that is gone (its session ended) or does not answer is
    /// dropped; one that tmux answers with an error is kept, and a process asks instead.
    fn list_all(&self) -> Result<MuxSnapshot, MuxError> {
        if self.config.control_tag.is_some() {
            let mut control = crate::watch::lock(&self.control);
            if let Some(client) = control.client.as_mut() {
                match client.run(&control_snapshot_command()) {
                    Ok(text) => {
                        self.control_calls.fetch_add(1, Ordering::Relaxed);
                        return Ok(parse_snapshot(&text));
                    }
                    Err(ControlError::Refused) => {}
                    Err(ControlError::Lost) => control.client = None,
                }
            }
        }
        listing(self.query("list-panes", &LIST_ALL))
    }

    /// What a snapshot adds to the first listing of the panes: dead panes waiting for their
    /// status are read again (see `settled`), and the panes and the control client are kept.
    fn complete(&self, first: MuxSnapshot) -> Result<MuxSnapshot, MuxError> {
        let snapshot = self.settled(first, || self.list_all())?;
        self.panes.remember(&snapshot);
        self.keep_control(&snapshot);
        Ok(snapshot)
    }

    /// With a control tag and no client yet: attaches one to the session of the first live
    /// pane that `snapshot` shows carrying the tag (none there: the next snapshot tries
    /// again). After a refused attach, none is tried for [`ATTACH_RETRY`].
    fn keep_control(&self, snapshot: &MuxSnapshot) {
        let Some(tag) = &self.config.control_tag else { return };
        let mut control = crate::watch::lock(&self.control);
        let now = std::time::Instant::now();
        if control.client.is_some() || control.retry_after.is_some_and(|t| now < t) {
            return;
        }
        let Some(pane) = snapshot
            .sessions()
            .iter()
            .find(|p| !p.dead && p.tag.as_deref() == Some(tag.as_str()))
        else {
            return;
        };
        control.client = ControlClient::attach(&self.config, &pane.session);
        control.retry_after = control.client.is_none().then(|| now + ATTACH_RETRY);
    }

    /// `first`, or, when it shows a dead pane without the way its program ended, `list`'s
    /// answer after the server was made to reap its children.
    ///
    /// tmux before 3.6, when built with utempter (Debian's is), removes a dying pane's utmp
    /// entry through utempter's helper, which runs with `SIGCHLD` at its default action: the
    /// pane's own `SIGCHLD`, arriving then, is discarded. Its program stays an unreaped
    /// zombie, and the pane dead without a status, until some other child of the server ends
    /// (found in CI; about 1 fast-exiting pane in 50 on tmux 3.3a here). tmux 3.6
    /// signals itself after utempter for this reason (its issue 4559); this does the same from
    /// outside, once per pane, then reads again a few times while the server catches up.
    fn settled(
        &self,
        first: MuxSnapshot,
        list: impl Fn() -> Result<MuxSnapshot, MuxError>,
    ) -> Result<MuxSnapshot, MuxError> {
        let pending = |snap: &MuxSnapshot| -> Vec<u32> {
            snap.sessions()
                .iter()
                .filter(|p| p.dead && p.exit_status.is_none() && p.exit_signal.is_none())
                .filter_map(|p| p.pane_pid)
                .collect()
        };
        let untried: Vec<u32> = {
            let now = pending(&first);
            let mut tried = crate::watch::lock(&self.nudged);
            // Only panes still waiting are remembered, so a long-lived adapter keeps no more.
            tried.retain(|pid| now.contains(pid));
            now.into_iter().filter(|pid| tried.insert(*pid)).collect()
        };
        if untried.is_empty() {
            return Ok(first);
        }
        if let Some(server) = self
            .server_pid()
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            // Only makes the server call waitpid(); a server that is gone answers ESRCH.
            let _ = rustix::process::kill_process(server, rustix::process::Signal::CHILD);
        }
        let mut snap = first;
        for attempt in 0..REAP_READS {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            snap = list()?;
            if !pending(&snap).iter().any(|pid| untried.contains(pid)) {
                break;
            }
        }
        Ok(snap)
    }

    /// The pid of the running server (`None` when none runs or tmux does not say).
    pub fn server_pid(&self) -> Option<u32> {
        let out = self
            .query("display-message", &["display-message", "-p", "#{pid}"])
            .ok()?;
        let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        (pid > 1).then_some(pid)
    }

    fn run(&self, op: &str, args: &[&str]) -> Result<std::process::Output, MuxError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        run(&self.config, op, args)
    }

    /// [`run`](Self::run) for a command that changes nothing: through this crate's own
    /// client when it can (see the `native` module), else as a process; the same output and
    /// errors either way.
    fn query(&self, op: &str, args: &[&str]) -> Result<std::process::Output, MuxError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        crate::native::Request::send(&self.config, args, false)
            .and_then(|request| self.answered(op, request))
            .unwrap_or_else(|| run(&self.config, op, args))
    }

    /// Ends the whole server and every session on it, and removes its socket file (tmux leaves
    /// it behind, also when a server ends by itself after its last session). A server that is
    /// not running is `Ok`. The user's default server is never this adapter's to end: refused.
    ///
    /// Errors: `Invalid` for the default server, `Failed`.
    pub fn kill_server(&self) -> Result<(), MuxError> {
        if self.config.server == MuxServer::Default {
            return Err(MuxError::Invalid {
                op: "kill the tmux server",
                why: "the default server is the user's, not ours".into(),
            });
        }
        let socket = self.socket_path();
        // Its client would only notice the server's end at its next command.
        crate::watch::lock(&self.control).client = None;
        match self.run("kill-server", &["kill-server"]) {
            Ok(_) | Err(MuxError::NoServer { .. }) => {}
            Err(e) => return Err(e),
        }
        match socket {
            Some(path) => {
                let _ = std::fs::remove_file(path);
            }
            // No server answered: the file a server that ended by itself left, if nothing
            // listens on it.
            None => {
                // Where tmux's client looks for it (the adapter's own client looks there too).
                if let Some(path) = crate::native::socket_path(&self.config.server) {
                    let refused = std::os::unix::net::UnixStream::connect(&path)
                        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
                    if refused {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
        }
        Ok(())
    }

    /// The socket file of this adapter's server, as the running server reports it.
    pub fn socket_path(&self) -> Option<PathBuf> {
        let out = self
            .query("display-message", &["display-message", "-p", "#{socket_path}"])
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!text.is_empty()).then(|| PathBuf::from(text))
    }

    /// `has-session` for one session: the per-session probe the snapshot replaces. Kept for
    /// benchmarks that compare the two strategies.
    pub fn has_session(&self, name: &str) -> Result<bool, MuxError> {
        let target = format!("={name}");
        match self.query("has-session", &["has-session", "-t", &target]) {
            Ok(_) => Ok(true),
            Err(MuxError::NotFound { .. } | MuxError::NoServer { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The snapshot as a command line for the control-mode client: the format quoted for tmux's
/// parser (it holds no quote or newline; a test checks).
fn control_snapshot_command() -> String {
    format!("list-panes -a -F '{SNAPSHOT_FORMAT}'")
}

/// Splits `text` into chunks of at most `max` bytes on character boundaries.
fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

impl Multiplexer for Tmux {
    fn server(&self) -> MuxServer {
        self.config.server.clone()
    }

    fn create(&self, spec: &SpawnSpec) -> Result<(), MuxError> {
        if spec.argv.is_empty() {
            return Err(MuxError::Invalid {
                op: "create a tmux session",
                why: "no program to run".into(),
            });
        }
        // tmux expands formats in `-c` (`#S`, `#{...}`, and `#(...)`, which runs a command);
        // `##` is its literal `#`. Nothing else in this command line is expanded.
        let cwd = spec.cwd.to_string_lossy().replace('#', "##");
        let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let window = format!("={}:", spec.name);
        let history = self.config.history_limit.to_string();
        let mut args: Vec<&str> = Vec::new();
        let owns_server = self.config.server != MuxServer::Default;
        if owns_server {
            // Starts the server if needed and sets scrollback before the pane exists.
            args.extend(["start-server", ";", "set-option", "-g", "history-limit", &history, ";"]);
        }
        args.extend([
            "new-session",
            "-d",
            "-s",
            &spec.name,
            "-c",
            &cwd,
            "-x",
            "200",
            "-y",
            "50",
        ]);
        for e in &env {
            args.extend(["-e", e.as_str()]);
        }
        // tmux runs a single-word command through `sh -c`; more than one word is exec'd
        // directly. `env --` keeps a lone program out of the shell's hands.
        if spec.argv.len() == 1 {
            args.extend(["env", "--"]);
        }
        args.extend(spec.argv.iter().map(String::as_str));
        // In the same invocation, before the server loop can reap a fast-exiting program, so a
        // dead pane's exit status stays readable, and the tag is there for the first snapshot.
        args.extend([";", "set-option", "-w", "-t", &window, "remain-on-exit", "on"]);
        // A watcher learns at once that this pane died (see `watch`).
        args.extend([";", "set-hook", "-p", "-t", &window, "pane-died", WAKE_COMMAND]);
        if let Some(tag) = &spec.tag {
            args.extend([";", "set-option", "-t", &window, TAG_OPTION, tag.as_str()]);
        }
        // A server that is exiting (its last session just ended) can still accept our
        // connection and then vanish: the command then fails as "no server". Creating starts a
        // server, so that only means "try again" (found when resume restarted a blocked loop).
        let mut attempt = 0;
        loop {
            let ran = match self.create_natively(&args) {
                Some(ran) => ran,
                None => self.run("new-session", &args),
            };
            match ran {
                Err(MuxError::NoServer { .. }) if attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => return other.map(|_| ()),
            }
        }
    }

    fn snapshot(&self) -> Result<MuxSnapshot, MuxError> {
        self.complete(self.list_all()?)
    }

    /// A `list-panes` process, started at once and read at `finish`. Not with a control tag:
    /// the control client answers sooner than a process starts.
    fn begin_snapshot(&self) -> Option<Box<dyn PendingSnapshot + '_>> {
        if self.config.control_tag.is_some() {
            return None;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = match crate::native::Request::send(&self.config, &LIST_ALL, false) {
            Some(request) => Started::Native(request),
            None => Started::Process(start(&self.config, "list-panes", &LIST_ALL)),
        };
        Some(Box::new(Listing {
            tmux: self,
            started: Some(started),
        }))
    }

    fn probe(&self, name: &str) -> Result<Option<PaneInfo>, MuxError> {
        let target = format!("={name}");
        let list = || match self.query(
            "list-panes",
            &["list-panes", "-s", "-t", &target, "-F", SNAPSHOT_FORMAT],
        ) {
            Ok(out) => Ok(parse_snapshot(&String::from_utf8_lossy(&out.stdout))),
            Err(MuxError::NoServer { .. } | MuxError::NotFound { .. }) => Ok(MuxSnapshot::default()),
            Err(e) => Err(e),
        };
        Ok(self.settled(list()?, list)?.get(name).cloned())
    }

    fn send_text(&self, name: &str, text: &str, enter: bool) -> Result<(), MuxError> {
        let pane = format!("={name}:");
        for chunk in chunks(text, SEND_CHUNK) {
            self.run("send-keys", &["send-keys", "-t", &pane, "-l", "--", chunk])?;
        }
        if enter {
            self.run("send-keys", &["send-keys", "-t", &pane, "Enter"])?;
        }
        Ok(())
    }

    fn capture(&self, name: &str, lines: u32) -> Result<String, MuxError> {
        let pane = format!("={name}:");
        let start = format!("-{}", lines.max(1));
        let out = self.query("capture-pane", &["capture-pane", "-p", "-J", "-t", &pane, "-S", &start])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let all: Vec<&str> = text.trim_end_matches('\n').lines().collect();
        let keep = all.len().saturating_sub(lines as usize);
        Ok(all[keep..].join("\n"))
    }

    fn kill(&self, name: &str) -> Result<(), MuxError> {
        let target = format!("={name}");
        match self.run("kill-session", &["kill-session", "-t", &target]) {
            Ok(_) | Err(MuxError::NotFound { .. } | MuxError::NoServer { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn attach_command(&self, name: &str) -> Result<AttachCommand, MuxError> {
        if !self.has_session(name)? {
            return Err(MuxError::NotFound { name: name.to_owned() });
        }
        let target = format!("={name}");
        let argv = if self.config.inside_tmux && self.config.server == MuxServer::Default {
            tmux_argv(&self.config, &["switch-client", "-t", &target])
        } else {
            let mut argv = vec!["env".to_owned(), "-u".to_owned(), "TMUX".to_owned()];
            argv.extend(tmux_argv(&self.config, &["attach-session", "-t", &target]));
            argv
        };
        Ok(AttachCommand { argv })
    }

    fn watch(&self) -> Result<Arc<dyn MuxWatch>, MuxError> {
        let watch = TmuxWatch::new(self.config.clone(), self.panes.clone());
        // Hooked before the caller's first look, so no change after that look is missed.
        watch.hook()?;
        Ok(Arc::new(watch))
    }
}

/// The arguments of a snapshot's `list-panes`.
const LIST_ALL: [&str; 4] = ["list-panes", "-a", "-F", SNAPSHOT_FORMAT];

/// The panes a `list-panes` process printed; no server is no panes.
fn listing(ran: Result<std::process::Output, MuxError>) -> Result<MuxSnapshot, MuxError> {
    match ran {
        Ok(out) => Ok(parse_snapshot(&String::from_utf8_lossy(&out.stdout))),
        Err(MuxError::NoServer { .. }) => Ok(MuxSnapshot::default()),
        Err(e) => Err(e),
    }
}

/// A snapshot's `list-panes` under way (see [`Tmux::begin_snapshot`]): sent through this
/// crate's own client, or a process.
struct Listing<'a> {
    tmux: &'a Tmux,
    /// The command under way; an `Option` only so that `finish` can take it from a type with
    /// a `Drop`. A listing dropped unfinished ends its process and reaps it.
    started: Option<Started>,
}

/// How a listing's command went out.
enum Started {
    /// Sent on the server's socket: the answer is read at the end.
    Native(crate::native::Request),
    /// A process, or why it could not start.
    Process(Result<std::process::Child, MuxError>),
}

impl PendingSnapshot for Listing<'_> {
    fn finish(mut self: Box<Self>) -> Result<MuxSnapshot, MuxError> {
        let started = self
            .started
            .take()
            .expect("only `finish` takes the command, and it consumes the listing");
        let config = &self.tmux.config;
        let ran = match started {
            // Not understood: asked again, as a process.
            Started::Native(request) => self
                .tmux
                .answered("list-panes", request)
                .unwrap_or_else(|| run(config, "list-panes", &LIST_ALL)),
            Started::Process(child) => child.and_then(|child| outcome(config, "list-panes", child.wait_with_output())),
        };
        self.tmux.complete(listing(ran)?)
    }
}

impl Drop for Listing<'_> {
    fn drop(&mut self) {
        if let Some(Started::Process(Ok(mut child))) = self.started.take() {
            // Not waited for with its output unread: it could be blocked writing it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_format_can_be_quoted_for_the_control_client() {
        assert!(!SNAPSHOT_FORMAT.contains(['\'', '\n']));
    }

    #[test]
    fn chunks_respect_char_boundaries() {
        let text = "é".repeat(10);
        let parts = chunks(&text, 3);
        assert!(parts.iter().all(|p| p.len() <= 3));
        assert_eq!(parts.concat(), text);
        assert!(chunks("", 4).is_empty());
    }
}
