-- Deleting a user's WAMP-Cryptosign key (or giving it to another user) ends the
-- sessions opened with it, as revoking an API token ends the token's sessions.
--
-- The change log's `tokens` column (migration 0002) names credentials whose sessions
-- may have to end: besides API token hashes it now holds `key:<pubkey>` for a key of
-- user_keys. A token hash is 64 hex digits and never starts with `key:`, so the two
-- cannot be mistaken for each other. The row's `touched` names the key's user (old and
-- new), whose sessions the router looks among.
--
-- A new key withdraws nothing, so inserts log nothing; nor do updates that change
-- nothing. A TRUNCATE of user_keys is not followed (as for tokens): it names no key,
-- and ends no open session.

comment on column switchyard_graph_changes.tokens is
    'Credentials whose sessions may have to end: API token hashes (tokens.token_sha256), and key:<pubkey> for user_keys';

create function switchyard_graph_user_keys_changed() returns trigger language plpgsql as $$
begin
    perform switchyard_graph_log('user_keys',
        case tg_op
            when 'DELETE' then array[old.user_id]
            else array[old.user_id, new.user_id] end,
        case tg_op
            when 'DELETE' then array['key:' || old.pubkey]
            else array['key:' || old.pubkey, 'key:' || new.pubkey] end,
        false);
    return null;
end
$$;

create trigger switchyard_graph_delete after delete on user_keys
    for each row execute function switchyard_graph_user_keys_changed();
create trigger switchyard_graph_update after update on user_keys
    for each row when (old.* is distinct from new.*) execute function switchyard_graph_user_keys_changed();
