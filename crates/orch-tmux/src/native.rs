//! This crate's own tmux client, for the commands that only read (`list-panes`,
//! `display-message -p`, `capture-pane -p`, `has-session`) and for `new-session` on a server
//! that runs: it speaks tmux's client protocol on the server's socket instead of starting a
//! `tmux` process. The server does the same work either way; what goes is the process: its
//! start, its libraries and its own connection, about a millisecond of a 2-core machine
//! before the server sees the command.
//!
//! The protocol is tmux's private one (version 8, the same from tmux 3.1 to 3.7): messages
//! framed as OpenBSD's imsg (a 16-byte header: type, length, the protocol version, a pid; the
//! length a 16-bit field and 16 bits of flags before tmux 3.6, one 32-bit field since, the
//! same bytes on a little-endian machine for a message without a descriptor, the only kind
//! this client sends or takes), the identification a client sends before its command, then
//! the command's argv. The server answers with the command's output as writes to the client's
//! stdout and stderr, and the exit status.
//!
//! The server checks the size of every identification message, and tmux before 3.6 ends
//! itself, sessions and all, on one it does not expect. So this client sends only what tmux's
//! own client sends for a command run without a terminal, and only messages whose size no
//! version from 3.0 to 3.7 changed: the flags, the terminal features and the pid (a C `int`
//! each), the terminal's name, the tty's and the working directory (NUL-ended strings; empty
//! for the two terminal ones), the environment only with `new-session` (a NUL-ended
//! `NAME=value` each); and nothing at all on a big-endian machine. It
//! takes nothing it does not expect either: another protocol version, a message it does not
//! know, a write to anything but stdout or stderr, the server closing first, or no answer
//! within [`TIMEOUT`] all make it give up. A read is then asked again through the `tmux`
//! process, which is harmless; a new session is made by the process only when the server
//! surely did not run the command ([`Unanswered::NotRun`]), and is an error otherwise.

use crate::tmux::TmuxConfig;
use orch_core::MuxServer;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Output};
use std::time::Duration;

/// The protocol version this client speaks (tmux's `PROTOCOL_VERSION`).
const PROTOCOL_VERSION: u32 = 8;
/// The size of a message's header.
const HEADER: usize = 16;
/// The largest message tmux sends or takes, header included (imsg's `MAX_IMSGSIZE`).
const MAX_MESSAGE: usize = 16384;
/// How long the server may stay silent before this client gives up on it.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// tmux's `CLIENT_UTF8` flag (the same from tmux 3.1 to 3.7).
const CLIENT_UTF8: i32 = 0x10000;

// Message types (tmux's `enum msgtype`).
const MSG_IDENTIFY_FLAGS: u32 = 100;
const MSG_IDENTIFY_TERM: u32 = 101;
const MSG_IDENTIFY_TTYNAME: u32 = 102;
const MSG_IDENTIFY_DONE: u32 = 106;
const MSG_IDENTIFY_CLIENTPID: u32 = 107;
const MSG_IDENTIFY_CWD: u32 = 108;
const MSG_IDENTIFY_FEATURES: u32 = 109;
const MSG_COMMAND: u32 = 200;
const MSG_EXIT: u32 = 203;
const MSG_FLAGS: u32 = 218;
const MSG_WRITE_OPEN: u32 = 303;
const MSG_WRITE: u32 = 304;
const MSG_WRITE_READY: u32 = 305;
const MSG_WRITE_CLOSE: u32 = 306;

/// A command sent to the server, its answer not yet read.
#[derive(Debug)]
pub(crate) struct Request {
    socket: UnixStream,
}

/// Why a request has no answer this client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// The server did not run the command: it speaks another protocol version, or closed the
    /// connection before saying anything (a server on its way out).
    NotRun,
    /// The server said something this client does not take, or went silent or away midway:
    /// the command may have run.
    Unknown,
}

/// The message a server of another protocol version answers every message with.
const MSG_VERSION: u32 = 12;
/// A client's environment, one variable per message.
const MSG_IDENTIFY_ENVIRON: u32 = 105;

/// Appends one message of `kind` carrying `data` to `out`.
fn frame(out: &mut Vec<u8>, kind: u32, data: &[u8]) {
    let len = u16::try_from(HEADER + data.len()).expect("messages are built under MAX_MESSAGE");
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&PROTOCOL_VERSION.to_ne_bytes());
    out.extend_from_slice(&std::process::id().to_ne_bytes());
    out.extend_from_slice(data);
}

/// A string as tmux takes it: its bytes and a NUL (`None` when it holds one).
fn c_string(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.contains(&0) {
        return None;
    }
    let mut s = Vec::with_capacity(bytes.len() + 1);
    s.extend_from_slice(bytes);
    s.push(0);
    Some(s)
}

