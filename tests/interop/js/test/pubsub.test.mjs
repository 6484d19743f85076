// Basic publish/subscribe over every transport/serializer: acknowledged publish,
// publisher exclusion, publisher disclosure, subscription ids, unsubscribe, URIs.

import assert from 'node:assert/strict';
import { routerSuite, VARIANTS, MSG, show, requireFeature, expectReject, assertArgsSeq } from './helpers.mjs';

const ARGS = [1, 'two', 3.5, true, null, [1, [2, -3]], { k: 'v' }, ''];
const KWARGS = { a: 1, b: 'x', nested: { c: [1, 2], d: { e: false } }, unicode: 'grüße €𝄞' };

function isId(x) {
  return Number.isSafeInteger(x) && x >= 1 && x <= 2 ** 53;
}

routerSuite('publish/subscribe (default config)', (test) => {
  for (const variant of VARIANTS) {
    test(`${variant.name}: acknowledged publish reaches subscriber with exact args/kwargs; publisher excluded by default`, async (ctx) => {
      const topic = ctx.uri('topic');
      const sub = await ctx.connect({ variant, label: 'sub' });
      const pub = await ctx.connect({ variant, label: 'pub' });
      const subIn = ctx.inbox('subscriber');
      const pubIn = ctx.inbox('publisher (self)');
      const s1 = await sub.session.subscribe(topic, subIn.handler);
      await pub.session.subscribe(topic, pubIn.handler);
      assert.ok(isId(s1.id), `subscription id ${show(s1.id)}`);

      const p = await pub.session.publish(topic, ARGS, KWARGS, { acknowledge: true });
      assert.ok(isId(p.id), `publication id ${show(p.id)}`);
      const published = pub.rx.find((m) => m[0] === MSG.PUBLISHED);
      const publish = pub.tx.find((m) => m[0] === MSG.PUBLISH);
      assert.deepEqual(published, [MSG.PUBLISHED, publish[1], p.id]);

      const [ev] = await subIn.waitFor(1);
      assert.deepEqual(ev.args, ARGS);
      assert.deepEqual(ev.kwargs, KWARGS);
      assert.equal(ev.details.publication, p.id);
      assert.equal(ev.details.topic, topic);
      assert.equal(ev.details.publisher, undefined, 'publisher must not be disclosed without disclose_me');
      const raw = sub.rx.find((m) => m[0] === MSG.EVENT);
      assert.equal(raw[1], s1.id);
      assert.equal(raw[2], p.id);
      assert.equal(typeof raw[3], 'object');

      // sentinel with exclude_me:false: it must be the FIRST event the publisher gets,
      // proving the first publication was not delivered back to the publisher.
      await pub.session.publish(topic, ['sentinel'], {}, { acknowledge: true, exclude_me: false });
      const [own] = await pubIn.waitFor(1);
      assert.deepEqual(own.args, ['sentinel']);
      await subIn.waitFor(2);
      assertArgsSeq(subIn, [ARGS, ['sentinel']]);
      assert.equal(pubIn.items.length, 1);
    });

    test(`${variant.name}: disclose_me:true sets details.publisher to the publisher's session id`, async (ctx) => {
      const topic = ctx.uri('topic');
      const sub = await ctx.connect({ variant, label: 'sub' });
      const pub = await ctx.connect({ variant, label: 'pub' });
      requireFeature(ctx, pub, 'broker', 'publisher_identification');
      const inbox = ctx.inbox();
      await sub.session.subscribe(topic, inbox.handler);
      await pub.session.publish(topic, ['disclosed'], {}, { acknowledge: true, disclose_me: true });
      await pub.session.publish(topic, ['anonymous'], {}, { acknowledge: true });
      const [a, b] = await inbox.waitFor(2);
      assert.deepEqual(a.args, ['disclosed']);
      assert.equal(a.details.publisher, pub.id);
      const rawA = sub.rx.filter((m) => m[0] === MSG.EVENT)[0];
      assert.equal(rawA[3].publisher, pub.id);
      assert.equal(rawA[3].publisher_authrole, 'anonymous');
      assert.equal(rawA[3].publisher_authid, pub.welcome.authid);
      assert.equal(a.details.publisher_authid, pub.welcome.authid);
      assert.deepEqual(b.args, ['anonymous']);
      assert.equal(b.details.publisher, undefined);
    });

    test(`${variant.name}: unsubscribe stops delivery`, async (ctx) => {
      const topic = ctx.uri('topic');
      const sentinelTopic = ctx.uri('sentinel');
      const sub = await ctx.connect({ variant, label: 'sub' });
      const pub = await ctx.connect({ variant, label: 'pub' });
      const inbox = ctx.inbox('topic');
      const sentinel = ctx.inbox('sentinel');
      const s = await sub.session.subscribe(topic, inbox.handler);
      await sub.session.subscribe(sentinelTopic, sentinel.handler);
      await pub.session.publish(topic, ['before'], {}, { acknowledge: true });
      await inbox.waitFor(1);

      const ok = await s.unsubscribe();
      assert.equal(ok, true);
      const unsub = sub.tx.find((m) => m[0] === MSG.UNSUBSCRIBE);
      assert.equal(unsub[2], s.id);
      assert.deepEqual(sub.rx.find((m) => m[0] === MSG.UNSUBSCRIBED), [MSG.UNSUBSCRIBED, unsub[1]]);

      await pub.session.publish(topic, ['after'], {}, { acknowledge: true });
      await pub.session.publish(sentinelTopic, ['sentinel'], {}, { acknowledge: true });
      await sentinel.waitFor(1);
      // events from one publisher arrive in order: 'after' would have come first
      assertArgsSeq(inbox, [['before']]);
    });
  }

  test('two sessions subscribed to the same topic get the same subscription id', async (ctx) => {
    const topic = ctx.uri('shared');
    const a = await ctx.connect({ serializer: 'json' });
    const b = await ctx.connect({ serializer: 'msgpack' });
    const c = await ctx.connect({ transport: 'rawsocket', serializer: 'json' });
    const [sa, sb, sc] = await Promise.all([
      a.session.subscribe(topic, () => {}),
      b.session.subscribe(topic, () => {}),
      c.session.subscribe(topic, () => {}),
    ]);
    assert.ok(isId(sa.id));
    assert.equal(sb.id, sa.id);
    assert.equal(sc.id, sa.id);
    const other = await a.session.subscribe(ctx.uri('other'), () => {});
    assert.notEqual(other.id, sa.id);
  });

  test('one session, one unsubscribe, other subscriber of the same subscription keeps receiving', async (ctx) => {
    const topic = ctx.uri('shared');
    const a = await ctx.connect({ label: 'a' });
    const b = await ctx.connect({ label: 'b', serializer: 'cbor' });
    const pub = await ctx.connect({ label: 'pub' });
    const ia = ctx.inbox('a');
    const ib = ctx.inbox('b');
    const sa = await a.session.subscribe(topic, ia.handler);
    const sb = await b.session.subscribe(topic, ib.handler);
    assert.equal(sa.id, sb.id);
    await sa.unsubscribe();
    await pub.session.publish(topic, [1], {}, { acknowledge: true });
    await pub.session.publish(topic, [2], {}, { acknowledge: true });
    await ib.waitFor(2);
    assertArgsSeq(ib, [[1], [2]]);
    assert.equal(ia.items.length, 0);
  });

  test('re-subscribing from the same session to the same topic returns the same subscription id', async (ctx) => {
    const topic = ctx.uri('again');
    const a = await ctx.connect();
    await a.session.subscribe(topic, () => {});
    await a.session.subscribe(topic, () => {});
    const subscribed = a.rx.filter((m) => m[0] === MSG.SUBSCRIBED);
    assert.equal(subscribed.length, 2);
    assert.equal(subscribed[1][2], subscribed[0][2]);
  });

  test('publish without acknowledge: event delivered, no PUBLISHED for it', async (ctx) => {
    const topic = ctx.uri('noack');
    const sub = await ctx.connect();
    const pub = await ctx.connect();
    const inbox = ctx.inbox();
    await sub.session.subscribe(topic, inbox.handler);
    const ret = pub.session.publish(topic, ['fire'], { x: 1 });
    assert.equal(ret, undefined);
    const noAckReq = pub.lastTx(MSG.PUBLISH)[1];
    await pub.session.publish(topic, ['acked'], {}, { acknowledge: true });
    const [e1, e2] = await inbox.waitFor(2);
    assert.deepEqual([e1.args, e1.kwargs], [['fire'], { x: 1 }]);
    assert.deepEqual(e2.args, ['acked']);
    assert.equal(pub.rx.filter((m) => m[0] === MSG.PUBLISHED && m[1] === noAckReq).length, 0);
    assert.equal(pub.rx.filter((m) => m[0] === MSG.PUBLISHED).length, 1);
  });

  test('200 unacknowledged events from one publisher arrive complete and in order on every serializer', { timeout: 15000 }, async (ctx) => {
    const topic = ctx.uri('order');
    const subs = await Promise.all([
      ctx.connect({ serializer: 'json', label: 'json' }),
      ctx.connect({ serializer: 'msgpack', label: 'msgpack' }),
      ctx.connect({ serializer: 'cbor', label: 'cbor' }),
      ctx.connect({ transport: 'rawsocket', label: 'rawsocket' }),
    ]);
    const inboxes = subs.map((s) => ctx.inbox(s.label));
    await Promise.all(subs.map((s, i) => s.session.subscribe(topic, inboxes[i].handler)));
    const pub = await ctx.connect({ serializer: 'msgpack', label: 'pub' });
    for (let i = 0; i < 200; i++) pub.session.publish(topic, [i]);
    await Promise.all(inboxes.map((ib) => ib.waitFor(200, 10000)));
    const expected = Array.from({ length: 200 }, (_, i) => [i]);
    for (const ib of inboxes) assertArgsSeq(ib, expected);
  });

  test('acknowledged publish to a topic without subscribers still gets PUBLISHED', async (ctx) => {
    const pub = await ctx.connect();
    const p = await pub.session.publish(ctx.uri('nobody'), [1], {}, { acknowledge: true });
    assert.ok(isId(p.id));
  });

  test('publication ids differ between publications', async (ctx) => {
    const pub = await ctx.connect();
    const topic = ctx.uri('ids');
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await pub.session.publish(topic, [i], {}, { acknowledge: true })).id);
    assert.equal(new Set(ids).size, 5);
  });

  test('event without payload, with args only, with kwargs only', async (ctx) => {
    const topic = ctx.uri('shapes');
    const sub = await ctx.connect();
    const pub = await ctx.connect({ serializer: 'msgpack' });
    const inbox = ctx.inbox();
    await sub.session.subscribe(topic, inbox.handler);
    await pub.session.publish(topic, null, null, { acknowledge: true });
    await pub.session.publish(topic, ['only'], null, { acknowledge: true });
    await pub.session.publish(topic, null, { only: 'kw' }, { acknowledge: true });
    const evs = await inbox.waitFor(3);
    assert.deepEqual(evs.map((e) => [e.args, e.kwargs]), [[[], {}], [['only'], {}], [[], { only: 'kw' }]]);
    const raw = sub.rx.filter((m) => m[0] === MSG.EVENT);
    assert.ok(raw[0].length === 4 || (raw[0].length === 5 && raw[0][4].length === 0),
      `EVENT for a PUBLISH without payload: ${show(raw[0])}`);
    assert.ok(raw[1].length === 5 || (raw[1].length === 6 && Object.keys(raw[1][5]).length === 0),
      `EVENT for a PUBLISH with args only: ${show(raw[1])}`);
  });

  test('invalid URIs are rejected with wamp.error.invalid_uri', async (ctx) => {
    const c = await ctx.connect();
    const e1 = await expectReject(c.session.subscribe('sy.Bad URI', () => {}), 3000, 'subscribe invalid uri');
    assert.equal(e1.error, 'wamp.error.invalid_uri');
    const e2 = await expectReject(c.session.publish('sy..empty', [], {}, { acknowledge: true }), 3000, 'publish invalid uri');
    assert.equal(e2.error, 'wamp.error.invalid_uri');
    assert.ok(c.isOpen(), 'session stays open after an invalid URI');
  });
});
