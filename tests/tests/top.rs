//! `hydra top` as a person uses it: running in a pane of a real tmux server of its own, driven
//! with `send-keys`, read with `capture-pane`, acting on real sessions on another private tmux
//! server. Each check polls the screen or the records with a deadline, never a fixed sleep.

use hydra_e2e::{wait_for, Project};
use hydra_orchestrator::adapters::{Tmux, TmuxConfig};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const HYDRA: &str = env!("CARGO_BIN_EXE_hydra-under-test");

#[track_caller]
fn ok(p: &Project, args: &[&str]) -> String {
    p.hydra_ok(HYDRA, args)
}

#[track_caller]
fn spawn(p: &Project, agent: &std::path::Path, name: &str) -> String {
    p.spawn_agent(HYDRA, agent, &["--name", name])
}

fn status(p: &Project, id: &str) -> serde_json::Value {
    serde_json::from_str(&ok(p, &["status", id, "--json"])).expect("json")
}

/// Whether `screen` shows the table row of session `id` with `word` in it.
fn row_has(screen: &str, id: &str, word: &str) -> bool {
    screen.lines().any(|l| l.starts_with(id) && l.contains(word))
}

/// `hydra top` in the one pane of a private tmux server (not the agents' server).
struct Top {
    server: String,
}

impl Top {
    fn start(p: &Project, width: u16, height: u16) -> Top {
        static N: AtomicUsize = AtomicUsize::new(0);
        let server = format!(
            "hydra-top-ui-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        // The pane runs hydra top, then says how it ended and stays for the checks.
        let cmd = p.hydra_cmd(HYDRA, &["top"]);
        let mut argv: Vec<String> = vec![cmd.get_program().to_string_lossy().into_owned()];
        argv.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
        let top = Top { server };
        let mut new = Command::new("tmux");
        new.args(["-L", &top.server, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["-e", &format!("XDG_STATE_HOME={}", p.dir.path().join("state").display())])
            .arg("--")
            .arg("sh")
            .arg("-c")
            // The argv goes in as positional parameters: nothing is parsed by the shell.
            .arg("\"$@\"; echo \"top exited $?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; exec sleep 600")
            .arg("sh")
            .args(&argv);
        let out = new.output().expect("tmux");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        top
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.server])
            .args(args)
            .output()
            .expect("tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p"]).stdout).into_owned()
    }

    #[track_caller]
    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(20, what, || {
                let s = self.screen();
                let hit = f(&s);
                last = s.clone();
                hit.then_some(s)
            })
        }));
        match found {
            Ok(s) => s,
            Err(_) => panic!("timed out waiting for {what}; the screen:\n{last}"),
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        assert!(self.tmux(&args).status.success());
    }

    fn text(&self, text: &str) {
        assert!(self.tmux(&["send-keys", "-l", text]).status.success());
    }

    fn format(&self, f: &str) -> String {
        String::from_utf8_lossy(&self.tmux(&["display-message", "-p", f]).stdout)
            .trim()
            .to_owned()
    }

    /// Selects the row holding `needle` (Home, then Down until it is the selected one).
    fn select(&self, needle: &str) {
        self.keys(&["Home"]);
        let rows: Vec<String> = self
            .wait(needle, |s| s.contains(needle))
            .lines()
            .skip(3)
            .map(str::to_owned)
            .collect();
        let k = rows.iter().position(|l| l.contains(needle)).expect("row");
        for _ in 0..k {
            self.keys(&["Down"]);
        }
        // The preview's title names the selected session.
        self.wait("the selection", |s| s.contains(&format!("{} output", &needle[..8])));
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        // Through the adapter, which also removes the socket file tmux leaves.
        let _ = Tmux::new(TmuxConfig::with_socket_name(&self.server)).kill_server();
    }
}

fn sleeper(p: &Project) -> std::path::PathBuf {
    p.agent("sleeper.sh", "cat > /dev/null; echo 'working hard'; exec sleep 600")
}

#[test]
fn a_state_change_appears_on_screen() {
    let p = Project::new();
    let agent = p.agent(
        "gated.sh",
        "cat > /dev/null; echo 'waiting for the gate'; while [ ! -e \"$HYDRALPH_SESSION_ID.go\" ]; do sleep 0.05; done; echo '<reason>needs the staging key</reason>'; echo '<promise>BLOCKED</promise>'",
    );
    let id = spawn(&p, &agent, "gated");
    let top = Top::start(&p, 120, 30);
    top.wait("the running row", |s| row_has(s, &id, "running"));
    let started = Instant::now();
    std::fs::write(p.root.join(format!("{id}.go")), "").expect("go");
    let screen = top.wait("the blocked row", |s| row_has(s, &id, "blocked"));
    println!("blocked on screen {:?} after the gate opened", started.elapsed());
    assert!(screen.contains("needs you:"), "{screen}");
    assert!(screen.contains("needs the staging key"), "{screen}");
    assert!(screen.contains("1 blocked"), "{screen}");
}

