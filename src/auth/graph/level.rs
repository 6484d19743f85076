//! The level a principal holds on a node of the permission graph: none < read < write <
//! manage. Levels combine in two ways only: along a path the weakest edge decides
//! (`min`), across paths the strongest path decides (`max`), which is why the type is
//! `Ord` and nothing else.

use std::fmt;

/// A permission level. The numbers are the platform's (`grants.level` holds 1..=3; 0 is
/// the absence of any path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    #[default]
    None = 0,
    Read = 1,
    Write = 2,
    Manage = 3,
}

impl Level {
    /// The level stored as `n`, or `None` outside 0..=3.
    pub fn from_i16(n: i16) -> Option<Level> {
        match n {
            0 => Some(Level::None),
            1 => Some(Level::Read),
            2 => Some(Level::Write),
            3 => Some(Level::Manage),
            _ => None,
        }
    }

    pub fn as_i16(self) -> i16 {
        self as i16
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Read => "read",
            Level::Write => "write",
            Level::Manage => "manage",
        }
    }

    /// True for every level but `None`: some path exists.
    pub fn any(self) -> bool {
        self != Level::None
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_order_follows_them() {
        for n in 0..=3 {
            assert_eq!(Level::from_i16(n).map(Level::as_i16), Some(n));
        }
        assert_eq!(Level::from_i16(4), None);
        assert_eq!(Level::from_i16(-1), None);
        assert!(Level::None < Level::Read && Level::Read < Level::Write && Level::Write < Level::Manage);
        assert_eq!(Level::Write.min(Level::Manage), Level::Write);
        assert_eq!(Level::Manage.to_string(), "manage");
    }
}
