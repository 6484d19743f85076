// Call canceling (skip / kill / killnowait) and callees that go away mid-call.
//
// autobahn-js callers support CANCEL, but autobahn-js callees do not announce
// callee.features.call_canceling and treat INTERRUPT as a protocol violation. The
// harness option `cancelCapable` makes a callee announce call_canceling and record
// INTERRUPT messages instead. CANCEL is sent raw ([49, CALL.Request, {mode}]) because
// autobahn's promise.cancel() forgets the call locally for non-"kill" modes and would
// then treat the router's (correct) ERROR as a protocol violation.

import assert from 'node:assert/strict';
import { routerSuite, MSG, expectReject, within, requireFeature, sleep, show } from './helpers.mjs';

/** Registers a procedure whose invocations stay pending until released. */
async function hangingCallee(ctx, proc, opts = {}) {
  const callee = await ctx.connect({ label: 'callee', ...opts });
  const pending = [];
  await callee.session.register(proc, (args) => new Promise((resolve) => pending.push({ args, resolve })));
  return { callee, pending };
}

async function waitUntil(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

function track(promise) {
  const state = { settled: false, value: undefined, error: undefined, at: null };
  promise.then(
    (v) => Object.assign(state, { settled: true, value: v, at: Date.now() }),
    (e) => Object.assign(state, { settled: true, error: e, at: Date.now() }),
  );
  return state;
}

routerSuite('call canceling and lost callees (default config)', (test) => {
  test('cancel mode skip: caller gets wamp.error.canceled at once, callee gets no INTERRUPT, late YIELD dropped', async (ctx) => {
    const proc = ctx.uri('skip');
    const { callee, pending } = await hangingCallee(ctx, proc, { cancelCapable: true });
    const caller = await ctx.connect({ label: 'caller' });
    requireFeature(ctx, caller, 'dealer', 'call_canceling');
    const p = caller.session.call(proc, [1]);
    await waitUntil(() => pending.length === 1, 3000, 'INVOCATION');
    const callReq = caller.lastTx(MSG.CALL)[1];
    caller.sendRaw([MSG.CANCEL, callReq, { mode: 'skip' }]);
    const e = await expectReject(p, 2000, 'canceled call');
    assert.equal(e.error, 'wamp.error.canceled');
    const err = caller.rx.find((m) => m[0] === MSG.ERROR);
    assert.deepEqual(err.slice(0, 3), [MSG.ERROR, MSG.CALL, callReq]);
    // the callee finishes anyway: the dealer must discard that YIELD
    pending[0].resolve('late');
    // a fresh call on the same caller proves the session is fine and orders after the YIELD
    await callee.session.register(ctx.uri('ping'), () => 'pong');
    assert.equal(await caller.session.call(ctx.uri('ping')), 'pong');
    assert.equal(callee.interrupts.length, 0, `INTERRUPT sent in skip mode: ${show(callee.interrupts)}`);
    assert.equal(caller.rx.filter((m) => m[0] === MSG.RESULT && m[1] === callReq).length, 0);
  });

  test('cancel mode kill: INTERRUPT to callee, caller waits for the callee\'s ERROR', async (ctx) => {
    const proc = ctx.uri('kill');
    const { callee, pending } = await hangingCallee(ctx, proc, { cancelCapable: true });
    const caller = await ctx.connect({ label: 'caller' });
    requireFeature(ctx, caller, 'dealer', 'call_canceling');
    const p = caller.session.call(proc, [1]);
    const st = track(p);
    await waitUntil(() => pending.length === 1, 3000, 'INVOCATION');
    const inv = callee.lastRx(MSG.INVOCATION);
    caller.sendRaw([MSG.CANCEL, caller.lastTx(MSG.CALL)[1], { mode: 'kill' }]);
    await waitUntil(() => callee.interrupts.length === 1, 2000, 'INTERRUPT at the callee');
    const intr = callee.interrupts[0];
    assert.equal(intr[1], inv[1], `INTERRUPT ${show(intr)} must carry the INVOCATION request id ${inv[1]}`);
    assert.equal(typeof intr[2], 'object');
    assert.equal(intr[2].mode, 'kill');
    await sleep(100);
    assert.equal(st.settled, false, 'kill mode: the caller must not get ERROR before the callee answered');
    callee.sendRaw([MSG.ERROR, MSG.INVOCATION, inv[1], {}, 'wamp.error.canceled', ['stopped']]);
    const e = await expectReject(p, 2000, 'killed call');
    assert.equal(e.error, 'wamp.error.canceled');
  });

  test('cancel mode kill: callee without call_canceling gets no INTERRUPT, caller gets wamp.error.canceled (skip)', async (ctx) => {
    const proc = ctx.uri('killplain');
    const { callee, pending } = await hangingCallee(ctx, proc);
    const caller = await ctx.connect({ label: 'caller' });
    requireFeature(ctx, caller, 'dealer', 'call_canceling');
    const p = caller.session.call(proc, [1]);
    await waitUntil(() => pending.length === 1, 3000, 'INVOCATION');
    caller.sendRaw([MSG.CANCEL, caller.lastTx(MSG.CALL)[1], { mode: 'kill' }]);
    const e = await expectReject(p, 2000, 'canceled call');
    assert.equal(e.error, 'wamp.error.canceled');
    pending[0].resolve('late');
    await callee.session.register(ctx.uri('ping'), () => 'pong');
    assert.equal(await caller.session.call(ctx.uri('ping')), 'pong');
    // a plain autobahn callee records an INTERRUPT as a protocol violation (checked by the harness)
    assert.ok(!callee.rx.some((m) => m[0] === MSG.INTERRUPT), 'INTERRUPT sent to a callee that does not announce call_canceling');
    assert.ok(callee.isOpen());
  });

  test('cancel mode killnowait: caller gets ERROR at once, callee gets INTERRUPT, its ERROR is dropped', async (ctx) => {
    const proc = ctx.uri('killnowait');
    const { callee, pending } = await hangingCallee(ctx, proc, { cancelCapable: true });
    const caller = await ctx.connect({ label: 'caller' });
    requireFeature(ctx, caller, 'dealer', 'call_canceling');
    const p = caller.session.call(proc, [1]);
    await waitUntil(() => pending.length === 1, 3000, 'INVOCATION');
    const inv = callee.lastRx(MSG.INVOCATION);
    const callReq = caller.lastTx(MSG.CALL)[1];
    caller.sendRaw([MSG.CANCEL, callReq, { mode: 'killnowait' }]);
    const e = await expectReject(p, 2000, 'canceled call');
    assert.equal(e.error, 'wamp.error.canceled');
    await waitUntil(() => callee.interrupts.length === 1, 2000, 'INTERRUPT at the callee');
    assert.equal(callee.interrupts[0][1], inv[1]);
    assert.equal(callee.interrupts[0][2].mode, 'killnowait');
    callee.sendRaw([MSG.ERROR, MSG.INVOCATION, inv[1], {}, 'wamp.error.canceled']);
    await callee.session.register(ctx.uri('ping'), () => 'pong');
    assert.equal(await caller.session.call(ctx.uri('ping')), 'pong');
    assert.equal(caller.rx.filter((m) => m[0] === MSG.ERROR && m[2] === callReq).length, 1);
  });

  test('CANCEL for a call that already finished is ignored', async (ctx) => {
    const proc = ctx.uri('done');
    const callee = await ctx.connect({ label: 'callee', cancelCapable: true });
    const caller = await ctx.connect({ label: 'caller' });
    requireFeature(ctx, caller, 'dealer', 'call_canceling');
    await callee.session.register(proc, () => 'finished');
    assert.equal(await caller.session.call(proc), 'finished');
    caller.sendRaw([MSG.CANCEL, caller.lastTx(MSG.CALL)[1], { mode: 'kill' }]);
    await callee.session.register(ctx.uri('ping'), () => 'pong');
    assert.equal(await caller.session.call(ctx.uri('ping')), 'pong');
    assert.equal(callee.interrupts.length, 0);
    assert.ok(caller.isOpen());
  });

  const lossModes = [
    { name: 'WebSocket close frame without GOODBYE', variant: { transport: 'websocket', serializer: 'json' }, how: (c) => c.dropTransport() },
    { name: 'TCP reset under WebSocket', variant: { transport: 'websocket', serializer: 'msgpack' }, how: (c) => c.resetSocket() },
    { name: 'RawSocket TCP close without GOODBYE', variant: { transport: 'rawsocket', serializer: 'json' }, how: (c) => c.dropTransport() },
    { name: 'GOODBYE', variant: { transport: 'websocket', serializer: 'cbor' }, how: (c) => c.connection.close() },
  ];
  for (const mode of lossModes) {
    test(`callee lost mid-call (${mode.name}): caller's call rejects within 2 s; registration removed`, async (ctx) => {
      const proc = ctx.uri('lost');
      const { callee, pending } = await hangingCallee(ctx, proc, { ...mode.variant });
      const caller = await ctx.connect({ label: 'caller' });
      const p = caller.session.call(proc, [1]);
      await waitUntil(() => pending.length === 1, 3000, 'INVOCATION');
      const t0 = Date.now();
      mode.how(callee);
      const e = await expectReject(p, 2000, 'call whose callee went away');
      const ms = Date.now() - t0;
      ctx.t.diagnostic(`caller got ERROR ${show(e.error)} args=${show(e.args)} kwargs=${show(e.kwargs)} after ${ms} ms`);
      assert.equal(typeof e.error, 'string');
      assert.match(e.error, /^wamp\.error\./);
      const e2 = await expectReject(caller.session.call(proc), 2000, 'call after callee left');
      assert.equal(e2.error, 'wamp.error.no_such_procedure');
      await within(callee.closed, 2000, 'callee transport closed');
    });
  }
});
