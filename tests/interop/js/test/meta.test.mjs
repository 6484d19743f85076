// The meta API with autobahn-js: session, subscription and registration meta events and
// procedures, killing sessions, testaments, and who may use them on the workbench realm.
//
// Values are asserted exactly. Tests that compare whole lists (counts, `list`) run on a
// router of their own (withRouter: about 20 ms to start); the others only look at
// events about the sessions they opened (the suite's router may still be closing the
// sessions of the test before).
//
// autobahn-js answers the router's GOODBYE with reason "wamp.error.goodbye_and_out"
// (lib/session.js; the spec's reply is wamp.close.goodbye_and_out); the router takes it.

import assert from 'node:assert/strict';
import {
  AUTH_CONFIG, MSG, VARIANTS, autobahn, expectReject, normBin, routerSuite, show, sleep, within, withRouter,
} from './helpers.mjs';
import { SERVICE_TICKETS, workbenchSuite } from './workbench.mjs';

const NO_SUCH_SESSION = 'wamp.error.no_such_session';
const NO_SUCH_SUBSCRIPTION = 'wamp.error.no_such_subscription';
const NO_SUCH_REGISTRATION = 'wamp.error.no_such_registration';
const INVALID_URI = 'wamp.error.invalid_uri';
const INVALID_ARGUMENT = 'wamp.error.invalid_argument';
const NOT_AUTHORIZED = 'wamp.error.not_authorized';
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;
const ACK = { acknowledge: true };

const SUB_EVENTS = ['wamp.subscription.on_create', 'wamp.subscription.on_subscribe',
  'wamp.subscription.on_unsubscribe', 'wamp.subscription.on_delete'];
const REG_EVENTS = ['wamp.registration.on_create', 'wamp.registration.on_register',
  'wamp.registration.on_unregister', 'wamp.registration.on_delete'];

// ---------------------------------------------------------------------------------
// helpers

/** Records the events of several topics in order of arrival: {topic, args, kwargs}. */
class Recorder {
  constructor(label = 'meta') {
    this.label = label;
    this.items = [];
    this._waiters = [];
  }

  async watch(client, ...topics) {
    for (const topic of topics) {
      await client.session.subscribe(topic, (args, kwargs) => {
        this.items.push({ topic, args: args || [], kwargs: kwargs || {} });
        for (const w of this._waiters) w();
      });
    }
  }

  static about(item, ids) {
    if (!item.topic.startsWith('wamp.')) return true; // a testament: the test's own topic
    let first = item.args[0];
    if (first && typeof first === 'object') first = first.session;
    return ids.includes(first);
  }

  /** [topic, ...args] of every event about one of `ids` (and every non-meta event). */
  events(...ids) {
    return this.items.filter((i) => Recorder.about(i, ids)).map((i) => [i.topic, ...i.args]);
  }

  kwargsOf(topic) {
    return this.items.filter((i) => i.topic === topic).map((i) => i.kwargs);
  }

  async until(n, ...ids) {
    const done = () => this.events(...ids).length >= n;
    if (!done()) {
      await within(new Promise((resolve) => {
        const w = () => {
          if (done()) {
            this._waiters = this._waiters.filter((x) => x !== w);
            resolve();
          }
        };
        this._waiters.push(w);
      }), 3000, `${this.label}: ${n} event(s) about ${ids}; have ${show(this.events(...ids), 1500)}`);
    }
    return this.events(...ids);
  }
}

async function errorOf(promise, what = 'call') {
  const e = await expectReject(promise, 3000, what);
  assert.ok(e instanceof autobahn.Error, `expected an autobahn.Error, got ${show(e)}`);
  return e;
}

function peerOf(client) {
  return `${client.socket.localAddress}:${client.socket.localPort}`;
}

function detailsOf(client) {
  const w = client.welcome;
  return {
    session: client.id, authid: w.authid, authrole: w.authrole, authmethod: w.authmethod,
    authprovider: w.authprovider, transport: { type: client.transport, peer: peerOf(client), is_secure: false },
  };
}

function assertCreated(value) {
  assert.match(value, RFC3339);
  assert.ok(Math.abs(Date.now() - Date.parse(value)) < 10000, `created ${value} is not now`);
}

/** GOODBYE messages the client received: [reason, details]. */
function goodbyes(client) {
  return client.rx.filter((m) => m[0] === MSG.GOODBYE).map((m) => [m[2], m[1]]);
}

async function gone(client) {
  await within(client.closed, 3000, `${client.label} closed`);
  return client;
}


const sortIds = (a) => [...a].sort((x, y) => x - y);
const sortedLists = (d) => Object.fromEntries(Object.entries(d).map(([k, v]) => [k, sortIds(v)]));
const other = (variant) => VARIANTS[(VARIANTS.indexOf(variant) + 1) % VARIANTS.length];

const TWO_REALMS = ['realm1', 'realm2'].map((name) => `
[[realms]]
name = "${name}"
anonymous = "anonymous"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
`).join('');

// ---------------------------------------------------------------------------------

