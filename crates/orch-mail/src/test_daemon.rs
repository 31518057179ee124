//! A hydra-mail daemon for tests, faithful to the protocol of CONTRACTS.md: one JSON request
//! per line; `emit` replies in order and broadcasts the decoded TOON text followed by `\n`;
//! `subscribe` replays the channel's last 100 messages then streams live ones (no ack);
//! `stats`; error replies for unknown commands, oversized messages and rate limits; and a
//! connection dropped without a reply on malformed JSON, missing fields, bad base64 or bad
//! UTF-8. It runs on plain threads so tests need no runtime to host it.

use base64::Engine as _;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Limits of the daemon (hydra-mail's defaults).
#[derive(Debug, Clone)]
pub struct DaemonLimits {
    /// Largest decoded message, in bytes.
    pub max_message_size: usize,
    /// Messages kept per channel for replay.
    pub replay_buffer_capacity: usize,
    /// Emits per second per connection; 0 is unlimited.
    pub rate_limit_per_second: u32,
}

impl Default for DaemonLimits {
    fn default() -> Self {
        DaemonLimits {
            max_message_size: 10_240,
            replay_buffer_capacity: 100,
            rate_limit_per_second: 0,
        }
    }
}

#[derive(Default)]
struct Channel {
    history: VecDeque<String>,
    subscribers: Vec<UnixStream>,
}

struct Inner {
    limits: DaemonLimits,
    channels: Mutex<HashMap<String, Channel>>,
    connections: Mutex<Vec<UnixStream>>,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running test daemon; stopped (socket removed, connections closed) on drop.
pub struct TestDaemon {
    socket: PathBuf,
    inner: Arc<Inner>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestDaemon {
    /// Starts a daemon on `socket` with default limits.
    pub fn start(socket: &Path) -> std::io::Result<Self> {
        Self::start_with(socket, DaemonLimits::default())
    }

    /// Starts a daemon on `socket` with `limits`.
    pub fn start_with(socket: &Path, limits: DaemonLimits) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
        let inner = Arc::new(Inner {
            limits,
            channels: Mutex::new(HashMap::new()),
            connections: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        });
        let acc = Arc::clone(&inner);
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if acc.stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                if let Ok(clone) = conn.try_clone() {
                    lock(&acc.connections).push(clone);
                }
                let inner = Arc::clone(&acc);
                std::thread::spawn(move || serve(&inner, conn));
            }
        });
        Ok(TestDaemon {
            socket: socket.to_path_buf(),
            inner,
            acceptor: Some(acceptor),
        })
    }

    /// Writes `<project>/.hydra/config.toml` pointing at `socket`, as `hydra-mail init` does.
    pub fn write_config(project: &Path, socket: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(project.join(".hydra"))?;
        std::fs::write(
            project.join(".hydra/config.toml"),
            format!(
                "project_uuid = \"00000000-0000-4000-8000-000000000000\"\nsocket_path = \"{}\"\ndefault_topics = [\"repo:delta\", \"agent:presence\"]\n\n[limits]\nmax_message_size = 10240\nreplay_buffer_capacity = 100\nbroadcast_channel_capacity = 1024\nrate_limit_per_second = 0\n",
                socket.display()
            ),
        )
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The messages (decoded TOON texts) the channel holds for replay, oldest first.
    pub fn history(&self, channel: &str) -> Vec<String> {
        lock(&self.inner.channels)
            .get(channel)
            .map(|c| c.history.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` until `channel` holds at least `n` messages; returns them.
    pub fn wait_for(&self, channel: &str, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.history(channel);
            if h.len() >= n || Instant::now() >= deadline {
                return h;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Forgets every subscriber without closing its connection: what hydra-mail does to a
    /// subscriber that falls too far behind (it goes silent, the socket stays open).
    pub fn forget_subscribers(&self) {
        for ch in lock(&self.inner.channels).values_mut() {
            ch.subscribers.clear();
        }
    }

    /// Stops the daemon: closes every connection and removes the socket (a crash, as clients
    /// see it).
    pub fn stop(&mut self) {
        if self.inner.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for c in lock(&self.inner.connections).drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let _ = UnixStream::connect(&self.socket); // wakes the acceptor
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn reply(conn: &mut UnixStream, v: serde_json::Value) -> bool {
    conn.write_all(format!("{v}\n").as_bytes()).is_ok()
}

fn serve(inner: &Inner, conn: UnixStream) {
    let closer = conn.try_clone();
    serve_requests(inner, conn);
    // Other clones of this socket are kept for `stop`; shut it so the client sees the close.
    if let Ok(c) = closer {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
}

fn serve_requests(inner: &Inner, conn: UnixStream) {
    let Ok(read_half) = conn.try_clone() else { return };
    let mut writer = conn;
    let mut reader = BufReader::new(read_half);
    let mut window = (Instant::now(), 0u32);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        // Anything malformed: drop the connection without a word, as hydra-mail does.
        let Ok(req) = serde_json::from_slice::<serde_json::Value>(&line) else {
            return;
        };
        let Some(cmd) = req.get("cmd").and_then(|c| c.as_str()) else {
            return;
        };
        match cmd {
            "emit" => {
                let (Some(channel), Some(data)) = (
                    req.get("channel").and_then(|c| c.as_str()),
                    req.get("data").and_then(|d| d.as_str()),
                ) else {
                    return;
                };
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data) else {
                    return;
                };
                let Ok(text) = String::from_utf8(bytes) else { return };
                if text.len() > inner.limits.max_message_size {
                    let msg = format!(
                        "Message too large: {} bytes (max {})",
                        text.len(),
                        inner.limits.max_message_size
                    );
                    if !reply(&mut writer, serde_json::json!({"status": "error", "msg": msg})) {
                        return;
                    }
                    continue;
                }
                if inner.limits.rate_limit_per_second > 0 {
                    if window.0.elapsed() >= Duration::from_secs(1) {
                        window = (Instant::now(), 0);
                    }
                    window.1 += 1;
                    if window.1 > inner.limits.rate_limit_per_second {
                        let msg = format!("Rate limit exceeded: {} msgs/sec", inner.limits.rate_limit_per_second);
                        if !reply(&mut writer, serde_json::json!({"status": "error", "msg": msg})) {
                            return;
                        }
                        continue;
                    }
                }
                let receivers = {
                    let mut channels = lock(&inner.channels);
                    let ch = channels.entry(channel.to_owned()).or_default();
                    ch.history.push_back(text.clone());
                    while ch.history.len() > inner.limits.replay_buffer_capacity {
                        ch.history.pop_front();
                    }
                    let framed = format!("{text}\n");
                    ch.subscribers.retain_mut(|s| s.write_all(framed.as_bytes()).is_ok());
                    ch.subscribers.len()
                };
                let ok =
                    serde_json::json!({"status": "ok", "format": "toon", "size": text.len(), "receivers": receivers});
                if !reply(&mut writer, ok) {
                    return;
                }
            }
            "subscribe" => {
                let Some(channel) = req.get("channel").and_then(|c| c.as_str()) else {
                    return;
                };
                let mut channels = lock(&inner.channels);
                let ch = channels.entry(channel.to_owned()).or_default();
                for msg in &ch.history {
                    if writer.write_all(format!("{msg}\n").as_bytes()).is_err() {
                        return;
                    }
                }
                if let Ok(w) = writer.try_clone() {
                    ch.subscribers.push(w);
                }
            }
            "stats" => {
                let channels = lock(&inner.channels);
                let list: Vec<_> = channels
                    .iter()
                    .map(|(name, c)| {
                        serde_json::json!({"channel": name, "replay_buffer_size": c.history.len(), "subscriber_count": c.subscribers.len()})
                    })
                    .collect();
                drop(channels);
                if !reply(&mut writer, serde_json::json!({"status": "ok", "channels": list})) {
                    return;
                }
            }
            _ => {
                if !reply(
                    &mut writer,
                    serde_json::json!({"status": "error", "msg": "Unknown command"}),
                ) {
                    return;
                }
            }
        }
    }
}
