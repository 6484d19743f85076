// The replay store seen by autobahn-js: event history (wamp.subscription.get_events)
// while a publisher writes, its filters, resuming after a cut TCP connection, event
// retention (retain / get_retained) and SUBSCRIBE.Options._replay, which autobahn-js
// sends as given (it passes subscribe options through unchanged).
//
// The default realm (no config) stores every topic, the last 1,000 events of each.
// autobahn-js hands the event handler an Event object with publication, topic,
// publisher*, retained and forward_for only: the router's own details (_pos,
// _replayed, _gap) are read from the raw EVENTs the harness taps (client.rx).

import assert from 'node:assert/strict';
import net from 'node:net';
import {
  routerSuite, AUTH_CONFIG, MSG, show, sleep, within, expectReject, openClient,
} from './helpers.mjs';

const GET_EVENTS = 'wamp.subscription.get_events';
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

const getEvents = (c, sid, args = [], kwargs = {}) => c.session.call(GET_EVENTS, [sid, ...args], kwargs);
const counters = (items) => items.map((it) => it.args[0]);
const range = (from, to) => Array.from({ length: to - from }, (_, i) => from + i);
/** The raw EVENT messages a client received for a subscription. */
const rawEvents = (c, sid) => c.rx.filter((m) => m[0] === MSG.EVENT && m[1] === sid);

/**
 * Publishes 0, 1, 2, ... with acknowledge on a ~1,000/s schedule, recording the
 * publication ids from PUBLISHED. stopAt(n) changes the total; done() waits for it.
 */
function publisher(c, topic, total, paceMs = 1) {
  const p = { ids: [], total, waiters: [], rate: 0 };
  p.stopAt = (n) => {
    p.total = n;
  };
  p.reached = (n, ms = 5000) => {
    if (p.ids.length >= n) return Promise.resolve();
    return within(new Promise((resolve) => p.waiters.push({ n, resolve })), ms, `publisher reaching ${n}, at ${p.ids.length}`);
  };
  p.task = (async () => {
    const start = Date.now();
    let i = 0;
    while (i < p.total) {
      const pub = await c.session.publish(topic, [i], {}, { acknowledge: true });
      p.ids.push(pub.id);
      i += 1;
      p.waiters = p.waiters.filter((w) => (p.ids.length >= w.n ? (w.resolve(), false) : true));
      const wait = start + i * paceMs - Date.now();
      if (wait > 0) await sleep(wait);
    }
    p.rate = (i * 1000) / (Date.now() - start);
    return p.ids;
  })();
  p.done = () => within(p.task, 10000, 'publisher done');
  return p;
}

/** Resolves once the inbox got the event with counter `last`. */
async function untilCounter(inbox, last, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const items = inbox.items;
    if (items.length && items[items.length - 1].args[0] === last) return items;
    if (Date.now() > deadline) throw new Error(`${inbox.label}: no event ${last} within ${ms} ms; last ${show(items.slice(-3).map((i) => i.args))}`);
    await inbox.waitFor(items.length + 1, deadline - Date.now());
  }
}

/** The exact get_events entries (timestamps checked and blanked). */
function blankTimestamps(entries) {
  for (const e of entries) assert.match(e.timestamp, TIMESTAMP);
  const ts = entries.map((e) => e.timestamp);
  assert.deepEqual(ts, [...ts].sort());
  return entries.map((e) => ({ ...e, timestamp: null }));
}
function expectedEntries(sid, topic, ids, from, n) {
  return range(from, from + n).map((c) => ({
    subscription: sid, publication: ids[c], topic, timestamp: null, _pos: c + 1, args: [c], kwargs: {},
  }));
}

async function tenEvents(ctx, serializer = 'json') {
  const topic = ctx.uri('ten');
  const sub = await ctx.connect({ label: 'sub', serializer });
  const pub = await ctx.connect({ label: 'pub', serializer: 'msgpack' });
  const ids = [];
  for (let i = 0; i < 10; i++) ids.push((await pub.session.publish(topic, [i], {}, { acknowledge: true })).id);
  const s = await sub.session.subscribe(topic, () => {});
  return { topic, sub, pub, ids, sid: s.id };
}

