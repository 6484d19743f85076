// Routed RPC over every transport/serializer: register/call with args and kwargs,
// errors, unregister, caller identification, progressive call results.

import assert from 'node:assert/strict';
import { routerSuite, VARIANTS, MSG, autobahn, show, expectReject, within, requireFeature, sleep } from './helpers.mjs';

const ARGS = [1, 'two', 3.5, true, null, [1, [2, -3]], { k: 'v' }, ''];
const KWARGS = { a: 1, b: 'x', nested: { c: [1, 2], d: { e: false } }, unicode: 'grüße €𝄞' };

function isId(x) {
  return Number.isSafeInteger(x) && x >= 1 && x <= 2 ** 53;
}

routerSuite('RPC (default config)', (test) => {
  for (const variant of VARIANTS) {
    test(`${variant.name}: call with args and kwargs, result args and kwargs`, async (ctx) => {
      const proc = ctx.uri('echo');
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      const seen = [];
      const reg = await callee.session.register(proc, (args, kwargs, details) => {
        seen.push({ args, kwargs, details });
        return new autobahn.Result(['r', ...args], { echoed: kwargs, n: args.length });
      });
      assert.ok(isId(reg.id));
      const res = await within(caller.session.call(proc, ARGS, KWARGS), 3000, 'call result');
      assert.ok(res instanceof autobahn.Result, `expected Result, got ${show(res)}`);
      assert.deepEqual(res.args, ['r', ...ARGS]);
      assert.deepEqual(res.kwargs, { echoed: KWARGS, n: ARGS.length });
      assert.equal(seen.length, 1);
      assert.deepEqual(seen[0].args, ARGS);
      assert.deepEqual(seen[0].kwargs, KWARGS);
      assert.equal(seen[0].details.procedure, proc);
      assert.equal(seen[0].details.caller, undefined, 'caller must not be disclosed without disclose_me');
      const inv = callee.rx.find((m) => m[0] === MSG.INVOCATION);
      assert.equal(inv[2], reg.id);
      assert.ok(isId(inv[1]));
      const call = caller.tx.find((m) => m[0] === MSG.CALL);
      const result = caller.rx.find((m) => m[0] === MSG.RESULT);
      assert.equal(result[1], call[1]);
    });

    test(`${variant.name}: single result value; call with no arguments`, async (ctx) => {
      const proc = ctx.uri('answer');
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      const seen = [];
      await callee.session.register(proc, (args, kwargs) => {
        seen.push([args, kwargs]);
        return 42;
      });
      assert.equal(await caller.session.call(proc), 42);
      assert.deepEqual(seen, [[[], {}]]);
      const inv = callee.rx.find((m) => m[0] === MSG.INVOCATION);
      assert.ok(inv.length === 4 || (inv.length === 5 && inv[4].length === 0), `INVOCATION ${show(inv)}`);
    });

    test(`${variant.name}: unknown procedure → wamp.error.no_such_procedure`, async (ctx) => {
      const caller = await ctx.connect({ variant });
      const e = await expectReject(caller.session.call(ctx.uri('missing'), [1]), 3000, 'call');
      assert.equal(e.error, 'wamp.error.no_such_procedure');
      const err = caller.rx.find((m) => m[0] === MSG.ERROR);
      assert.equal(err[1], MSG.CALL);
      assert.equal(err[2], caller.lastTx(MSG.CALL)[1]);
    });

    test(`${variant.name}: second registration → wamp.error.procedure_already_exists`, async (ctx) => {
      const proc = ctx.uri('taken');
      const a = await ctx.connect({ variant, label: 'first' });
      const b = await ctx.connect({ variant, label: 'second' });
      await a.session.register(proc, () => 'a');
      const e1 = await expectReject(b.session.register(proc, () => 'b'), 3000, 'register by another session');
      assert.equal(e1.error, 'wamp.error.procedure_already_exists');
      const e2 = await expectReject(a.session.register(proc, () => 'a2'), 3000, 'register by the same session');
      assert.equal(e2.error, 'wamp.error.procedure_already_exists');
      assert.equal(await b.session.call(proc), 'a');
    });

    test(`${variant.name}: application error URI, args and kwargs pass through exactly`, async (ctx) => {
      const proc = ctx.uri('fails');
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      const eArgs = [1, 'two', { three: [3] }, null, false];
      const eKwargs = { reason: 'because', code: 409, detail: { list: [1, 2, 3] } };
      await callee.session.register(proc, () => {
        throw new autobahn.Error('com.example.error.not_allowed', eArgs, eKwargs);
      });
      const e = await expectReject(caller.session.call(proc, [1]), 3000, 'call');
      assert.ok(e instanceof autobahn.Error, `expected autobahn.Error, got ${show(e)}`);
      assert.equal(e.error, 'com.example.error.not_allowed');
      assert.deepEqual(e.args, eArgs);
      assert.deepEqual(e.kwargs, eKwargs);
      const raw = caller.rx.find((m) => m[0] === MSG.ERROR);
      assert.deepEqual(raw.slice(4), ['com.example.error.not_allowed', eArgs, eKwargs]);
      assert.equal(raw[1], MSG.CALL);
      // the callee stays registered and usable
      assert.ok(callee.isOpen());
    });

    test(`${variant.name}: unregister → later calls get wamp.error.no_such_procedure`, async (ctx) => {
      const proc = ctx.uri('gone');
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      const reg = await callee.session.register(proc, () => 'here');
      assert.equal(await caller.session.call(proc), 'here');
      await reg.unregister();
      const unreg = callee.tx.find((m) => m[0] === MSG.UNREGISTER);
      assert.equal(unreg[2], reg.id);
      assert.deepEqual(callee.rx.find((m) => m[0] === MSG.UNREGISTERED), [MSG.UNREGISTERED, unreg[1]]);
      const e = await expectReject(caller.session.call(proc), 3000, 'call after unregister');
      assert.equal(e.error, 'wamp.error.no_such_procedure');
      // the URI is free again
      await caller.session.register(proc, () => 'new owner');
      assert.equal(await callee.session.call(proc), 'new owner');
    });

    test(`${variant.name}: caller identification with disclose_me:true`, async (ctx) => {
      const proc = ctx.uri('who');
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      requireFeature(ctx, callee, 'dealer', 'caller_identification');
      await callee.session.register(proc, (args, kwargs, details) => [details.caller === undefined ? null : details.caller]);
      const disclosed = await caller.session.call(proc, [], {}, { disclose_me: true });
      assert.deepEqual(disclosed, [caller.id]);
      const hidden = await caller.session.call(proc, [], {});
      assert.deepEqual(hidden, [null]);
      const invs = callee.rx.filter((m) => m[0] === MSG.INVOCATION);
      assert.equal(invs[0][3].caller, caller.id);
      assert.equal(invs[0][3].caller_authrole, 'anonymous');
      assert.equal(invs[0][3].caller_authid, caller.welcome.authid);
      assert.equal(invs[1][3].caller, undefined);
    });

    test(`${variant.name}: progressive call results`, async (ctx) => {
      const proc = ctx.uri('progress');
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      requireFeature(ctx, callee, 'dealer', 'progressive_call_results');
      const progressFns = [];
      await callee.session.register(proc, async (args, kwargs, details) => {
        progressFns.push(typeof details.progress);
        if (details.progress) {
          for (let i = 1; i <= 3; i++) {
            details.progress([i], { step: i });
            await sleep(5);
          }
        }
        return new autobahn.Result(['done'], { total: 3 });
      });
      const p = caller.session.call(proc, ['go'], {}, { receive_progress: true });
      const updates = [];
      p.onprogress = (v) => updates.push({ atResolve: false, v });
      const res = await within(p, 3000, 'progressive call');
      assert.deepEqual(res.args, ['done']);
      assert.deepEqual(res.kwargs, { total: 3 });
      assert.deepEqual(p.progress.map((r) => [r.args, r.kwargs]), [[[1], { step: 1 }], [[2], { step: 2 }], [[3], { step: 3 }]]);
      assert.equal(updates.length, 3);
      const inv = callee.rx.find((m) => m[0] === MSG.INVOCATION);
      assert.equal(inv[3].receive_progress, true);
      const results = caller.rx.filter((m) => m[0] === MSG.RESULT);
      assert.deepEqual(results.map((m) => m[2].progress === true), [true, true, true, false]);
      const call = caller.lastTx(MSG.CALL);
      assert.ok(results.every((m) => m[1] === call[1]));

      // without receive_progress the callee gets no progress function, only the final result
      const p2 = caller.session.call(proc, ['go'], {});
      const res2 = await within(p2, 3000, 'non-progressive call');
      assert.deepEqual(res2.args, ['done']);
      assert.deepEqual(p2.progress, []);
      assert.deepEqual(progressFns, ['function', 'object']);
      const inv2 = callee.rx.filter((m) => m[0] === MSG.INVOCATION)[1];
      assert.ok(!inv2[3].receive_progress, `INVOCATION details ${show(inv2[3])}`);
    });
  }

  test('20 concurrent calls answered out of order are matched to their callers', async (ctx) => {
    const proc = ctx.uri('slow');
    const callee = await ctx.connect({ label: 'callee', serializer: 'msgpack' });
    const c1 = await ctx.connect({ label: 'caller1' });
    const c2 = await ctx.connect({ label: 'caller2', serializer: 'cbor' });
    const pending = [];
    await callee.session.register(proc, (args) => new Promise((resolve) => pending.push(() => resolve(args[0] * 10))));
    const calls = [];
    for (let i = 0; i < 20; i++) calls.push((i % 2 ? c1 : c2).session.call(proc, [i]));
    const deadline = Date.now() + 3000;
    while (pending.length < 20 && Date.now() < deadline) await sleep(10);
    assert.equal(pending.length, 20, 'all 20 invocations reached the callee');
    for (const f of pending.reverse()) f();
    const results = await within(Promise.all(calls), 3000, 'all results');
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i * 10));
  });

  test('invalid procedure URI → wamp.error.invalid_uri', async (ctx) => {
    const c = await ctx.connect();
    const e1 = await expectReject(c.session.register('sy.Bad URI', () => 1), 3000, 'register');
    assert.equal(e1.error, 'wamp.error.invalid_uri');
    const e2 = await expectReject(c.session.call('sy..x'), 3000, 'call');
    assert.equal(e2.error, 'wamp.error.invalid_uri');
  });

  test('a session can call a procedure it registered itself', async (ctx) => {
    const c = await ctx.connect({ serializer: 'cbor' });
    await c.session.register(ctx.uri('self'), (args) => args[0] + 1);
    assert.equal(await c.session.call(ctx.uri('self'), [41]), 42);
  });
});
