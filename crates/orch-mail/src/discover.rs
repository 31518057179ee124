//! Finding a project's daemon: `socket_path` in `<project>/.hydra/config.toml`.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

#[derive(serde::Deserialize)]
struct Config {
    socket_path: PathBuf,
}

/// What a project says about its hydra-mail daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// No `.hydra/config.toml`: the project does not use hydra-mail (nothing to say).
    NotConfigured,
    /// The daemon's socket is there.
    Daemon(PathBuf),
    /// hydra-mail is configured but its daemon cannot be reached: `why` says so in words.
    Down {
        /// What is wrong, for a person.
        why: String,
    },
}

/// What `<project_root>/.hydra/config.toml` says about the daemon, and whether its socket is
/// there.
pub fn discover(project_root: &Path) -> Discovery {
    let config = project_root.join(".hydra/config.toml");
    let text = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Discovery::NotConfigured,
        Err(e) => {
            return Discovery::Down {
                why: format!(
                    "hydra-mail's {} cannot be read ({e}); events are not delivered",
                    config.display()
                ),
            }
        }
    };
    let parsed: Config = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => {
            return Discovery::Down {
                why: format!(
                    "hydra-mail's {} has no usable socket_path ({}); events are not delivered",
                    config.display(),
                    e.message()
                ),
            }
        }
    };
    let socket = if parsed.socket_path.is_absolute() {
        parsed.socket_path
    } else {
        project_root.join(parsed.socket_path)
    };
    match std::fs::metadata(&socket) {
        Ok(m) if m.file_type().is_socket() => Discovery::Daemon(socket),
        _ => Discovery::Down {
            why: "hydra-mail is configured but its daemon is not running; events are not delivered".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_config_is_not_configured_and_a_missing_socket_is_down() {
        assert_eq!(discover(Path::new("/nonexistent/project")), Discovery::NotConfigured);
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join(".hydra")).expect("mkdir");
        std::fs::write(
            dir.path().join(".hydra/config.toml"),
            format!("socket_path = \"{}/.hydra/hydra.sock\"\n", dir.path().display()),
        )
        .expect("config");
        let Discovery::Down { why } = discover(dir.path()) else {
            panic!("a configured daemon without its socket is down");
        };
        assert!(why.contains("configured but its daemon is not running"), "{why}");
        std::fs::write(dir.path().join(".hydra/config.toml"), "nonsense =").expect("config");
        assert!(matches!(discover(dir.path()), Discovery::Down { .. }));
    }
}
