//! The one place that builds and runs tmux commands, and maps tmux's failures to [`MuxError`].

use orch_core::MuxError;
use std::process::{Child, Command, Output, Stdio};

use crate::tmux::TmuxConfig;
use orch_core::MuxServer;

/// Builds a tmux command for the configured server. Nothing else in the crate creates one.
pub(crate) fn tmux_command(config: &TmuxConfig, args: &[&str]) -> Command {
    let mut cmd = Command::new(&config.program);
    match &config.server {
        MuxServer::Default => {}
        MuxServer::Name(name) => {
            cmd.arg("-L").arg(name);
        }
        MuxServer::Path(path) => {
            cmd.arg("-S").arg(path);
        }
    }
    cmd.args(args);
    cmd.stdin(Stdio::null());
    cmd
}

/// The argv (program first) of a tmux command, for callers that exec it themselves (attach).
pub(crate) fn tmux_argv(config: &TmuxConfig, args: &[&str]) -> Vec<String> {
    let cmd = tmux_command(config, args);
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect()
}

/// Runs `args`; returns the output on success and a typed error otherwise.
pub(crate) fn run(config: &TmuxConfig, op: &str, args: &[&str]) -> Result<Output, MuxError> {
    outcome(config, op, tmux_command(config, args).output())
}

/// Starts `args` with its output captured, for [`outcome`] once it ends (its caller works
/// meanwhile).
pub(crate) fn start(config: &TmuxConfig, op: &str, args: &[&str]) -> Result<Child, MuxError> {
    tmux_command(config, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| not_run(op, source))
}

/// What a tmux process that ended (or could not be run) means: its output on success, a
/// typed error otherwise.
pub(crate) fn outcome(config: &TmuxConfig, op: &str, ended: std::io::Result<Output>) -> Result<Output, MuxError> {
    let output = ended.map_err(|source| not_run(op, source))?;
    if output.status.success() {
        return Ok(output);
    }
    Err(classify(config, op, &String::from_utf8_lossy(&output.stderr)))
}

/// The error of a tmux process that could not be run or waited for.
fn not_run(op: &str, source: std::io::Error) -> MuxError {
    if source.kind() == std::io::ErrorKind::NotFound {
        MuxError::NotInstalled
    } else {
        MuxError::Io {
            op: op.to_owned(),
            source,
        }
    }
}

/// Maps tmux's stderr to the error it means.
pub(crate) fn classify(config: &TmuxConfig, op: &str, stderr: &str) -> MuxError {
    let stderr = stderr.trim();
    // A server that is gone, or going away while we connect, holds no sessions; so does one
    // whose last session just ended (tmux 3.3a answers `list-panes -a` with "no current
    // target" until it exits: found by the 4-process reliability scenario).
    let gone = [
        "no server running",
        "server exited unexpectedly",
        "lost server",
        "no current target",
    ];
    let refused = stderr.contains("error connecting to")
        && (stderr.contains("No such file or directory") || stderr.contains("Connection refused"));
    if gone.iter().any(|g| stderr.contains(g)) || refused {
        return MuxError::NoServer {
            server: config.server.clone(),
        };
    }
    if let Some(rest) = stderr.strip_prefix("duplicate session: ") {
        return MuxError::NameTaken { name: rest.to_owned() };
    }
    if let Some(rest) = stderr.strip_prefix("can't find session: ") {
        return MuxError::NotFound { name: rest.to_owned() };
    }
    if stderr.starts_with("can't find pane") || stderr.starts_with("can't find window") {
        return MuxError::NotFound {
            name: stderr.to_owned(),
        };
    }
    MuxError::Failed {
        op: op.to_owned(),
        stderr: stderr.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(stderr: &str, expected: &str) {
        let cfg = TmuxConfig::with_socket_name("t");
        let err = classify(&cfg, "op", stderr);
        let got = match err {
            MuxError::NoServer { .. } => "no-server",
            MuxError::NameTaken { .. } => "taken",
            MuxError::NotFound { .. } => "not-found",
            MuxError::Failed { .. } => "failed",
            _ => "other",
        };
        assert_eq!(got, expected, "{stderr}");
    }

    #[test]
    fn stderr_is_classified() {
        check("no server running on /tmp/tmux-0/x", "no-server");
        check("error connecting to /tmp/tmux-0/x (Connection refused)", "no-server");
        check("server exited unexpectedly", "no-server");
        check("no current target", "no-server");
        check(
            "error connecting to /tmp/tmux-0/x (No such file or directory)",
            "no-server",
        );
        check("duplicate session: hydralph-ab", "taken");
        check("can't find session: hydralph-ab", "not-found");
        check("unknown option -- z", "failed");
    }

    /// Regression: `hydra ls` failed right after the tmux server was killed, because a server
    /// going away answers "server exited unexpectedly" or "Connection refused", not "no server".
    #[test]
    fn regression_a_server_going_away_is_no_server() {
        check("server exited unexpectedly", "no-server");
        check("no current target", "no-server");
        check("lost server", "no-server");
        check("error connecting to /tmp/tmux-0/x (Connection refused)", "no-server");
    }

    #[test]
    fn argv_names_the_server() {
        let cfg = TmuxConfig::with_socket_name("priv");
        assert_eq!(
            tmux_argv(&cfg, &["attach-session", "-t", "=x"]),
            ["tmux", "-L", "priv", "attach-session", "-t", "=x"]
        );
    }
}
