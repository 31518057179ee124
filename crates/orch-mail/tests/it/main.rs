//! Tests of the hydra-mail adapter against a real Unix-socket peer: the protocol-faithful test
//! daemon of `orch_mail::test_daemon`, started per test in a temp dir.

use orch_core::{Channel, EventBus, LifecycleEvent, Pulse, SessionId, Subscription, Timestamp};
use orch_mail::test_daemon::TestDaemon;
use orch_mail::{decode_pulse, discover, Discovery, MailBus, MailOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn socket(dir: &Path) -> PathBuf {
    dir.join("hydra.sock")
}

fn event(channel: Channel, session: &str) -> LifecycleEvent {
    LifecycleEvent::new(channel, &SessionId(session.into()), Timestamp(0))
}

fn quick_options() -> MailOptions {
    MailOptions {
        max_backoff: Duration::from_millis(50),
        silence_timeout: Duration::from_millis(500),
        ..MailOptions::default()
    }
}

fn bus(sock: &Path) -> MailBus {
    MailBus::with_options(sock, quick_options())
}

/// Next pulse, or a failure after `WAIT`.
async fn next(sub: &mut Box<dyn Subscription>) -> Pulse {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("pulse in time")
        .expect("subscription open")
}

#[test]
fn every_lifecycle_event_arrives_on_its_channel() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = TestDaemon::start(&socket(dir.path())).expect("daemon");
    let bus = bus(daemon.socket());
    for (i, ch) in Channel::ALL.iter().enumerate() {
        bus.publish(&event(*ch, &format!("s{i}"))).expect("publish");
    }
    bus.flush(WAIT).expect("flushed");
    for (i, ch) in Channel::ALL.iter().enumerate() {
        let msgs = daemon.history(ch.as_str());
        assert_eq!(msgs.len(), 1, "{ch}");
        let p = decode_pulse(&msgs[0]).expect("decodes");
        assert_eq!(p.channel, ch.as_str());
        assert_eq!(p.data["session"], format!("s{i}"));
        assert_eq!(p.kind, "status");
    }
    assert_eq!(bus.stats().delivered, Channel::ALL.len() as u64);
    assert_eq!(bus.stats().connects, 1, "one persistent connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payload_round_trips_through_daemon_and_subscriber() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = TestDaemon::start(&socket(dir.path())).expect("daemon");
    let bus = bus(daemon.socket());
    let mut sub = bus.subscribe(&["session:injected"]).expect("subscribe");
    let message = "it's \"quoted\"\nnew: line; $(rm -rf /) `x` ünïcødé ✓ \u{1b}[31m\nid: not-a-boundary";
    // Publishing from inside a runtime must neither panic nor block.
    bus.publish(&event(Channel::Injected, "ab12").with("message", message))
        .expect("publish");
    let p = next(&mut sub).await;
    assert_eq!(p.data["session"], "ab12");
    assert_eq!(p.data["message"], message);
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_absent_then_started_then_restarted_mid_stream() {
    let dir = tempfile::tempdir().expect("tmp");
    let sock = socket(dir.path());
    let bus = bus(&sock);
    let mut slowest = Duration::ZERO;
    let mut publish = |n: usize| {
        let t = Instant::now();
        bus.publish(&event(Channel::Spawned, &format!("n{n}")))
            .expect("publish");
        slowest = slowest.max(t.elapsed());
    };
    // No daemon: events wait in the queue.
    for n in 0..5 {
        publish(n);
    }
    let daemon = TestDaemon::start(&sock).expect("daemon");
    assert_eq!(
        daemon.wait_for("session:spawned", 5, WAIT).len(),
        5,
        "queued events delivered once the daemon is up"
    );
    let mut sub = bus.subscribe(&["session:spawned"]).expect("subscribe");
    for n in 0..5 {
        assert_eq!(
            next(&mut sub).await.data["session"],
            format!("n{n}"),
            "history replayed in order"
        );
    }
    // Crash the daemon mid-stream, publish while it is down, start a new one.
    let mut daemon = daemon;
    daemon.stop();
    for n in 5..10 {
        publish(n);
    }
    let daemon = TestDaemon::start(&sock).expect("restart");
    for n in 10..15 {
        publish(n);
    }
    let got = daemon.wait_for("session:spawned", 10, WAIT);
    assert!(got.len() >= 5, "events after the restart arrive: {}", got.len());
    let mut seen = Vec::new();
    while !seen.contains(&"n14".to_string()) {
        seen.push(next(&mut sub).await.data["session"].as_str().expect("str").to_owned());
    }
    assert!(
        seen.iter().all(|s| s.as_str() >= "n10" || s.as_str() >= "n5"),
        "{seen:?}"
    );
    assert!(slowest < Duration::from_millis(50), "a publish blocked for {slowest:?}");
}

#[test]
fn oversized_message_surfaces_the_daemons_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = TestDaemon::start(&socket(dir.path())).expect("daemon");
    let bus = MailBus::with_options(daemon.socket(), quick_options());
    bus.publish(&event(Channel::Injected, "big").with("message", "x".repeat(11_000)))
        .expect("publish");
    bus.publish(&event(Channel::Injected, "small")).expect("publish");
    bus.flush(WAIT).expect("flushed");
    let stats = bus.stats();
    assert_eq!((stats.refused, stats.delivered), (1, 1));
    assert!(stats.errors[0].starts_with("Message too large:"), "{:?}", stats.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_multi_line_pulses_are_neither_merged_nor_split() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = TestDaemon::start(&socket(dir.path())).expect("daemon");
    let bus = bus(daemon.socket());
    let mut sub = bus.subscribe(&["session:iteration"]).expect("subscribe");
    // Give the subscription a moment to register, then send without pause.
    while daemon.history("session:iteration").is_empty() {
        bus.publish(&event(Channel::Iteration, "warm").with("seq", -1))
            .expect("publish");
        bus.flush(WAIT).expect("flush");
    }
    assert_eq!(next(&mut sub).await.data["seq"], -1);
    for seq in 0..1000 {
        let ev = event(Channel::Iteration, "many")
            .with("seq", seq)
            .with("reason", format!("line a\nline b {seq}"))
            .with("stories", "1/3");
        bus.publish(&ev).expect("publish");
    }
    let mut got = Vec::new();
    while got.len() < 1000 {
        let p = next(&mut sub).await;
        if p.data["seq"] == -1 {
            continue;
        }
        assert_eq!(p.data["reason"], format!("line a\nline b {}", got.len()));
        got.push(p.data["seq"].as_i64().expect("seq"));
    }
    assert_eq!(got, (0..1000).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stream_is_resubscribed() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = TestDaemon::start(&socket(dir.path())).expect("daemon");
    let bus = bus(daemon.socket());
    bus.publish(&event(Channel::Stuck, "a")).expect("publish");
    bus.flush(WAIT).expect("flush");
    let mut sub = bus.subscribe(&["session:stuck"]).expect("subscribe");
    assert_eq!(next(&mut sub).await.data["session"], "a");
    // The daemon stops feeding this subscriber without closing it (it fell behind).
    daemon.forget_subscribers();
    bus.publish(&event(Channel::Stuck, "b")).expect("publish");
    bus.flush(WAIT).expect("flush");
    // After the silence timeout the subscriber resubscribes, gets "b" from history, and
    // drops the replayed "a" as a duplicate.
    assert_eq!(next(&mut sub).await.data["session"], "b");
}

#[test]
fn full_queue_drops_the_oldest_and_counts_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let sock = socket(dir.path());
    let opts = MailOptions {
        queue_capacity: 10,
        ..quick_options()
    };
    let bus = MailBus::with_options(&sock, opts);
    for n in 0..25 {
        bus.publish(&event(Channel::Spawned, &format!("q{n:02}")))
            .expect("publish");
    }
    assert_eq!(bus.stats().dropped, 15);
    let daemon = TestDaemon::start(&sock).expect("daemon");
    bus.flush(WAIT).expect("flush");
    let sessions: Vec<String> = daemon
        .history("session:spawned")
        .iter()
        .map(|t| {
            decode_pulse(t).expect("decodes").data["session"]
                .as_str()
                .expect("str")
                .to_owned()
        })
        .collect();
    assert_eq!(sessions, (15..25).map(|n| format!("q{n:02}")).collect::<Vec<_>>());
}

#[test]
fn flush_is_bounded_when_the_daemon_is_absent() {
    let dir = tempfile::tempdir().expect("tmp");
    let bus = bus(&socket(dir.path()));
    bus.publish(&event(Channel::Spawned, "x")).expect("publish");
    let err = bus
        .flush(Duration::from_millis(100))
        .expect_err("nothing to deliver to");
    assert!(err.to_string().contains("not delivered"), "{err}");
}

#[test]
fn discovery_reads_config_toml() {
    let dir = tempfile::tempdir().expect("tmp");
    assert_eq!(
        discover(dir.path()),
        Discovery::NotConfigured,
        "no config: not configured"
    );
    let sock = socket(dir.path());
    TestDaemon::write_config(dir.path(), &sock).expect("config");
    let Discovery::Down { why } = discover(dir.path()) else {
        panic!("no socket yet: down");
    };
    assert!(why.contains("daemon is not running"), "{why}");
    let _daemon = TestDaemon::start(&sock).expect("daemon");
    assert_eq!(discover(dir.path()), Discovery::Daemon(sock));
}

// The test daemon itself must behave like hydra-mail, or the tests above prove nothing.

fn raw(sock: &Path, request: &[u8]) -> String {
    let mut c = UnixStream::connect(sock).expect("connect");
    c.set_read_timeout(Some(WAIT)).expect("timeout");
    c.write_all(request).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    out
}

#[test]
fn test_daemon_answers_like_hydra_mail() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = TestDaemon::start(&socket(dir.path())).expect("daemon");
    let sock = daemon.socket().to_path_buf();
    // The captured two-emit request gets two replies, in order, on one connection.
    let replies = raw(&sock, include_bytes!("../data/emit-two-requests.request"));
    let lines: Vec<serde_json::Value> = replies
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["size"], 157);
    assert_eq!(lines[1]["size"], 175);
    assert_eq!(lines[0]["status"], "ok");
    let unknown: serde_json::Value =
        serde_json::from_str(raw(&sock, b"{\"cmd\":\"frobnicate\"}\n").trim()).expect("json");
    assert_eq!(
        unknown,
        serde_json::json!({"status": "error", "msg": "Unknown command"})
    );
    assert_eq!(
        raw(&sock, b"{not json\n"),
        "",
        "malformed JSON: dropped without a reply"
    );
    assert_eq!(
        raw(
            &sock,
            b"{\"cmd\":\"emit\",\"channel\":\"c\",\"format\":\"toon\",\"data\":\"!!!\"}\n"
        ),
        "",
        "bad base64: dropped"
    );
    assert_eq!(
        raw(&sock, b"{\"cmd\":\"emit\",\"channel\":\"c\"}\n"),
        "",
        "missing field: dropped"
    );
    let stats: serde_json::Value = serde_json::from_str(raw(&sock, b"{\"cmd\":\"stats\"}\n").trim()).expect("json");
    assert_eq!(stats["status"], "ok");
    assert_eq!(stats["channels"][0]["channel"], "cap:test");
    assert_eq!(stats["channels"][0]["replay_buffer_size"], 2);
    // A subscriber gets the history back to back, each message followed by a newline.
    let mut c = UnixStream::connect(&sock).expect("connect");
    c.write_all(b"{\"cmd\":\"subscribe\",\"channel\":\"cap:test\"}\n")
        .expect("write");
    let mut reader = BufReader::new(c);
    let mut text = String::new();
    for _ in 0..14 {
        reader.read_line(&mut text).expect("line");
    }
    assert_eq!(text, include_str!("../data/subscribe-live.stream"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_a_pulse_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().expect("tmp");
    let daemon = TestDaemon::start(&socket(dir.path())).expect("daemon");
    let bus = bus(daemon.socket());
    let mut sub = bus.subscribe(&["session:killed"]).expect("subscribe");
    // Another tool's message: TOON that is not a pulse (no id, no channel), then broken TOON.
    bus.publish_raw("session:killed", "note: hello\nmetadata: null");
    bus.publish_raw("session:killed", "id: \"x\"\nitems[3]: a,b\nmetadata: [");
    bus.publish(&event(Channel::Killed, "after")).expect("publish");
    assert_eq!(next(&mut sub).await.data["session"], "after");
    drop(daemon);
}
