//! Where things are in the inputs, and the errors and "not imported" entries that point there.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Includes nested deeper than this are refused (a loop, or a configuration nobody can read).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Why an input could not be imported. Every variant names the file and, for syntax, the line.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The input is malformed at this line.
    #[error("{}:{line}: {message}", file.display())]
    Syntax {
        /// The file (an included file when the problem is there).
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and, where it helps, how to fix it.
        message: String,
    },
    /// A file (the input or one it includes) could not be read.
    #[error("{}:{line}: cannot read `{}`: {source}", file.display(), path.display())]
    Read {
        /// The file holding the include (or the input itself, line 0).
        file: PathBuf,
        /// The line of the include statement (0 for the input itself).
        line: usize,
        /// The path that could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A zone file could not be read (with line and column).
    #[error(transparent)]
    Zone(#[from] crate::zonefile::ZoneFileError),
}

impl ImportError {
    /// The line the error is about.
    pub fn line(&self) -> usize {
        match self {
            ImportError::Syntax { line, .. } | ImportError::Read { line, .. } => *line,
            ImportError::Zone(e) => e.line(),
        }
    }
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ImportError::Syntax { file, .. } | ImportError::Read { file, .. } => file,
            ImportError::Zone(e) => e.file(),
        }
    }
}

/// Something in the input the host file cannot express (or that the suite derives by itself and
/// that disagreed with the input). Never dropped silently: the importer lists each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The construct, as written (abridged).
    pub construct: String,
    /// Why it was not imported, and what to do instead.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: not imported: {}: {}",
            self.file.display(),
            self.line,
            self.construct,
            self.reason
        )
    }
}

/// Reads an included file. The default reads the file system; tests and tools may supply their own.
pub type ReadFn<'a> = &'a dyn Fn(&Path) -> std::io::Result<String>;

/// Where a fact came from.
#[derive(Debug, Clone)]
pub(crate) struct Src {
    pub(crate) file: Arc<Path>,
    pub(crate) line: usize,
}

impl Src {
    pub(crate) fn new(file: &Arc<Path>, line: usize) -> Src {
        Src {
            file: file.clone(),
            line,
        }
    }
    pub(crate) fn unsupported(
        &self,
        construct: impl Into<String>,
        reason: impl Into<String>,
    ) -> Unsupported {
        Unsupported {
            file: self.file.to_path_buf(),
            line: self.line,
            construct: construct.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn error(&self, message: impl Into<String>) -> ImportError {
        ImportError::Syntax {
            file: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Src {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.file.file_name().map_or_else(
            || self.file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        write!(f, "{name}:{}", self.line)
    }
}

/// Resolves an include path against the including file's directory.
pub(crate) fn include_path(from: &Path, target: &str) -> PathBuf {
    let p = PathBuf::from(target);
    if p.is_absolute() {
        p
    } else {
        from.parent().unwrap_or(Path::new("")).join(p)
    }
}

/// Starts the reason of an entry that weakens or disables a security property (a health check, a
/// signature): such entries are repeated at the end of the import's output, see
/// [`crate::Imported::warnings`].
pub(crate) const LOUD: &str = "WARNING: ";

/// Reads an include, refusing loops and excessive depth.
pub(crate) fn read_include(
    read: ReadFn<'_>,
    stack: &[Arc<Path>],
    at: &Src,
    path: &Path,
) -> Result<String, ImportError> {
    if stack.len() >= MAX_INCLUDE_DEPTH {
        return Err(at.error(format!(
            "includes nested deeper than {MAX_INCLUDE_DEPTH} levels at `{}`",
            path.display()
        )));
    }
    if stack.iter().any(|p| **p == *path) {
        return Err(at.error(format!(
            "`{}` includes itself (directly or through other files)",
            path.display()
        )));
    }
    read(path).map_err(|source| ImportError::Read {
        file: at.file.to_path_buf(),
        line: at.line,
        path: path.to_owned(),
        source,
    })
}

/// Reads a file as text. Bytes that are not UTF-8 (a Latin-1 or Shift_JIS comment) become U+FFFD
/// instead of refusing the file; the parsers report those outside comments ([`NOT_UTF8`]).
pub(crate) fn read_lossy(p: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(p)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Why a value holding U+FFFD is listed: the file had bytes there that are not UTF-8.
pub(crate) const NOT_UTF8: &str = "bytes that are not UTF-8 (Latin-1, Shift_JIS or EUC-JP?) outside a comment were read as U+FFFD; the value is imported as read: convert the file to UTF-8 (iconv -f LATIN1 -t UTF-8, or -f SHIFT_JIS) and check it";

/// Shortens a construct for messages.
pub(crate) fn abridge(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 72 {
        let mut t: String = s.chars().take(69).collect();
        t.push_str("...");
        t
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_reads_like_a_compiler_message() {
        let u = Unsupported {
            file: PathBuf::from("dhcpd.conf"),
            line: 6,
            construct: "log-facility local7;".into(),
            reason: "no host-file equivalent".into(),
        };
        assert_eq!(
            u.to_string(),
            "dhcpd.conf:6: not imported: log-facility local7;: no host-file equivalent"
        );
    }
}