routerSuite('meta API (default config)', (test) => {
  // ------------------------------------------------------------------ sessions

  for (const variant of VARIANTS) {
    for (const how of ['goodbye', 'drop']) {
      test(`${variant.name}: on_join, wamp.session.get and on_leave (${how})`, async (ctx) => {
        const watcher = await ctx.connect({ variant: other(variant), label: 'watcher' });
        const rec = new Recorder();
        await rec.watch(watcher, 'wamp.session.on_join', 'wamp.session.on_leave');
        const s = await ctx.connect({ variant, label: 's' });
        const expected = detailsOf(s);
        assert.deepEqual([expected.authid, expected.authrole, expected.authmethod, expected.authprovider],
          [`anonymous-${s.id}`, 'anonymous', 'anonymous', 'static']);
        assert.deepEqual(await rec.until(1, s.id), [['wamp.session.on_join', expected]]);
        assert.deepEqual(await watcher.session.call('wamp.session.get', [s.id]), expected);
        if (how === 'goodbye') s.connection.close();
        else s.dropTransport();
        assert.deepEqual(await rec.until(2, s.id), [
          ['wamp.session.on_join', expected],
          ['wamp.session.on_leave', s.id, expected.authid, 'anonymous']]);
        const e = await errorOf(watcher.session.call('wamp.session.get', [s.id]));
        assert.equal(e.error, NO_SUCH_SESSION);
      });
    }
  }

  test('wamp.session.get of an unknown session; of a non-id', async (ctx) => {
    const s = await ctx.connect();
    assert.equal((await errorOf(s.session.call('wamp.session.get', [4242]))).error, NO_SUCH_SESSION);
    assert.equal((await errorOf(s.session.call('wamp.session.get', ['x']))).error, INVALID_ARGUMENT);
  });

  test('count and list with filter_authroles (ticket principals, own router)', async (ctx) => {
    await withRouter(ctx, AUTH_CONFIG, async (connect) => {
      const anon = await connect({ variant: VARIANTS[0] });
      const alice1 = await connect({ variant: VARIANTS[1], authid: 'alice', ticket: 'alice-secret' });
      const alice2 = await connect({ variant: VARIANTS[2], authid: 'alice', ticket: 'alice-secret' });
      const bob = await connect({ variant: VARIANTS[3], authid: 'bob', ticket: 'bob-secret' });
      const call = (p, args, kwargs) => anon.session.call(p, args, kwargs);
      assert.equal(await call('wamp.session.count'), 4);
      assert.deepEqual(sortIds(await call('wamp.session.list')), sortIds([anon.id, alice1.id, alice2.id, bob.id]));
      assert.equal(await call('wamp.session.count', [['user']]), 2);
      assert.deepEqual(sortIds(await call('wamp.session.list', [['user']])), sortIds([alice1.id, alice2.id]));
      assert.equal(await call('wamp.session.count', [['reader', 'anonymous']]), 2);
      assert.deepEqual(sortIds(await call('wamp.session.list', [['reader', 'anonymous']])), sortIds([bob.id, anon.id]));
      assert.equal(await call('wamp.session.count', [['nobody']]), 0);
      assert.deepEqual(await call('wamp.session.list', [['nobody']]), []);
      assert.equal(await call('wamp.session.count', [[]]), 0);
      assert.equal(await call('wamp.session.count', [], { filter_authroles: ['user'] }), 2);
      assert.equal((await errorOf(call('wamp.session.count', ['user']))).error, INVALID_ARGUMENT);
      assert.equal((await errorOf(bob.session.call('wamp.session.count'))).error, NOT_AUTHORIZED);
      // the session details of a ticket principal
      assert.deepEqual(await call('wamp.session.get', [alice1.id]), {
        session: alice1.id, authid: 'alice', authrole: 'user', authmethod: 'ticket', authprovider: 'static',
        transport: { type: 'websocket', peer: peerOf(alice1), is_secure: false },
      });
      assert.deepEqual((await call('wamp.session.get', [bob.id])).transport, { type: 'rawsocket', peer: peerOf(bob), is_secure: false });
    });
  });

  // ------------------------------------------------------------------ kill

  for (const variant of VARIANTS) {
    test(`${variant.name}: wamp.session.kill with reason and message`, async (ctx) => {
      const killer = await ctx.connect({ variant: other(variant), label: 'killer' });
      const victim = await ctx.connect({ variant, label: 'victim' });
      assert.equal(await killer.session.call('wamp.session.kill', [victim.id],
        { reason: 'com.example.close.evicted', message: 'make room' }), null);
      await gone(victim);
      assert.deepEqual(goodbyes(victim), [['com.example.close.evicted', { message: 'make room' }]]);
      assert.equal(victim.closeInfo.details.reason, 'com.example.close.evicted');
      assert.equal(victim.closeInfo.details.message, 'make room');
      assert.equal((await errorOf(killer.session.call('wamp.session.get', [victim.id]))).error, NO_SUCH_SESSION);
      assert.ok(killer.isOpen());
    });
  }

  test('wamp.session.kill defaults to wamp.close.normal and no message', async (ctx) => {
    const killer = await ctx.connect();
    const victim = await ctx.connect({ transport: 'rawsocket' });
    assert.equal(await killer.session.call('wamp.session.kill', [victim.id]), null);
    await gone(victim);
    assert.deepEqual(goodbyes(victim), [['wamp.close.normal', {}]]);
  });

  test('kill refusals: self, unknown, invalid reasons', async (ctx) => {
    const killer = await ctx.connect({ serializer: 'msgpack' });
    const victim = await ctx.connect({ serializer: 'cbor' });
    const kill = (...a) => killer.session.call(...a);
    assert.equal((await errorOf(kill('wamp.session.kill', [killer.id]))).error, NO_SUCH_SESSION);
    assert.equal((await errorOf(kill('wamp.session.kill', [4242]))).error, NO_SUCH_SESSION);
    for (const bad of ['not a uri!', '', 'a..b', 7]) {
      assert.equal((await errorOf(kill('wamp.session.kill', [victim.id], { reason: bad }))).error, INVALID_URI, show(bad));
    }
    for (const p of ['wamp.session.kill_by_authid', 'wamp.session.kill_by_authrole']) {
      assert.equal((await errorOf(kill(p, ['anonymous'], { reason: 'bad reason' }))).error, INVALID_URI);
    }
    assert.equal((await errorOf(kill('wamp.session.kill_all', [], { reason: 'bad reason' }))).error, INVALID_URI);
    assert.deepEqual(goodbyes(victim), []);
    assert.equal((await killer.session.call('wamp.session.get', [victim.id])).session, victim.id);
  });

  test('kill_by_authid, kill_by_authrole, kill_all: counts, caller excluded (own router)', async (ctx) => {
    await withRouter(ctx, AUTH_CONFIG, async (connect) => {
      const anon1 = await connect({ variant: VARIANTS[0] });
      const anon2 = await connect({ variant: VARIANTS[3] });
      const alice1 = await connect({ variant: VARIANTS[1], authid: 'alice', ticket: 'alice-secret' });
      const alice2 = await connect({ variant: VARIANTS[2], authid: 'alice', ticket: 'alice-secret' });
      const bob = await connect({ variant: VARIANTS[0], authid: 'bob', ticket: 'bob-secret' });
      assert.equal(await alice1.session.call('wamp.session.kill_by_authid', ['alice'],
        { reason: 'com.example.dup', message: 'one alice is enough' }), 1);
      assert.deepEqual(goodbyes(await gone(alice2)), [['com.example.dup', { message: 'one alice is enough' }]]);
      assert.equal(await anon1.session.call('wamp.session.kill_by_authid', ['nobody']), 0);
      assert.equal(await anon1.session.call('wamp.session.kill_by_authrole', ['reader']), 1);
      assert.deepEqual(goodbyes(await gone(bob)), [['wamp.close.normal', {}]]);
      assert.equal(await anon1.session.call('wamp.session.kill_by_authrole', ['anonymous'],
        { reason: 'wamp.close.system_shutdown' }), 1);
      assert.deepEqual(goodbyes(await gone(anon2)), [['wamp.close.system_shutdown', {}]]);
      assert.deepEqual(sortIds(await anon1.session.call('wamp.session.list')), sortIds([anon1.id, alice1.id]));
      assert.equal(await anon1.session.call('wamp.session.kill_all', [], { message: 'closing time' }), 1);
      assert.deepEqual(goodbyes(await gone(alice1)), [['wamp.close.normal', { message: 'closing time' }]]);
      assert.deepEqual(await anon1.session.call('wamp.session.list'), [anon1.id]);
      assert.equal(await anon1.session.call('wamp.session.kill_all'), 0);
      assert.ok(anon1.isOpen());
    });
  });

  test('the meta API of one realm shows nothing of another (own router)', async (ctx) => {
    await withRouter(ctx, TWO_REALMS, async (connect) => {
      const watcher = await connect();
      const rec = new Recorder('realm1');
      await rec.watch(watcher, 'wamp.session.on_join', 'wamp.session.on_leave',
        'wamp.subscription.on_create', 'wamp.registration.on_create');
      const elsewhere = await connect({ realm: 'realm2', transport: 'rawsocket' });
      await elsewhere.session.subscribe('com.example.elsewhere', () => {});
      await elsewhere.session.register('com.example.elsewhere', () => null);
      await elsewhere.close();
      const mine = await connect({ serializer: 'msgpack' });
      await mine.close();
      await rec.until(2, mine.id);
      assert.deepEqual(rec.events(elsewhere.id), []);
      assert.deepEqual(await watcher.session.call('wamp.session.list'), [watcher.id]);
      assert.equal((await errorOf(watcher.session.call('wamp.session.kill', [elsewhere.id]))).error, NO_SUCH_SESSION);
      assert.equal(await watcher.session.call('wamp.subscription.lookup', ['com.example.elsewhere']), null);
      assert.deepEqual(await watcher.session.call('wamp.registration.list'), { exact: [], prefix: [], wildcard: [] });
    });
  });

  test('clients cannot publish or register wamp.* URIs', async (ctx) => {
    const s = await ctx.connect();
    assert.equal((await errorOf(s.session.publish('wamp.session.on_join', [{ session: 1 }], {}, ACK))).error, INVALID_URI);
    assert.equal((await errorOf(s.session.register('wamp.session.count', () => 0))).error, INVALID_URI);
    assert.equal((await errorOf(s.session.call('wamp.session.add_testament', ['wamp.session.on_leave', [1], {}]))).error, INVALID_URI);
    assert.equal(typeof (await s.session.call('wamp.session.count')), 'number');
  });

  // ------------------------------------------------------------------ subscriptions

  for (const variant of VARIANTS) {
    test(`${variant.name}: subscription meta events in order`, async (ctx) => {
      const watcher = await ctx.connect({ label: 'watcher' });
      const rec = new Recorder('subscription events');
      await rec.watch(watcher, ...SUB_EVENTS);
      const s1 = await ctx.connect({ variant, label: 's1' });
      const s2 = await ctx.connect({ variant: other(variant), label: 's2' });
      const topic = ctx.uri('topic');
      const sub1 = await s1.session.subscribe(topic, () => {});
      const [created] = await rec.until(2, s1.id, s2.id);
      assert.deepEqual(created.slice(0, 2), ['wamp.subscription.on_create', s1.id]);
      const details = created[2];
      assert.deepEqual(Object.keys(details).sort(), ['created', 'id', 'match', 'uri']);
      assert.deepEqual([details.id, details.uri, details.match], [sub1.id, topic, 'exact']);
      assertCreated(details.created);
      const sid = sub1.id;
      const sub2 = await s2.session.subscribe(topic, () => {});
      assert.equal(sub2.id, sid);
      await rec.until(3, s1.id, s2.id);
      await s1.session.unsubscribe(sub1);
      await rec.until(4, s1.id, s2.id);
      await s2.session.unsubscribe(sub2);
      assert.deepEqual(await rec.until(6, s1.id, s2.id), [
        ['wamp.subscription.on_create', s1.id, details],
        ['wamp.subscription.on_subscribe', s1.id, sid],
        ['wamp.subscription.on_subscribe', s2.id, sid],
        ['wamp.subscription.on_unsubscribe', s1.id, sid],
        ['wamp.subscription.on_unsubscribe', s2.id, sid],
        ['wamp.subscription.on_delete', s2.id, sid]]);
      // SUBSCRIBED reaches s1 before the router publishes the events of its SUBSCRIBE:
      // wait for them before s2 acts (events of two sessions come in no particular order)
      const prefix = await s1.session.subscribe(`${topic}.`, () => {}, { match: 'prefix' });
      await rec.until(8, s1.id, s2.id);
      const wildcard = await s2.session.subscribe(`${topic}..x`, () => {}, { match: 'wildcard' });
      const got = await rec.until(10, s1.id, s2.id);
      assert.deepEqual(got.slice(6).map(([t, s, d]) => [t, s, typeof d === 'number' ? d : [d.id, d.uri, d.match]]), [
        ['wamp.subscription.on_create', s1.id, [prefix.id, `${topic}.`, 'prefix']],
        ['wamp.subscription.on_subscribe', s1.id, prefix.id],
        ['wamp.subscription.on_create', s2.id, [wildcard.id, `${topic}..x`, 'wildcard']],
        ['wamp.subscription.on_subscribe', s2.id, wildcard.id]]);
    });
  }

  test('subscription procedures: list, lookup, match, get, list/count_subscribers (own router)', async (ctx) => {
    await withRouter(ctx, null, async (connect) => {
      const caller = await connect();
      const s1 = await connect({ transport: 'rawsocket' });
      const s2 = await connect({ serializer: 'cbor' });
      const call = (p, args, kwargs) => caller.session.call(p, args, kwargs);
      const topic = 'com.example.meta.a.b';
      const exact1 = await s1.session.subscribe(topic, () => {});
      const exact2 = await s2.session.subscribe(topic, () => {});
      assert.equal(exact1.id, exact2.id);
      const prefix = await s1.session.subscribe('com.example.meta.', () => {}, { match: 'prefix' });
      const wildcard = await s2.session.subscribe('com.example..a.b', () => {}, { match: 'wildcard' });
      const otherSub = await s2.session.subscribe('com.example.other', () => {});
      assert.deepEqual(sortedLists(await call('wamp.subscription.list')),
        { exact: sortIds([exact1.id, otherSub.id]), prefix: [prefix.id], wildcard: [wildcard.id] });
      assert.equal(await call('wamp.subscription.lookup', [topic]), exact1.id);
      assert.equal(await call('wamp.subscription.lookup', [topic, { match: 'exact' }]), exact1.id);
      assert.equal(await call('wamp.subscription.lookup', ['com.example.meta.', { match: 'prefix' }]), prefix.id);
      assert.equal(await call('wamp.subscription.lookup', ['com.example.meta.']), null);
      assert.equal(await call('wamp.subscription.lookup', ['com.example..a.b', { match: 'wildcard' }]), wildcard.id);
      assert.equal(await call('wamp.subscription.lookup', ['com.example.nothing']), null);
      assert.equal((await errorOf(call('wamp.subscription.lookup', [topic, { match: 'fuzzy' }]))).error, INVALID_ARGUMENT);
      assert.deepEqual(sortIds(await call('wamp.subscription.match', [topic])), sortIds([exact1.id, prefix.id, wildcard.id]));
      assert.deepEqual(await call('wamp.subscription.match', ['com.example.meta.zzz']), [prefix.id]);
      assert.deepEqual(await call('wamp.subscription.match', ['com.example.x.a.b']), [wildcard.id]);
      assert.equal(await call('wamp.subscription.match', ['com.example.nothing']), null);
      const d = await call('wamp.subscription.get', [exact1.id]);
      assert.deepEqual(Object.keys(d).sort(), ['created', 'id', 'match', 'uri']);
      assert.deepEqual([d.id, d.uri, d.match], [exact1.id, topic, 'exact']);
      assertCreated(d.created);
      assert.deepEqual(sortIds(await call('wamp.subscription.list_subscribers', [exact1.id])), sortIds([s1.id, s2.id]));
      assert.equal(await call('wamp.subscription.count_subscribers', [exact1.id]), 2);
      assert.deepEqual(await call('wamp.subscription.list_subscribers', [prefix.id]), [s1.id]);
      for (const p of ['wamp.subscription.get', 'wamp.subscription.list_subscribers', 'wamp.subscription.count_subscribers']) {
        assert.equal((await errorOf(call(p, [987654321]))).error, NO_SUCH_SUBSCRIPTION, p);
      }
      await s1.session.unsubscribe(exact1);
      await s2.session.unsubscribe(exact2);
      assert.equal((await errorOf(call('wamp.subscription.get', [exact1.id]))).error, NO_SUCH_SUBSCRIPTION);
      assert.deepEqual(sortedLists(await call('wamp.subscription.list')),
        { exact: [otherSub.id], prefix: [prefix.id], wildcard: [wildcard.id] });
    });
  });

  // ------------------------------------------------------------------ registrations

  for (const variant of VARIANTS) {
    test(`${variant.name}: registration meta events in order (shared registration)`, async (ctx) => {
      const watcher = await ctx.connect({ transport: 'rawsocket', label: 'watcher' });
      const rec = new Recorder('registration events');
      await rec.watch(watcher, ...REG_EVENTS);
      const c1 = await ctx.connect({ variant, label: 'c1' });
      const c2 = await ctx.connect({ variant: other(variant), label: 'c2' });
      const proc = ctx.uri('proc');
      const reg1 = await c1.session.register(proc, () => 1, { invoke: 'roundrobin' });
      const [created] = await rec.until(2, c1.id, c2.id);
      assert.deepEqual(created.slice(0, 2), ['wamp.registration.on_create', c1.id]);
      const details = created[2];
      assert.deepEqual(Object.keys(details).sort(), ['created', 'id', 'invoke', 'match', 'uri']);
      assert.deepEqual([details.id, details.uri, details.match, details.invoke], [reg1.id, proc, 'exact', 'roundrobin']);
      assertCreated(details.created);
      const rid = reg1.id;
      const reg2 = await c2.session.register(proc, () => 2, { invoke: 'roundrobin' });
      assert.equal(reg2.id, rid);
      await rec.until(3, c1.id, c2.id);
      await c1.session.unregister(reg1);
      await rec.until(4, c1.id, c2.id);
      await c2.session.unregister(reg2);
      assert.deepEqual(await rec.until(6, c1.id, c2.id), [
        ['wamp.registration.on_create', c1.id, details],
        ['wamp.registration.on_register', c1.id, rid],
        ['wamp.registration.on_register', c2.id, rid],
        ['wamp.registration.on_unregister', c1.id, rid],
        ['wamp.registration.on_unregister', c2.id, rid],
        ['wamp.registration.on_delete', c2.id, rid]]);
      const single = await c1.session.register(`${proc}.single`, () => 0);
      await rec.until(8, c1.id, c2.id);
      const pattern = await c2.session.register(`${proc}..x`, () => 0, { match: 'wildcard', invoke: 'last' });
      const got = await rec.until(10, c1.id, c2.id);
      assert.deepEqual(got.slice(6).map(([t, s, d]) => [t, s, typeof d === 'number' ? d : [d.id, d.uri, d.match, d.invoke]]), [
        ['wamp.registration.on_create', c1.id, [single.id, `${proc}.single`, 'exact', 'single']],
        ['wamp.registration.on_register', c1.id, single.id],
        ['wamp.registration.on_create', c2.id, [pattern.id, `${proc}..x`, 'wildcard', 'last']],
        ['wamp.registration.on_register', c2.id, pattern.id]]);
    });
  }

  test('registration procedures: list, lookup, match, get, list/count_callees (own router)', async (ctx) => {
    await withRouter(ctx, null, async (connect) => {
      const caller = await connect();
      const c1 = await connect({ transport: 'rawsocket' });
      const c2 = await connect({ serializer: 'msgpack' });
      const c3 = await connect({ serializer: 'cbor' });
      const call = (p, args, kwargs) => caller.session.call(p, args, kwargs);
      const exact = await c1.session.register('com.example.meta.a.b.c', () => 'exact');
      const prefix = await c1.session.register('com.example.meta.a', () => 'prefix', { match: 'prefix' });
      const longer = await c2.session.register('com.example.meta.a.b', () => 'longer', { match: 'prefix' });
      const wildcard = await c2.session.register('com.example..a.b.c', () => 'wildcard', { match: 'wildcard' });
      const shared = [];
      for (const c of [c3, c1, c2]) shared.push(await c.session.register('com.example.shared', () => 'shared', { invoke: 'roundrobin' }));
      const sid = shared[0].id;
      assert.ok(shared.every((r) => r.id === sid));
      assert.deepEqual(sortedLists(await call('wamp.registration.list')),
        { exact: sortIds([exact.id, sid]), prefix: sortIds([prefix.id, longer.id]), wildcard: [wildcard.id] });
      assert.equal(await call('wamp.registration.lookup', ['com.example.meta.a.b.c']), exact.id);
      assert.equal(await call('wamp.registration.lookup', ['com.example.meta.a', { match: 'prefix' }]), prefix.id);
      assert.equal(await call('wamp.registration.lookup', ['com.example.meta.a']), null);
      assert.equal(await call('wamp.registration.lookup', ['com.example..a.b.c', { match: 'wildcard' }]), wildcard.id);
      assert.equal(await call('wamp.registration.match', ['com.example.meta.a.b.c']), exact.id);
      assert.equal(await call('wamp.registration.match', ['com.example.meta.a.b.d']), longer.id);
      assert.equal(await call('wamp.registration.match', ['com.example.meta.a.x']), prefix.id);
      assert.equal(await call('wamp.registration.match', ['com.example.x.a.b.c']), wildcard.id);
      assert.equal(await call('wamp.registration.match', ['com.example.none']), null);
      const d = await call('wamp.registration.get', [sid]);
      assert.deepEqual(Object.keys(d).sort(), ['created', 'id', 'invoke', 'match', 'uri']);
      assert.deepEqual([d.id, d.uri, d.match, d.invoke], [sid, 'com.example.shared', 'exact', 'roundrobin']);
      assertCreated(d.created);
      assert.deepEqual(await call('wamp.registration.list_callees', [sid]), [c3.id, c1.id, c2.id]);
      assert.equal(await call('wamp.registration.count_callees', [sid]), 3);
      for (const p of ['wamp.registration.get', 'wamp.registration.list_callees', 'wamp.registration.count_callees']) {
        assert.equal((await errorOf(call(p, [987654321]))).error, NO_SUCH_REGISTRATION, p);
      }
      await c1.session.unregister(shared[1]);
      assert.deepEqual(await call('wamp.registration.list_callees', [sid]), [c3.id, c2.id]);
      await c2.close();
      assert.deepEqual(await call('wamp.registration.list_callees', [sid]), [c3.id]);
      assert.equal(await call('wamp.registration.match', ['com.example.meta.a.b.d']), prefix.id);
      assert.equal((await errorOf(call('wamp.registration.get', [longer.id]))).error, NO_SUCH_REGISTRATION);
    });
  });

  // ------------------------------------------------------------------ leaving, testaments

  const leaving = [
    { how: 'GOODBYE', variant: VARIANTS[0], go: (s) => s.connection.close() },
    { how: 'RawSocket closed without GOODBYE', variant: VARIANTS[3], go: (s) => s.dropTransport() },
    { how: 'TCP reset under WebSocket', variant: VARIANTS[1], go: (s) => s.resetSocket() },
    { how: 'killed', variant: VARIANTS[2], go: (s, watcher) => watcher.session.call('wamp.session.kill', [s.id]) },
  ];
  for (const { how, variant, go } of leaving) {
    test(`${variant.name}: a leaving session (${how}): subscription, registration, testaments (detached first), on_leave`, async (ctx) => {
      const watcher = await ctx.connect({ variant: other(variant), label: 'watcher' });
      const s = await ctx.connect({ variant, label: 's' });
      const topic = ctx.uri('held');
      const will = ctx.uri('will');
      const rec = new Recorder('leaving');
      await rec.watch(watcher, 'wamp.subscription.on_unsubscribe', 'wamp.subscription.on_delete',
        'wamp.registration.on_unregister', 'wamp.registration.on_delete', will, 'wamp.session.on_leave');
      const sub = await s.session.subscribe(topic, () => {});
      const reg = await s.session.register(topic, () => null);
      assert.equal(await s.session.call('wamp.session.add_testament', [will, ['destroyed'], { n: 1 }]), null);
      assert.equal(await s.session.call('wamp.session.add_testament', [will, ['detached'], { n: 2 }], { scope: 'detached' }), null);
      await go(s, watcher);
      assert.deepEqual(await rec.until(7, s.id), [
        ['wamp.subscription.on_unsubscribe', s.id, sub.id],
        ['wamp.subscription.on_delete', s.id, sub.id],
        ['wamp.registration.on_unregister', s.id, reg.id],
        ['wamp.registration.on_delete', s.id, reg.id],
        [will, 'detached'],
        [will, 'destroyed'],
        ['wamp.session.on_leave', s.id, `anonymous-${s.id}`, 'anonymous']]);
      assert.deepEqual(rec.kwargsOf(will), [{ n: 2 }, { n: 1 }]);
    });
  }

  test('testament: args, kwargs and publish options (exclude, disclose_me) on a TCP reset', async (ctx) => {
    const s = await ctx.connect({ serializer: 'cbor', label: 's' });
    const w1 = await ctx.connect({ label: 'w1' });
    const w2 = await ctx.connect({ transport: 'rawsocket', label: 'w2' });
    const topic = ctx.uri('will');
    const rec1 = new Recorder('w1');
    const rec2 = new Recorder('w2');
    await rec1.watch(w1, topic, 'wamp.session.on_leave');
    await rec2.watch(w2, topic, 'wamp.session.on_leave');
    const disclosed = [];
    await w1.session.subscribe(`${topic}.who`, (args, kwargs, details) => disclosed.push({ args, kwargs, details }));
    const ARGS = [1, 'two', 3.25, null, true, [1, [2]], { a: { b: null } }];
    const KWARGS = { name: 'x', n: -7, list: [1, 2, 3], obj: { k: [false] } };
    assert.equal(await s.session.call('wamp.session.add_testament', [topic, ARGS, KWARGS], { publish_options: { exclude: [w2.id] } }), null);
    assert.equal(await s.session.call('wamp.session.add_testament', [`${topic}.who`, [], {}], { publish_options: { disclose_me: true } }), null);
    s.resetSocket();
    const onLeave = ['wamp.session.on_leave', s.id, `anonymous-${s.id}`, 'anonymous'];
    assert.deepEqual(await rec1.until(2, s.id), [[topic, ...ARGS], onLeave]);
    assert.deepEqual(rec1.kwargsOf(topic), [KWARGS]);
    // on_leave follows the testaments: w2 had its chance
    assert.deepEqual(await rec2.until(1, s.id), [onLeave]);
    assert.equal(disclosed.length, 1);
    assert.deepEqual([disclosed[0].args, disclosed[0].kwargs], [[], {}]);
    assert.deepEqual([disclosed[0].details.publisher, disclosed[0].details.publisher_authid, disclosed[0].details.publisher_authrole],
      [s.id, `anonymous-${s.id}`, 'anonymous']);
  });

  // autobahn-js's RawSocket transport has JSON without the binary convention: it cannot
  // send bytes, and receives them as the convention's '\u0000' + base64 strings.
  for (const variant of VARIANTS.filter((v) => v.transport === 'websocket')) {
    test(`${variant.name}: a testament's binary payload reaches every serializer`, async (ctx) => {
      const BIN = Buffer.from([0x00, 0x01, 0xfe, 0xff]);
      const args = [BIN, 'text', 3.5, null, { b: BIN }];
      const kwargs = { k: BIN, n: -7 };
      const topic = ctx.uri('will');
      const recs = [];
      for (const v of VARIANTS) {
        const sub = await ctx.connect({ variant: v, label: `sub-${v.name}` });
        const rec = new Recorder(v.name);
        await rec.watch(sub, topic);
        recs.push(rec);
      }
      const s = await ctx.connect({ variant, label: 's' });
      assert.equal(await s.session.call('wamp.session.add_testament', [topic, args, kwargs]), null);
      s.resetSocket();
      const b64 = `\u0000${BIN.toString('base64')}`;
      for (const rec of recs) {
        await rec.until(1);
        const expected = rec.label === 'rawsocket-json'
          ? [[b64, 'text', 3.5, null, { b: b64 }], { k: b64, n: -7 }]
          : normBin([args, kwargs]);
        assert.deepEqual(normBin([rec.items[0].args, rec.items[0].kwargs]), expected, rec.label);
      }
    });
  }

  for (const flush of [null, 'destroyed', 'detached']) {
    test(`testament scopes, flush_testaments(${flush ?? 'not called'})`, async (ctx) => {
      const s = await ctx.connect({ serializer: 'msgpack', label: 's' });
      const watcher = await ctx.connect({ transport: 'rawsocket', label: 'watcher' });
      const topic = ctx.uri('will');
      const rec = new Recorder('scopes');
      await rec.watch(watcher, topic, 'wamp.session.on_leave');
      for (const [name, scope] of [['A', 'destroyed'], ['B', 'detached'], ['C', null], ['D', 'detached']]) {
        assert.equal(await s.session.call('wamp.session.add_testament', [topic, [name], {}], scope ? { scope } : {}), null);
      }
      let expected = ['B', 'D', 'A', 'C'];
      if (flush) {
        assert.equal(await s.session.call('wamp.session.flush_testaments', [], flush === 'destroyed' ? {} : { scope: flush }), null);
        expected = flush === 'detached' ? ['A', 'C'] : ['B', 'D'];
      }
      await s.close();
      assert.deepEqual(await rec.until(expected.length + 1, s.id),
        [...expected.map((n) => [topic, n]), ['wamp.session.on_leave', s.id, `anonymous-${s.id}`, 'anonymous']]);
    });
  }

  test('testament refusals: scope, topic, arguments, 16 at most', async (ctx) => {
    const s = await ctx.connect();
    const topic = ctx.uri('will');
    const add = (args, kwargs) => s.session.call('wamp.session.add_testament', args, kwargs);
    assert.equal((await errorOf(add([topic, [], {}], { scope: 'later' }))).error, INVALID_ARGUMENT);
    assert.equal((await errorOf(s.session.call('wamp.session.flush_testaments', [], { scope: 'later' }))).error, INVALID_ARGUMENT);
    assert.equal((await errorOf(add(['not a uri!', [], {}]))).error, INVALID_URI);
    assert.equal((await errorOf(add([topic, 'args', {}]))).error, INVALID_ARGUMENT);
    assert.equal((await errorOf(add([]))).error, INVALID_ARGUMENT);
    for (let i = 0; i < 16; i++) assert.equal(await add([topic, [i], {}]), null);
    assert.equal((await errorOf(add([topic, [16], {}]))).error, 'wamp.error.limit_reached');
    assert.equal(await s.session.call('wamp.session.flush_testaments'), null);
    assert.equal(await add([topic, ['fits again'], {}]), null);
  });
});

