//! The permission graph in PostgreSQL: who may do what to which object, as the platform
//! records it, and how the router asks it cheaply and learns when an answer changes.
//!
//! The platform writes five tables (`policies/migrations/`, described in
//! `policies/README.md`): principals (users, roles, projects), objects, grants with
//! levels read < write < manage, `read_via` rows and tokens; and users' Cryptosign keys
//! in a sixth (`user_keys`), read only at login. A user's level on a node is
//! the best path's weakest edge, where ownership is manage, `read_via` is read, and a
//! path continues only through principals that pass permissions on.
//!
//! The router asks two questions, one query each: [`GraphStore::closure`] (every
//! principal a user reaches, with its level) and [`GraphStore::object_access`] (what
//! decides the levels on one object). [`Closure::level_on`] combines them without the
//! database. Both carry the graph nodes they depend on (`nodes()`); triggers log every
//! change with the nodes it touches and NOTIFY [`CHANNEL`], so a cached decision is
//! dropped exactly when a change meets its nodes.

mod access;
mod authorizer;
mod cache;
mod changes;
mod closure;
mod error;
mod follow;
mod keys;
mod known_tokens;
mod level;
mod policy;
mod principal;
mod setup;
mod store;
mod tokens;

pub use access::{AccessRow, ObjectAccess};
pub use authorizer::{GraphAuthorizer, GraphPermissions, ADMIN_ROLE, USER_ROLE};
pub use cache::GraphCache;
pub use changes::{Change, CHANNEL};
pub use closure::{Closure, Reached, Standing};
pub use error::GraphError;
pub use follow::{follow, LOST_TRACK};
pub use keys::{KeyError, KeyInfo};
pub use level::Level;
pub use policy::Policy;
pub use setup::{build, GraphRealm, GraphTokens};
pub use principal::{PrincipalInfo, PrincipalKind};
pub use store::{AppliedMigration, GraphStore, MIGRATOR};
pub use tokens::{hash_token, mint_token, TokenError, TokenInfo, TOKEN_PREFIX};