/** A TCP proxy to the router whose cut() resets every connection through it. */
async function cuttableProxy(host, port) {
  const pairs = [];
  const server = net.createServer((down) => {
    const up = net.connect(port, host);
    pairs.push([down, up]);
    down.pipe(up);
    up.pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    cutCount: 0,
    cut() {
      this.cutCount += pairs.length;
      for (const [a, b] of pairs.splice(0)) {
        a.resetAndDestroy();
        b.resetAndDestroy();
      }
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

routerSuite('replay store (default config: every topic stored)', (test) => {
  for (const serializer of ['json', 'msgpack', 'cbor']) {
    test(`${serializer}: get_events then live while publishing ~1,000 events/s: every counter once, in order`, { timeout: 15000 }, async (ctx) => {
      const topic = ctx.uri('live');
      const total = 800;
      const sub = await ctx.connect({ label: 'sub', serializer });
      const pubc = await ctx.connect({ label: 'pub', transport: 'rawsocket' });
      const p = publisher(pubc, topic, total);
      await p.reached(250);
      const inbox = ctx.inbox('live');
      const s = await sub.session.subscribe(topic, inbox.handler);
      const history = await getEvents(sub, s.id);
      const ids = await p.done();
      await untilCounter(inbox, total - 1);

      const n = history.length;
      assert.ok(n >= 250 && n < total, `${n} history events`);
      assert.ok(p.rate > 500, `${p.rate} events/s`);
      assert.deepEqual([...counters(history), ...counters(inbox.items)], range(0, total));
      assert.deepEqual(blankTimestamps(history), expectedEntries(s.id, topic, ids, 0, n));
      assert.deepEqual(inbox.items.map((e) => e.details.publication), ids.slice(n));
      // every live EVENT carries its position on the wire; autobahn-js does not pass it on
      assert.deepEqual(rawEvents(sub, s.id).map((m) => m[3]._pos), range(n + 1, total + 1));
      assert.equal(inbox.items[0].details._pos, undefined);
    });
  }

  test('get_events filters: limit, reverse, after_publication, before_publication', async (ctx) => {
    const { sub, sid, ids } = await tenEvents(ctx, 'cbor');
    const q = async (args, kwargs) => counters(await getEvents(sub, sid, args, kwargs));
    assert.deepEqual(await q([], { limit: 3 }), [7, 8, 9]);
    assert.deepEqual(await q([3]), [7, 8, 9]);
    assert.deepEqual(await q([], { reverse: true }), range(0, 10).reverse());
    assert.deepEqual(await q([], { limit: 3, reverse: true }), [9, 8, 7]);
    assert.deepEqual(await q([], { after_publication: ids[6] }), [7, 8, 9]);
    assert.deepEqual(await q([], { before_publication: ids[3] }), [0, 1, 2]);
    assert.deepEqual(await q([], { after_publication: ids[2], before_publication: ids[6] }), [3, 4, 5]);
    assert.deepEqual(await q([], { after_publication: ids[2], limit: 2 }), [8, 9]);
    assert.deepEqual(await q([], { after_publication: ids[9] }), []);
  });

  test('get_events time filters: before_time is strictly before a returned timestamp', async (ctx) => {
    const { sub, sid } = await tenEvents(ctx, 'msgpack');
    const ts = (await getEvents(sub, sid)).map((e) => e.timestamp);
    assert.equal(new Set(ts).size, 10, show(ts));
    const q = async (kwargs) => counters(await getEvents(sub, sid, [], kwargs));
    assert.deepEqual(await q({ before_time: ts[5] }), [0, 1, 2, 3, 4]);
    assert.deepEqual(await q({ before_time: ts[0] }), []);
    assert.deepEqual(await q({ before_time: '2000-01-01T00:00:00Z' }), []);
    assert.deepEqual(await q({ after_time: '2000-01-01T00:00:00+02:00' }), range(0, 10));
    assert.deepEqual(await q({ after_time: '2999-01-01T00:00:00Z' }), []);
  });

  // Timestamps are microseconds and so are stored times: an entry is not after itself.
  test('get_events after_time is strictly after a returned timestamp', async (ctx) => {
    const { sub, sid } = await tenEvents(ctx);
    const ts = (await getEvents(sub, sid)).map((e) => e.timestamp);
    const q = async (kwargs) => counters(await getEvents(sub, sid, [], kwargs));
    assert.deepEqual(await q({ after_time: ts[4] }), [5, 6, 7, 8, 9]);
    assert.deepEqual(await q({ after_time: ts[2], before_time: ts[7] }), [3, 4, 5, 6]);
  });

  test('get_events only for the caller\'s own subscription: else wamp.error.no_such_subscription', async (ctx) => {
    const topic = ctx.uri('mine');
    const owner = await ctx.connect({ label: 'owner' });
    const other = await ctx.connect({ label: 'other', serializer: 'msgpack' });
    await other.session.publish(topic, ['secret'], {}, { acknowledge: true });
    const s = await owner.session.subscribe(topic, () => {});
    assert.deepEqual(counters(await getEvents(owner, s.id)), ['secret']);
    for (const [c, sid] of [[other, s.id], [owner, s.id + 1000000]]) {
      const e = await expectReject(getEvents(c, sid), 3000, `get_events(${sid}) by ${c.label}`);
      assert.equal(e.error, 'wamp.error.no_such_subscription', show(e));
    }
    assert.ok(other.isOpen());
  });

  for (const variant of [{ transport: 'websocket', serializer: 'json' }, { transport: 'rawsocket', serializer: 'json' }, { transport: 'websocket', serializer: 'cbor' }]) {
    const name = `${variant.transport}-${variant.serializer}`;
    test(`${name}: resume after a cut TCP connection: get_events(after_publication = last seen), then live, no gap, no duplicate`, { timeout: 15000 }, async (ctx) => {
      const topic = ctx.uri('resume');
      const wsUrl = new URL(ctx.router.ws);
      const proxyWs = await cuttableProxy(wsUrl.hostname, Number(wsUrl.port));
      const proxyRs = await cuttableProxy(ctx.router.rawsocket.host, ctx.router.rawsocket.port);
      const through = {
        ws: `ws://127.0.0.1:${proxyWs.port}${wsUrl.pathname}`,
        rawsocket: { host: '127.0.0.1', port: proxyRs.port },
      };
      const viaProxy = async (label) => {
        const c = await openClient(through, { ...variant, label });
        ctx.clients.push(c);
        return c;
      };
      try {
        const first = await viaProxy('before the cut');
        // autobahn-js's RawSocket opens its socket with allowHalfOpen and only reacts to
        // 'close': when the cut arrives as an end of stream rather than a reset (seen
        // under load), it would never notice. An application treats that as lost too.
        first.socket.once('end', () => {
          ctx.t.diagnostic(`${first.label}: end of stream after the cut; socket destroyed`);
          first.socket.destroy();
        });
        const before = ctx.inbox('before the cut');
        await first.session.subscribe(topic, before.handler);
        const pubc = await ctx.connect({ label: 'pub', serializer: 'msgpack' });
        const p = publisher(pubc, topic, 10000);

        await before.waitFor(200, 5000);
        proxyWs.cut();
        proxyRs.cut();
        await within(first.closed, 3000, 'first session noticing the cut').catch((e) => {
          const so = first.socket;
          e.message += ` (client socket: destroyed=${so && so.destroyed} readyState=${so && so.readyState} ` +
            `local=${so && so.localPort} remote=${so && so.remotePort}; proxies ws=${proxyWs.port} rs=${proxyRs.port}, ` +
            `cut ws=${proxyWs.cutCount} rs=${proxyRs.cutCount})`;
          throw e;
        });
        const seen = counters(before.items);
        const last = before.items[before.items.length - 1].details.publication;

        const second = await viaProxy('after reconnecting');
        const after = ctx.inbox('after reconnecting');
        const s = await second.session.subscribe(topic, after.handler);
        const history = await getEvents(second, s.id, [], { after_publication: last });
        await after.waitFor(200, 5000);
        p.stopAt(p.ids.length + 1);
        const ids = await p.done();
        await untilCounter(after, ids.length - 1);

        assert.deepEqual(seen, range(0, seen.length), 'the first connection saw a gap');
        assert.ok(history.length > 0, 'the publisher wrote nothing between the cut and the new subscribe?');
        assert.deepEqual([...seen, ...counters(history), ...counters(after.items)], range(0, ids.length));
        assert.ok(history.every((e) => e._gap === undefined), show(history[0]));
        assert.deepEqual(history.map((e) => e.publication), ids.slice(seen.length, seen.length + history.length));
        assert.deepEqual(history.map((e) => e._pos), counters(history).map((c) => c + 1));
        assert.deepEqual(after.items.map((e) => e.details.publication), ids.slice(seen.length + history.length));
      } finally {
        proxyWs.close();
        proxyRs.close();
      }
    });
  }

  test('event retention: get_retained gets exactly the retained event (retained: true), a plain subscribe nothing', async (ctx) => {
    const topic = ctx.uri('retained');
    const pub = await ctx.connect({ label: 'pub', serializer: 'msgpack' });
    const withRetained = await ctx.connect({ label: 'get_retained' });
    const plain = await ctx.connect({ label: 'plain', serializer: 'cbor' });
    const r = await pub.session.publish(topic, ['state'], { v: 1 }, { acknowledge: true, retain: true });
    await pub.session.publish(topic, ['change'], {}, { acknowledge: true });

    const ia = ctx.inbox('get_retained');
    const ib = ctx.inbox('plain');
    const sa = await withRetained.session.subscribe(topic, ia.handler, { get_retained: true });
    const [ev] = await ia.waitFor(1);
    assert.deepEqual([ev.args, ev.kwargs, ev.details.retained, ev.details.publication], [['state'], { v: 1 }, true, r.id]);
    assert.deepEqual(rawEvents(withRetained, sa.id)[0], [MSG.EVENT, sa.id, r.id, { retained: true, _pos: 1 }, ['state'], { v: 1 }]);

    const sb = await plain.session.subscribe(topic, ib.handler);
    const m = await pub.session.publish(topic, ['marker'], {}, { acknowledge: true });
    await ia.waitFor(2);
    await ib.waitFor(1);
    assert.deepEqual(ia.items.map((e) => [e.args, e.details.retained]), [[['state'], true], [['marker'], false]]);
    assert.deepEqual(ib.items.map((e) => [e.args, e.details.retained, e.details.publication]), [[['marker'], false, m.id]]);
    assert.deepEqual(rawEvents(plain, sb.id).map((x) => x[3]), [{ _pos: 3 }]);
  });

  for (const serializer of ['json', 'msgpack', 'cbor']) {
    test(`${serializer}: _replay {last: 100} then live while publishing: every counter once, in order, _replayed on exactly the first 100`, { timeout: 15000 }, async (ctx) => {
      const topic = ctx.uri('last');
      const sub = await ctx.connect({ label: 'sub', serializer });
      const pubc = await ctx.connect({ label: 'pub', transport: 'rawsocket' });
      const p = publisher(pubc, topic, 600);
      await p.reached(250);
      const inbox = ctx.inbox('replay+live');
      const s = await sub.session.subscribe(topic, inbox.handler, { _replay: { last: 100 } });
      assert.deepEqual(sub.lastTx(MSG.SUBSCRIBE)[2], { _replay: { last: 100 } });
      const ids = await p.done();
      await untilCounter(inbox, 599);

      const got = counters(inbox.items);
      const first = got[0];
      assert.ok(first >= 150, `history started at ${first}`);
      assert.deepEqual(got, range(first, 600));
      assert.deepEqual(inbox.items.map((e) => e.details.publication), ids.slice(first));
      const raw = rawEvents(sub, s.id);
      assert.deepEqual(raw.map((m) => m[3]), got.map((c, k) => (k < 100 ? { _pos: c + 1, _replayed: true } : { _pos: c + 1 })));
      // the SUBSCRIBED came first: autobahn-js would report an EVENT for an unknown subscription
      const order = sub.rx.filter((m) => m[0] === MSG.SUBSCRIBED || (m[0] === MSG.EVENT && m[1] === s.id)).map((m) => m[0]);
      assert.equal(order[0], MSG.SUBSCRIBED);
    });
  }

  test('_replay after_pos, after_publication, since: exactly the events after the start', async (ctx) => {
    const { topic, sub, ids, sid } = await tenEvents(ctx, 'msgpack');
    const ts = (await getEvents(sub, sid)).map((e) => e.timestamp);
    const cases = [
      [{ after_pos: 7 }, [7, 8, 9]],
      [{ after_publication: ids[5] }, [6, 7, 8, 9]],
      [{ since: ts[8] }, [8, 9]], // published at or after
      [{ last: 2 }, [8, 9]],
    ];
    for (const [replay, expected] of cases) {
      const c = await ctx.connect({ label: `replay ${show(replay)}` });
      const inbox = ctx.inbox(show(replay));
      const s = await c.session.subscribe(topic, inbox.handler, { _replay: replay });
      await inbox.waitFor(expected.length);
      assert.deepEqual(counters(inbox.items), expected, show(replay));
      assert.deepEqual(rawEvents(c, s.id).map((m) => [m[2], m[3]]), expected.map((i) => [ids[i], { _pos: i + 1, _replayed: true }]), show(replay));
    }
    const e = await expectReject(sub.session.subscribe(ctx.uri('p'), () => {}, { match: 'prefix', _replay: { after_pos: 1 } }), 3000, 'after_pos on a prefix subscription');
    assert.equal(e.error, 'wamp.error.invalid_argument', show(e));
  });
});

routerSuite('replay store: a realm without [replay] stores nothing', { config: AUTH_CONFIG }, (test) => {
  test('no _pos, get_events returns [], retain keeps nothing', async (ctx) => {
    const topic = ctx.uri('nostore');
    const pub = await ctx.connect({ label: 'pub' });
    const sub = await ctx.connect({ label: 'sub', serializer: 'msgpack' });
    await pub.session.publish(topic, ['retained?'], {}, { acknowledge: true, retain: true });
    const inbox = ctx.inbox();
    const s = await sub.session.subscribe(topic, inbox.handler, { get_retained: true });
    const p = await pub.session.publish(topic, [1], {}, { acknowledge: true });
    await inbox.waitFor(1);
    // autobahn-js sends kwargs {} with every PUBLISH; the EVENT carries it as given
    assert.deepEqual(rawEvents(sub, s.id), [[MSG.EVENT, s.id, p.id, {}, [1], {}]]);
    assert.deepEqual(await getEvents(sub, s.id), []);
  });
});
