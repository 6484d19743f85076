// Many sessions and large messages.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { routerSuite, VARIANTS, autobahn, within, assertArgsSeq } from './helpers.mjs';

const MB = 1024 * 1024;

routerSuite('load (default config)', (test) => {
  test('50 concurrent sessions (all transports/serializers): one publish reaches all', { timeout: 30000 }, async (ctx) => {
    const topic = ctx.uri('fanout');
    const subs = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      ctx.connect({ variant: VARIANTS[i % VARIANTS.length], label: `s${i}`, openTimeout: 15000 })));
    assert.equal(new Set(subs.map((s) => s.id)).size, 50, 'distinct session ids');
    const inboxes = subs.map((s, i) => ctx.inbox(`s${i}`));
    const subscriptions = await Promise.all(subs.map((s, i) => s.session.subscribe(topic, inboxes[i].handler)));
    assert.equal(new Set(subscriptions.map((s) => s.id)).size, 1, 'one subscription id for one topic');
    const pub = await ctx.connect({ label: 'pub' });
    const p = await pub.session.publish(topic, ['hello', 50], { all: true }, { acknowledge: true });
    const got = await within(Promise.all(inboxes.map((ib) => ib.waitFor(1, 10000))), 12000, 'all 50 events');
    for (const [ev] of got) {
      assert.deepEqual(ev.args, ['hello', 50]);
      assert.deepEqual(ev.kwargs, { all: true });
      assert.equal(ev.details.publication, p.id);
    }
    // exactly one each
    await pub.session.publish(topic, ['second'], {}, { acknowledge: true });
    await within(Promise.all(inboxes.map((ib) => ib.waitFor(2, 10000))), 12000, 'second round');
    for (const ib of inboxes) assertArgsSeq(ib, [['hello', 50], ['second']]);
  });

  for (const variant of VARIANTS) {
    test(`${variant.name}: 1 MB payload round trip through a callee`, { timeout: 20000 }, async (ctx) => {
      const proc = ctx.uri('big');
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      await callee.session.register(proc, (args, kwargs) => new autobahn.Result(args, kwargs));
      const text = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(MB / 36)).slice(0, MB);
      const args = [text];
      const kwargs = { len: text.length };
      if (variant.transport === 'websocket') {
        // bytes travel as binary (msgpack bin / cbor byte string) or as "\0"+base64 in JSON
        kwargs.bytes = randomBytes(MB);
      }
      const res = await within(caller.session.call(proc, args, kwargs), 15000, '1 MB echo');
      assert.equal(res.args.length, 1);
      assert.equal(res.args[0].length, MB);
      assert.ok(res.args[0] === text, 'string payload differs');
      assert.equal(res.kwargs.len, MB);
      if (kwargs.bytes) {
        assert.ok(Buffer.isBuffer(res.kwargs.bytes) || res.kwargs.bytes instanceof Uint8Array, 'binary came back as bytes');
        assert.ok(Buffer.from(res.kwargs.bytes).equals(kwargs.bytes), 'binary payload differs');
      }
    });
  }

  test('1 MB event to subscribers on three serializers', { timeout: 20000 }, async (ctx) => {
    const topic = ctx.uri('bigevent');
    const subs = await Promise.all(['json', 'msgpack', 'cbor'].map((serializer) => ctx.connect({ serializer, label: serializer })));
    const inboxes = subs.map((s) => ctx.inbox(s.label));
    await Promise.all(subs.map((s, i) => s.session.subscribe(topic, inboxes[i].handler)));
    const pub = await ctx.connect({ serializer: 'msgpack', label: 'pub' });
    const bytes = randomBytes(MB);
    await pub.session.publish(topic, [bytes], {}, { acknowledge: true });
    const got = await within(Promise.all(inboxes.map((ib) => ib.waitFor(1, 10000))), 12000, 'big events');
    for (const [ev] of got) assert.ok(Buffer.from(ev.args[0]).equals(bytes));
  });
});
