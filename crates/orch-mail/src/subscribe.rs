//! Subscriptions: one tokio task per channel reading the daemon's stream, framing and decoding
//! pulses, and resubscribing when the stream closes or goes silent.

use crate::frame::Framer;
use crate::pulse::decode_pulse;
use orch_core::{BusError, Pulse, Subscription};
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A partial pulse with no new line for this long is complete (its metadata was nested).
const QUIET: Duration = Duration::from_millis(50);
/// Pulse ids remembered to drop the history replayed on resubscribe.
const SEEN_CAPACITY: usize = 4096;

struct ChannelSubscription {
    rx: mpsc::Receiver<Pulse>,
    tasks: Vec<JoinHandle<()>>,
}

impl Subscription for ChannelSubscription {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<Pulse>> + Send + '_>> {
        Box::pin(self.rx.recv())
    }
}

impl Drop for ChannelSubscription {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Subscribes to each of `channels` on the daemon at `socket`. Needs a tokio runtime.
pub(crate) fn subscribe(
    socket: &Path,
    channels: &[&str],
    silence: Duration,
) -> Result<Box<dyn Subscription>, BusError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| BusError::NoRuntime)?;
    let (tx, rx) = mpsc::channel(1024);
    let tasks = channels
        .iter()
        .map(|ch| handle.spawn(follow(socket.to_path_buf(), (*ch).to_owned(), silence, tx.clone())))
        .collect();
    Ok(Box::new(ChannelSubscription { rx, tasks }))
}

struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        if self.order.len() > SEEN_CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Delivers a framed pulse; false when the subscriber is gone.
async fn deliver(text: String, seen: &mut Seen, tx: &mpsc::Sender<Pulse>) -> bool {
    match decode_pulse(&text) {
        Ok(pulse) => !seen.insert(&pulse.id) || tx.send(pulse).await.is_ok(),
        Err(e) => {
            tracing::warn!("hydra-mail: skipped a message that is not a pulse ({e})");
            true
        }
    }
}

async fn follow(socket: PathBuf, channel: String, silence: Duration, tx: mpsc::Sender<Pulse>) {
    let mut seen = Seen {
        order: VecDeque::new(),
        set: HashSet::new(),
    };
    let mut backoff = Duration::from_millis(20);
    let request = format!("{}\n", serde_json::json!({"cmd": "subscribe", "channel": channel}));
    while !tx.is_closed() {
        let Ok(mut stream) = UnixStream::connect(&socket).await else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        backoff = Duration::from_millis(20);
        if stream.write_all(request.as_bytes()).await.is_err() {
            continue;
        }
        let mut reader = BufReader::new(stream);
        let mut framer = Framer::new();
        let mut buf = Vec::new();
        loop {
            let wait = if framer.has_partial() { QUIET } else { silence };
            match tokio::time::timeout(wait, reader.read_until(b'\n', &mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {
                    if buf.last() != Some(&b'\n') {
                        continue; // partial line; the rest follows
                    }
                    buf.pop();
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    buf.clear();
                    for text in framer.push_line(&line) {
                        if !deliver(text, &mut seen, &tx).await {
                            return;
                        }
                    }
                }
                Err(_) if framer.has_partial() => {
                    if let Some(text) = framer.take() {
                        if !deliver(text, &mut seen, &tx).await {
                            return;
                        }
                    }
                }
                // Silent for too long: the daemon may have stopped feeding us. Resubscribe.
                Err(_) => break,
            }
        }
        if let Some(text) = framer.take() {
            if !deliver(text, &mut seen, &tx).await {
                return;
            }
        }
    }
}
