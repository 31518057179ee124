//! The dashboard's state and what each key does to it. Pure: no terminal, no tmux, no disk;
//! a key that needs the library yields a [`Job`] that the runtime hands to a worker thread.

use hydra_orchestrator::{Change, PauseMode, SessionId, SessionState, SessionStatus, Timestamp};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Work for the library, done off the render loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Leave the dashboard.
    Quit,
    /// Attach this terminal to the session (the runtime suspends the dashboard meanwhile).
    Attach(SessionId),
    /// Pause at the next checkpoint, or freeze at once.
    Pause(SessionId, PauseMode),
    /// Resume a paused or blocked session.
    Resume(SessionId),
    /// Queue a message for the agent's next prompt.
    Inject(SessionId, String),
    /// End the session with a reason.
    Kill(SessionId, String),
    /// Read the session's whole log for the log view.
    ReadLog(SessionId),
    /// Start a session from the form.
    Spawn(NewSession),
}

/// What the new-session form asks for, as typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewSession {
    /// Agent profile or program (empty: hydra.toml's, else claude).
    pub agent: String,
    /// The PRD (empty: the project's).
    pub prd: String,
    /// Iteration limit as typed (empty: hydra.toml's, else 10).
    pub max_iterations: String,
    /// Its own worktree.
    pub worktree: bool,
    /// Worktree branch (empty: hydralph/ID).
    pub branch: String,
}

/// The form's fields, in order.
pub const FORM_FIELDS: [&str; 5] = ["agent", "PRD", "max iterations", "worktree", "branch"];

/// What the keys go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The session table.
    Normal,
    /// The key list.
    Help,
    /// Typing the filter.
    Filter,
    /// Typing a message for a session.
    Inject {
        /// The session.
        id: SessionId,
        /// The message so far.
        text: String,
    },
    /// Confirming a kill (`editing`: typing its reason).
    Kill {
        /// The session.
        id: SessionId,
        /// The reason recorded.
        reason: String,
        /// The reason is being typed.
        editing: bool,
    },
    /// A session's whole log.
    Log {
        /// The session.
        id: SessionId,
        /// Its lines.
        lines: Vec<String>,
        /// The first line shown.
        scroll: usize,
    },
    /// The new-session form.
    New {
        /// The values typed.
        form: NewSession,
        /// The field with the cursor (an index of [`FORM_FIELDS`]).
        focus: usize,
    },
}

/// The table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Sessions that need you first (blocked, stuck), then live ones, then ended; newest
    /// first within each.
    Attention,
    /// Newest first.
    Newest,
    /// Most recent activity first.
    Activity,
    /// By id.
    Id,
}

impl Sort {
    /// The next order (`s`).
    pub fn next(self) -> Sort {
        match self {
            Sort::Attention => Sort::Newest,
            Sort::Newest => Sort::Activity,
            Sort::Activity => Sort::Id,
            Sort::Id => Sort::Attention,
        }
    }

    /// Its name in the header.
    pub fn name(self) -> &'static str {
        match self {
            Sort::Attention => "attention",
            Sort::Newest => "newest",
            Sort::Activity => "activity",
            Sort::Id => "id",
        }
    }
}

/// A line in the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    /// What to say.
    pub text: String,
    /// It is an error.
    pub error: bool,
}

/// The kill reason offered.
pub const KILL_REASON: &str = "killed from hydra top";

/// Everything the dashboard shows.
#[derive(Debug, Clone)]
pub struct App {
    /// The project's root, shown in the header.
    pub project: String,
    /// Every session, as the watcher last saw them.
    pub sessions: Vec<SessionStatus>,
    /// Indexes into `sessions` of the rows shown, in order.
    pub rows: Vec<usize>,
    /// The selected session (kept across updates by id).
    pub selected: Option<SessionId>,
    /// The first row shown.
    pub offset: usize,
    /// Rows that fit in the table (set by the view).
    pub page: usize,
    /// The table's order.
    pub sort: Sort,
    /// Only rows whose id, name, state, branch or agent contain this.
    pub filter: String,
    /// Ended sessions are shown.
    pub show_ended: bool,
    /// What the keys go to.
    pub mode: Mode,
    /// The footer's message, if any (else the keys).
    pub footer: Option<Footer>,
    /// The latest transition told by the watcher.
    pub last_change: Option<String>,
    /// The selected session's latest output.
    pub preview: Option<(SessionId, String)>,
    /// The time the ages are computed at.
    pub now: Timestamp,
    /// Colours are on.
    pub color: bool,
    /// The first look has not arrived yet.
    pub loading: bool,
    /// The form whose session is being started: shown again if it cannot be.
    pub submitted: Option<(NewSession, usize)>,
}

