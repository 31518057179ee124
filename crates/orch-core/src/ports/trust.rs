//! The [`Trust`] port: whether the user trusts a project file that can make hydra start a
//! program (hydra-wt's `post_create` hooks, a notification command, a custom agent profile).
//! As git never runs the hooks that come with a clone, and as direnv and mise ask once per
//! file and again when it changes, such a file runs nothing until its user trusts that exact
//! content.

use std::path::Path;

/// Whether the user trusts a file's exact content.
pub trait Trust: Send + Sync {
    /// Whether `contents`, read from `file` (an absolute path), is trusted: the user trusted
    /// this file with exactly these bytes.
    fn is_trusted(&self, file: &Path, contents: &[u8]) -> bool;
}

/// Trusts every file (`HYDRA_TRUST_ALL=1`, for CI and throwaway containers).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustAll;

impl Trust for TrustAll {
    fn is_trusted(&self, _file: &Path, _contents: &[u8]) -> bool {
        true
    }
}

/// Trusts no file: the default of an adapter that was given no trust store.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustNothing;

impl Trust for TrustNothing {
    fn is_trusted(&self, _file: &Path, _contents: &[u8]) -> bool {
        false
    }
}
