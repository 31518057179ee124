//! Drawing the dashboard: a pure function of [`App`] onto a ratatui frame, so it renders the
//! same on a terminal and on the test backend. Only the rows in view are built, so a frame
//! costs the same at 500 sessions as at 20.

use super::app::{App, Mode, FORM_FIELDS};
use crate::output::{age, ago};
use hydra_orchestrator::{SessionState, SessionStatus};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// Where each part of the screen goes.
pub struct Areas {
    /// Counts per state.
    pub header: Rect,
    /// Sessions that need the user.
    pub attention: Rect,
    /// The session table (its first line is the column names).
    pub table: Rect,
    /// The selected session's output (empty on a small terminal).
    pub preview: Rect,
    /// Keys, messages and prompts.
    pub footer: Rect,
}

/// The areas of a screen of `area`.
pub fn areas(area: Rect) -> Areas {
    let preview_h = if area.height >= 20 { (area.height - 4) / 3 } else { 0 };
    let [header, attention, table, preview, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(preview_h),
        Constraint::Length(1),
    ])
    .areas(area);
    Areas {
        header,
        attention,
        table,
        preview,
        footer,
    }
}

/// Table rows that fit on a screen of `area`.
pub fn page(area: Rect) -> usize {
    usize::from(areas(area).table.height.saturating_sub(1)).max(1)
}

fn style(app: &App, s: Style) -> Style {
    if app.color {
        s
    } else {
        // NO_COLOR: no colours, but emphasis (bold, reverse) still reads.
        Style {
            fg: None,
            bg: None,
            ..s
        }
    }
}

