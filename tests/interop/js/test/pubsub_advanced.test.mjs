// Advanced broker features: pattern-based subscriptions, subscriber black/white
// listing (session id, authid, authrole), publisher identification with the
// Crossbar-style `disclose` permission. Uses the contract's config (alice = user).

import assert from 'node:assert/strict';
import { routerSuite, AUTH_CONFIG, MSG, show, requireFeature, assertArgsSeq } from './helpers.mjs';

const ALICE = { authid: 'alice', ticket: 'alice-secret' };

routerSuite('advanced publish/subscribe (--config)', { config: AUTH_CONFIG }, (test) => {
  test('prefix subscription: matching topics delivered with details.topic, others not', async (ctx) => {
    const base = ctx.uri('pfx');
    const sub = await ctx.connect({ label: 'sub' });
    const pub = await ctx.connect({ label: 'pub', serializer: 'msgpack' });
    requireFeature(ctx, sub, 'broker', 'pattern_based_subscription');
    const inbox = ctx.inbox();
    const s = await sub.session.subscribe(base, inbox.handler, { match: 'prefix' });
    const subscribe = sub.tx.find((m) => m[0] === MSG.SUBSCRIBE);
    assert.deepEqual(subscribe[2], { match: 'prefix' });

    await pub.session.publish(`${base}.a`, [1], {}, { acknowledge: true });
    await pub.session.publish(ctx.uri('elsewhere'), [2], {}, { acknowledge: true });
    await pub.session.publish(`${base}.a.b`, [3], {}, { acknowledge: true });
    await pub.session.publish(base, [4], {}, { acknowledge: true });
    const evs = await inbox.waitFor(3);
    assert.deepEqual(evs.map((e) => [e.args[0], e.details.topic]), [[1, `${base}.a`], [3, `${base}.a.b`], [4, base]]);
    const raw = sub.rx.filter((m) => m[0] === MSG.EVENT);
    assert.deepEqual(raw.map((m) => [m[1], m[3].topic]), [[s.id, `${base}.a`], [s.id, `${base}.a.b`], [s.id, base]]);
  });

  test('wildcard subscription: only single-component matches delivered, with details.topic', async (ctx) => {
    const base = ctx.uri('wc');
    const sub = await ctx.connect({ label: 'sub', serializer: 'cbor' });
    const pub = await ctx.connect({ label: 'pub' });
    requireFeature(ctx, sub, 'broker', 'pattern_based_subscription');
    const inbox = ctx.inbox();
    const s = await sub.session.subscribe(`${base}..end`, inbox.handler, { match: 'wildcard' });
    await pub.session.publish(`${base}.a.end`, [1], {}, { acknowledge: true });
    await pub.session.publish(`${base}.a.b.end`, [2], {}, { acknowledge: true });
    await pub.session.publish(`${base}.a.other`, [3], {}, { acknowledge: true });
    await pub.session.publish(`${base}.end`, [4], {}, { acknowledge: true });
    await pub.session.publish(`${base}.b.end`, [5], {}, { acknowledge: true });
    const evs = await inbox.waitFor(2);
    assert.deepEqual(evs.map((e) => [e.args[0], e.details.topic]), [[1, `${base}.a.end`], [5, `${base}.b.end`]]);
    const raw = sub.rx.filter((m) => m[0] === MSG.EVENT);
    assert.deepEqual(raw.map((m) => m[1]), [s.id, s.id]);
  });

  test('exact, prefix and wildcard subscriptions on one URI: distinct ids, one event each', async (ctx) => {
    const topic = ctx.uri('multi.x');
    const sub = await ctx.connect({ label: 'sub' });
    const pub = await ctx.connect({ label: 'pub' });
    requireFeature(ctx, sub, 'broker', 'pattern_based_subscription');
    const exact = ctx.inbox('exact');
    const prefix = ctx.inbox('prefix');
    const wild = ctx.inbox('wildcard');
    const se = await sub.session.subscribe(topic, exact.handler);
    const sp = await sub.session.subscribe(ctx.uri('multi'), prefix.handler, { match: 'prefix' });
    const sw = await sub.session.subscribe(ctx.uri('multi.'), wild.handler, { match: 'wildcard' });
    assert.equal(new Set([se.id, sp.id, sw.id]).size, 3, `ids ${show([se.id, sp.id, sw.id])}`);
    const p = await pub.session.publish(topic, ['once'], {}, { acknowledge: true });
    const [[e], [pf], [w]] = await Promise.all([exact.waitFor(1), prefix.waitFor(1), wild.waitFor(1)]);
    for (const ev of [e, pf, w]) {
      assert.deepEqual(ev.args, ['once']);
      assert.equal(ev.details.publication, p.id);
      assert.equal(ev.details.topic, topic);
    }
    const raw = sub.rx.filter((m) => m[0] === MSG.EVENT);
    assert.deepEqual(raw.map((m) => m[1]).sort(), [se.id, sp.id, sw.id].sort());
  });

  test('prefix subscriptions of two sessions share the subscription id', async (ctx) => {
    const a = await ctx.connect();
    const b = await ctx.connect({ serializer: 'msgpack' });
    requireFeature(ctx, a, 'broker', 'pattern_based_subscription');
    const sa = await a.session.subscribe(ctx.uri('p'), () => {}, { match: 'prefix' });
    const sb = await b.session.subscribe(ctx.uri('p'), () => {}, { match: 'prefix' });
    assert.equal(sa.id, sb.id);
  });

  test('exclude / eligible by session id', async (ctx) => {
    const topic = ctx.uri('bw');
    const [a, b, c, pub] = await Promise.all([
      ctx.connect({ label: 'A' }),
      ctx.connect({ label: 'B', serializer: 'msgpack' }),
      ctx.connect({ label: 'C', transport: 'rawsocket' }),
      ctx.connect({ label: 'pub', serializer: 'cbor' }),
    ]);
    requireFeature(ctx, pub, 'broker', 'subscriber_blackwhite_listing');
    const [ia, ib, ic] = [ctx.inbox('A'), ctx.inbox('B'), ctx.inbox('C')];
    await a.session.subscribe(topic, ia.handler);
    await b.session.subscribe(topic, ib.handler);
    await c.session.subscribe(topic, ic.handler);
    const P = (args, opts) => pub.session.publish(topic, args, {}, { acknowledge: true, ...opts });
    await P(['m1'], { exclude: [b.id] });
    await P(['m2'], { eligible: [a.id] });
    await P(['m3'], { eligible: [a.id, b.id], exclude: [b.id] });
    await P(['m4'], { eligible: [c.id, b.id] });
    await P(['m5'], { exclude: [a.id, b.id, c.id] });
    await P(['sentinel'], {});
    await Promise.all([ia.waitFor(4), ib.waitFor(2), ic.waitFor(3)]);
    assertArgsSeq(ia, [['m1'], ['m2'], ['m3'], ['sentinel']]);
    assertArgsSeq(ib, [['m4'], ['sentinel']]);
    assertArgsSeq(ic, [['m1'], ['m4'], ['sentinel']]);
  });

  test('exclude_me:false with exclude of own session id: exclude wins', async (ctx) => {
    const topic = ctx.uri('self');
    const pub = await ctx.connect({ label: 'pub' });
    requireFeature(ctx, pub, 'broker', 'subscriber_blackwhite_listing');
    requireFeature(ctx, pub, 'broker', 'publisher_exclusion');
    const inbox = ctx.inbox('self');
    await pub.session.subscribe(topic, inbox.handler);
    await pub.session.publish(topic, ['excluded'], {}, { acknowledge: true, exclude_me: false, exclude: [pub.id] });
    await pub.session.publish(topic, ['mine'], {}, { acknowledge: true, exclude_me: false });
    await inbox.waitFor(1);
    assertArgsSeq(inbox, [['mine']]);
  });

  test('exclude_authid / eligible_authid / exclude_authrole / eligible_authrole (alice=user vs anonymous)', async (ctx) => {
    const topic = ctx.uri('auth');
    const [alice, x, y, pub] = await Promise.all([
      ctx.connect({ label: 'alice', ...ALICE }),
      ctx.connect({ label: 'anonX', serializer: 'msgpack' }),
      ctx.connect({ label: 'anonY', transport: 'rawsocket' }),
      ctx.connect({ label: 'pub', serializer: 'cbor' }),
    ]);
    requireFeature(ctx, pub, 'broker', 'subscriber_blackwhite_listing');
    assert.equal(alice.welcome.authrole, 'user');
    assert.equal(x.welcome.authrole, 'anonymous');
    const [ia, ix, iy] = [ctx.inbox('alice'), ctx.inbox('anonX'), ctx.inbox('anonY')];
    await alice.session.subscribe(topic, ia.handler);
    await x.session.subscribe(topic, ix.handler);
    await y.session.subscribe(topic, iy.handler);
    const P = (args, opts) => pub.session.publish(topic, args, {}, { acknowledge: true, ...opts });
    await P(['m1'], { eligible_authid: ['alice'] });
    await P(['m2'], { exclude_authid: ['alice'] });
    await P(['m3'], { eligible_authrole: ['user'] });
    await P(['m4'], { exclude_authrole: ['user'] });
    await P(['m5'], { eligible_authrole: ['anonymous'] });
    await P(['m6'], { exclude_authrole: ['anonymous'] });
    await P(['m7'], { eligible_authid: ['alice'], exclude_authrole: ['user'] });
    await P(['m8'], { eligible_authrole: ['user', 'anonymous'], exclude: [x.id] });
    await P(['sentinel'], {});
    await Promise.all([ia.waitFor(5), ix.waitFor(4), iy.waitFor(5)]);
    assertArgsSeq(ia, [['m1'], ['m3'], ['m6'], ['m8'], ['sentinel']]);
    assertArgsSeq(ix, [['m2'], ['m4'], ['m5'], ['sentinel']]);
    assertArgsSeq(iy, [['m2'], ['m4'], ['m5'], ['m8'], ['sentinel']]);
  });

  test('publisher identification: disclose_me, and the user role\'s disclose.publisher permission', async (ctx) => {
    const topic = ctx.uri('ident');
    const [sub, alice, anon] = await Promise.all([
      ctx.connect({ label: 'sub', serializer: 'msgpack' }),
      ctx.connect({ label: 'alice', ...ALICE }),
      ctx.connect({ label: 'anon' }),
    ]);
    requireFeature(ctx, sub, 'broker', 'publisher_identification');
    const inbox = ctx.inbox();
    await sub.session.subscribe(topic, inbox.handler);
    await anon.session.publish(topic, ['anon-hidden'], {}, { acknowledge: true });
    await anon.session.publish(topic, ['anon-disclosed'], {}, { acknowledge: true, disclose_me: true });
    await alice.session.publish(topic, ['alice-by-role'], {}, { acknowledge: true });
    await alice.session.publish(topic, ['alice-disclosed'], {}, { acknowledge: true, disclose_me: true });
    const evs = await inbox.waitFor(4);
    const byArg = Object.fromEntries(evs.map((e) => [e.args[0], e.details]));
    assert.equal(byArg['anon-hidden'].publisher, undefined);
    assert.equal(byArg['anon-disclosed'].publisher, anon.id);
    assert.equal(byArg['alice-by-role'].publisher, alice.id,
      'role user has disclose.publisher = true: alice must be disclosed without disclose_me');
    assert.equal(byArg['alice-disclosed'].publisher, alice.id);
    for (const k of ['alice-by-role', 'alice-disclosed']) {
      const d = byArg[k];
      assert.equal(d.publisher_authid, 'alice');
      assert.equal(d.publisher_authrole, 'user');
    }
    const hiddenRaw = sub.rx.find((m) => m[0] === MSG.EVENT && m[4][0] === 'anon-hidden');
    assert.equal(hiddenRaw[3].publisher, undefined);
    assert.equal(hiddenRaw[3].publisher_authid, undefined);
    assert.equal(hiddenRaw[3].publisher_authrole, undefined);
  });
});
