//! The `[env]` template, rendered as hydra-wt renders it: with Tera (filters such as
//! `{{ worktree | upper }}`, arithmetic such as `{{ port + 1 }}`), from the variables `port`,
//! `worktree`, `project_uuid` and `repo_root`.

use orch_core::WorktreeError;
use std::path::Path;

/// The variables a template sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateVars {
    /// The worktree's port (a number, so `{{ port + 1 }}` works).
    pub(crate) port: u16,
    /// The branch.
    pub(crate) worktree: String,
    /// `.hydra/config.toml`'s `project_uuid` (`unknown` without one, as hydra-wt says).
    pub(crate) project_uuid: String,
    /// The repository root.
    pub(crate) repo_root: String,
}

/// Renders `text`, the template at `path` (named in errors).
///
/// Errors: `Config` naming the template and Tera's reason (a syntax error, an unknown
/// variable or filter).
pub(crate) fn render(path: &Path, text: &str, vars: &TemplateVars) -> Result<String, WorktreeError> {
    let mut ctx = tera::Context::new();
    ctx.insert("port", &vars.port);
    ctx.insert("worktree", &vars.worktree);
    ctx.insert("project_uuid", &vars.project_uuid);
    ctx.insert("repo_root", &vars.repo_root);
    // No autoescaping: an env file is not HTML (hydra-wt's template name has no extension
    // that would turn it on either).
    tera::Tera::one_off(text, &ctx, false).map_err(|e| WorktreeError::Config {
        path: path.to_path_buf(),
        why: chain(&e),
    })
}

/// Tera's error and its causes on one line (the cause says what is wrong, the error where).
fn chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            port: 3007,
            worktree: "feat/login".into(),
            project_uuid: "u-1".into(),
            repo_root: "/src/app".into(),
        }
    }

    #[test]
    fn renders_variables_filters_and_arithmetic() {
        let text = "PORT={{ port }}\nAPI={{ port + 1 }}\nNAME={{ worktree | upper }}\nSLUG={{ worktree | slugify }}\nROOT={{repo_root}}\nID={{ project_uuid }}\n{% if port > 3000 %}HIGH=1{% endif %}\n";
        let out = render(Path::new(".env.template"), text, &vars()).expect("renders");
        assert_eq!(
            out,
            "PORT=3007\nAPI=3008\nNAME=FEAT/LOGIN\nSLUG=feat-login\nROOT=/src/app\nID=u-1\nHIGH=1\n"
        );
    }

    #[test]
    fn text_without_tags_is_kept_as_is() {
        let text = "A=1\n# comment $HOME 'quoted' \"x\" <b>&</b>\n";
        assert_eq!(render(Path::new("t"), text, &vars()).expect("renders"), text);
    }

    #[test]
    fn an_unknown_variable_names_the_template_and_the_variable() {
        let err = render(Path::new("/r/.env.template"), "X={{ nope }}", &vars()).expect_err("unknown variable");
        let text = err.to_string();
        assert!(text.contains("/r/.env.template"), "{text}");
        assert!(text.contains("nope"), "{text}");
    }

    #[test]
    fn a_syntax_error_is_an_error() {
        assert!(render(Path::new("t"), "X={{ port ", &vars()).is_err());
    }
}
