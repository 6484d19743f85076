-- The change log: every insert, update and delete on the five graph tables appends one
-- row naming the graph nodes it may affect, and NOTIFYs channel `switchyard_graph` with
-- the row's seq. A router caches decisions with the nodes they depend on and, on a
-- notification (or after reconnecting, from its last seq), drops exactly the decisions
-- whose nodes a newer row touches.

create table switchyard_graph_changes (
    seq bigserial primary key,
    at timestamptz not null default now(),
    -- The table the change was made to.
    tbl text not null,
    -- Every node id the change affects, old and new values, sorted, without duplicates.
    touched text[] not null,
    -- Token hashes (tokens.token_sha256) the change affects: kept apart from the node ids
    -- so that a hash can never be mistaken for one.
    tokens text[] not null default '{}',
    -- A TRUNCATE names no rows: it may affect any answer.
    everything boolean not null default false
);

create index switchyard_graph_changes_at on switchyard_graph_changes (at);

-- The highest seq that switchyard_graph_prune_changes has deleted (0: none). A router
-- whose last seq is below it has missed changes and must drop its whole cache.
create table switchyard_graph_pruned (
    singleton boolean primary key default true check (singleton),
    upto bigint not null
);
insert into switchyard_graph_pruned (upto) values (0);

create function switchyard_graph_log(tbl text, touched text[], tokens text[], everything boolean)
returns void language plpgsql as $$
declare
    s bigint;
begin
    -- Writers of the graph take their seq one transaction at a time, in commit order:
    -- without this lock a transaction could take seq 10, commit after another's seq 11,
    -- and a router that had already read 11 would never see 10. The lock is held until
    -- the writing transaction ends, so keep transactions that change the graph short.
    perform pg_advisory_xact_lock(5789907022383812691);
    insert into switchyard_graph_changes (tbl, touched, tokens, everything)
    values (
        tbl,
        array(select distinct t collate "C" from unnest(touched) as t where t is not null order by 1),
        array(select distinct t collate "C" from unnest(tokens) as t where t is not null order by 1),
        everything
    )
    returning seq into s;
    perform pg_notify('switchyard_graph', s::text);
end
$$;

-- One trigger function per table: each knows which columns name nodes. OLD and NEW are
-- both listed on an update, since the node that lost an edge and the one that gained it
-- may both change.
create function switchyard_graph_principals_changed() returns trigger language plpgsql as $$
begin
    perform switchyard_graph_log('principals', case tg_op
        when 'INSERT' then array[new.id, new.owner_id]
        when 'DELETE' then array[old.id, old.owner_id]
        else array[old.id, old.owner_id, new.id, new.owner_id] end, '{}', false);
    return null;
end
$$;

create function switchyard_graph_objects_changed() returns trigger language plpgsql as $$
begin
    perform switchyard_graph_log('objects', case tg_op
        when 'INSERT' then array[new.id, new.owner_id]
        when 'DELETE' then array[old.id, old.owner_id]
        else array[old.id, old.owner_id, new.id, new.owner_id] end, '{}', false);
    return null;
end
$$;

create function switchyard_graph_grants_changed() returns trigger language plpgsql as $$
begin
    perform switchyard_graph_log('grants', case tg_op
        when 'INSERT' then array[new.tail_id, new.head_id]
        when 'DELETE' then array[old.tail_id, old.head_id]
        else array[old.tail_id, old.head_id, new.tail_id, new.head_id] end, '{}', false);
    return null;
end
$$;

create function switchyard_graph_read_via_changed() returns trigger language plpgsql as $$
begin
    perform switchyard_graph_log('read_via', case tg_op
        when 'INSERT' then array[new.object_id, new.via_id]
        when 'DELETE' then array[old.object_id, old.via_id]
        else array[old.object_id, old.via_id, new.object_id, new.via_id] end, '{}', false);
    return null;
end
$$;

create function switchyard_graph_tokens_changed() returns trigger language plpgsql as $$
begin
    perform switchyard_graph_log('tokens',
        case tg_op
            when 'INSERT' then array[new.user_id]
            when 'DELETE' then array[old.user_id]
            else array[old.user_id, new.user_id] end,
        case tg_op
            when 'INSERT' then array[new.token_sha256]
            when 'DELETE' then array[old.token_sha256]
            else array[old.token_sha256, new.token_sha256] end,
        false);
    return null;
end
$$;

create function switchyard_graph_truncated() returns trigger language plpgsql as $$
begin
    perform switchyard_graph_log(tg_table_name, '{}', '{}', true);
    return null;
end
$$;

-- Updates that change nothing (`update principals set disabled = disabled`) log nothing:
-- they cannot change an answer, and a log row would cost every router a cache sweep.
create trigger switchyard_graph_insert_delete after insert or delete on principals
    for each row execute function switchyard_graph_principals_changed();
create trigger switchyard_graph_update after update on principals
    for each row when (old.* is distinct from new.*) execute function switchyard_graph_principals_changed();
create trigger switchyard_graph_truncate after truncate on principals
    for each statement execute function switchyard_graph_truncated();

create trigger switchyard_graph_insert_delete after insert or delete on objects
    for each row execute function switchyard_graph_objects_changed();
create trigger switchyard_graph_update after update on objects
    for each row when (old.* is distinct from new.*) execute function switchyard_graph_objects_changed();
create trigger switchyard_graph_truncate after truncate on objects
    for each statement execute function switchyard_graph_truncated();

create trigger switchyard_graph_insert_delete after insert or delete on grants
    for each row execute function switchyard_graph_grants_changed();
create trigger switchyard_graph_update after update on grants
    for each row when (old.* is distinct from new.*) execute function switchyard_graph_grants_changed();
create trigger switchyard_graph_truncate after truncate on grants
    for each statement execute function switchyard_graph_truncated();

create trigger switchyard_graph_insert_delete after insert or delete on read_via
    for each row execute function switchyard_graph_read_via_changed();
create trigger switchyard_graph_update after update on read_via
    for each row when (old.* is distinct from new.*) execute function switchyard_graph_read_via_changed();
create trigger switchyard_graph_truncate after truncate on read_via
    for each statement execute function switchyard_graph_truncated();

create trigger switchyard_graph_insert_delete after insert or delete on tokens
    for each row execute function switchyard_graph_tokens_changed();
create trigger switchyard_graph_update after update on tokens
    for each row when (old.* is distinct from new.*) execute function switchyard_graph_tokens_changed();
create trigger switchyard_graph_truncate after truncate on tokens
    for each statement execute function switchyard_graph_truncated();

-- Deletes the log rows older than `keep` (e.g. `select switchyard_graph_prune_changes('7 days')`)
-- and returns how many it deleted. Run it from cron or the platform's maintenance job;
-- keep longer than any router may stay disconnected, since a router that comes back
-- behind the pruned point cannot replay and drops its whole cache instead.
create function switchyard_graph_prune_changes(keep interval) returns bigint language plpgsql as $$
declare
    n bigint;
    top bigint;
begin
    with gone as (
        delete from switchyard_graph_changes where at < now() - keep returning seq
    )
    select count(*), max(seq) into n, top from gone;
    if top is not null then
        update switchyard_graph_pruned set upto = greatest(upto, top);
    end if;
    return n;
end
$$;
