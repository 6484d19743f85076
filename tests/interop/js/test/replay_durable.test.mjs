// Durable topics (docs/replay.md, "Durable topics") seen by autobahn-js: events
// acknowledged before a graceful restart (SIGTERM) or a `kill -9` of the router are all
// there after it, exactly, in order, with their positions and publication ids, and
// positions go on where they stopped; and a realm whose database cannot be reached at
// start refuses publications to its durable topics (wamp.error.unavailable) while its
// other topics work. The autobahn-python suite's tests/test_replay_durable.py does the same.
//
// Each suite has a fresh database (postgres.mjs: $DATABASE_URL's server or this file's
// throwaway cluster) and a router of its own, configured with one inline realm:
// anonymous sessions allowed everything, containers..events durable, containers..logs
// kept in memory only. The test restarts the suite's router itself (and hands the new
// one to the suite, which stops it at the end). History is read with
// wamp.subscription.get_events; the position of a live EVENT from the raw message the
// harness taps (autobahn-js's Event object has no _pos).

import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import {
  routerSuite, startRouter, MSG, show, within, expectReject,
} from './helpers.mjs';
import { Postgres, psql } from './postgres.mjs';

const N = 500;
const TOPIC = 'containers.c1.events';
const LOGS = 'containers.c1.logs';
const GET_EVENTS = 'wamp.subscription.get_events';
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const ONLINE = 'switchyard_replay_durable_online{realm="realm1"}';
const REFUSED = 'switchyard_publications_refused_offline_total';
const COMMITTED = 'switchyard_replay_durable_committed_events{realm="realm1"}';

const config = (databaseUrl) => `
[[realms]]
name = "realm1"
anonymous = "anonymous"

[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }

[realms.replay]
database_url = "${databaseUrl}"

[[realms.replay.topics]]
uri = "containers..events"
match = "wildcard"
max_events = 100000
durable = true

[[realms.replay.topics]]
uri = "containers..logs"
match = "wildcard"
max_events = 1000
`;

const getEvents = (c, sid, args = [], kwargs = {}) => c.session.call(GET_EVENTS, [sid, ...args], kwargs);
const counters = (items) => items.map((it) => it.args[0]);
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);
/** The raw EVENT messages a client received for a subscription. */
const rawEvents = (c, sid) => c.rx.filter((m) => m[0] === MSG.EVENT && m[1] === sid);

/** The exact get_events entries (timestamps checked and blanked). */
function blankTimestamps(entries) {
  for (const e of entries) assert.match(e.timestamp, TIMESTAMP);
  const ts = entries.map((e) => e.timestamp);
  assert.deepEqual(ts, [...ts].sort());
  return entries.map((e) => ({ ...e, timestamp: null }));
}
function expectedEntries(sid, ids, n) {
  return range(0, n).map((c) => ({
    subscription: sid, publication: ids[c], topic: TOPIC, timestamp: null, _pos: c + 1, args: [c], kwargs: {},
  }));
}

function httpGet(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url}: timed out`)));
  });
}

/** The value of the /metrics line starting with `name` (labels included). */
async function metric(router, name) {
  const text = await httpGet(`http://127.0.0.1:${new URL(router.ws).port}/metrics`);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} on /metrics:\n${text.split('\n').filter((l) => l.includes('durable')).join('\n')}`);
  return Number(line.slice(name.length + 1));
}

/** A port nothing listens on (bound a moment ago, then released). */
function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Publishes counters first..first+n-1 to TOPIC with acknowledge, all in flight at once;
 *  every one must be acknowledged. Resolves with the publication ids, in order. */
async function publishCounters(ctx, first, n) {
  const pub = await ctx.connect({ label: `pub ${first}..${first + n - 1}`, transport: 'rawsocket' });
  const published = await Promise.all(range(first, first + n).map((c) => pub.session.publish(TOPIC, [c], {}, { acknowledge: true })));
  const ids = published.map((p) => p.id);
  assert.equal(new Set(ids).size, n);
  await pub.close();
  return ids;
}

/** A new session subscribes to `topic`; resolves with { c, sid, history }. */
async function history(ctx, opts, topic = TOPIC) {
  const c = await ctx.connect(opts);
  const s = await c.session.subscribe(topic, () => {});
  return { c, sid: s.id, history: await getEvents(c, s.id) };
}

/** A suite on a fresh database: body(test, state, db) with db.url set before the router starts. */
function durableSuite(name, body) {
  const db = { pg: null, url: null };
  routerSuite(name, {
    timeout: 12000,
    prepare: async () => {
      db.pg = await Postgres.shared();
      db.url = await db.pg.createDatabase();
      return { config: config(db.url) };
    },
    finish: async () => {
      if (db.pg && db.url) await db.pg.dropDatabase(db.url);
    },
  }, (test, state) => body(test, state, db));
}

