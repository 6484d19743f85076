//! Configuration errors and the bookkeeping that turns TOML byte spans into the
//! `file:line:column` positions operators (and editors) understand.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// One problem in a configuration file. `line` and `column` are 1-based; the column
/// counts characters, not bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", .file.display())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found while loading a configuration, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join_lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn join_lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One configuration file being validated: its path and text, so that spans recorded
/// by `toml::Spanned` can be reported as positions.
pub(super) struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Source { file, text }
    }

    /// An error pointing at the start of `span`.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.position(span.start);
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error that cannot be attributed to a value, reported at the top of the file.
    pub fn error_at_top(&self, message: impl Into<String>) -> ConfigError {
        self.error(0..0, message)
    }

    /// 1-based `(line, column)` of byte `offset`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        // Spans come from the TOML parser and should sit on char boundaries; be
        // defensive anyway rather than panic on a slice.
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Deserializes the whole file. Syntax and type errors end parsing of this file
    /// (serde cannot resume), so they come back as a single error.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            // Some parser messages span several lines ("invalid array\nexpected `]`");
            // keep one error per line of output.
            let message: Vec<&str> = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            self.error(span, toml_words(&message.join(": ")))
        })
    }
}

/// serde speaks of struct "fields"; in a TOML file they are keys.
fn toml_words(message: &str) -> String {
    for (serde, toml) in [
        ("unknown field `", "unknown key `"),
        ("missing field `", "missing key `"),
    ] {
        if let Some(rest) = message.strip_prefix(serde) {
            return format!("{toml}{rest}");
        }
    }
    message.to_string()
}
