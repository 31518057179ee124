//! Pulses: a lifecycle event as the JSON object hydra-mail carries, its TOON text, and back.

use orch_core::{BusError, LifecycleEvent, Pulse};
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};
use toon_format::types::{KeyFoldingMode, PathExpansionMode};
use toon_format::{DecodeOptions, EncodeOptions};

/// `t` as RFC 3339 UTC with nanoseconds, e.g. `2026-11-24T06:27:25.871368348Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian), by 400-year eras.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Encodes `event` as a pulse's TOON text (key folding "safe", indent 2, comma delimiter),
/// with a fresh uuid v4 `id` first and `timestamp` = `now`.
pub fn encode_pulse(event: &LifecycleEvent, now: SystemTime) -> Result<String, BusError> {
    let mut pulse = Map::new();
    pulse.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    pulse.insert("timestamp".into(), Value::String(rfc3339(now)));
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
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(1_795_501_645, 871_368_348);
        assert_eq!(rfc3339(t), "2026-11-24T06:27:25.871368348Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn encodes_like_hydra_mail_and_round_trips() {
        let ev = LifecycleEvent::new(Channel::Spawned, &SessionId("a1b2c3d4".into()), Timestamp(0));
        let text = encode_pulse(&ev, UNIX_EPOCH + Duration::from_secs(1_795_501_645)).expect("encode");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("id: \""), "{text}");
        assert_eq!(lines[1], "timestamp: \"2026-11-24T06:27:25.000000000Z\"");
        assert_eq!(lines[2], "type: status");
        assert_eq!(lines[3], "channel: \"session:spawned\"");
        assert_eq!(lines[4], "data.session: a1b2c3d4");
        assert_eq!(lines[5], "metadata: null");
        let p = decode_pulse(&text).expect("decode");
        assert_eq!(p.channel, "session:spawned");
        assert_eq!(p.data["session"], "a1b2c3d4");
    }

    #[test]
    fn hostile_payload_round_trips() {
        let reason = "line1\nline2: \"quoted\" 'single' $(x) `y` ; ünïcødé \u{1b}[31m id: fake";
        let ev = LifecycleEvent::new(Channel::Killed, &SessionId("ab".into()), Timestamp(0)).with("reason", reason);
        let text = encode_pulse(&ev, SystemTime::now()).expect("encode");
        // A hostile value never starts a line with `id: ` (the stream's frame boundary).
        assert_eq!(text.lines().filter(|l| l.starts_with("id: ")).count(), 1);
        let p = decode_pulse(&text).expect("decode");
        assert_eq!(p.data["reason"], reason);
    }
}
