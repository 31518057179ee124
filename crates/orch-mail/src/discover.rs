//! Finding a project's daemon: `socket_path` in `<project>/.hydra/config.toml`.

use orch_core::BusError;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

#[derive(serde::Deserialize)]
struct Config {
    socket_path: PathBuf,
}

/// The socket of the project's hydra-mail daemon.
///
/// Returns `BusError::Standalone` (saying why) when there is no `.hydra/config.toml`, it has no
/// usable `socket_path`, or no socket exists there: the orchestrator then runs without events.
pub fn discover_socket(project_root: &Path) -> Result<PathBuf, BusError> {
    let config = project_root.join(".hydra/config.toml");
    let text = std::fs::read_to_string(&config).map_err(|e| BusError::Standalone {
        why: format!("cannot read {}: {e}", config.display()),
    })?;
    let parsed: Config = toml::from_str(&text).map_err(|e| BusError::Standalone {
        why: format!("{} has no usable socket_path: {}", config.display(), e.message()),
    })?;
    let socket = if parsed.socket_path.is_absolute() {
        parsed.socket_path
    } else {
        project_root.join(parsed.socket_path)
    };
    match std::fs::metadata(&socket) {
        Ok(m) if m.file_type().is_socket() => Ok(socket),
        Ok(_) => Err(BusError::Standalone {
            why: format!("{} is not a socket", socket.display()),
        }),
        Err(_) => Err(BusError::Standalone {
            why: format!(
                "no daemon socket at {} (start it with `hydra-mail start`)",
                socket.display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_config_is_standalone() {
        let err = discover_socket(Path::new("/nonexistent/project")).expect_err("standalone");
        assert!(matches!(err, BusError::Standalone { .. }));
        assert!(err.to_string().contains("standalone"));
    }
}
