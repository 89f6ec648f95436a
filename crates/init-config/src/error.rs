//! [`ConfigError`]: a configuration problem located in a file (`PATH:LINE:COL: message`).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem with a configuration file: where it is and what to do about it.
///
/// Displayed as `PATH:LINE:COL: MESSAGE` (1-based line and column), or `PATH: MESSAGE` when the
/// problem has no position (unreadable file, bad file name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl ConfigError {
    /// An error without a position in the file.
    pub fn new(path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    /// An error at byte range `span` of `text`.
    pub fn at(
        path: &Path,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        ConfigError {
            path: path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Converts a TOML syntax or type error, rewording serde's messages for people editing files.
    pub(crate) fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
        let message = reword(err.message().trim());
        ConfigError::at(path, text, err.span(), message)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// serde says "field"; a unit file has keys. Also tells what to do for the common cases.
fn reword(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return format!("unknown key {rest}");
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("missing required key {rest}");
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return format!("unknown value {rest}");
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_is_one_based_and_counts_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes: the space after it is the 3rd character of line 2.
        assert_eq!(line_column(text, 9), (2, 3));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn display_with_and_without_position() {
        let e = ConfigError::at(Path::new("/x/a.toml"), "a\nbc", Some(3..4), "bad");
        assert_eq!(e.to_string(), "/x/a.toml:2:2: bad");
        let e = ConfigError::new(Path::new("/x/a.toml"), "unreadable");
        assert_eq!(e.to_string(), "/x/a.toml: unreadable");
    }
}