/// The flags tmux's own client would send from this environment: UTF-8 output inside tmux,
/// or when the first of `LC_ALL`, `LC_CTYPE` and `LANG` that is set names UTF-8.
fn client_flags(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> i32 {
    if var("TMUX").is_some() {
        return CLIENT_UTF8;
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .into_iter()
        .find_map(|v| var(v).filter(|s| !s.is_empty()))
        .map(|s| s.to_string_lossy().to_ascii_uppercase())
        .unwrap_or_default();
    if locale.contains("UTF-8") || locale.contains("UTF8") {
        CLIENT_UTF8
    } else {
        0
    }
}

/// The socket of `server` as tmux's client finds it (`-S PATH`; `-L NAME` in
/// `$TMUX_TMPDIR/tmux-UID/` or `/tmp/tmux-UID/`; the default server of the tmux this process
/// runs in, from `$TMUX`). `None` where tmux's client would refuse the directory (not ours,
/// or open to others) or the name: the `tmux` process then says why.
pub(crate) fn socket_path(server: &MuxServer) -> Option<PathBuf> {
    match server {
        MuxServer::Path(path) => Some(path.clone()),
        MuxServer::Name(name) => label_path(name),
        MuxServer::Default => match std::env::var_os("TMUX") {
            Some(t) if !t.is_empty() && !t.as_bytes().starts_with(b",") => {
                let bytes = t.as_bytes();
                let end = bytes.iter().position(|&b| b == b',').unwrap_or(bytes.len());
                Some(PathBuf::from(std::ffi::OsStr::from_bytes(&bytes[..end])))
            }
            _ => label_path("default"),
        },
    }
}

/// The socket of the server `tmux -L label`, when its directory is as tmux requires.
fn label_path(label: &str) -> Option<PathBuf> {
    if label.is_empty() || label.contains('/') {
        return None;
    }
    let base = label_dir();
    let meta = std::fs::symlink_metadata(&base).ok()?;
    let uid = rustix::process::getuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o007 != 0 {
        return None;
    }
    Some(base.join(label))
}

/// The directory of this user's named tmux sockets: `$TMUX_TMPDIR/tmux-UID`, or
/// `/tmp/tmux-UID` without `TMUX_TMPDIR`.
fn label_dir() -> PathBuf {
    let dir = std::env::var_os("TMUX_TMPDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    dir.join(format!("tmux-{}", rustix::process::getuid().as_raw()))
}

impl Request {
    /// Connects to the server of `config` and sends `args` as one command, with this
    /// process's environment when `env` (what tmux's client sends; a command that makes a
    /// session takes `update-environment` from it). `None` when this client is turned off,
    /// the server cannot be reached, or the command cannot be sent as tmux's client would:
    /// nothing ran, and the `tmux` process is the way.
    pub(crate) fn send(config: &TmuxConfig, args: &[&str], env: bool) -> Option<Request> {
        if !config.native_client || cfg!(target_endian = "big") {
            return None;
        }
        let mut command = Vec::with_capacity(256);
        command.extend_from_slice(&i32::try_from(args.len()).ok()?.to_ne_bytes());
        for a in args {
            command.extend(c_string(a.as_bytes())?);
        }
        if HEADER + command.len() > MAX_MESSAGE {
            return None;
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let cwd = c_string(cwd.as_os_str().as_bytes())?;
        if HEADER + cwd.len() > MAX_MESSAGE {
            return None;
        }
        let flags = client_flags(|v| std::env::var_os(v));
        let pid = i32::try_from(std::process::id()).ok()?;
        let mut out = Vec::with_capacity(8 * HEADER + command.len() + cwd.len() + 16);
        frame(&mut out, MSG_IDENTIFY_FLAGS, &flags.to_ne_bytes());
        frame(&mut out, MSG_IDENTIFY_TERM, b"\0");
        frame(&mut out, MSG_IDENTIFY_FEATURES, &0i32.to_ne_bytes());
        frame(&mut out, MSG_IDENTIFY_TTYNAME, b"\0");
        frame(&mut out, MSG_IDENTIFY_CWD, &cwd);
        frame(&mut out, MSG_IDENTIFY_CLIENTPID, &pid.to_ne_bytes());
        if env {
            for (k, v) in std::env::vars_os() {
                let mut var = Vec::with_capacity(k.len() + v.len() + 2);
                var.extend_from_slice(k.as_bytes());
                var.push(b'=');
                var.extend_from_slice(v.as_bytes());
                // tmux's client leaves out a variable too long for one message; so does this.
                match c_string(&var) {
                    Some(var) if HEADER + var.len() <= MAX_MESSAGE => frame(&mut out, MSG_IDENTIFY_ENVIRON, &var),
                    _ => {}
                }
            }
        }
        frame(&mut out, MSG_IDENTIFY_DONE, &[]);
        frame(&mut out, MSG_COMMAND, &command);
        let path = socket_path(&config.server)?;
        let mut socket = UnixStream::connect(path).ok()?;
        socket.set_read_timeout(Some(TIMEOUT)).ok()?;
        socket.set_write_timeout(Some(TIMEOUT)).ok()?;
        socket.write_all(&out).ok()?;
        Some(Request { socket })
    }

    /// Reads the command's answer: what it wrote to stdout and stderr and its exit status, as
    /// from a `tmux` process; or why there is none this client understands (see the module
    /// documentation).
    pub(crate) fn finish(mut self) -> Result<Output, Unanswered> {
        use Unanswered::{NotRun, Unknown};
        let mut answer = Answer::default();
        let mut buf: Vec<u8> = Vec::with_capacity(2 * MAX_MESSAGE);
        let mut start = 0;
        let mut chunk = [0u8; MAX_MESSAGE];
        let mut heard = false;
        loop {
            while buf.len() - start >= HEADER {
                let head = &buf[start..start + HEADER];
                if head[0..4] == MSG_VERSION.to_ne_bytes() {
                    return Err(if heard { Unknown } else { NotRun });
                }
                let (kind, len) = header(head).ok_or(Unknown)?;
                if buf.len() - start < len {
                    break;
                }
                heard = true;
                let data = &buf[start + HEADER..start + len];
                match answer.take(kind, data).ok_or(Unknown)? {
                    Step::Reply(reply) => self.socket.write_all(&reply).map_err(|_| Unknown)?,
                    Step::More => {}
                    Step::Done(status) => {
                        return Ok(Output {
                            status,
                            stdout: answer.stdout,
                            stderr: answer.stderr,
                        })
                    }
                }
                start += len;
            }
            buf.drain(..start);
            start = 0;
            let silent = buf.is_empty() && !heard;
            match self.socket.read(&mut chunk) {
                Ok(0) if silent => return Err(NotRun),
                Ok(0) => return Err(Unknown),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if silent && e.kind() == std::io::ErrorKind::ConnectionReset => return Err(NotRun),
                Err(_) => return Err(Unknown),
            }
        }
    }
}

/// What the server said so far.
#[derive(Debug, Default)]
struct Answer {
    /// The streams the server opened and the descriptor each writes to (1 or 2).
    streams: Vec<(i32, i32)>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// What to do after a message.
#[derive(Debug, PartialEq)]
enum Step {
    /// Send this to the server.
    Reply(Vec<u8>),
    /// Read on.
    More,
    /// The command ended with this status.
    Done(ExitStatus),
}

/// The type and the length of the message whose header `head` is; `None` for one this client
/// does not take: another protocol version, a length under a header's, or bytes 6 and 7 set
/// (the old header's flags or the new one's length above 64 kB and descriptor mark).
fn header(head: &[u8]) -> Option<(u32, usize)> {
    let kind = u32::from_ne_bytes(head.get(0..4)?.try_into().ok()?);
    let len = usize::from(u16::from_ne_bytes(head.get(4..6)?.try_into().ok()?));
    let version = u32::from_ne_bytes(head.get(8..12)?.try_into().ok()?) & 0xff;
    (len >= HEADER && head.get(6..8)? == [0, 0] && version == PROTOCOL_VERSION).then_some((kind, len))
}

fn int_at(data: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

impl Answer {
    /// Takes one message of `kind` with `data`; `None` for one this client does not expect.
    fn take(&mut self, kind: u32, data: &[u8]) -> Option<Step> {
        match kind {
            MSG_WRITE_OPEN => {
                let (stream, fd) = (int_at(data, 0)?, int_at(data, 4)?);
                // Only the client's own stdout and stderr (a path would be a file to write).
                let path = data.get(12..).unwrap_or_default();
                let path = path.strip_suffix(b"\0").unwrap_or(path);
                if !(fd == 1 || fd == 2) || !(path.is_empty() || path == b"-") {
                    return None;
                }
                self.streams.retain(|&(s, _)| s != stream);
                self.streams.push((stream, fd));
                let mut ready = Vec::with_capacity(8);
                ready.extend_from_slice(&stream.to_ne_bytes());
                ready.extend_from_slice(&0i32.to_ne_bytes());
                let mut reply = Vec::with_capacity(HEADER + 8);
                frame(&mut reply, MSG_WRITE_READY, &ready);
                Some(Step::Reply(reply))
            }
            MSG_WRITE => {
                let stream = int_at(data, 0)?;
                let &(_, fd) = self.streams.iter().find(|&&(s, _)| s == stream)?;
                let out = if fd == 1 { &mut self.stdout } else { &mut self.stderr };
                out.extend_from_slice(&data[4..]);
                Some(Step::More)
            }
            MSG_WRITE_CLOSE | MSG_FLAGS => Some(Step::More),
            MSG_EXIT => {
                let code = if data.is_empty() { 0 } else { int_at(data, 0)? };
                // A message after the status is what tmux's client prints on leaving.
                let message = data.get(4..).unwrap_or_default();
                let message = message.strip_suffix(b"\0").unwrap_or(message);
                if !message.is_empty() {
                    self.stderr.extend_from_slice(message);
                    self.stderr.push(b'\n');
                }
                Some(Step::Done(ExitStatus::from_raw((code & 0xff) << 8)))
            }
            // MSG_VERSION (another protocol), a request to read, an attach, and anything else.
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame(&mut out, kind, data);
        out
    }

    fn ints(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|i| i.to_ne_bytes()).collect()
    }

    #[test]
    fn a_frame_carries_its_length_and_the_protocol_version() {
        let m = message(MSG_COMMAND, b"abc");
        assert_eq!(m.len(), HEADER + 3);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().expect("4 or 2 bytes")),
            MSG_COMMAND
        );
        assert_eq!(
            usize::from(u16::from_ne_bytes(m[4..6].try_into().expect("4 or 2 bytes"))),
            HEADER + 3
        );
        assert_eq!(
            u32::from_ne_bytes(m[8..12].try_into().expect("4 or 2 bytes")),
            PROTOCOL_VERSION
        );
        assert_eq!(&m[HEADER..], b"abc");
    }

    #[test]
    fn a_header_of_another_version_or_with_a_descriptor_is_not_taken() {
        let m = message(MSG_EXIT, &ints(&[0]));
        assert_eq!(header(&m[..HEADER]), Some((MSG_EXIT, HEADER + 4)));
        let mut other = m.clone();
        other[8] = 9;
        assert_eq!(header(&other[..HEADER]), None);
        let mut with_fd = m.clone();
        with_fd[6] = 1;
        assert_eq!(header(&with_fd[..HEADER]), None);
        let mut marked = m;
        marked[7] = 0x80;
        assert_eq!(header(&marked[..HEADER]), None);
        assert_eq!(header(&message(MSG_EXIT, &[])[..8]), None, "short");
    }

    #[test]
    fn writes_to_stdout_and_stderr_make_the_output_and_exit_its_status() {
        let mut a = Answer::default();
        let Some(Step::Reply(r)) = a.take(MSG_WRITE_OPEN, &ints(&[1, 1, 0])) else {
            panic!("an open is answered")
        };
        assert_eq!(r, message(MSG_WRITE_READY, &ints(&[1, 0])));
        assert!(matches!(
            a.take(MSG_WRITE_OPEN, &ints(&[2, 2, 0])),
            Some(Step::Reply(_))
        ));
        let mut w = ints(&[1]);
        w.extend_from_slice(b"out\n");
        assert_eq!(a.take(MSG_WRITE, &w), Some(Step::More));
        let mut e = ints(&[2]);
        e.extend_from_slice(b"err\n");
        assert_eq!(a.take(MSG_WRITE, &e), Some(Step::More));
        assert_eq!(a.take(MSG_WRITE_CLOSE, &ints(&[1])), Some(Step::More));
        let Some(Step::Done(status)) = a.take(MSG_EXIT, &ints(&[1])) else {
            panic!("exit ends it")
        };
        assert_eq!(status.code(), Some(1));
        assert_eq!(
            (a.stdout.as_slice(), a.stderr.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn what_this_client_does_not_expect_gives_way_to_the_tmux_process() {
        let mut a = Answer::default();
        // Another protocol version, a file to write, a stream never opened, a read request,
        // an attach.
        assert_eq!(a.take(MSG_VERSION, &[]), None);
        let mut to_file = ints(&[3, -1, 0]);
        to_file.extend_from_slice(b"/tmp/x\0");
        assert_eq!(a.take(MSG_WRITE_OPEN, &to_file), None);
        assert_eq!(a.take(MSG_WRITE, &ints(&[1])), None);
        assert_eq!(a.take(300, &ints(&[0, 0])), None);
        assert_eq!(a.take(207, &[]), None);
    }

    #[test]
    fn the_utf8_flag_follows_tmux_s_own_rule() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert_eq!(client_flags(env(&[("TMUX", "")])), CLIENT_UTF8);
        assert_eq!(client_flags(env(&[("LANG", "en_US.utf8")])), CLIENT_UTF8);
        assert_eq!(client_flags(env(&[("LC_ALL", "C"), ("LANG", "en_US.UTF-8")])), 0);
        assert_eq!(
            client_flags(env(&[("LC_ALL", ""), ("LC_CTYPE", "C.UTF-8")])),
            CLIENT_UTF8
        );
        assert_eq!(client_flags(env(&[])), 0);
    }
}
