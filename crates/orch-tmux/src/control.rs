//! A persistent control-mode client (`tmux -C`), through which a long-lived process takes its
//! snapshots. A new tmux client costs the server several turns of its loop, and each turn polls
//! every pane's terminal (tmux turns libevent's epoll off on Linux); a command through a client
//! that is already connected costs one. At 500 sessions that is about half of what a
//! `tmux list-panes` process costs (the orchestrator benchmark shows both).
//!
//! The client attaches read-only to one session of the project, ignoring its size and without
//! its pane's output (`attach-session -f read-only,ignore-size,no-output`), so it changes
//! nothing a person or an agent sees. Only fixed command lines go through it (never a
//! user-supplied string: tmux parses them as its command language). When its session ends the
//! client exits; the adapter then falls back to a tmux process and attaches again.

use crate::command::tmux_command;
use crate::tmux::TmuxConfig;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// How long one command may take before the client is given up (the caller then asks tmux
/// through a process of its own).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What the client's reader passes on.
enum Answer {
    /// One command's output (`%end`), or its error text (`%error`): its lines, each ended by
    /// a newline, in one string (a snapshot of a thousand panes is a thousand lines).
    Block { ok: bool, text: String },
    /// The client ended (`%exit`, or its output closed).
    Gone,
}

/// Why a command through the client gave no output.
#[derive(Debug)]
pub(crate) enum ControlError {
    /// tmux answered with an error; the client is still usable.
    Refused,
    /// The client is gone or did not answer in time; it must be dropped.
    Lost,
}

/// One `tmux -C` client attached to a session, and the thread reading its output.
pub(crate) struct ControlClient {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<Answer>,
}

impl ControlClient {
    /// Attaches a control client to `session` on `config`'s server; `None` when tmux refuses
    /// (no such session, no server, or a tmux before 3.2 without `attach-session -f`).
    pub(crate) fn attach(config: &TmuxConfig, session: &str) -> Option<ControlClient> {
        let target = format!("={session}");
        let mut cmd = tmux_command(
            config,
            &[
                "-C",
                "attach-session",
                "-f",
                "read-only,ignore-size,no-output",
                "-t",
                &target,
            ],
        );
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().ok()?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(i), Some(o)) => (i, o),
            _ => {
                reap(&mut child);
                return None;
            }
        };
        let (tx, answers) = mpsc::channel();
        let reader = std::thread::Builder::new()
            .name("tmux-control".into())
            .spawn(move || read_answers(BufReader::new(stdout), &tx));
        if reader.is_err() {
            reap(&mut child);
            return None;
        }
        let mut client = ControlClient { child, stdin, answers };
        // The attach answers with a block of its own before anything else.
        match client.answer() {
            Ok(_) => Some(client),
            Err(_) => None,
        }
    }

    /// Runs one fixed tmux command line and returns its output, each line ended by a newline.
    pub(crate) fn run(&mut self, command: &str) -> Result<String, ControlError> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .map_err(|_| ControlError::Lost)?;
        self.answer()
    }

    fn answer(&mut self) -> Result<String, ControlError> {
        match self.answers.recv_timeout(ANSWER_WITHIN) {
            Ok(Answer::Block { ok: true, text }) => Ok(text),
            Ok(Answer::Block { ok: false, .. }) => Err(ControlError::Refused),
            Ok(Answer::Gone) | Err(_) => Err(ControlError::Lost),
        }
    }
}

impl Drop for ControlClient {
    fn drop(&mut self) {
        // The reader thread ends when the client's output closes.
        reap(&mut self.child);
    }
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient").field("pid", &self.child.id()).finish()
    }
}

fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Passes each command's block on, until the client ends. A block is the lines between
/// `%begin T N F` and the `%end T N F` (or `%error T N F`) with the same time and number;
/// notifications between blocks are skipped.
fn read_answers(out: impl BufRead, tx: &mpsc::Sender<Answer>) {
    let mut open: Option<(String, String)> = None;
    for line in out.lines() {
        let Ok(line) = line else { break };
        if let Some((key, text)) = open.as_mut() {
            let end = line
                .strip_prefix("%end ")
                .map(|rest| (true, rest))
                .or_else(|| line.strip_prefix("%error ").map(|rest| (false, rest)));
            match end {
                Some((ok, rest)) if block_key(rest) == Some(key.as_str()) => {
                    let text = std::mem::take(text);
                    open = None;
                    if tx.send(Answer::Block { ok, text }).is_err() {
                        return;
                    }
                }
                _ => {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        } else if let Some(rest) = line.strip_prefix("%begin ") {
            open = block_key(rest).map(|k| (k.to_owned(), String::new()));
        } else if line.starts_with("%exit") {
            break;
        }
    }
    let _ = tx.send(Answer::Gone);
}

/// `T N` of a block's `T N F` guard line.
fn block_key(rest: &str) -> Option<&str> {
    let mut fields = rest.splitn(3, ' ');
    let time = fields.next()?;
    let number = fields.next()?;
    Some(&rest[..time.len() + 1 + number.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(text: &str) -> Vec<(bool, Vec<String>)> {
        let (tx, rx) = mpsc::channel();
        read_answers(text.as_bytes(), &tx);
        let mut out = Vec::new();
        while let Ok(a) = rx.try_recv() {
            match a {
                Answer::Block { ok, text } => out.push((ok, text.lines().map(str::to_owned).collect())),
                Answer::Gone => out.push((false, vec!["gone".to_owned()])),
            }
        }
        out
    }

    #[test]
    fn blocks_are_cut_at_their_own_end_and_notifications_skipped() {
        let text = "%begin 1 10 0\n%end 1 10 0\n%session-changed $1 s\n\
                    %begin 2 11 1\n123 0 1 @tag s\n%end 1 10 0\n%end 2 11 0\n\
                    %sessions-changed\n%begin 3 12 1\nno such session\n%error 3 12 1\n%exit\n\
                    %begin 4 13 1\n";
        assert_eq!(
            answers(text),
            vec![
                (true, vec![]),
                // The end of another block, inside this one, is output.
                (true, vec!["123 0 1 @tag s".to_owned(), "%end 1 10 0".to_owned()]),
                (false, vec!["no such session".to_owned()]),
                (false, vec!["gone".to_owned()]),
            ]
        );
    }

    #[test]
    fn an_end_of_another_number_does_not_close_the_block() {
        let text = "%begin 5 20 1\n%end 5 19 1\nline\n%end 5 20 1\n";
        assert_eq!(
            answers(text),
            vec![
                (true, vec!["%end 5 19 1".to_owned(), "line".to_owned()]),
                (false, vec!["gone".to_owned()]),
            ]
        );
    }
}
