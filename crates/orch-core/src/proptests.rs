//! Property tests: random event sequences folded through [`crate::apply`], and random
//! observation sequences through [`crate::assess`], with the invariants checked at every step.

use crate::health::{assess, HealthPolicy, MuxObservation, Observation};
use crate::loop_report::{LoopPhase, LoopReport};
use crate::state::{apply, Event, SessionState};
use crate::time::Timestamp;
use crate::{SessionConfig, SessionId, SessionRecord};
use proptest::prelude::*;
use std::time::Duration;

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0u32..20, proptest::option::of("[0-9]/[0-9]"))
            .prop_map(|(iteration, stories)| Event::LoopRunning { iteration, stories }),
        (0u32..20).prop_map(|iteration| Event::LoopBlocked {
            iteration,
            reason: "r".into()
        }),
        (0u32..20).prop_map(|iterations| Event::LoopCompleted { iterations }),
        (0u32..20).prop_map(|iterations| Event::LoopMaxIterations { iterations }),
        Just(Event::Pause),
        Just(Event::Resume),
        (0u64..5_000, 1u64..3_000).prop_map(|(t, s)| Event::Idle {
            last_activity: Timestamp(t),
            stuck_after: Duration::from_millis(s)
        }),
        Just(Event::Activity),
        Just(Event::MuxGone {
            reason: "tmux session ended unexpectedly".into()
        }),
        (0u64..5_000, 1u64..3_000).prop_map(|(t, s)| Event::DurationExceeded {
            created: Timestamp(t),
            max: Duration::from_millis(s)
        }),
        Just(Event::Kill { reason: "k".into() }),
    ]
}

/// The oracle: DESIGN.md §3's table (plus the documented extensions), as (state, event) →
/// the name of the state it leads to, or `None` when refused. Time conditions aside.
fn oracle(state: &str, event: &Event) -> Option<&'static str> {
    let live = !matches!(state, "completed" | "max-iterations" | "failed");
    if !live {
        return None;
    }
    match (state, event) {
        ("starting" | "running" | "stuck", Event::LoopRunning { .. }) => Some("running"),
        ("starting" | "running" | "stuck", Event::Pause) => Some("paused"),
        ("paused" | "blocked", Event::Resume) => Some("running"),
        ("running", Event::Idle { .. }) => Some("stuck"),
        ("stuck", Event::Activity) => Some("running"),
        ("running" | "stuck" | "paused", Event::LoopBlocked { .. }) => Some("blocked"),
        ("starting" | "running" | "stuck" | "paused", Event::LoopCompleted { .. }) => Some("completed"),
        ("starting" | "running" | "stuck" | "paused", Event::LoopMaxIterations { .. }) => Some("max-iterations"),
        (_, Event::MuxGone { .. } | Event::DurationExceeded { .. } | Event::Kill { .. }) => Some("failed"),
        _ => None,
    }
}

fn time_condition_holds(event: &Event, now: Timestamp) -> bool {
    match event {
        Event::Idle {
            last_activity,
            stuck_after,
        } => now.since(*last_activity).is_some_and(|d| d >= *stuck_after),
        Event::DurationExceeded { created, max } => now.since(*created).is_some_and(|d| d > *max),
        _ => true,
    }
}

