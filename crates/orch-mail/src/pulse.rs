//! Pulses: a lifecycle event as the JSON object hydra-mail carries, its TOON text, and back.

use orch_core::{BusError, LifecycleEvent, Pulse};
use serde_json::{Map, Value};
use toon_format::types::{KeyFoldingMode, PathExpansionMode};
use toon_format::{DecodeOptions, EncodeOptions};

/// Encodes `event` as a pulse's TOON text (key folding "safe", indent 2, comma delimiter),
/// with a fresh uuid v4 `id` first and `timestamp` = the event's time in RFC 3339, so a
/// subscriber can tell a fresh pulse from a replayed one.
pub fn encode_pulse(event: &LifecycleEvent) -> Result<String, BusError> {
    let mut pulse = Map::new();
    pulse.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    pulse.insert("timestamp".into(), Value::String(event.at.to_rfc3339()));
    pulse.insert("type".into(), Value::String("status".into()));
    pulse.insert("channel".into(), Value::String(event.channel.as_str().into()));
    pulse.insert("data".into(), Value::Object(event.data.clone()));
    pulse.insert("metadata".into(), Value::Null);
    let options = EncodeOptions::new().with_key_folding(KeyFoldingMode::Safe);
    toon_format::encode(&Value::Object(pulse), &options).map_err(|e| BusError::Encode(e.to_string()))
}

/// Decodes one pulse's TOON text (folded `data.x` keys or nested `data:` blocks alike).
pub fn decode_pulse(text: &str) -> Result<Pulse, String> {
    let options = DecodeOptions::new().with_expand_paths(PathExpansionMode::Safe);
    let value: Value = toon_format::decode(text, &options).map_err(|e| e.to_string())?;
    let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(Pulse {
        id: field("id").ok_or("pulse has no id")?,
        channel: field("channel").ok_or("pulse has no channel")?,
        kind: field("type").unwrap_or_default(),
        timestamp: field("timestamp").unwrap_or_default(),
        data: value.get("data").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use orch_core::{Channel, SessionId, Timestamp};

    #[test]
    fn encodes_like_hydra_mail_and_round_trips() {
        let ev = LifecycleEvent::new(
            Channel::Spawned,
            &SessionId("a1b2c3d4".into()),
            Timestamp(1_795_498_045_871),
        );
        let text = encode_pulse(&ev).expect("encode");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("id: \""), "{text}");
        assert_eq!(lines[1], "timestamp: \"2026-11-24T05:27:25.871Z\"");
        assert_eq!(lines[2], "type: status");
        assert_eq!(lines[3], "channel: \"session:spawned\"");
        assert_eq!(lines[4], "data.session: a1b2c3d4");
        assert_eq!(lines[5], "metadata: null");
        let p = decode_pulse(&text).expect("decode");
        assert_eq!(p.channel, "session:spawned");
        assert_eq!(p.data["session"], "a1b2c3d4");
        assert_eq!(p.at(), Some(ev.at), "the pulse carries the event's time");
    }

    #[test]
    fn hostile_payload_round_trips() {
        let reason = "line1\nline2: \"quoted\" 'single' $(x) `y` ; ünïcødé \u{1b}[31m id: fake";
        let ev = LifecycleEvent::new(Channel::Killed, &SessionId("ab".into()), Timestamp(0)).with("reason", reason);
        let text = encode_pulse(&ev).expect("encode");
        // A hostile value never starts a line with `id: ` (the stream's frame boundary).
        assert_eq!(text.lines().filter(|l| l.starts_with("id: ")).count(), 1);
        let p = decode_pulse(&text).expect("decode");
        assert_eq!(p.data["reason"], reason);
    }
}
