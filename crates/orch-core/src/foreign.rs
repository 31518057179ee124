//! Sessions the original hydra tool started: records with no runtime directory of their own,
//! whose loop keeps one `status.json` and one `.pause` marker in `<dir>/.hydra/ralph/`, shared
//! by every session of that tool working in `<dir>`. What that directory shows is read as one
//! session's only when it can be told to be that session's.

use crate::ports::LoopReading;
use crate::record::SessionRecord;

/// What the original tool's loop directory shows (`raw`), as far as it is `rec`'s.
///
/// The report is `rec`'s when it names `rec`'s id, or when it names no session (the original
/// tool's own example does not), `rec` is the only live session of that tool working in the
/// directory (`sharers` counts them, `rec` included) and it was written after `rec` started.
/// A report of another session, or one that cannot be told apart, is dropped. The pause
/// marker is kept as it is: every loop in the directory obeys it.
pub fn foreign_reading(rec: &SessionRecord, raw: LoopReading, sharers: usize) -> LoopReading {
    let ours = match raw.report.as_ref().and_then(|r| r.session.as_deref()) {
        Some(session) => session == rec.id.as_str(),
        None => sharers <= 1 && raw.changed.is_some_and(|t| t >= rec.created()),
    };
    if ours && raw.report.is_some() {
        raw
    } else {
        LoopReading {
            report: None,
            changed: None,
            ..raw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;
    use crate::id::SessionId;
    use crate::loop_report::{LoopPhase, LoopReport};
    use crate::time::Timestamp;

    const T0: Timestamp = Timestamp(5_000_000);

    fn rec() -> SessionRecord {
        let mut r = SessionRecord::new(SessionId("a1b2c3d4".into()), &SessionConfig::default(), T0);
        r.runtime_dir = None;
        r
    }

    fn raw(session: Option<&str>, changed: Timestamp) -> LoopReading {
        let mut report = LoopReport::new(LoopPhase::Running, 3);
        report.session = session.map(str::to_owned);
        LoopReading::new(Some(report), Some(changed), 0).with_paused(Some(true))
    }

    #[test]
    fn a_report_naming_the_session_is_its_own_even_in_a_shared_directory() {
        let r = foreign_reading(
            &rec(),
            raw(Some("a1b2c3d4"), T0.plus(std::time::Duration::from_secs(1))),
            3,
        );
        assert_eq!(r.report.map(|r| r.iteration), Some(3));
    }

    #[test]
    fn a_report_naming_another_session_is_dropped_but_the_marker_kept() {
        let r = foreign_reading(
            &rec(),
            raw(Some("ffff0000"), T0.plus(std::time::Duration::from_secs(1))),
            1,
        );
        assert_eq!(r.report, None);
        assert_eq!(r.changed, None);
        assert_eq!(r.paused, Some(true), "the marker holds every loop of the directory");
    }

    #[test]
    fn an_unnamed_report_is_the_sole_sessions_when_written_after_it_started() {
        assert!(
            foreign_reading(&rec(), raw(None, T0.plus(std::time::Duration::from_secs(1))), 1)
                .report
                .is_some()
        );
        assert!(
            foreign_reading(&rec(), raw(None, Timestamp(T0.as_millis() - 1)), 1)
                .report
                .is_none(),
            "older than the session: an earlier session's"
        );
        assert!(
            foreign_reading(&rec(), raw(None, T0.plus(std::time::Duration::from_secs(1))), 2)
                .report
                .is_none(),
            "two sessions share the directory: cannot be told apart"
        );
        let unknown_time = LoopReading::new(Some(LoopReport::new(LoopPhase::Running, 1)), None, 0);
        assert!(foreign_reading(&rec(), unknown_time, 1).report.is_none());
    }
}