proptest! {
    #[test]
    fn event_sequences_follow_the_table(steps in proptest::collection::vec((arb_event(), 0u64..10_000), 0..60)) {
        let mut state = SessionState::Starting;
        for (event, now) in steps {
            let now = Timestamp(now);
            let before = state.clone();
            match apply(&state, &event, now) {
                Ok(next) => {
                    // Terminal states never move.
                    prop_assert!(!before.is_terminal());
                    let expected = oracle(before.name(), &event);
                    prop_assert_eq!(Some(next.name()), expected, "{:?} + {:?}", before, event);
                    prop_assert!(time_condition_holds(&event, now));
                    // Stuck is entered only from Running, only past the threshold.
                    if matches!(next, SessionState::Stuck { .. }) {
                        prop_assert!(matches!(before, SessionState::Running { .. }), "entered stuck from {:?}", before);
                        prop_assert!(matches!(event, Event::Idle { .. }), "entered stuck on {:?}", event);
                    }
                    // Pause/resume keep the iteration.
                    if matches!(event, Event::Pause | Event::Resume) {
                        prop_assert_eq!(next.iteration(), before.iteration());
                    }
                    state = next;
                }
                Err(_) => {
                    // A refused event is refused by the table (or its time condition), and
                    // the caller's state is untouched.
                    let refused_by_table = oracle(before.name(), &event).is_none();
                    prop_assert!(refused_by_table || !time_condition_holds(&event, now), "{:?} refused {:?}", before, event);
                    prop_assert_eq!(&state, &before);
                }
            }
        }
    }

    #[test]
    fn terminal_states_absorb_everything(events in proptest::collection::vec(arb_event(), 1..30), which in 0usize..3) {
        let terminal = [
            SessionState::Completed { iterations: 1 },
            SessionState::MaxIterations { iterations: 1 },
            SessionState::Failed { reason: "x".into() },
        ][which].clone();
        for ev in events {
            prop_assert!(apply(&terminal, &ev, Timestamp(u64::MAX / 2)).is_err());
        }
    }

    #[test]
    fn stuck_reports_match_an_independent_model(steps in proptest::collection::vec((0u64..400, any::<bool>()), 1..80)) {
        // A running session observed repeatedly: time moves on, the pane sometimes prints.
        // The model below decides on its own when an episode of silence starts and ends; the
        // system must publish exactly one session:stuck per episode, at the same steps.
        let mut rec = SessionRecord::new(SessionId("p1".into()), &SessionConfig::default(), Timestamp(1_000_000));
        // One of ours (the original tool's sessions are read differently; see `foreign`).
        rec.runtime_dir = Some("/project/.hydra/ralph/p1".into());
        rec.stuck_after_secs = Some(60);
        rec.max_duration_secs = 1_000_000;
        rec.state = SessionState::Running { iteration: 1, stories: None };
        let mut now = rec.created();
        let mut model_last = now;
        let mut model_stuck_since: Option<Timestamp> = None;
        for (secs, prints) in steps {
            now = now.plus(Duration::from_secs(secs));
            if prints {
                model_last = now;
            }
            let expect_stuck_report = model_stuck_since.is_none() && now.since(model_last).is_some_and(|d| d >= Duration::from_secs(60));
            let expect_unstuck = model_stuck_since.is_some_and(|since| model_last > since);
            if expect_stuck_report {
                model_stuck_since = Some(now);
            } else if expect_unstuck {
                model_stuck_since = None;
            }
            let activity = if prints { Some(now) } else { None };
            let obs = Observation::of(MuxObservation::Alive { activity });
            let a = assess(&rec, &obs, now, 1, &HealthPolicy::default());
            let channels: Vec<_> = a.events.iter().map(|e| e.channel.as_str()).collect();
            let expected: Vec<&str> = match (expect_stuck_report, expect_unstuck) {
                (true, _) => vec!["session:stuck"],
                (false, true) => vec!["session:unstuck"],
                _ => vec![],
            };
            prop_assert_eq!(channels, expected, "at {:?}, last activity {:?}", now, model_last);
            prop_assert_eq!(matches!(a.record.state, SessionState::Stuck { .. }), model_stuck_since.is_some());
            rec = a.record;
        }
    }

    #[test]
    fn time_going_back_never_decides(back in 1u64..1_000_000, phase in 0usize..3, iteration in 0u32..5) {
        let mut rec = SessionRecord::new(SessionId("p2".into()), &SessionConfig::default(), Timestamp(5_000_000));
        // One of ours (the original tool's sessions are read differently; see `foreign`).
        rec.runtime_dir = Some("/project/.hydra/ralph/p2".into());
        rec.stuck_after_secs = Some(1);
        rec.max_duration_secs = 1;
        rec.state = [
            SessionState::Running { iteration, stories: None },
            SessionState::Stuck { since: Timestamp(5_000_000), last_iteration: iteration },
            SessionState::Starting,
        ][phase].clone();
        let now = Timestamp(5_000_000 - back);
        let obs = Observation::of(MuxObservation::Alive { activity: Some(Timestamp(5_000_000)) });
        let a = assess(&rec, &obs, now, 1, &HealthPolicy::default());
        prop_assert!(a.events.is_empty(), "{:?}", a.events);
    }

    #[test]
    fn assess_events_chain_through_apply(
        state_pick in 0usize..8,
        mux_pick in 0usize..3,
        phase_pick in proptest::option::of(0usize..6),
        iteration in 0u32..10,
        now in 0u64..20_000_000,
        activity in proptest::option::of(0u64..20_000_000),
    ) {
        let states = [
            SessionState::Starting,
            SessionState::Running { iteration, stories: None },
            SessionState::Paused { iteration, stories: None },
            SessionState::Stuck { since: Timestamp(1), last_iteration: iteration },
            SessionState::Blocked { iteration, reason: "r".into() },
            SessionState::Completed { iterations: iteration },
            SessionState::MaxIterations { iterations: iteration },
            SessionState::Failed { reason: "f".into() },
        ];
        let mut rec = SessionRecord::new(SessionId("p3".into()), &SessionConfig::default(), Timestamp(1_000));
        // One of ours (the original tool's sessions are read differently; see `foreign`).
        rec.runtime_dir = Some("/project/.hydra/ralph/p3".into());
        rec.state = states[state_pick].clone();
        rec.iteration = rec.state.iteration();
        let mux = [MuxObservation::Alive { activity: activity.map(Timestamp) }, MuxObservation::Exited { status: Some(1), signal: None }, MuxObservation::Gone][mux_pick];
        let phases = [LoopPhase::Started, LoopPhase::Running, LoopPhase::Paused, LoopPhase::Complete, LoopPhase::Blocked, LoopPhase::MaxIterations];
        let mut obs = Observation::of(mux);
        if let Some(p) = phase_pick {
            obs = obs.with_report(LoopReport::new(phases[p], iteration + 1));
        }
        let a = assess(&rec, &obs, Timestamp(now), 1, &HealthPolicy::default());
        // Every event is one legal step of the table, from the state the previous one left.
        let mut state = rec.state.clone();
        for ev in &a.events {
            prop_assert_eq!(ev.data["from"].as_str(), Some(state.name()));
            let to = ev.data["state"].as_str().unwrap_or_default().to_owned();
            prop_assert!(!state.is_terminal(), "an event out of terminal {:?}", state);
            state = states.iter().find(|s| s.name() == to).cloned().unwrap_or(SessionState::Failed { reason: String::new() });
        }
        prop_assert_eq!(state.name(), a.record.state.name());
        if rec.state.is_terminal() { prop_assert!(a.events.is_empty()); }
        // A live session whose tmux session is gone never stays live.
        if matches!(mux, MuxObservation::Gone) { prop_assert!(a.record.state.is_terminal()); }
        // The iteration a record knows never goes down.
        prop_assert!(a.record.iteration >= rec.iteration);
    }

    #[test]
    fn where_a_process_probe_suffices_pane_output_never_changes_the_judgement(
        state_pick in 0usize..8,
        since_activity in 0u64..3_000_000,
        stuck_secs in 1u64..3_000,
        waiting in any::<bool>(),
        frozen in any::<bool>(),
        printed_ago in proptest::option::of(0u64..3_000_000),
        phase_pick in proptest::option::of(0usize..6),
    ) {
        // The fast path of `status`/`pause`/`resume` judges a session without tmux's view of
        // its pane's output. Wherever it is allowed, any output the pane might have shown
        // must lead to the same state and events as none at all.
        let states = [
            SessionState::Starting,
            SessionState::Running { iteration: 2, stories: None },
            SessionState::Paused { iteration: 2, stories: None },
            SessionState::Stuck { since: Timestamp(1), last_iteration: 2 },
            SessionState::Blocked { iteration: 2, reason: "r".into() },
            SessionState::Completed { iterations: 2 },
            SessionState::MaxIterations { iterations: 2 },
            SessionState::Failed { reason: "f".into() },
        ];
        let created = Timestamp(1_000_000_000);
        let mut rec = SessionRecord::new(SessionId("p4".into()), &SessionConfig::default(), created);
        rec.runtime_dir = Some("/project/.hydra/ralph/p4".into());
        rec.state = states[state_pick].clone();
        rec.iteration = rec.state.iteration();
        rec.stuck_after_secs = Some(stuck_secs);
        rec.frozen = frozen && matches!(rec.state, SessionState::Paused { .. });
        rec.pane_process = Some(crate::PaneProcess { pid: 77, start: 5 });
        rec.last_activity = created.plus(Duration::from_millis(1_000));
        if let SessionState::Stuck { since, .. } = &mut rec.state {
            // Stuck since just after its last activity: output after that would unstick it.
            *since = rec.last_activity.plus(Duration::from_millis(1));
        }
        if waiting {
            rec.waiting = Some(crate::Waiting { until: created.plus(Duration::from_secs(9_999)), reason: "limit".into(), since: created });
        }
        let now = rec.last_activity.plus(Duration::from_millis(since_activity));
        let policy = HealthPolicy::default();
        prop_assume!(crate::process_probe_suffices(&rec, now, &policy));
        let phases = [LoopPhase::Started, LoopPhase::Running, LoopPhase::Paused, LoopPhase::Complete, LoopPhase::Blocked, LoopPhase::MaxIterations];
        let observe = |activity: Option<Timestamp>| {
            let mut obs = Observation { pgid: Some(77), ..Observation::of(MuxObservation::Alive { activity }) };
            if let Some(p) = phase_pick {
                obs = obs.with_report(LoopReport::new(phases[p], 2));
            }
            assess(&rec, &obs, now, 1, &policy)
        };
        let quiet = observe(None);
        let printed = observe(printed_ago.map(|ago| Timestamp(now.as_millis().saturating_sub(ago))));
        prop_assert_eq!(&quiet.record.state, &printed.record.state);
        let channels = |a: &crate::Assessment| a.events.iter().map(|e| e.channel.as_str().to_owned()).collect::<Vec<_>>();
        prop_assert_eq!(channels(&quiet), channels(&printed));
        prop_assert_eq!(quiet.killed, printed.killed);
        prop_assert_eq!(quiet.thaw, printed.thaw);
        prop_assert_eq!(quiet.run_cleanup, printed.run_cleanup);
    }
}

