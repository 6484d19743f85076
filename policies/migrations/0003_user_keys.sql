-- WAMP-Cryptosign public keys of the graph's users: a user logs in by signing the
-- router's challenge with the private key of one of these. The platform inserts and
-- deletes rows; the router only reads them, once per login (nothing is cached, so a
-- deleted key opens no new session).
--
-- pubkey is the Ed25519 public key as 64 lower-case hex digits, exactly as clients
-- send it in HELLO.Details.authextra.pubkey (the router lower-cases what it receives).
-- A key identifies one user; a user may have several keys (one per device, say).
-- Deleting the user deletes its keys. A disabled or trashed user logs in by no key.

create table user_keys (
    pubkey text primary key check (pubkey ~ '^[0-9a-f]{64}$'),
    user_id text not null references principals on delete cascade,
    comment text null,
    created_at timestamptz not null default now()
);

create index user_keys_user_id on user_keys (user_id);