// ---------------------------------------------------------------------------------

workbenchSuite('meta API on the workbench realm (autobahn-js)', { timeout: 10000 }, (test) => {
  /** Polls `ask` until `ok` (the sessions of the test before may still be closing). */
  async function eventually(ask, ok, what, ms = 3000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await ask();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms, last ${show(v)}`);
      await sleep(20);
    }
  }

  for (const variant of [VARIANTS[0], VARIANTS[2], VARIANTS[3]]) {
    test(`${variant.name}: the meta API is for admins and the controller`, async (ctx, wb) => {
      const carol = await ctx.connect(wb.user(await wb.token('carol'), { variant, label: 'carol' }));
      const alice = await ctx.connect(wb.user(await wb.token('alice'), { variant: other(variant), label: 'alice' }));
      const controller = await ctx.connect(wb.service('controller-1', { variant, label: 'controller' }));
      const dispatcher = await ctx.connect(wb.service('dispatcher-1', { variant: other(variant), label: 'dispatcher' }));
      const everyone = sortIds([carol.id, alice.id, controller.id, dispatcher.id]);
      await eventually(() => carol.session.call('wamp.session.list'), (ids) => show(sortIds(ids)) === show(everyone),
        "wamp.session.list shows this test's four sessions");
      assert.equal(await carol.session.call('wamp.session.count', [['user']]), 1);
      assert.equal((await carol.session.call('wamp.session.get', [alice.id])).authid, 'alice');
      assert.equal(await controller.session.call('wamp.session.count'), 4);
      assert.deepEqual(await controller.session.call('wamp.registration.list'), { exact: [], prefix: [], wildcard: [] });
      for (const who of [alice, dispatcher]) {
        for (const [p, args] of [['wamp.session.list', []], ['wamp.session.count', []], ['wamp.session.get', [carol.id]],
          ['wamp.session.kill', [carol.id]], ['wamp.subscription.list', []], ['wamp.registration.list', []]]) {
          assert.equal((await errorOf(who.session.call(p, args))).error, NOT_AUTHORIZED, `${who.label} ${p}`);
        }
        assert.equal((await errorOf(who.session.subscribe('wamp.session.on_join', () => {}))).error, NOT_AUTHORIZED);
      }
      const rec = new Recorder('carol');
      await rec.watch(carol, 'wamp.session.on_join', 'wamp.session.on_leave');
      const bob = await ctx.connect(wb.user(await wb.token('bob'), { label: 'bob' }));
      const [join] = await rec.until(1, bob.id);
      assert.deepEqual(join, ['wamp.session.on_join', {
        session: bob.id, authid: 'bob', authrole: 'user', authmethod: 'ticket', authprovider: 'graph',
        transport: { type: 'websocket', peer: peerOf(bob), is_secure: false },
      }]);
      assert.equal(await carol.session.call('wamp.session.kill', [bob.id], { reason: 'com.example.admin.kick' }), null);
      assert.deepEqual(goodbyes(await gone(bob)), [['com.example.admin.kick', {}]]);
      assert.deepEqual(await rec.until(2, bob.id), [join, ['wamp.session.on_leave', bob.id, 'bob', 'user']]);
      assert.ok(alice.isOpen() && dispatcher.isOpen());
    });
  }

  test('a graph change withdraws a subscription and a registration: the admin sees them go', async (ctx, wb) => {
    const carol = await ctx.connect(wb.user(await wb.token('carol'), { transport: 'rawsocket', label: 'carol' }));
    const alice = await ctx.connect(wb.user(await wb.token('alice'), { serializer: 'cbor', label: 'alice' }));
    const rec = new Recorder('carol');
    await rec.watch(carol, ...SUB_EVENTS, ...REG_EVENTS);
    const sub = await alice.session.subscribe('containers.c1.logs', () => {});
    const reg = await alice.session.register('containers.c1.inspect', () => 'inspected');
    const got = await rec.until(4, alice.id);
    assert.deepEqual(got.map((e) => (typeof e[2] === 'number' ? e : [e[0], e[1], [e[2].id, e[2].uri, e[2].match, e[2].invoke]])), [
      ['wamp.subscription.on_create', alice.id, [sub.id, 'containers.c1.logs', 'exact', undefined]],
      ['wamp.subscription.on_subscribe', alice.id, sub.id],
      ['wamp.registration.on_create', alice.id, [reg.id, 'containers.c1.inspect', 'exact', 'single']],
      ['wamp.registration.on_register', alice.id, reg.id]]);
    const seq = Number(await wb.sql("delete from grants where tail_id = 'alice' and head_id = 'lab'; select max(seq) from switchyard_graph_changes"));
    const after = (await rec.until(8, alice.id)).slice(4);
    // the two holdings are withdrawn one after the other, each with its events in order
    const subEvents = after.filter((e) => e[0].startsWith('wamp.subscription.'));
    const regEvents = after.filter((e) => e[0].startsWith('wamp.registration.'));
    assert.deepEqual(subEvents, [['wamp.subscription.on_unsubscribe', alice.id, sub.id], ['wamp.subscription.on_delete', alice.id, sub.id]]);
    assert.deepEqual(regEvents, [['wamp.registration.on_unregister', alice.id, reg.id], ['wamp.registration.on_delete', alice.id, reg.id]]);
    await wb.settle(seq);
    assert.equal(await carol.session.call('wamp.subscription.lookup', ['containers.c1.logs']), null);
    assert.equal(await carol.session.call('wamp.registration.lookup', ['containers.c1.inspect']), null);
    assert.ok(alice.isOpen());
  });

  // policies/workbench.toml: "A pattern subscription is allowed when some rule it overlaps
  // lets the session subscribe; each event then reaches it only if the session may
  // subscribe to that event's own topic." wamp.session.{object} lets the admin carol and
  // the controller subscribe (exactly: above), so both may watch through a pattern too.
  for (const who of ['carol', 'controller-1']) {
    for (const [pattern, match] of [['wamp.session.', 'prefix'], ['wamp..on_join', 'wildcard']]) {
      test(`${who} watches on_join through a ${match} subscription (${pattern})`, async (ctx, wb) => {
        const watcher = who === 'carol'
          ? await ctx.connect(wb.user(await wb.token('carol'), { serializer: 'msgpack', label: who }))
          : await ctx.connect(wb.service('controller-1', { serializer: 'msgpack', label: who }));
        const seen = [];
        await watcher.session.subscribe(pattern, (args, kwargs, details) => seen.push([details.topic, args]), { match });
        const bob = await ctx.connect(wb.user(await wb.token('bob'), { transport: 'rawsocket', label: 'bob' }));
        await within((async () => {
          while (!seen.some(([t, a]) => t === 'wamp.session.on_join' && a[0].session === bob.id)) await sleep(5);
        })(), 3000, `on_join of bob through ${pattern}; have ${show(seen)}`);
        const alice = await ctx.connect(wb.user(await wb.token('alice'), { label: 'alice' }));
        assert.equal((await errorOf(alice.session.subscribe(pattern, () => {}, { match }))).error, NOT_AUTHORIZED);
      });
    }
  }

  test('an admin demoted in the graph loses the meta API: its subscription is revoked, its calls refused', async (ctx, wb) => {
    const carol = await ctx.connect(wb.user(await wb.token('carol'), { serializer: 'cbor', label: 'carol' }));
    const seen = [];
    const sub = await carol.session.subscribe('wamp.session.on_join', (a) => seen.push(a));
    assert.equal(await carol.session.call('wamp.session.count'), 1);
    const seq = Number(await wb.sql("update principals set is_admin = false where id = 'carol'; select max(seq) from switchyard_graph_changes"));
    await wb.settle(seq);
    const notice = await carol.waitRx(MSG.UNSUBSCRIBED, (m) => m[1] === 0);
    assert.deepEqual(notice, [MSG.UNSUBSCRIBED, 0, { subscription: sub.id, reason: NOT_AUTHORIZED }]);
    assert.equal(sub.active, false);
    const e = await errorOf(carol.session.call('wamp.session.count'));
    assert.deepEqual([e.error, e.args], [NOT_AUTHORIZED, ["session is not authorized to call 'wamp.session.count'"]]);
    assert.ok(carol.isOpen());
  });

  test('testaments need the permission to publish to their topic', async (ctx, wb) => {
    const controller = await ctx.connect(wb.service('controller-1', { transport: 'rawsocket', label: 'controller' }));
    const dispatcher = await ctx.connect(wb.service('dispatcher-1', { serializer: 'msgpack', label: 'dispatcher' }));
    const alice = await ctx.connect(wb.user(await wb.token('alice'), { serializer: 'cbor', label: 'alice' }));
    const rec = new Recorder('dispatch');
    await rec.watch(dispatcher, 'dispatch.containers');
    assert.equal((await errorOf(dispatcher.session.call('wamp.session.add_testament', ['dispatch.containers', ['x'], {}]))).error, NOT_AUTHORIZED);
    assert.equal((await errorOf(alice.session.call('wamp.session.add_testament', ['records.alice.changes', ['x'], {}]))).error, NOT_AUTHORIZED);
    assert.equal(await controller.session.call('wamp.session.add_testament', ['dispatch.containers', ['controller-1 is gone'], { why: 'cut' }]), null);
    controller.resetSocket();
    assert.deepEqual(await rec.until(1), [['dispatch.containers', 'controller-1 is gone']]);
    assert.deepEqual(rec.kwargsOf('dispatch.containers'), [{ why: 'cut' }]);
  });
});
