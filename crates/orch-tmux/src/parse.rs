//! Parsing of tmux output, kept pure so it can be tested on captured output.

use orch_core::{MuxSnapshot, PaneInfo, Timestamp};

/// The tmux user option holding the owning project's tag on each session we create.
pub const TAG_OPTION: &str = "@hydra_project";

/// The `list-panes -F` format of a snapshot. The tag is written after an `@`, so an untagged
/// session still has a field there; the session name comes last, so spaces (or anything else
/// tmux allows) in a name cannot shift the other fields.
pub const SNAPSHOT_FORMAT: &str = "#{pane_pid} #{pane_dead} #{pane_dead_status} #{pane_dead_signal} \
     #{window_activity} @#{@hydra_project} #{session_name}";

/// Parses `list-panes -F SNAPSHOT_FORMAT` output: one entry per session, its first pane.
/// Lines that do not have the expected shape are skipped.
pub fn parse_snapshot(output: &str) -> MuxSnapshot {
    // Sized once: at a thousand sessions the doublings' copies were most of what the
    // snapshot's thread allocated.
    let lines = output.lines().count();
    let mut sessions: Vec<PaneInfo> = Vec::with_capacity(lines);
    let mut seen = std::collections::HashSet::with_capacity(lines);
    for line in output.lines() {
        let mut fields = line.splitn(7, ' ');
        let (Some(pid), Some(dead), Some(status), Some(signal), Some(activity), Some(tag), Some(name)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let Some(tag) = tag.strip_prefix('@') else {
            continue;
        };
        if !seen.insert(name) {
            continue;
        }
        sessions.push(PaneInfo {
            session: name.to_owned(),
            pane_pid: pid.parse().ok(),
            dead: dead == "1",
            exit_status: status.parse().ok(),
            exit_signal: signal.parse().ok(),
            activity: activity.parse().ok().map(Timestamp::from_secs),
            tag: (!tag.is_empty()).then(|| tag.to_owned()),
        });
    }
    MuxSnapshot::new(sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURED: &str = include_str!("../tests/data/list-panes.txt");

    #[test]
    fn parses_captured_output() {
        let snap = parse_snapshot(CAPTURED);
        let names: Vec<_> = snap.sessions().iter().map(|s| s.session.as_str()).collect();
        assert_eq!(
            names,
            [
                "colon_name",
                "hydralph-ab",
                "hydralph-abc",
                "hydralph-dead",
                "hydralph-killed",
                "with space",
                "ünïcødé"
            ]
        );
        let dead = snap.get("hydralph-dead").expect("dead pane listed");
        assert!(dead.dead);
        assert_eq!((dead.exit_status, dead.exit_signal), (Some(3), None));
        let killed = snap.get("hydralph-killed").expect("killed pane listed");
        assert!(killed.dead);
        assert_eq!((killed.exit_status, killed.exit_signal), (None, Some(9)));
        let ab = snap.get("hydralph-ab").expect("listed");
        assert!(!ab.dead);
        assert_eq!((ab.exit_status, ab.exit_signal), (None, None));
        assert_eq!(ab.tag.as_deref(), Some("5c1f0e2a9b3d4c6e"));
        assert_eq!(snap.get("hydralph-abc").expect("listed").tag, None, "untagged");
        assert_eq!(ab.pane_pid, Some(14438));
        assert_eq!(ab.activity, Some(Timestamp::from_secs(1_795_680_037)));
        // Exact match: the first pane of a split window wins, and prefixes never match.
        assert_eq!(snap.get("with space").and_then(|s| s.pane_pid), Some(14447));
        assert!(snap.get("hydralph-a").is_none());
    }

    #[test]
    fn empty_and_garbage_lines_are_skipped() {
        assert!(parse_snapshot("").sessions().is_empty());
        assert!(parse_snapshot("garbage\n1 0\n").sessions().is_empty());
        assert!(
            parse_snapshot("1 0  5 notag name\n").sessions().is_empty(),
            "a format without the tag's @"
        );
        assert!(
            parse_snapshot("1 0  5 @ name\n").sessions().is_empty(),
            "the format before the signal's field"
        );
    }
}
