//! [`MailBus`]: the publishing side. A bounded queue drained by one background thread over one
//! persistent connection, so no lifecycle call ever waits on the daemon.

use crate::pulse::encode_pulse;
use base64::Engine as _;
use orch_core::{BusError, EventBus, LifecycleEvent, Subscription};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tunables of a [`MailBus`].
#[derive(Debug, Clone)]
pub struct MailOptions {
    /// Events held while the daemon is slow or absent; beyond this the oldest are dropped.
    pub queue_capacity: usize,
    /// How long to wait for the daemon's reply to one emit.
    pub reply_timeout: Duration,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
    /// How long `Drop` waits for queued events.
    pub drop_flush: Duration,
    /// A stream with no data for this long is resubscribed (it may have fallen behind).
    pub silence_timeout: Duration,
}

impl Default for MailOptions {
    fn default() -> Self {
        MailOptions {
            queue_capacity: 1024,
            reply_timeout: Duration::from_secs(1),
            min_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(2),
            drop_flush: Duration::from_millis(500),
            silence_timeout: Duration::from_secs(300),
        }
    }
}

/// Counters of what happened to published events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailStats {
    /// Accepted by the daemon (`status: ok`).
    pub delivered: u64,
    /// Dropped because the queue was full (oldest first).
    pub dropped: u64,
    /// Refused by the daemon (too large, rate limited, ...).
    pub refused: u64,
    /// Connections made (the first one included).
    pub connects: u64,
    /// The daemon's latest error messages, newest last (at most 16).
    pub errors: Vec<String>,
}

struct State {
    queue: VecDeque<String>,
    in_flight: usize,
    stats: MailStats,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    idle: Condvar,
    socket: PathBuf,
    options: MailOptions,
}

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// An [`EventBus`] speaking the hydra-mail protocol over a Unix socket.
pub struct MailBus {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MailBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailBus").field("socket", &self.shared.socket).finish()
    }
}

impl MailBus {
    /// A bus publishing to the daemon at `socket`. The daemon need not be up yet: events wait
    /// in the queue (bounded) until it is.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self::with_options(socket, MailOptions::default())
    }

    /// A bus with explicit options. The daemon's refusals and dropped events are reported
    /// through `tracing` (target `orch_mail`).
    pub fn with_options(socket: impl Into<PathBuf>, options: MailOptions) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                in_flight: 0,
                stats: MailStats::default(),
                shutdown: false,
            }),
            wake: Condvar::new(),
            idle: Condvar::new(),
            socket: socket.into(),
            options,
        });
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("hydra-mail-publisher".into())
            .spawn(move || run_publisher(&worker))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("cannot start the hydra-mail publisher thread: {e}"));
        MailBus { shared }
    }

    /// The socket this bus talks to.
    pub fn socket(&self) -> &Path {
        &self.shared.socket
    }

    /// Counters so far.
    pub fn stats(&self) -> MailStats {
        lock(&self.shared).stats.clone()
    }

    /// Queues an already-encoded TOON text on `channel` (for tools and tests that build pulses).
    pub fn publish_raw(&self, channel: &str, toon: &str) {
        let data = base64::engine::general_purpose::STANDARD.encode(toon.as_bytes());
        let line = serde_json::json!({"cmd": "emit", "channel": channel, "format": "toon", "data": data}).to_string();
        let mut st = lock(&self.shared);
        if st.queue.len() >= self.shared.options.queue_capacity.max(1) {
            st.queue.pop_front();
            st.stats.dropped += 1;
            let dropped = st.stats.dropped;
            if dropped.is_power_of_two() {
                tracing::warn!("hydra-mail event queue full: {dropped} oldest event(s) dropped so far");
            }
        }
        st.queue.push_back(line);
        drop(st);
        self.shared.wake.notify_one();
    }
}

impl EventBus for MailBus {
    fn publish(&self, event: &LifecycleEvent) -> Result<(), BusError> {
        let toon = encode_pulse(event)?;
        self.publish_raw(event.channel.as_str(), &toon);
        Ok(())
    }

