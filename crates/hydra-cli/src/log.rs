//! What the libraries report through `tracing` (hydra-mail refusing an event, events dropped
//! from a full queue), shown on stderr at the level the user chose: warnings by default, more
//! with `-v`/`-vv`, or whatever `RUST_LOG` names (`error`, `warn`, `info`, `debug`, `trace`).

use std::fmt::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// A subscriber printing events at `max` or more severe on stderr, one line each.
struct StderrLog {
    max: Level,
}

/// The level `RUST_LOG` asks for (its first word that names a level), if any.
fn level_from(text: &str) -> Option<Level> {
    text.split([',', '=', ' ']).find_map(|w| w.trim().parse::<Level>().ok())
}

/// Installs the stderr subscriber for this process: `RUST_LOG` if it names a level, else
/// warnings, info with `verbose` 1, debug with 2, trace with more.
pub fn install(verbose: u8) {
    let max = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| level_from(&v))
        .unwrap_or(match verbose {
            0 => Level::WARN,
            1 => Level::INFO,
            2 => Level::DEBUG,
            _ => Level::TRACE,
        });
    let _ = tracing::subscriber::set_global_default(StderrLog { max });
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for StderrLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        let level = event.metadata().level().as_str().to_lowercase();
        eprintln!("hydra: {level}: {}", line.0);
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_names_a_level() {
        assert_eq!(level_from("debug"), Some(Level::DEBUG));
        assert_eq!(level_from("orch_mail=trace"), Some(Level::TRACE));
        assert_eq!(level_from("nonsense"), None);
    }
}
