//! Session identifiers: the one string that names a session's record, tmux session, runtime
//! directory and default branch, so it is validated before it can reach any of them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest id [`SessionId::parse`] accepts.
pub const MAX_ID_LEN: usize = 64;

/// The prefix of every tmux session the orchestrator creates: `hydralph-<id>`.
pub const TMUX_PREFIX: &str = "hydralph-";
/// The prefix of a session's default worktree branch: `hydralph/<id>`.
pub const BRANCH_PREFIX: &str = "hydralph/";

/// Identifier of one agent session, e.g. `a1b2c3d4`.
///
/// The field is public because the seed API builds ids as `SessionId(id)`; every adapter that
/// turns an id into a path or a name calls [`SessionId::parse`] (or [`SessionId::validate`])
/// first, so an unvalidated id can never name a file outside the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

/// Why a string is not a valid [`SessionId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string was empty.
    #[error("invalid session id: it is empty; an id is 1 to 64 characters of a-z, 0-9 and '-'")]
    Empty,
    /// The string was longer than 64 characters.
    #[error("invalid session id: it has {len} characters; an id is 1 to 64 characters of a-z, 0-9 and '-'")]
    TooLong {
        /// Length in characters of the rejected string.
        len: usize,
    },
    /// The string held a character outside `[a-z0-9-]`.
    #[error(
        "invalid session id {shown}: character {ch:?} is not allowed; an id is 1 to 64 characters of a-z, 0-9 and '-'"
    )]
    BadChar {
        /// The rejected string, escaped for display.
        shown: String,
        /// The first character that is not allowed.
        ch: char,
    },
    /// The string starts with `-`, which tools would read as an option.
    #[error("invalid session id {shown}: it starts with '-'; an id is 1 to 64 characters of a-z, 0-9 and '-', not starting with '-'")]
    LeadingDash {
        /// The rejected string, escaped for display.
        shown: String,
    },
}

impl SessionId {
    /// Validates `s` and wraps it: 1..=64 characters of `[a-z0-9-]`, not starting with `-`.
    ///
    /// Returns an [`IdError`] naming the broken rule otherwise.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let id = SessionId(s.to_owned());
        id.validate()?;
        Ok(id)
    }

    /// Checks that this id satisfies the rules of [`SessionId::parse`].
    pub fn validate(&self) -> Result<(), IdError> {
        let s = self.0.as_str();
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        let len = s.chars().count();
        if len > MAX_ID_LEN {
            return Err(IdError::TooLong { len });
        }
        let shown = format!("{s:?}");
        if let Some(ch) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(IdError::BadChar { shown, ch });
        }
        if s.starts_with('-') {
            return Err(IdError::LeadingDash { shown });
        }
        Ok(())
    }

    /// Makes an id of 8 lowercase hex characters from random bytes the caller drew.
    ///
    /// The core draws no randomness itself; the facade passes fresh bytes and retries on
    /// collision.
    pub fn from_random(bytes: [u8; 4]) -> Self {
        SessionId(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tmux session name of this id: `hydralph-<id>`.
    pub fn tmux_name(&self) -> String {
        format!("{TMUX_PREFIX}{}", self.0)
    }

    /// The id of a tmux session named `hydralph-<id>`, or `None` for any other name (or a
    /// suffix that is not a valid id). The inverse of [`SessionId::tmux_name`].
    pub fn from_tmux_name(name: &str) -> Option<SessionId> {
        SessionId::parse(name.strip_prefix(TMUX_PREFIX)?).ok()
    }

    /// The default worktree branch of this id: `hydralph/<id>`.
    pub fn default_branch(&self) -> String {
        format!("{BRANCH_PREFIX}{}", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_ok(s: &str) {
        assert_eq!(SessionId::parse(s).expect("valid id").as_str(), s);
    }

    #[track_caller]
    fn check_err(s: &str) {
        assert!(SessionId::parse(s).is_err(), "{s:?} should be refused");
    }

    #[test]
    fn accepts_valid_ids() {
        check_ok("a1b2c3d4");
        check_ok("x");
        check_ok("demo-1");
        check_ok(&"a".repeat(64));
    }

    #[test]
    fn refuses_hostile_ids() {
        for s in ["", "../x", "a/b", ".", "..", "A", "a b", "a\0b", "-rf", "é", "a.json"] {
            check_err(s);
        }
        check_err(&"a".repeat(65));
        check_err(&"a".repeat(10_000));
    }

    #[test]
    fn error_names_the_rule() {
        let msg = SessionId::parse("../x").expect_err("refused").to_string();
        assert!(msg.contains("a-z, 0-9 and '-'"), "{msg}");
        assert!(msg.contains('/') || msg.contains('.'), "{msg}");
    }

    #[test]
    fn random_ids_are_valid_and_names_derive() {
        let id = SessionId::from_random([0xa1, 0xb2, 0x03, 0xff]);
        assert_eq!(id.as_str(), "a1b203ff");
        assert!(id.validate().is_ok());
        assert_eq!(id.tmux_name(), "hydralph-a1b203ff");
        assert_eq!(SessionId::from_tmux_name("hydralph-a1b203ff"), Some(id.clone()));
        assert_eq!(SessionId::from_tmux_name("hydralph-../x"), None);
        assert_eq!(SessionId::from_tmux_name("other-a1b203ff"), None);
        assert_eq!(id.default_branch(), "hydralph/a1b203ff");
    }
}