proptest! {
    // Many cases: the ones where a single field changes are a small share of them.
    #![proptest_config(ProptestConfig::with_cases(8192))]
    #[test]
    fn judging_in_place_says_changed_exactly_when_the_record_changed(
        state_pick in 0usize..8,
        mux_pick in 0usize..4,
        phase_pick in 0usize..7,
        reported in any::<bool>(),
        iteration in 0u32..4,
        gap_s in 0u64..800,
        activity_s in 0u64..4_000,
        paused_marker in proptest::option::of(any::<bool>()),
        booked in proptest::collection::vec(0usize..3, 4),
        run in proptest::option::of(0u32..3),
        flags in proptest::collection::vec(any::<bool>(), 9),
        lease_s in 0u64..4_000,
        same in proptest::collection::vec(proptest::bool::weighted(0.85), 7),
    ) {
        // A record and an observation drawn from everything the rules read, including what
        // earlier looks booked (progress, usage, a wait, leases, a freeze, the pane's
        // program). Each value the observation brings is mostly the one already booked, so
        // that often a single field is the only one to change: the fast decision of a
        // refresh must say "changed" exactly when the whole record differs.
        let states = [
            SessionState::Starting,
            SessionState::Running { iteration, stories: None },
            SessionState::Paused { iteration, stories: Some("1/2".into()) },
            SessionState::Stuck { since: Timestamp(2_000_000), last_iteration: iteration },
            SessionState::Blocked { iteration, reason: "r".into() },
            SessionState::Completed { iterations: iteration },
            SessionState::MaxIterations { iterations: iteration },
            SessionState::Failed { reason: "f".into() },
        ];
        let phases = [LoopPhase::Started, LoopPhase::Running, LoopPhase::Paused, LoopPhase::Complete, LoopPhase::Blocked, LoopPhase::MaxIterations, LoopPhase::Waiting];
        let t = |s: u64| Timestamp(1_000_000 + s * 1_000);
        let mut rec = SessionRecord::new(SessionId("p5".into()), &SessionConfig::default(), t(0));
        if !flags[0] {
            rec.runtime_dir = Some("/project/.hydra/ralph/p5".into());
        }
        rec.state = states[state_pick].clone();
        rec.iteration = rec.state.iteration();
        rec.stuck_after_secs = Some(600);
        rec.max_duration_secs = if flags[8] { 3_000 } else { 100_000 };
        rec.last_activity = t(activity_s);
        rec.queued = booked[0];
        rec.stories = [None, Some("2/3".to_owned()), Some("1/2".to_owned())][booked[1]].clone();
        rec.cost_micros = [None, Some(250_000), Some(1_500_000)][booked[2]];
        rec.tokens = [None, Some(1), Some(2)][booked[3]];
        rec.loop_phase = if same[0] { Some(phases[phase_pick]) } else { None };
        rec.frozen = flags[1];
        if flags[2] {
            rec.waiting = Some(crate::Waiting { until: t(5_000), reason: "limit".into(), since: t(10) });
            rec.waited_ms = 5;
        }
        if flags[3] {
            rec.spawning = Some(crate::Lease::new(if flags[4] { 1 } else { 2 }, t(lease_s)));
        }
        if flags[5] {
            rec.cleanup = Some(crate::Cleanup::new(crate::Lease::new(if flags[4] { 1 } else { 2 }, t(lease_s))));
        }
        if flags[6] {
            rec.pane_process = Some(crate::PaneProcess { pid: 77, start: 5 });
        }
        let later = |s: bool| (!s).then(|| t(activity_s + 1));
        let mux = [
            MuxObservation::Alive { activity: later(same[1]) },
            MuxObservation::Exited { status: Some(1), signal: None },
            MuxObservation::Gone,
            MuxObservation::Unknown,
        ][mux_pick];
        let mut obs = Observation {
            pgid: Some(77),
            spawn_owner_alive: flags[7],
            cleanup_owner_alive: flags[7],
            pane_process: flags[6].then_some(crate::PaneProcess { pid: if same[2] { 77 } else { 78 }, start: 5 }),
            ..Observation::of(mux)
        };
        if reported {
            let mut report = LoopReport::new(phases[phase_pick], iteration);
            report.stories = if same[3] { rec.stories.clone() } else { Some("3/3".into()) };
            report.cost = if same[4] { rec.cost_micros.map(crate::record::usd_text) } else { Some("0.75".into()) };
            report.tokens = if same[5] { rec.tokens } else { Some(7) };
            report.run = run;
            report.until = Some(5);
            report.reason = Some("limit".into());
            obs = obs.with_report(report);
        }
        obs.reading.changed = later(same[6]);
        obs.reading.queued = if same[6] { rec.queued } else { rec.queued + 1 };
        obs.reading.paused = paused_marker;
        let a = crate::health::assess_owned(rec.clone(), &obs, t(activity_s + gap_s), 1, &HealthPolicy::default());
        prop_assert_eq!(a.changed, a.record != rec, "{:?}", a.record);
    }
}