#[test]
fn p_pauses_i_queues_k_y_kills() {
    let p = Project::new();
    let agent = sleeper(&p);
    let a = spawn(&p, &agent, "alpha");
    let b = spawn(&p, &agent, "beta");
    let top = Top::start(&p, 120, 30);
    top.wait("both rows running", |s| {
        row_has(s, &a, "running") && row_has(s, &b, "running")
    });

    top.select(&a);
    top.keys(&["p"]);
    wait_for(20, "a's record paused", || {
        (status(&p, &a)["state"] == "paused").then_some(())
    });
    top.wait("pausing on screen", |s| {
        row_has(s, &a, "pausing") || row_has(s, &a, "paused")
    });
    assert_eq!(status(&p, &b)["state"], "running", "only the selected one");

    top.select(&b);
    top.keys(&["i"]);
    top.wait("the message box", |s| s.contains(&format!("message for {b}")));
    top.text("use the staging database, not prod");
    top.keys(&["Enter"]);
    top.wait("queued", |s| {
        s.contains(&format!("message queued for {b}'s next prompt"))
    });
    let inbox = p.root.join(".hydra/ralph").join(&b).join("inject.d");
    let queued: Vec<String> = std::fs::read_dir(&inbox)
        .expect("inbox")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).expect("message"))
        .collect();
    assert_eq!(queued.len(), 1);
    assert!(queued[0].contains("use the staging database, not prod"), "{queued:?}");

    top.keys(&["k"]);
    top.wait("the confirmation", |s| {
        s.contains(&format!("kill {b} (killed from hydra top)? y kills"))
    });
    top.keys(&["y"]);
    wait_for(20, "b's record failed", || {
        (status(&p, &b)["state"] == "failed").then_some(())
    });
    assert_eq!(status(&p, &b)["reason"], "killed from hydra top");
    top.wait("failed on screen", |s| row_has(s, &b, "failed"));
    assert_eq!(status(&p, &a)["state"], "paused", "the other one untouched");
}

#[test]
fn enter_attaches_and_a_detach_comes_back_then_q_restores_the_terminal() {
    let p = Project::new();
    let agent = p.agent(
        "marker.sh",
        "cat > /dev/null; while true; do echo \"marker-$HYDRALPH_SESSION_ID\"; sleep 0.3; done",
    );
    let id = spawn(&p, &agent, "marked");
    let top = Top::start(&p, 120, 30);
    top.wait("the row", |s| row_has(s, &id, "running"));
    assert_eq!(top.format("#{alternate_on}"), "1", "top draws on the alternate screen");
    top.keys(&["Enter"]);
    // The agent's own pane, inside ours (tmux attach, nested).
    top.wait("the agent's pane", |s| {
        s.contains(&format!("marker-{id}")) && !s.contains("hydra top")
    });
    top.keys(&["C-b", "d"]);
    top.wait("back in top", |s| {
        s.contains("hydra top") && s.contains(&format!("back from {id}"))
    });
    top.keys(&["q"]);
    top.wait("top exited", |s| s.contains("top exited 0"));
    assert_eq!(top.format("#{alternate_on}"), "0", "the normal screen is back");
    assert_eq!(top.format("#{cursor_flag}"), "1", "the cursor is shown again");
    // Raw mode is off: the terminal is line-buffered and echoes again, as stty says.
    let screen = top.wait("stty's report", |s| s.lines().any(|l| l.ends_with("echo")));
    let modes: Vec<&str> = screen
        .lines()
        .filter(|l| l.ends_with("icanon") || l.ends_with("echo"))
        .collect();
    assert_eq!(modes, ["icanon", "echo"], "{screen}");
    assert_eq!(status(&p, &id)["state"], "running", "quitting touches no session");
}

#[test]
fn a_tiny_terminal_and_a_resize() {
    let p = Project::new();
    let agent = sleeper(&p);
    let id = spawn(&p, &agent, "small");
    let top = Top::start(&p, 40, 10);
    let screen = top.wait("the row at 40x10", |s| s.contains(&id));
    assert!(
        screen.lines().any(|l| l.starts_with("ID") && l.contains("STATE")),
        "{screen}"
    );
    assert!(!screen.contains("output"), "no preview at 10 lines: {screen}");
    assert!(top.tmux(&["resize-window", "-x", "120", "-y", "30"]).status.success());
    top.wait("the wide layout", |s| {
        s.contains("BRANCH") && s.contains(&format!("{id} output"))
    });
    top.keys(&["?"]);
    top.wait("the help", |s| s.contains("keys (any key closes)"));
    top.keys(&["x"]);
    top.wait("help closed", |s| !s.contains("keys (any key closes)"));
    top.keys(&["q"]);
    top.wait("top exited", |s| s.contains("top exited 0"));
}