impl App {
    /// An empty dashboard for `project`.
    pub fn new(project: String, now: Timestamp, color: bool) -> Self {
        App {
            project,
            sessions: Vec::new(),
            rows: Vec::new(),
            selected: None,
            offset: 0,
            page: 10,
            sort: Sort::Attention,
            filter: String::new(),
            show_ended: true,
            mode: Mode::Normal,
            footer: None,
            last_change: None,
            preview: None,
            now,
            color,
            loading: true,
            submitted: None,
        }
    }

    /// The watcher's latest look.
    pub fn set_sessions(&mut self, sessions: Vec<SessionStatus>) {
        self.sessions = sessions;
        self.loading = false;
        self.refresh_rows();
    }

    /// A transition the watcher told.
    pub fn changed(&mut self, change: &Change) {
        let s = &change.status;
        let who = match &s.name {
            Some(n) => format!("{} {n}", s.id),
            None => s.id.to_string(),
        };
        let from = change.from.as_deref().map(|f| format!("{f} -> ")).unwrap_or_default();
        let mut text = format!("{who}: {from}{}", s.state_word());
        if let Some(r) = s.state.reason() {
            text.push_str(&format!(" ({r})"));
        }
        self.last_change = Some(text);
    }

    /// The session of the selected row.
    pub fn selected_status(&self) -> Option<&SessionStatus> {
        let id = self.selected.as_ref()?;
        self.sessions.iter().find(|s| &s.id == id)
    }

    /// The index in `rows` of the selected session.
    pub fn selected_row(&self) -> Option<usize> {
        let id = self.selected.as_ref()?;
        self.rows.iter().position(|&i| &self.sessions[i].id == id)
    }

