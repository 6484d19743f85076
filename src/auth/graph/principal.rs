//! One row of the platform's `principals` table, typed: who a principal is and the
//! flags that decide whether permissions pass through it.

use std::fmt;

/// `principals.kind`. Roles are groups of users; projects own objects (and other
/// projects); only users log in and hold permissions of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    Role,
    Project,
}

impl PrincipalKind {
    /// The kind spelled as in the table, or `None` for anything else.
    pub fn parse(s: &str) -> Option<PrincipalKind> {
        match s {
            "user" => Some(PrincipalKind::User),
            "role" => Some(PrincipalKind::Role),
            "project" => Some(PrincipalKind::Project),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
            PrincipalKind::Project => "project",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalInfo {
    pub id: String,
    /// `None` when the row has no kind (the column is nullable).
    pub kind: Option<PrincipalKind>,
    pub owner_id: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub trashed: bool,
}