/// A PRD's text from (id, passes, priority) stories, with varied spacing and an extra field,
/// and the ids.
fn arb_prd_text() -> impl Strategy<Value = (String, Vec<(String, bool)>)> {
    (
        prop::collection::vec((any::<bool>(), prop::option::of(0i64..5), 0usize..3), 1..10),
        prop::sample::select(vec!["", " ", "\n    ", "\t"]),
    )
        .prop_map(|(stories, ws)| {
            let items: Vec<String> = stories
                .iter()
                .enumerate()
                .map(|(i, (passes, pri, extra))| {
                    let mut s = format!(
                        "{{{ws}\"title\":{ws}\"t{i} \\\"q\\\" ]}}\",{ws}\"id\":\"S-{i}\",{ws}\"passes\":{ws}{passes}"
                    );
                    if let Some(p) = pri {
                        s.push_str(&format!(",\"priority\":{p}"));
                    }
                    if *extra > 0 {
                        s.push_str(&format!(",\"notes\":{{\"passes\":false,\"n\":[{extra},{{}}]}}"));
                    }
                    s.push('}');
                    s
                })
                .collect();
            let text = format!(
                "{{\"title\":\"x\",{ws}\"userStories\":{ws}[{ws}{}{ws}],\"z\":[1,2]}}",
                items.join(&format!(",{ws}"))
            );
            let ids = stories
                .iter()
                .enumerate()
                .map(|(i, (p, _, _))| (format!("S-{i}"), *p))
                .collect();
            (text, ids)
        })
}

