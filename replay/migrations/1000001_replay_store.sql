-- The durable replay store (src/replay/durable/): the events of topics whose retention
-- rule says `durable`, so that a restarted router still has their history.
--
-- Versions: these migrations share sqlx's `_sqlx_migrations` table with the permission
-- graph's (policies/migrations/, numbered from 1). The replay store's are numbered from
-- 1000001 so the two sequences never meet; each migrator ignores the other's rows.
--
-- Only the router reads and writes these tables.

-- One row per stored publication. The primary key is also the index `load` and
-- `prune` use: both walk one topic's positions as a range. There is deliberately no
-- second index (on seq or time): every index is paid for on each insert, and the
-- writer's throughput is what bounds publishing to durable topics.
create table replay_events (
    realm text not null,
    topic text not null,
    -- Position within the topic: 1, 2, 3, ... (a failed commit may leave a hole).
    pos bigint not null check (pos >= 1),
    -- Order across the realm's topics.
    seq bigint not null check (seq >= 0),
    publication bigint not null,
    -- Microseconds since the Unix epoch (what `since`/`after_time` compare with).
    published_at bigint not null,
    -- `publisher`, `publisher_authid`, `publisher_authrole`: a dict, MessagePack-encoded.
    publisher bytea not null,
    -- The payload's serializer by its RawSocket id: 1 JSON, 2 MessagePack, 3 CBOR.
    serializer smallint not null check (serializer between 1 and 3),
    -- Arguments and ArgumentsKw as received, in `serializer`; null when absent.
    args bytea,
    kwargs bytea,
    retain boolean not null,
    primary key (realm, topic, pos)
);

-- Per topic, the last position and seq ever written, upserted once per committed batch
-- per distinct topic. Kept when pruning empties the topic, so positions continue
-- after a restart instead of starting again at 1 (a client resuming "after P" must not
-- get somebody else's P+1), and the realm's next seq stays above every seq used.
create table replay_topics (
    realm text not null,
    topic text not null,
    head bigint not null check (head >= 1),
    last_seq bigint not null check (last_seq >= 0),
    primary key (realm, topic)
);
