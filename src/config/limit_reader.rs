//! Reads the integer limits of a configuration table (the main file's `[limits]`, a
//! realm's `[limits]`): a value that is absent or out of range falls back to the default,
//! and an out-of-range one is reported with its file and line.

use std::time::Duration;

use toml::Spanned;

use super::error::{ConfigError, Source};

/// Reads integer limits, falling back to the default for absent or invalid values.
pub(super) struct LimitReader<'a, 'b> {
    pub src: &'a Source<'b>,
    pub errors: &'a mut Vec<ConfigError>,
}

impl LimitReader<'_, '_> {
    /// The value of `key` if present and acceptable; otherwise records why not.
    pub fn int(&mut self, key: &str, value: &Option<Spanned<i64>>, zero_ok: bool) -> Option<u64> {
        let value = value.as_ref()?;
        let n = *value.get_ref();
        let problem = if n < 0 {
            format!("`{key}` must not be negative, got {n}")
        } else if n == 0 && !zero_ok {
            format!("`{key}` must be greater than 0")
        } else {
            return u64::try_from(n).ok();
        };
        self.errors.push(self.src.error(value.span(), problem));
        None
    }

    pub fn count(
        &mut self,
        key: &str,
        value: &Option<Spanned<i64>>,
        default: usize,
        zero_ok: bool,
    ) -> usize {
        self.int(key, value, zero_ok)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(default)
    }

    pub fn millis(
        &mut self,
        key: &str,
        value: &Option<Spanned<i64>>,
        default: Duration,
        zero_ok: bool,
    ) -> Duration {
        self.int(key, value, zero_ok)
            .map_or(default, Duration::from_millis)
    }
}

