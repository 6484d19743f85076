-- A TRUNCATE of a credential table ends the sessions opened with its credentials.
--
-- Migration 0002 logs a TRUNCATE of `tokens` as a change that touches everything, and
-- 0004 followed deletions of `user_keys` only. A TRUNCATE names no row, so a router
-- cannot tell which credentials went: it now ends every session opened with an API
-- token (a TRUNCATE of `tokens`) or with a key of `user_keys` (a TRUNCATE of
-- `user_keys`). It fails closed: a credential restored in the same transaction opens a
-- new session at once, but its open sessions end too. Sessions opened otherwise
-- (static tickets, anonymous) are not affected.
--
-- The router reads the change's table name (`tbl`) and its `everything` flag; no new
-- column is needed.

create trigger switchyard_graph_truncate after truncate on user_keys
    for each statement execute function switchyard_graph_truncated();
