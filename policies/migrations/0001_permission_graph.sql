-- The permission graph, as the platform writes it. The five tables and their columns
-- are an interface: the platform inserts, updates and deletes rows here, and the
-- router only reads them. Change a name or a column only together with the platform.
--
-- Nodes are principals (users, roles, projects) and objects. Edges, with levels
-- 1 read < 2 write < 3 manage:
--   grants     tail_id -> head_id at level (head: a principal or an object)
--   owner_id   owner -> principal or object at 3
--   read_via   via_id -> object_id at 1 (readable by whoever can read the via)
-- policies/README.md states how levels follow from these edges.

create table principals (
    id text primary key,
    kind text check (kind in ('user', 'role', 'project')),
    owner_id text null references principals,
    is_admin boolean not null default false,
    disabled boolean not null default false,
    trashed boolean not null default false
);

create table objects (
    id text primary key,
    kind text not null,
    owner_id text not null references principals
);

create table grants (
    tail_id text references principals on delete cascade,
    head_id text not null,
    level smallint not null check (level between 1 and 3),
    primary key (tail_id, head_id)
);

create table read_via (
    object_id text,
    via_id text,
    primary key (object_id, via_id)
);

create table tokens (
    token_sha256 text primary key,
    user_id text not null references principals,
    expires_at timestamptz null,
    revoked boolean not null default false
);

-- The router walks edges in both directions: out of a principal when it computes what a
-- user reaches (grants by tail: the primary key; owned principals: owner_id), into an
-- object when it computes what decides an object's level (grants by head, read_via by
-- object: the primary key). The others serve the platform's deletes and the foreign
-- keys, which would otherwise scan.
create index grants_head_id on grants (head_id);
create index principals_owner_id on principals (owner_id);
create index objects_owner_id on objects (owner_id);
create index read_via_via_id on read_via (via_id);
create index tokens_user_id on tokens (user_id);
