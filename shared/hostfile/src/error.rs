//! Config errors that point at the file, line and column, show the value and say how to fix it.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// Exit code for a bad configuration (sysexits' EX_USAGE, as `named-checkconf` users expect from `--check`).
pub const EXIT_CONFIG: i32 = 64;

/// One thing wrong in a host file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the offending value.
    pub line: usize,
    /// 1-based column (in characters) of the offending value.
    pub column: usize,
    /// What is wrong, quoting the value.
    pub message: String,
    /// What would make it right.
    pub fix: String,
}

/// Why a host file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: cannot read the host file: {source}")]
    Io {
        /// The path we tried.
        path: PathBuf,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// The file was read but is not a valid host table; every problem found is listed.
    #[error("{}", render(file, problems))]
    Invalid {
        /// The file's name as given (or `<string>` for in-memory text).
        file: String,
        /// All problems, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems, empty for I/O errors.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }
}

fn render(file: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "{file}:{}:{}: {}\n    fix: {}",
            p.line, p.column, p.message, p.fix
        ));
    }
    out
}

/// A problem still expressed as a byte span; turned into line/column once the source is known.
#[derive(Debug, Clone)]
pub(crate) struct Diag {
    pub(crate) span: Range<usize>,
    pub(crate) message: String,
    pub(crate) fix: String,
}

impl Diag {
    pub(crate) fn new(
        span: Range<usize>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Diag {
            span,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Collects diagnostics while validating so that all of them are reported at once.
#[derive(Debug, Default)]
pub(crate) struct Diags(pub(crate) Vec<Diag>);

impl Diags {
    pub(crate) fn push(
        &mut self,
        span: Range<usize>,
        message: impl fmt::Display,
        fix: impl Into<String>,
    ) {
        self.0.push(Diag::new(span, message.to_string(), fix));
    }
}

/// 1-based line and column of byte offset `pos` in `src`.
pub(crate) fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let before = &src[..src.floor_char_boundary(pos)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

pub(crate) fn to_problems(src: &str, mut diags: Vec<Diag>) -> Vec<Problem> {
    diags.sort_by_key(|d| d.span.start);
    diags
        .into_iter()
        .map(|d| {
            let (line, column) = line_col(src, d.span.start);
            Problem {
                line,
                column,
                message: d.message,
                fix: d.fix,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 8), (2, 3));
    }

    #[test]
    fn rendering_names_file_line_and_fix() {
        let e = ConfigError::Invalid {
            file: "hosts.toml".into(),
            problems: vec![Problem {
                line: 3,
                column: 7,
                message: "bad `x`".into(),
                fix: "use y".into(),
            }],
        };
        assert_eq!(e.to_string(), "hosts.toml:3:7: bad `x`\n    fix: use y");
    }
}