proptest! {
    #[test]
    fn marking_stories_done_changes_only_their_passes((text, ids) in arb_prd_text(), pick in prop::collection::vec(any::<bool>(), 10)) {
        let chosen: Vec<String> = ids.iter().zip(&pick).filter(|(_, p)| **p).map(|((id, _), _)| id.clone()).collect();
        let out = crate::prd::with_passes(&text, &chosen).expect("edit");
        let prd = crate::Prd::parse(out.as_bytes()).expect("still a PRD");
        for (id, was) in &ids {
            prop_assert_eq!(prd.story(id).expect("kept").passes, *was || chosen.contains(id));
        }
        // Undoing exactly the changed tokens gives the input back: nothing else moved.
        prop_assert_eq!(out.replace("true", "false"), text.replace("true", "false"));
    }

    #[test]
    fn a_scoped_copy_holds_exactly_the_claims_in_file_order((text, ids) in arb_prd_text(), pick in prop::collection::vec(any::<bool>(), 10)) {
        let keep: Vec<String> = ids.iter().zip(&pick).filter(|(_, p)| **p).map(|((id, _), _)| id.clone()).collect();
        match crate::prd::scoped(&text, &keep) {
            Ok(copy) => {
                let prd = crate::Prd::parse(copy.as_bytes()).expect("a PRD");
                let got: Vec<String> = prd.stories.iter().map(|s| s.id.clone()).collect();
                prop_assert_eq!(got, keep);
                let tail_kept = copy.ends_with(",\"z\":[1,2]}");
                prop_assert!(tail_kept);
            }
            Err(_) => prop_assert!(keep.is_empty()),
        }
    }

    #[test]
    fn a_parallel_plan_gives_each_free_story_to_exactly_one_group((text, ids) in arb_prd_text(), n in 1usize..6, held_pick in prop::collection::vec(any::<bool>(), 10)) {
        let prd = crate::Prd::parse(text.as_bytes()).expect("prd");
        let held: Vec<String> = ids.iter().zip(&held_pick).filter(|(_, h)| **h).map(|((id, _), _)| id.clone()).collect();
        let plan = crate::plan_parallel(&prd, &held, n);
        prop_assert!(plan.len() <= n);
        prop_assert!(plan.iter().all(|g| !g.is_empty()));
        let mut all: Vec<String> = plan.concat();
        all.sort();
        let mut free: Vec<String> = ids.iter().filter(|(id, passes)| !passes && !held.contains(id)).map(|(id, _)| id.clone()).collect();
        free.sort();
        prop_assert_eq!(all, free);
    }
}