/// The colour of a state's word.
pub fn state_style(state: &SessionState, pausing: bool) -> Style {
    let s = Style::default();
    if pausing {
        return s.fg(Color::Cyan);
    }
    match state {
        SessionState::Starting | SessionState::Running { .. } => s.fg(Color::Green),
        SessionState::Paused { .. } => s.fg(Color::Cyan),
        SessionState::Stuck { .. } => s.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        SessionState::Blocked { .. } => s.fg(Color::LightRed).add_modifier(Modifier::BOLD),
        SessionState::Completed { .. } => s.fg(Color::Blue),
        SessionState::MaxIterations { .. } => s.fg(Color::Magenta),
        SessionState::Failed { .. } => s.fg(Color::Red),
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &App) {
    let a = areas(f.area());
    draw_header(f, app, a.header);
    draw_attention(f, app, a.attention);
    match &app.mode {
        Mode::Log { id, lines, scroll } => {
            let body = Rect {
                height: a.table.height + a.preview.height,
                ..a.table
            };
            draw_log(f, app, body, id.as_str(), lines, *scroll);
        }
        _ => {
            draw_table(f, app, a.table);
            if a.preview.height > 0 {
                draw_preview(f, app, a.preview);
            }
        }
    }
    draw_footer(f, app, a.footer);
    match &app.mode {
        Mode::Help => draw_help(f, app),
        Mode::New { form, focus } => draw_form(f, app, form, *focus),
        _ => {}
    }
}

fn draw_header(f: &mut Frame<'_>, app: &App, area: Rect) {
    let mut counts: Vec<(&'static str, usize, Style)> = Vec::new();
    for s in &app.sessions {
        let word = s.state_word();
        match counts.iter_mut().find(|(w, _, _)| *w == word) {
            Some(c) => c.1 += 1,
            None => counts.push((word, 1, state_style(&s.state, s.pausing))),
        }
    }
    let order = [
        "blocked",
        "stuck",
        "running",
        "starting",
        "pausing",
        "paused",
        "failed",
        "max-iterations",
        "completed",
    ];
    counts.sort_by_key(|(w, _, _)| order.iter().position(|o| o == w));
    let mut spans = vec![Span::styled(
        " hydra top ",
        style(app, Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
    )];
    if app.loading {
        spans.push(Span::raw(" looking..."));
    } else if counts.is_empty() {
        spans.push(Span::raw(" no sessions"));
    }
    for (word, n, st) in counts {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(format!("{n} {word}"), style(app, st)));
    }
    let mut right = format!("sort: {}", app.sort.name());
    if !app.filter.is_empty() {
        right.push_str(&format!("  filter: {}", app.filter));
    }
    if !app.show_ended {
        right.push_str("  live only");
    }
    spans.push(Span::raw(format!("   {right}   {}", app.project)));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_attention(f: &mut Frame<'_>, app: &App, area: Rect) {
    let need = app.attention();
    let line = if need.is_empty() {
        let text = match &app.last_change {
            Some(c) => format!(" nothing needs you · last: {c}"),
            None => " nothing needs you".to_owned(),
        };
        Line::from(Span::styled(
            text,
            style(app, Style::default().add_modifier(Modifier::DIM)),
        ))
    } else {
        let mut spans = vec![Span::styled(
            " needs you: ",
            style(app, Style::default().add_modifier(Modifier::BOLD)),
        )];
        for (k, s) in need.iter().enumerate() {
            if k > 0 {
                spans.push(Span::raw(" · "));
            }
            spans.push(Span::raw(format!("{} ", label(s))));
            spans.push(Span::styled(
                s.state_word(),
                style(app, state_style(&s.state, s.pausing)),
            ));
            if let Some(r) = s.state.reason() {
                spans.push(Span::raw(format!(": {}", clip(r, 40))));
            }
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}

fn label(s: &SessionStatus) -> String {
    match &s.name {
        Some(n) => format!("{} {n}", s.id),
        None => s.id.to_string(),
    }
}

fn clip(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("");
    if first.chars().count() > max {
        let mut t: String = first.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        first.to_owned()
    }
}

/// The columns shown at a width, widest first to go.
fn columns(width: u16) -> Vec<(&'static str, Constraint)> {
    let mut cols = vec![
        ("ID", Constraint::Length(if width >= 110 { 22 } else { 18 })),
        ("STATE", Constraint::Length(15)),
        ("ITER", Constraint::Length(9)),
        ("STORIES", Constraint::Length(7)),
        ("AGE", Constraint::Length(6)),
        ("ACTIVE", Constraint::Length(9)),
        ("BRANCH", Constraint::Length(24)),
        ("REASON", Constraint::Min(10)),
    ];
    if width < 60 {
        cols[0].1 = Constraint::Length(9);
    }
    let drop_order = ["BRANCH", "AGE", "STORIES", "ACTIVE", "REASON", "ITER"];
    let need = |cols: &[(&str, Constraint)]| -> u16 {
        cols.iter()
            .map(|(_, c)| match c {
                Constraint::Length(n) | Constraint::Min(n) => n + 1,
                _ => 1,
            })
            .sum()
    };
    for d in drop_order {
        if need(&cols) <= width {
            break;
        }
        cols.retain(|(n, _)| *n != d);
    }
    cols
}

fn cell(app: &App, s: &SessionStatus, col: &str) -> Cell<'static> {
    let text = match col {
        "ID" => label(s),
        "STATE" => {
            let mut w = s.state_word().to_owned();
            if s.frozen {
                w.push_str(" (frozen)");
            }
            return Cell::from(Span::styled(w, style(app, state_style(&s.state, s.pausing))));
        }
        "ITER" => format!("{}/{}", s.iteration, s.max_iterations),
        "STORIES" => s.stories.clone().unwrap_or_else(|| "-".into()),
        // A live session ages with the clock, not with the last look.
        "AGE" if s.ended.is_none() => age(app.now.since(s.created).unwrap_or(s.duration).as_secs()),
        "AGE" => age(s.duration.as_secs()),
        "ACTIVE" if s.state.is_terminal() => "-".into(),
        "ACTIVE" => ago(s.last_activity, app.now),
        "BRANCH" => match (&s.branch, s.port) {
            (Some(b), Some(p)) => format!("{b} :{p}"),
            (Some(b), None) => b.clone(),
            _ => String::new(),
        },
        "REASON" => clip(&crate::output::reason(s), 200),
        _ => String::new(),
    };
    Cell::from(text)
}

fn draw_table(f: &mut Frame<'_>, app: &App, area: Rect) {
    let cols = columns(area.width);
    let header = Row::new(cols.iter().map(|(n, _)| Cell::from(*n))).style(style(
        app,
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    ));
    let page = usize::from(area.height.saturating_sub(1));
    let selected = app.selected_row();
    let rows: Vec<Row<'static>> = app
        .rows
        .iter()
        .enumerate()
        .skip(app.offset)
        .take(page)
        .map(|(k, &i)| {
            let s = &app.sessions[i];
            let row = Row::new(cols.iter().map(|(n, _)| cell(app, s, n)));
            let mut st = Style::default();
            if s.state.is_terminal() {
                st = st.add_modifier(Modifier::DIM);
            }
            if Some(k) == selected {
                st = Style::default().add_modifier(Modifier::REVERSED);
            }
            row.style(st)
        })
        .collect();
    let widths: Vec<Constraint> = cols.iter().map(|(_, c)| *c).collect();
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    f.render_widget(table, area);
    if app.rows.is_empty() && !app.loading {
        let text = if app.sessions.is_empty() {
            "no sessions yet: n starts one (or `hydra spawn`)"
        } else {
            "no session matches (esc clears the filter, a shows ended ones)"
        };
        if area.height > 1 {
            let msg = Rect {
                y: area.y + 1,
                height: 1,
                ..area
            };
            f.render_widget(Paragraph::new(format!(" {text}")), msg);
        }
    }
}

fn draw_preview(f: &mut Frame<'_>, app: &App, area: Rect) {
    let (title, text) = match (&app.selected, &app.preview) {
        (Some(id), Some((pid, text))) if id == pid => (format!(" {} output ", id), text.as_str()),
        (Some(id), _) => (format!(" {} output ", id), ""),
        (None, _) => (" output ".to_owned(), ""),
    };
    let inner_h = usize::from(area.height.saturating_sub(1));
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(inner_h)..];
    let body = if tail.is_empty() {
        vec![Line::from(Span::styled(
            "(no output yet)",
            style(app, Style::default().add_modifier(Modifier::DIM)),
        ))]
    } else {
        tail.iter().map(|l| Line::from(strip_controls(l))).collect()
    };
    let block = Block::default().borders(Borders::TOP).title(title);
    f.render_widget(Paragraph::new(body).block(block), area);
}

/// An agent's line without the terminal escapes and control characters it may hold.
fn strip_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI ... final byte, or a two-character escape.
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' {
            out.push_str("    ");
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

fn draw_log(f: &mut Frame<'_>, app: &App, area: Rect, id: &str, lines: &[String], scroll: usize) {
    let h = usize::from(area.height.saturating_sub(1));
    let shown: Vec<Line<'_>> = lines
        .iter()
        .skip(scroll)
        .take(h)
        .map(|l| Line::from(strip_controls(l)))
        .collect();
    let title = format!(
        " {id} log: lines {}-{} of {} (up/down, pgup/pgdn, g/G, q back) ",
        (scroll + 1).min(lines.len()),
        (scroll + h).min(lines.len()),
        lines.len()
    );
    let block = Block::default().borders(Borders::TOP).title(Span::styled(
        title,
        style(app, Style::default().add_modifier(Modifier::BOLD)),
    ));
    f.render_widget(Clear, area);
    f.render_widget(Paragraph::new(shown).block(block), area);
}

/// The footer's key list.
pub const KEYS: &str =
    "enter attach  p pause  P freeze  r resume  i inject  k kill  l log  n new  / filter  s sort  a ended  ? help  q quit";

fn draw_footer(f: &mut Frame<'_>, app: &App, area: Rect) {
    let prompt = |text: String| {
        Line::from(Span::styled(
            text,
            style(app, Style::default().add_modifier(Modifier::BOLD)),
        ))
    };
    let line = match &app.mode {
        Mode::Filter => prompt(format!("/{}_  (enter keeps it, esc clears it)", app.filter)),
        Mode::Inject { id, text } => prompt(format!("message for {id}: {text}_  (enter queues it, esc cancels)")),
        Mode::Kill {
            id,
            reason,
            editing: false,
        } => Line::from(Span::styled(
            format!("kill {id} ({reason})? y kills, e edits the reason, any other key keeps it"),
            style(app, Style::default().fg(Color::LightRed).add_modifier(Modifier::BOLD)),
        )),
        Mode::Kill { id, reason, .. } => prompt(format!("reason for killing {id}: {reason}_  (enter)")),
        Mode::New { .. } => match &app.footer {
            Some(m) if m.error => Line::from(Span::styled(
                format!("{}  (fix it and enter, or esc)", m.text),
                style(app, Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)),
            )),
            _ => prompt("tab: next field  space: worktree on/off  enter: start  esc: cancel".into()),
        },
        _ => match &app.footer {
            Some(m) if m.error => Line::from(Span::styled(
                m.text.clone(),
                style(app, Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)),
            )),
            Some(m) => Line::from(m.text.clone()),
            None => Line::from(Span::styled(
                KEYS,
                style(app, Style::default().add_modifier(Modifier::DIM)),
            )),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(f: &mut Frame<'_>, app: &App) {
    let keys = [
        ("up/down pgup/pgdn", "select a session"),
        ("enter", "attach (in tmux: switch to it; else come back on detach)"),
        ("p / P", "pause at the next checkpoint / freeze at once"),
        ("r", "resume (also a blocked session)"),
        ("i", "send a message for the agent's next prompt"),
        ("k", "kill, after y (e: change the reason)"),
        ("l", "the whole log (q back)"),
        ("n", "start a new session"),
        ("/", "filter by id, name, state, branch, agent, reason"),
        ("s", "sort: attention, newest, activity, id"),
        ("a", "show or hide ended sessions"),
        ("q", "quit"),
    ];
    let area = centered(f.area(), 72, keys.len() as u16 + 3);
    let lines: Vec<Line<'_>> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:>18}  "),
                    style(app, Style::default().add_modifier(Modifier::BOLD)),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines)
            .block(Block::default().borders(Borders::ALL).title(" keys (any key closes) "))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_form(f: &mut Frame<'_>, app: &App, form: &super::app::NewSession, focus: usize) {
    let area = centered(f.area(), 64, FORM_FIELDS.len() as u16 + 4);
    let values = [
        if form.agent.is_empty() {
            "(hydra.toml's, else claude)".to_owned()
        } else {
            form.agent.clone()
        },
        if form.prd.is_empty() {
            crate::DEFAULT_PRD.to_owned()
        } else {
            form.prd.clone()
        },
        if form.max_iterations.is_empty() {
            "(hydra.toml's, else 10)".to_owned()
        } else {
            form.max_iterations.clone()
        },
        if form.worktree { "yes" } else { "no" }.to_owned(),
        if form.branch.is_empty() {
            "(hydralph/ID)".to_owned()
        } else {
            form.branch.clone()
        },
    ];
    let lines: Vec<Line<'_>> = FORM_FIELDS
        .iter()
        .zip(values)
        .enumerate()
        .map(|(k, (name, value))| {
            let focused = k == focus;
            let v = if focused { format!("{value}_") } else { value };
            let st = if focused {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default()
            };
            Line::from(vec![
                Span::styled(
                    format!("{name:>15}: "),
                    style(app, Style::default().add_modifier(Modifier::BOLD)),
                ),
                Span::styled(v, style(app, st)),
            ])
        })
        .collect();
    f.render_widget(Clear, area);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" new session ")),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::fixtures::{sample, status};
    use hydra_orchestrator::Timestamp;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(app: &mut App, w: u16, h: u16) -> Vec<String> {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        app.page = page(Rect::new(0, 0, w, h));
        app.keep_visible();
        t.draw(|f| draw(f, app)).expect("draw");
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn an_empty_project_says_how_to_start() {
        let mut app = App::new("/p".into(), Timestamp(0), false);
        app.set_sessions(Vec::new());
        let s = screen(&mut app, 80, 12);
        assert_eq!(s[0], " hydra top  no sessions   sort: attention   /p");
        assert_eq!(s[1], " nothing needs you");
        assert!(s[2].starts_with("ID                 STATE"), "{}", s[2]);
        assert_eq!(s[3], " no sessions yet: n starts one (or `hydra spawn`)");
        assert!(s[11].starts_with("enter attach  p pause"), "{}", s[11]);
    }

    #[test]
    fn a_screen_of_sessions() {
        let mut app = App::new("/work/app".into(), Timestamp(1_000_000), false);
        app.set_sessions(sample());
        app.preview = Some((
            app.selected.clone().expect("selected"),
            "step 1\nstep 2 \x1b[32mok\x1b[0m".into(),
        ));
        let s = screen(&mut app, 120, 24);
        let expected = [
            " hydra top  1 blocked 1 stuck 1 running 1 paused 1 failed 1 completed   sort: attention   /work/app",
            " needs you: b0000002 api blocked: needs the STAGING key · s0000003 stuck · f0000005 failed: killed by hand",
            "ID                     STATE           ITER      STORIES AGE    ACTIVE    BRANCH                   REASON",
            "b0000002 api           blocked         2/10      1/3     16m    1m ago                             needs the STAGING key",
            "s0000003               stuck           4/10      2/3     16m    16m ago   hydralph/s0000003 :3001",
            "p0000004               paused (frozen) 1/5       0/3     16m    3m ago",
            "r0000001               running         3/10      2/3     16m    0s ago",
            "f0000005               failed          1/10      0/3     16m    -                                  killed by hand",
            "c0000006               completed       3/10      3/3     16m    -",
        ];
        for (k, line) in expected.iter().enumerate() {
            assert_eq!(s[k], *line, "line {k}");
        }
        assert!(s[17].starts_with(" b0000002 output ─"), "{}", s[17]);
        assert_eq!(s[18], "step 1");
        assert_eq!(s[19], "step 2 ok", "escapes are stripped");
        assert!(s[23].starts_with("enter attach"), "{}", s[23]);
    }

    #[test]
    fn five_hundred_rows_show_a_window_around_the_selection() {
        let mut app = App::new("/p".into(), Timestamp(1_000_000), false);
        app.set_sessions(
            (0..500)
                .map(|i| {
                    status(
                        &format!("s{i:07}"),
                        SessionState::Running {
                            iteration: 1,
                            stories: None,
                        },
                        i,
                    )
                })
                .collect(),
        );
        app.sort = super::super::app::Sort::Id;
        app.refresh_rows();
        app.selected = Some(hydra_orchestrator::SessionId("s0000250".into()));
        let s = screen(&mut app, 100, 40);
        assert!(s[0].contains("500 running"), "{}", s[0]);
        let ids: Vec<&str> = s[3..]
            .iter()
            .take_while(|l| l.starts_with('s'))
            .map(|l| &l[..8])
            .collect();
        assert!(ids.contains(&"s0000250"), "{ids:?}");
        assert_eq!(ids.len(), page(Rect::new(0, 0, 100, 40)));
    }

    #[test]
    fn a_tiny_terminal_keeps_the_id_and_state() {
        let mut app = App::new("/p".into(), Timestamp(1_000_000), false);
        app.set_sessions(sample());
        let s = screen(&mut app, 40, 10);
        assert_eq!(s[2], "ID        STATE           ITER");
        assert_eq!(s[3], "b0000002  blocked         2/10");
        assert!(!s.iter().any(|l| l.contains("output")), "no preview at 10 lines");
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn help_and_form_are_drawn_over_the_table() {
        let mut app = App::new("/p".into(), Timestamp(1_000_000), false);
        app.set_sessions(sample());
        app.mode = Mode::Help;
        let s = screen(&mut app, 100, 30);
        assert!(s.iter().any(|l| l.contains("keys (any key closes)")));
        assert!(s.iter().any(|l| l.contains("k  kill, after y")));
        app.mode = Mode::New {
            form: Default::default(),
            focus: 0,
        };
        let s = screen(&mut app, 100, 30);
        assert!(s.iter().any(|l| l.contains("agent: (hydra.toml's, else claude)_")));
        assert!(s.iter().any(|l| l.contains("worktree: no")));
    }

    #[test]
    fn colours_follow_the_state_and_no_color_drops_them() {
        let mut app = App::new("/p".into(), Timestamp(1_000_000), true);
        app.set_sessions(sample());
        let mut t = Terminal::new(TestBackend::new(120, 24)).expect("terminal");
        t.draw(|f| draw(f, &app)).expect("draw");
        let buf = t.backend().buffer().clone();
        // Row 3 is the blocked session: its state word is light red.
        let x = (0..120).find(|&x| buf[(x, 3)].symbol() == "b" && buf[(x + 1, 3)].symbol() == "l");
        assert_eq!(buf[(x.expect("blocked"), 3)].fg, Color::LightRed);
        app.color = false;
        t.draw(|f| draw(f, &app)).expect("draw");
        let buf = t.backend().buffer().clone();
        assert!((0..120).all(|x| (0..24).all(|y| buf[(x, y)].fg == Color::Reset)));
    }
}