    /// Sessions that need the user: blocked and stuck, then failed (newest first).
    pub fn attention(&self) -> Vec<&SessionStatus> {
        let mut v: Vec<&SessionStatus> = self
            .sessions
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    SessionState::Blocked { .. } | SessionState::Stuck { .. } | SessionState::Failed { .. }
                )
            })
            .collect();
        v.sort_by_key(|s| (rank(s).min(2), std::cmp::Reverse(s.changed_at)));
        v
    }

    /// Recomputes the rows after the sessions, the order or the filter changed, keeping the
    /// selection on the same session when it is still shown.
    pub fn refresh_rows(&mut self) {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<usize> = (0..self.sessions.len())
            .filter(|&i| {
                let s = &self.sessions[i];
                (self.show_ended || !s.state.is_terminal()) && (needle.is_empty() || matches(s, &needle))
            })
            .collect();
        let ss = &self.sessions;
        match self.sort {
            Sort::Attention => {
                rows.sort_by_key(|&i| (rank(&ss[i]), std::cmp::Reverse(ss[i].created), ss[i].id.clone()))
            }
            Sort::Newest => rows.sort_by_key(|&i| (std::cmp::Reverse(ss[i].created), ss[i].id.clone())),
            Sort::Activity => rows.sort_by_key(|&i| (std::cmp::Reverse(ss[i].last_activity), ss[i].id.clone())),
            Sort::Id => rows.sort_by_key(|&i| ss[i].id.clone()),
        }
        self.rows = rows;
        if self.selected_row().is_none() {
            self.selected = self.rows.first().map(|&i| self.sessions[i].id.clone());
        }
        self.keep_visible();
    }

    fn select_row(&mut self, row: usize) {
        if let Some(&i) = self.rows.get(row) {
            self.selected = Some(self.sessions[i].id.clone());
        }
        self.keep_visible();
    }

    /// Moves the window of rows so the selection is in it.
    pub fn keep_visible(&mut self) {
        let page = self.page.max(1);
        let row = self.selected_row().unwrap_or(0);
        if row < self.offset {
            self.offset = row;
        } else if row >= self.offset + page {
            self.offset = row + 1 - page;
        }
        self.offset = self.offset.min(self.rows.len().saturating_sub(page));
    }

    fn say(&mut self, text: impl Into<String>, error: bool) {
        self.footer = Some(Footer {
            text: text.into(),
            error,
        });
    }

    /// A job's outcome, for the footer.
    pub fn done(&mut self, outcome: Result<String, String>) {
        let form = self.submitted.take();
        match outcome {
            Ok(t) => self.say(t, false),
            Err(e) => {
                self.say(e, true);
                // A session the form could not start: the form again, as it was typed.
                if let (Some((form, focus)), Mode::Normal) = (form, &self.mode) {
                    self.mode = Mode::New { form, focus };
                }
            }
        }
    }

    /// The log the log view asked for.
    pub fn show_log(&mut self, id: SessionId, text: &str) {
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let scroll = lines.len().saturating_sub(self.page.max(1));
        self.mode = Mode::Log { id, lines, scroll };
        self.footer = None;
    }

    fn needs_selection(&mut self) -> Option<SessionId> {
        let id = self.selected.clone();
        if id.is_none() {
            self.say("no session selected", true);
        }
        id
    }

    /// What `key` does; a job for the library when it asks for one.
    pub fn key(&mut self, key: KeyEvent) -> Option<Job> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Job::Quit);
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Normal => self.key_normal(key),
            Mode::Help => None,
            Mode::Filter => {
                match key.code {
                    KeyCode::Enter => {}
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.refresh_rows();
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                        self.refresh_rows();
                        self.mode = Mode::Filter;
                    }
                    KeyCode::Char(c) => {
                        self.filter.push(c);
                        self.refresh_rows();
                        self.mode = Mode::Filter;
                    }
                    _ => self.mode = Mode::Filter,
                }
                None
            }
            Mode::Inject { id, mut text } => match key.code {
                KeyCode::Esc => None,
                KeyCode::Enter if text.trim().is_empty() => {
                    self.say("the message is empty; type it, or esc", true);
                    self.mode = Mode::Inject { id, text };
                    None
                }
                KeyCode::Enter => {
                    self.say(format!("sending to {id}..."), false);
                    Some(Job::Inject(id, text))
                }
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Inject { id, text };
                    None
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    self.mode = Mode::Inject { id, text };
                    None
                }
                _ => {
                    self.mode = Mode::Inject { id, text };
                    None
                }
            },
            Mode::Kill {
                id,
                mut reason,
                editing: true,
            } => {
                match key.code {
                    KeyCode::Enter | KeyCode::Esc => {}
                    KeyCode::Backspace => {
                        reason.pop();
                    }
                    KeyCode::Char(c) => reason.push(c),
                    _ => {}
                }
                let editing = !matches!(key.code, KeyCode::Enter | KeyCode::Esc);
                self.mode = Mode::Kill { id, reason, editing };
                None
            }
            Mode::Kill {
                id,
                reason,
                editing: false,
            } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') if !reason.trim().is_empty() => {
                    self.say(format!("killing {id}..."), false);
                    Some(Job::Kill(id, reason))
                }
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.say("give a reason first (e)", true);
                    self.mode = Mode::Kill {
                        id,
                        reason,
                        editing: false,
                    };
                    None
                }
                KeyCode::Char('e') => {
                    self.mode = Mode::Kill {
                        id,
                        reason,
                        editing: true,
                    };
                    None
                }
                _ => {
                    self.say("not killed", false);
                    None
                }
            },
            Mode::Log { id, lines, scroll } => {
                let page = self.page.max(1);
                let last = lines.len().saturating_sub(page);
                let scroll = match key.code {
                    KeyCode::Char('q') | KeyCode::Esc | KeyCode::Char('l') => return None,
                    KeyCode::Up => scroll.saturating_sub(1),
                    KeyCode::Down => (scroll + 1).min(last),
                    KeyCode::PageUp => scroll.saturating_sub(page),
                    KeyCode::PageDown | KeyCode::Char(' ') => (scroll + page).min(last),
                    KeyCode::Home | KeyCode::Char('g') => 0,
                    KeyCode::End | KeyCode::Char('G') => last,
                    _ => scroll,
                };
                self.mode = Mode::Log { id, lines, scroll };
                None
            }
            Mode::New { mut form, focus } => {
                let mut focus = focus;
                match key.code {
                    KeyCode::Esc => return None,
                    KeyCode::Enter => {
                        self.say("starting a session...", false);
                        self.submitted = Some((form.clone(), focus));
                        return Some(Job::Spawn(form));
                    }
                    KeyCode::Tab | KeyCode::Down => focus = (focus + 1) % FORM_FIELDS.len(),
                    KeyCode::BackTab | KeyCode::Up => focus = (focus + FORM_FIELDS.len() - 1) % FORM_FIELDS.len(),
                    KeyCode::Char(' ') if focus == 3 => form.worktree = !form.worktree,
                    KeyCode::Char('y') if focus == 3 => form.worktree = true,
                    KeyCode::Char('n') if focus == 3 => form.worktree = false,
                    KeyCode::Backspace => {
                        if let Some(f) = field(&mut form, focus) {
                            f.pop();
                        }
                    }
                    KeyCode::Char(c) => {
                        if let Some(f) = field(&mut form, focus) {
                            f.push(c);
                        }
                    }
                    _ => {}
                }
                self.mode = Mode::New { form, focus };
                None
            }
        }
    }

    fn key_normal(&mut self, key: KeyEvent) -> Option<Job> {
        let row = self.selected_row().unwrap_or(0);
        let page = self.page.max(1);
        match key.code {
            KeyCode::Char('q') => return Some(Job::Quit),
            KeyCode::Up => self.select_row(row.saturating_sub(1)),
            KeyCode::Down => self.select_row((row + 1).min(self.rows.len().saturating_sub(1))),
            KeyCode::PageUp => self.select_row(row.saturating_sub(page)),
            KeyCode::PageDown => self.select_row((row + page).min(self.rows.len().saturating_sub(1))),
            KeyCode::Home => self.select_row(0),
            KeyCode::End => self.select_row(self.rows.len().saturating_sub(1)),
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                self.footer = None;
            }
            KeyCode::Esc => {
                self.footer = None;
                if !self.filter.is_empty() {
                    self.filter.clear();
                    self.refresh_rows();
                }
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.refresh_rows();
            }
            KeyCode::Char('a') => {
                self.show_ended = !self.show_ended;
                self.refresh_rows();
                let what = if self.show_ended { "shown" } else { "hidden" };
                self.say(format!("ended sessions {what}"), false);
            }
            KeyCode::Char('n') => {
                self.footer = None;
                self.mode = Mode::New {
                    form: NewSession::default(),
                    focus: 0,
                };
            }
            KeyCode::Enter => return self.needs_selection().map(Job::Attach),
            KeyCode::Char('p') => return self.needs_selection().map(|id| Job::Pause(id, PauseMode::Checkpoint)),
            KeyCode::Char('P') => return self.needs_selection().map(|id| Job::Pause(id, PauseMode::Freeze)),
            KeyCode::Char('r') => return self.needs_selection().map(Job::Resume),
            KeyCode::Char('l') => {
                let id = self.needs_selection()?;
                self.say(format!("reading the log of {id}..."), false);
                return Some(Job::ReadLog(id));
            }
            KeyCode::Char('i') => {
                if let Some(id) = self.needs_selection() {
                    self.footer = None;
                    self.mode = Mode::Inject {
                        id,
                        text: String::new(),
                    };
                }
            }
            KeyCode::Char('k') => {
                if let Some(id) = self.needs_selection() {
                    self.footer = None;
                    self.mode = Mode::Kill {
                        id,
                        reason: KILL_REASON.to_owned(),
                        editing: false,
                    };
                }
            }
            _ => {}
        }
        None
    }
}

