//! Splitting a subscription stream into pulses. Messages are multi-line TOON with no length
//! prefix or terminator; a line at column 0 starting `id: ` begins a new pulse. A pulse is also
//! known to be complete once its top-level `metadata: <value>` line arrives after its `data`,
//! so live pulses are delivered without waiting for the next one.

/// Accumulates lines and hands out whole pulse texts.
#[derive(Debug, Default)]
pub struct Framer {
    lines: Vec<String>,
    seen_data: bool,
}

impl Framer {
    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one line (without its `\n`). Returns the previous pulse when this line starts a new
    /// one, and the current pulse when this line completes it.
    pub fn push_line(&mut self, line: &str) -> Vec<String> {
        let mut out = Vec::new();
        if line.starts_with("id: ") {
            out.extend(self.take());
        }
        if line.is_empty() && self.lines.is_empty() {
            return out;
        }
        if line.starts_with("data:") || line.starts_with("data.") || line.starts_with("data[") {
            self.seen_data = true;
        }
        let ends = self.seen_data && line.starts_with("metadata: ") && line.len() > "metadata: ".len();
        self.lines.push(line.to_owned());
        if ends {
            out.extend(self.take());
        }
        out
    }

    /// Whatever is buffered, as one pulse text (used when the stream goes quiet or ends).
    pub fn take(&mut self) -> Option<String> {
        self.seen_data = false;
        if self.lines.is_empty() {
            return None;
        }
        let text = self.lines.join("\n");
        self.lines.clear();
        Some(text)
    }

    /// Whether a partial pulse is buffered.
    pub fn has_partial(&self) -> bool {
        !self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pulse::decode_pulse;

    fn split(stream: &str) -> Vec<String> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for line in stream.split('\n') {
            out.extend(f.push_line(line));
        }
        out.extend(f.take());
        out
    }

    #[test]
    fn captured_history_splits_into_three_pulses() {
        let pulses = split(include_str!("../tests/data/subscribe-history.stream"));
        assert_eq!(pulses.len(), 3, "{pulses:#?}");
        let decoded: Vec<_> = pulses.iter().map(|p| decode_pulse(p).expect("decodes")).collect();
        assert_eq!(decoded[0].data["session"], "a1b2c3d4");
        assert_eq!(decoded[1].data["reason"], "line1\nline2: \"quoted\"");
        assert_eq!(decoded[1].data["tags"], serde_json::json!(["x", "y"]));
        assert_eq!(decoded[2].data["info"]["lines"], 3);
        assert_eq!(decoded[2].data["objs"][1]["b"], "y");
    }

    #[test]
    fn captured_live_stream_splits_into_two_pulses() {
        let pulses = split(include_str!("../tests/data/subscribe-live.stream"));
        assert_eq!(pulses.len(), 2);
        assert_eq!(decode_pulse(&pulses[1]).expect("decodes").data["iteration"], 4);
    }

    #[test]
    fn a_pulse_is_complete_at_its_metadata_line() {
        let mut f = Framer::new();
        for l in ["id: \"1\"", "channel: c", "data.session: a"] {
            assert!(f.push_line(l).is_empty());
        }
        assert_eq!(f.push_line("metadata: null").len(), 1);
        assert!(!f.has_partial());
    }

    #[test]
    fn nested_metadata_waits_for_the_next_id() {
        let mut f = Framer::new();
        for l in ["id: \"1\"", "data:", "  a: 1", "metadata:", "  k: v"] {
            assert!(f.push_line(l).is_empty());
        }
        assert_eq!(f.push_line("id: \"2\"").len(), 1);
        assert!(f.has_partial());
    }
}