for (const how of ['SIGTERM', 'SIGKILL']) {
  durableSuite(`durable topic across a ${how === 'SIGTERM' ? 'graceful restart (SIGTERM)' : 'kill -9'}`, (test, state, db) => {
    test(`${N} acknowledged events, ${how}, restart: get_events is exactly those events (ids, _pos 1..${N}, timestamps), the next one is _pos ${N + 1}`, async (ctx) => {
      let restarted = null;
      try {
        assert.equal(await metric(ctx.router, ONLINE), 1);
        const ids = await publishCounters(ctx, 0, N);
        const b = await history(ctx, { label: 'before' });
        assert.deepEqual(blankTimestamps(b.history), expectedEntries(b.sid, ids, N));
        assert.equal(await metric(ctx.router, COMMITTED), N);

        const old = ctx.router;
        old.proc.kill(how);
        const exit = await within(old._exitPromise, 5000, `router exit after ${how}`);
        if (how === 'SIGTERM') {
          assert.deepEqual(exit, { code: 0, signal: null }, old.stderr());
          await within(b.c.closed, 3000, 'the session before the restart closed');
          assert.equal(b.c.lastRx(MSG.GOODBYE)[2], 'wamp.close.system_shutdown');
        } else {
          assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
        }
        await old.stop(); // exited: removes its folder
        // the same configuration, on the same database; the suite stops it at the end
        restarted = await startRouter({ config: config(db.url) });
        state.router = restarted;
        ctx.router = restarted;
        assert.equal(await metric(restarted, ONLINE), 1);

        const a = await history(ctx, { label: 'after', serializer: 'cbor' });
        assert.deepEqual(blankTimestamps(a.history), expectedEntries(a.sid, ids, N));
        assert.deepEqual(a.history, b.history.map((e) => ({ ...e, subscription: a.sid })),
          'the restored history differs from the one before the restart (timestamps?)');

        // positions go on: live on the wire ...
        const live = ctx.inbox('live');
        const s = await a.c.session.subscribe(TOPIC, live.handler);
        assert.equal(s.id, a.sid);
        const [next] = await publishCounters(ctx, N, 1);
        await live.waitFor(1);
        assert.deepEqual(rawEvents(a.c, a.sid), [[MSG.EVENT, a.sid, next, { _pos: N + 1 }, [N], {}]]);
        // ... and in the history of a subscription made after it
        const l = await history(ctx, { label: 'later', serializer: 'msgpack' });
        assert.deepEqual(blankTimestamps(l.history), expectedEntries(l.sid, [...ids, next], N + 1));
        assert.equal(await metric(restarted, COMMITTED), 1); // since this start
        assert.equal(await psql(db.url, 'select count(*) from replay_events'), String(N + 1));
      } catch (e) {
        if (restarted) e.message += `\n--- stderr of the restarted router ---\n${restarted.stderr().split('\n').slice(-40).join('\n')}`;
        throw e;
      }
    });
  });
}

const offline = { url: null, preparedAt: 0 };
routerSuite('durable topic: database unreachable at start', {
  prepare: async () => {
    offline.url = `postgres://postgres@127.0.0.1:${await closedPort()}/nowhere`;
    offline.preparedAt = Date.now();
    return { config: config(offline.url) };
  },
}, (test) => {
  test('the router starts; durable topics refuse publications (wamp.error.unavailable), the others work', async (ctx) => {
    ctx.t.diagnostic(`database unreachable (closed port): the router was ready ${Date.now() - offline.preparedAt} ms after its start`);
    assert.equal(await metric(ctx.router, ONLINE), 0);
    assert.equal(await metric(ctx.router, REFUSED), 0);
    const sub = await ctx.connect({ label: 'sub', serializer: 'cbor' });
    const events = ctx.inbox('events');
    const logs = ctx.inbox('logs');
    await sub.session.subscribe(TOPIC, events.handler);
    await sub.session.subscribe(LOGS, logs.handler);
    const pub = await ctx.connect({ label: 'pub', transport: 'rawsocket' });

    const e = await expectReject(pub.session.publish(TOPIC, ['durable'], {}, { acknowledge: true }), 3000, 'acknowledged publish to a durable topic');
    assert.equal(e.error, 'wamp.error.unavailable', show(e));
    pub.session.publish(TOPIC, ['durable, unacknowledged']);
    const logged = await pub.session.publish(LOGS, ['memory'], {}, { acknowledge: true });
    const plain = await pub.session.publish(ctx.uri('plain'), ['unstored'], {}, { acknowledge: true });
    assert.notEqual(logged.id, plain.id);
    const [ev] = await logs.waitFor(1);
    assert.deepEqual([ev.args, ev.details.publication], [['memory'], logged.id]);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(events.items, [], 'a refused publication was delivered');

    // the history of a subscription made after the publications
    const l = await history(ctx, { label: 'later', serializer: 'msgpack' }, LOGS);
    assert.deepEqual(counters(l.history), ['memory']);
    assert.equal(l.history[0]._pos, 1);
    assert.equal(await metric(ctx.router, ONLINE), 0);
    assert.equal(await metric(ctx.router, REFUSED), 2);
  });
});