fn field(form: &mut NewSession, focus: usize) -> Option<&mut String> {
    match focus {
        0 => Some(&mut form.agent),
        1 => Some(&mut form.prd),
        2 => Some(&mut form.max_iterations),
        4 => Some(&mut form.branch),
        _ => None,
    }
}

/// Where a session goes in the attention order: the ones that need you first.
fn rank(s: &SessionStatus) -> u8 {
    match s.state {
        SessionState::Blocked { .. } => 0,
        SessionState::Stuck { .. } => 1,
        SessionState::Starting | SessionState::Running { .. } | SessionState::Paused { .. } => 2,
        SessionState::Failed { .. } => 3,
        SessionState::MaxIterations { .. } => 4,
        SessionState::Completed { .. } => 5,
    }
}

fn matches(s: &SessionStatus, needle: &str) -> bool {
    let hay = [
        s.id.as_str(),
        s.name.as_deref().unwrap_or(""),
        s.state_word(),
        s.branch.as_deref().unwrap_or(""),
        s.agent_cli.as_str(),
        s.state.reason().unwrap_or(""),
    ];
    hay.iter().any(|h| h.to_lowercase().contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::fixtures::status;

    fn press(app: &mut App, code: KeyCode) -> Option<Job> {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            assert_eq!(press(app, KeyCode::Char(c)), None);
        }
    }

    fn app_with(states: &[(&str, SessionState)]) -> App {
        let mut app = App::new("/p".into(), Timestamp(1_000_000), false);
        app.set_sessions(
            states
                .iter()
                .enumerate()
                .map(|(i, (id, st))| status(id, st.clone(), i as u64))
                .collect(),
        );
        app
    }

    #[test]
    fn the_sessions_that_need_you_come_first_and_the_selection_follows_its_session() {
        let mut app = app_with(&[
            (
                "aaaa0001",
                SessionState::Running {
                    iteration: 1,
                    stories: None,
                },
            ),
            (
                "bbbb0002",
                SessionState::Blocked {
                    iteration: 1,
                    reason: "key".into(),
                },
            ),
            ("cccc0003", SessionState::Completed { iterations: 2 }),
        ]);
        let order: Vec<&str> = app.rows.iter().map(|&i| app.sessions[i].id.as_str()).collect();
        assert_eq!(order, ["bbbb0002", "aaaa0001", "cccc0003"]);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected.as_ref().map(SessionId::as_str), Some("aaaa0001"));
        // A new look in another order: the selection stays on its session.
        app.sort = Sort::Id;
        app.refresh_rows();
        assert_eq!(app.selected.as_ref().map(SessionId::as_str), Some("aaaa0001"));
        assert_eq!(app.selected_row(), Some(0));
        press(&mut app, KeyCode::Char('a'));
        assert_eq!(app.rows.len(), 2, "ended sessions hidden");
    }

    #[test]
    fn each_action_key_yields_its_job_for_the_selected_session() {
        let mut app = app_with(&[(
            "aaaa0001",
            SessionState::Running {
                iteration: 1,
                stories: None,
            },
        )]);
        let id = SessionId("aaaa0001".into());
        assert_eq!(
            press(&mut app, KeyCode::Char('p')),
            Some(Job::Pause(id.clone(), PauseMode::Checkpoint))
        );
        assert_eq!(
            press(&mut app, KeyCode::Char('P')),
            Some(Job::Pause(id.clone(), PauseMode::Freeze))
        );
        assert_eq!(press(&mut app, KeyCode::Char('r')), Some(Job::Resume(id.clone())));
        assert_eq!(press(&mut app, KeyCode::Enter), Some(Job::Attach(id.clone())));
        assert_eq!(press(&mut app, KeyCode::Char('l')), Some(Job::ReadLog(id.clone())));
        assert_eq!(press(&mut app, KeyCode::Char('i')), None);
        assert_eq!(press(&mut app, KeyCode::Enter), None, "an empty message is refused");
        assert!(app.footer.as_ref().is_some_and(|f| f.error));
        typed(&mut app, "use staging");
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Job::Inject(id.clone(), "use staging".into()))
        );
        assert_eq!(press(&mut app, KeyCode::Char('k')), None);
        assert_eq!(press(&mut app, KeyCode::Char('n')), None, "n declines");
        assert_eq!(app.mode, Mode::Normal);
        press(&mut app, KeyCode::Char('k'));
        press(&mut app, KeyCode::Char('e'));
        for _ in 0..KILL_REASON.len() {
            press(&mut app, KeyCode::Backspace);
        }
        typed(&mut app, "wrong prd");
        press(&mut app, KeyCode::Enter);
        assert_eq!(
            press(&mut app, KeyCode::Char('y')),
            Some(Job::Kill(id, "wrong prd".into()))
        );
        assert_eq!(press(&mut app, KeyCode::Char('q')), Some(Job::Quit));
    }

    #[test]
    fn no_selection_is_said_not_acted_on() {
        let mut app = app_with(&[]);
        assert_eq!(press(&mut app, KeyCode::Char('p')), None);
        assert_eq!(
            app.footer.as_ref().map(|f| f.text.as_str()),
            Some("no session selected")
        );
    }

    #[test]
    fn the_filter_narrows_as_it_is_typed_and_esc_clears_it() {
        let mut app = app_with(&[
            (
                "aaaa0001",
                SessionState::Running {
                    iteration: 1,
                    stories: None,
                },
            ),
            (
                "bbbb0002",
                SessionState::Running {
                    iteration: 1,
                    stories: None,
                },
            ),
        ]);
        press(&mut app, KeyCode::Char('/'));
        typed(&mut app, "bbb");
        assert_eq!(app.rows.len(), 1);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.rows.len(), 1, "kept after enter");
        press(&mut app, KeyCode::Esc);
        assert_eq!(app.rows.len(), 2);
    }

    #[test]
    fn the_form_fills_its_fields_and_toggles_the_worktree() {
        let mut app = app_with(&[]);
        press(&mut app, KeyCode::Char('n'));
        typed(&mut app, "codex");
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Tab);
        typed(&mut app, "5");
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Char(' '));
        press(&mut app, KeyCode::Tab);
        typed(&mut app, "feat/x");
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Job::Spawn(NewSession {
                agent: "codex".into(),
                prd: String::new(),
                max_iterations: "5".into(),
                worktree: true,
                branch: "feat/x".into(),
            }))
        );
    }

    #[test]
    fn a_form_that_fails_comes_back_as_typed_with_the_error() {
        let mut app = app_with(&[]);
        press(&mut app, KeyCode::Char('n'));
        press(&mut app, KeyCode::Tab);
        press(&mut app, KeyCode::Tab);
        typed(&mut app, "abc");
        assert!(matches!(press(&mut app, KeyCode::Enter), Some(Job::Spawn(_))));
        assert_eq!(app.mode, Mode::Normal);
        app.done(Err("max iterations: \"abc\" is not a whole number".into()));
        match &app.mode {
            Mode::New { form, focus } => assert_eq!((form.max_iterations.as_str(), *focus), ("abc", 2)),
            other => panic!("{other:?}"),
        }
        assert!(app.footer.as_ref().is_some_and(|f| f.error));
        press(&mut app, KeyCode::Esc);
        app.done(Ok("started".into()));
        assert_eq!(app.mode, Mode::Normal, "a later success opens nothing");
    }

    #[test]
    fn scrolling_keeps_the_selection_in_the_window() {
        let many: Vec<(String, SessionState)> = (0..500)
            .map(|i| {
                (
                    format!("s{i:07}"),
                    SessionState::Running {
                        iteration: 1,
                        stories: None,
                    },
                )
            })
            .collect();
        let refs: Vec<(&str, SessionState)> = many.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
        let mut app = app_with(&refs);
        app.sort = Sort::Id;
        app.page = 20;
        app.refresh_rows();
        press(&mut app, KeyCode::End);
        assert_eq!(app.selected_row(), Some(499));
        assert_eq!(app.offset, 480);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.selected_row(), Some(479));
        assert_eq!(app.offset, 479);
        press(&mut app, KeyCode::Home);
        assert_eq!((app.selected_row(), app.offset), (Some(0), 0));
    }
}