    fn flush(&self, timeout: Duration) -> Result<(), BusError> {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared);
        while !st.queue.is_empty() || st.in_flight > 0 {
            let now = Instant::now();
            if now >= deadline {
                return Err(BusError::FlushTimeout {
                    pending: st.queue.len() + st.in_flight,
                    waited: timeout,
                });
            }
            st = self
                .shared
                .idle
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    fn subscribe(&self, channels: &[&str]) -> Result<Box<dyn Subscription>, BusError> {
        crate::subscribe::subscribe(&self.shared.socket, channels, self.shared.options.silence_timeout)
    }
}

impl Drop for MailBus {
    fn drop(&mut self) {
        let _ = self.flush(self.shared.options.drop_flush);
        lock(&self.shared).shutdown = true;
        self.shared.wake.notify_all();
    }
}

/// The publisher thread: take the oldest event, send it on the one connection, read its reply.
fn run_publisher(shared: &Shared) {
    let mut conn: Option<(UnixStream, BufReader<UnixStream>)> = None;
    let mut backoff = shared.options.min_backoff;
    loop {
        let line = {
            let mut st = lock(shared);
            loop {
                if st.shutdown {
                    return;
                }
                if let Some(line) = st.queue.pop_front() {
                    st.in_flight = 1;
                    break line;
                }
                shared.idle.notify_all();
                st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        if conn.is_none() {
            match connect(shared) {
                Ok(c) => {
                    conn = Some(c);
                    backoff = shared.options.min_backoff;
                    lock(shared).stats.connects += 1;
                }
                Err(_) => {
                    // Put it back and wait; new events keep the queue bounded meanwhile.
                    let mut st = lock(shared);
                    st.in_flight = 0;
                    st.queue.push_front(line);
                    if st.queue.len() > shared.options.queue_capacity.max(1) {
                        st.queue.pop_front();
                        st.stats.dropped += 1;
                    }
                    let shutdown = st.shutdown;
                    drop(st);
                    shared.idle.notify_all();
                    if shutdown {
                        return;
                    }
                    let st = lock(shared);
                    let _ = shared.wake.wait_timeout_while(st, backoff, |s| !s.shutdown);
                    backoff = (backoff * 2).min(shared.options.max_backoff);
                    continue;
                }
            }
        }
        let Some((writer, reader)) = conn.as_mut() else {
            continue;
        };
        let outcome = send(writer, reader, &line);
        let mut st = lock(shared);
        st.in_flight = 0;
        match outcome {
            Ok(Reply::Ok) => st.stats.delivered += 1,
            Ok(Reply::Error(msg)) => {
                st.stats.refused += 1;
                st.stats.errors.push(msg.clone());
                if st.stats.errors.len() > 16 {
                    st.stats.errors.remove(0);
                }
                drop(st);
                tracing::warn!("hydra-mail refused an event: {msg}");
                continue;
            }
            Err(SendError::BeforeWrite) => {
                // Nothing reached the daemon: retry this event on a new connection.
                st.queue.push_front(line);
                conn = None;
            }
            Err(SendError::AfterWrite) => {
                // It may have arrived; resending could duplicate it. Count nothing, reconnect.
                conn = None;
            }
        }
    }
}

fn connect(shared: &Shared) -> std::io::Result<(UnixStream, BufReader<UnixStream>)> {
    let stream = UnixStream::connect(&shared.socket)?;
    stream.set_read_timeout(Some(shared.options.reply_timeout))?;
    stream.set_write_timeout(Some(shared.options.reply_timeout))?;
    let reader = BufReader::new(stream.try_clone()?);
    Ok((stream, reader))
}

enum Reply {
    Ok,
    Error(String),
}

enum SendError {
    BeforeWrite,
    AfterWrite,
}

fn send(writer: &mut UnixStream, reader: &mut BufReader<UnixStream>, line: &str) -> Result<Reply, SendError> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    writer.write_all(&bytes).map_err(|_| SendError::BeforeWrite)?;
    let mut reply = String::new();
    match reader.read_line(&mut reply) {
        Ok(0) | Err(_) => return Err(SendError::AfterWrite),
        Ok(_) => {}
    }
    let v: serde_json::Value = serde_json::from_str(reply.trim()).map_err(|_| SendError::AfterWrite)?;
    if v.get("status").and_then(|s| s.as_str()) == Some("ok") {
        Ok(Reply::Ok)
    } else {
        let msg = v
            .get("msg")
            .and_then(|m| m.as_str())
            .unwrap_or("unknown error")
            .to_owned();
        Ok(Reply::Error(msg))
    }
}
