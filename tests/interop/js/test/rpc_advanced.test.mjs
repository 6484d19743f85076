// Advanced RPC with autobahn-js: shared registrations (invocation policies),
// pattern-based registrations (the spec's best match, INVOCATION.Details.procedure) and
// router-enforced call timeouts (CALL.Options.timeout, the realm's max_call_timeout_ms).
//
// autobahn-js 22.11 callees do not announce call_canceling and have no handler for
// INTERRUPT (a protocol violation to them): the router must send them none when a call
// times out, and drop their late answer. With the harness option `cancelCapable` a
// callee announces call_canceling and records INTERRUPTs (its handler is not stopped:
// autobahn-js has no way to stop it).

import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  MSG, VARIANTS, autobahn, expectReject, routerSuite, show, sleep, within, withRouter,
} from './helpers.mjs';

const NO_SUCH_PROCEDURE = 'wamp.error.no_such_procedure';
const ALREADY_EXISTS = 'wamp.error.procedure_already_exists';
const OTHER_POLICY = 'wamp.error.procedure_exists_with_different_invocation_policy';
const TIMEOUT = 'wamp.error.timeout';
const TIMEOUT_MESSAGE = 'the call was not answered within its timeout';

async function errorOf(promise, what = 'call') {
  const e = await expectReject(promise, 3000, what);
  assert.ok(e instanceof autobahn.Error, `expected an autobahn.Error, got ${show(e)}`);
  return e;
}

async function waitUntil(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** n sessions (over the variants in turn) registering proc with `options`; callee i answers i. */
async function callees(connect, n, proc, options) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const c = await connect({ variant: VARIANTS[i % VARIANTS.length], label: `callee${i}` });
    await c.session.register(proc, () => i, options);
    out.push(c);
  }
  return out;
}

async function calls(caller, proc, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await caller.session.call(proc));
  return out;
}

/** Resolves when wamp.registration.on_unregister [session, registration] arrives. */
async function watchUnregister(client) {
  const seen = [];
  await client.session.subscribe('wamp.registration.on_unregister', (args) => seen.push(args));
  return (session, registration) => waitUntil(() => seen.some((a) => a[0] === session && a[1] === registration), 3000,
    `on_unregister [${session}, ${registration}]; have ${show(seen)}`);
}

/** A call timed from its CALL to its ERROR (ms). */
// The ERROR of a call expected to time out after `expected` ms, how long it took, and
// when a timer of `expected` ms set at the same moment in this process fired (`late`):
// the deadline as the machine keeps it then. The router must answer within 20 ms of
// that timer; on a loaded machine both are late alike.
async function timedError(caller, proc, options, expected) {
  const t0 = performance.now();
  const timer = new Promise((resolve) => setTimeout(() => resolve(performance.now() - t0), expected));
  const p = caller.session.call(proc, [], {}, options);
  const e = await expectReject(p, 3000, 'timed out call');
  const elapsed = performance.now() - t0;
  return { e, elapsed, late: await timer };
}

/** Not before the deadline (less 20 ms of clock granularity), within 20 ms of a timer here. */
function assertOnTime({ elapsed, late }, expected, what) {
  assert.ok(elapsed >= expected - 20 && elapsed <= Math.max(expected, late) + 20,
    `${what}: expected ERROR after ${expected} ms, got ${elapsed.toFixed(1)} ms (a timer here: ${late.toFixed(1)} ms)`);
}

const REALM1 = (limits = '') => `
[[realms]]
name = "realm1"
anonymous = "anonymous"
${limits}
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
`;
const CAP_CONFIG = REALM1('[realms.limits]\nmax_call_timeout_ms = 300\n');
const LOOSE_URIS = `[limits]\nstrict_uris = false\n${REALM1()}`;


// The spec's example (Pattern-based Registrations, "Calls matching multiple
// registrations"). Its text sends 'a1.b2.c3.d4.e5' to RPC 5 ("no prefix match"), but
// prefix 'a1.b2.c3.d4' (RPC 3) matches it and the rule it states (step 2 before step 3)
// picks RPC 3: the router follows the rule; the wildcard choice the example means (5
// over 4) is checked with the wildcards alone.
const SPEC_REGS = [
  ['a1.b2.c3.d4.e55', 'exact'],
  ['a1.b2.c3', 'prefix'],
  ['a1.b2.c3.d4', 'prefix'],
  ['a1.b2..d4.e5', 'wildcard'],
  ['a1.b2.c3..e5', 'wildcard'],
  ['a1.b2..d4.e5..g7', 'wildcard'],
  ['a1.b2..d4..f6.g7', 'wildcard'],
];
const SPEC_CALLS = [
  ['a1.b2.c3.d4.e55', 1],
  ['a1.b2.c3.d98.e74', 2],
  ['a1.b2.c3.d4.e325', 3],
  ['a1.b2.c55.d4.e5', 4],
  ['a1.b2.c3.d4.e5', 3],
  ['a1.b2.c88.d4.e5.f6.g7', 6],
];
const WILDCARD_CALLS = [
  ['a1.b2.c55.d4.e5', 4],
  ['a1.b2.c3.d4.e5', 5],
  ['a1.b2.c88.d4.e5.f6.g7', 6],
  ['a1.b2.c88.d4.e6.f6.g7', 7],
];

routerSuite('advanced RPC (default config)', (test) => {
  // ------------------------------------------------------------------ shared

  for (const variant of VARIANTS) {
    test(`${variant.name}: roundrobin over 4 callees rotates in order of registration`, async (ctx) => {
      const proc = ctx.uri('rr');
      const four = await callees((o) => ctx.connect(o), 4, proc, { invoke: 'roundrobin' });
      const caller = await ctx.connect({ variant, label: 'caller' });
      assert.deepEqual(await calls(caller, proc, 8), [0, 1, 2, 3, 0, 1, 2, 3]);
      const id = await caller.session.call('wamp.registration.lookup', [proc]);
      assert.deepEqual(await caller.session.call('wamp.registration.list_callees', [id]), four.map((c) => c.id));
    });
  }

  const leaves = [
    ['next', 'GOODBYE', (c) => c.connection.close()],
    ['next', 'TCP reset', (c) => c.resetSocket()],
    ['called', 'GOODBYE', (c) => c.connection.close()],
    ['called', 'transport closed', (c) => c.dropTransport()],
  ];
  for (const [who, how, go] of leaves) {
    test(`roundrobin: the ${who} callee leaves mid-rotation (${how}); nobody is skipped`, async (ctx) => {
      const proc = ctx.uri('rrleave');
      const four = await callees((o) => ctx.connect(o), 4, proc, { invoke: 'roundrobin' });
      const caller = await ctx.connect({ label: 'caller' });
      const unregistered = await watchUnregister(caller);
      const id = await caller.session.call('wamp.registration.lookup', [proc]);
      assert.deepEqual(await calls(caller, proc, 2), [0, 1]);
      const leaving = who === 'next' ? four[2] : four[0];
      go(leaving);
      await unregistered(leaving.id, id);
      // 2 was next: if it left, 3 takes its turn; if 0 (already called) left, 2 is still next
      assert.deepEqual(await calls(caller, proc, 6), who === 'next' ? [3, 0, 1, 3, 0, 1] : [2, 3, 1, 2, 3, 1]);
    });
  }

  test('roundrobin: a callee that unregisters and registers again goes to the end', async (ctx) => {
    const proc = ctx.uri('again');
    const three = [];
    const regs = [];
    for (let i = 0; i < 3; i++) {
      const c = await ctx.connect({ variant: VARIANTS[i], label: `callee${i}` });
      regs.push(await c.session.register(proc, () => i, { invoke: 'roundrobin' }));
      three.push(c);
    }
    const caller = await ctx.connect({ transport: 'rawsocket' });
    assert.deepEqual(await calls(caller, proc, 2), [0, 1]);
    await three[0].session.unregister(regs[0]);
    await three[0].session.register(proc, () => 0, { invoke: 'roundrobin' });
    const id = await caller.session.call('wamp.registration.lookup', [proc]);
    assert.deepEqual(await caller.session.call('wamp.registration.list_callees', [id]), [three[1].id, three[2].id, three[0].id]);
    // 2 was next and still is
    assert.deepEqual(await calls(caller, proc, 6), [2, 0, 1, 2, 0, 1]);
  });

  test('random reaches every callee', async (ctx) => {
    const proc = ctx.uri('random');
    await callees((o) => ctx.connect(o), 3, proc, { invoke: 'random' });
    const caller = await ctx.connect({ serializer: 'cbor' });
    const got = await Promise.all(Array.from({ length: 90 }, () => caller.session.call(proc)));
    const counts = [0, 1, 2].map((i) => got.filter((x) => x === i).length);
    // 30 each on average; P(any below 10) is about 1e-5
    assert.ok(counts.reduce((a, b) => a + b) === 90 && Math.min(...counts) >= 10, show(counts));
  });

  for (const invoke of ['first', 'last']) {
    test(`${invoke}: hot stand-by`, async (ctx) => {
      const proc = ctx.uri(invoke);
      const three = await callees((o) => ctx.connect(o), 3, proc, { invoke });
      const caller = await ctx.connect({ serializer: 'msgpack' });
      const unregistered = await watchUnregister(caller);
      const id = await caller.session.call('wamp.registration.lookup', [proc]);
      const active = invoke === 'first' ? 0 : 2;
      assert.deepEqual(await calls(caller, proc, 3), [active, active, active]);
      await three[active].close();
      await unregistered(three[active].id, id);
      assert.deepEqual(await calls(caller, proc, 3), [1, 1, 1]);
      const newcomer = await ctx.connect({ transport: 'rawsocket' });
      await newcomer.session.register(proc, () => 3, { invoke });
      assert.deepEqual(await calls(caller, proc, 2), invoke === 'first' ? [1, 1] : [3, 3]);
    });
  }

  test('shared registration refusals: other policy, single, same session twice', async (ctx) => {
    const a = await ctx.connect({ label: 'a' });
    const b = await ctx.connect({ transport: 'rawsocket', label: 'b' });
    const c = await ctx.connect({ serializer: 'cbor', label: 'c' });
    const rr = ctx.uri('rr');
    const single = ctx.uri('single');
    await a.session.register(rr, () => 'a', { invoke: 'roundrobin' });
    for (const invoke of ['random', 'first', 'last']) {
      assert.equal((await errorOf(b.session.register(rr, () => 'b', { invoke }))).error, OTHER_POLICY, invoke);
    }
    for (const options of [undefined, { invoke: 'single' }]) {
      assert.equal((await errorOf(b.session.register(rr, () => 'b', options))).error, ALREADY_EXISTS);
    }
    assert.equal((await errorOf(a.session.register(rr, () => 'a', { invoke: 'roundrobin' }))).error, ALREADY_EXISTS);
    await b.session.register(rr, () => 'b', { invoke: 'roundrobin' });
    await a.session.register(single, () => 'a');
    for (const invoke of ['single', 'roundrobin', 'random', 'first', 'last']) {
      assert.equal((await errorOf(c.session.register(single, () => 'c', { invoke }))).error, ALREADY_EXISTS, invoke);
    }
    await c.session.register(single, () => 'c', { match: 'prefix' });
    assert.equal(await c.session.call(single), 'a');
    assert.equal(await c.session.call(`${single}.more`), 'c');
    assert.deepEqual([await c.session.call(rr), await c.session.call(rr)].sort(), ['a', 'b']);
  });

  // ------------------------------------------------------------------ patterns

  for (const variant of [VARIANTS[0], VARIANTS[1], VARIANTS[3]]) {
    test(`${variant.name}: best match follows the spec; Details.procedure for pattern registrations`, async (ctx) => {
      const callee = await ctx.connect({ variant, label: 'callee' });
      const caller = await ctx.connect({ variant: VARIANTS[2], label: 'caller' });
      const base = ctx.uri('p');
      const seen = [];
      const endpoint = (n) => (args, kwargs, details) => {
        seen.push([n, details.procedure]);
        return n;
      };
      const regs = {};
      for (const [i, [uri, match]] of SPEC_REGS.entries()) {
        regs[i + 1] = await callee.session.register(`${base}.${uri}`, endpoint(i + 1), match === 'exact' ? undefined : { match });
      }
      for (const [uri, n] of SPEC_CALLS) assert.equal(await caller.session.call(`${base}.${uri}`), n, uri);
      assert.deepEqual(seen, SPEC_CALLS.map(([uri, n]) => [n, `${base}.${uri}`]));
      const invocations = callee.rx.filter((m) => m[0] === MSG.INVOCATION);
      assert.deepEqual(invocations.map((m) => [m[2], m[3].procedure]),
        SPEC_CALLS.map(([uri, n]) => [regs[n].id, n === 1 ? undefined : `${base}.${uri}`]));
      assert.equal((await errorOf(caller.session.call(`${base}.a2.b2.c2.d2.e2`))).error, NO_SUCH_PROCEDURE);
      for (const [uri, n] of SPEC_CALLS) {
        assert.equal(await caller.session.call('wamp.registration.match', [`${base}.${uri}`]), regs[n].id);
      }
      const wbase = ctx.uri('w');
      const wregs = {};
      for (const [i, [uri, match]] of SPEC_REGS.entries()) {
        if (match === 'wildcard') wregs[i + 1] = await callee.session.register(`${wbase}.${uri}`, endpoint(i + 1), { match });
      }
      seen.length = 0;
      for (const [uri, n] of WILDCARD_CALLS) {
        assert.equal(await caller.session.call(`${wbase}.${uri}`), n, uri);
        assert.equal(await caller.session.call('wamp.registration.match', [`${wbase}.${uri}`]), wregs[n].id);
      }
      assert.deepEqual(seen, WILDCARD_CALLS.map(([uri, n]) => [n, `${wbase}.${uri}`]));
    });
  }

  test("the spec's prefix and wildcard examples (loose URIs, own router)", async (ctx) => {
    await withRouter(ctx, LOOSE_URIS, async (connect) => {
      const callee = await connect({ transport: 'rawsocket' });
      const caller = await connect({ serializer: 'msgpack' });
      await callee.session.register('com.myapp.myobject1', (a, k, d) => ['p', d.procedure], { match: 'prefix' });
      await callee.session.register('com.myapp2..myprocedure1', (a, k, d) => ['w', d.procedure], { match: 'wildcard' });
      const value = (r) => (r instanceof autobahn.Result ? r.args : r);
      for (const uri of ['com.myapp.myobject1.myprocedure1', 'com.myapp.myobject1-mysubobject1',
        'com.myapp.myobject1.mysubobject1.myprocedure1', 'com.myapp.myobject1']) {
        assert.deepEqual(value(await caller.session.call(uri)), ['p', uri]);
      }
      for (const uri of ['com.myapp.myobject2', 'com.myapp.myobject']) {
        assert.equal((await errorOf(caller.session.call(uri))).error, NO_SUCH_PROCEDURE, uri);
      }
      for (const uri of ['com.myapp2.myobject1.myprocedure1', 'com.myapp2.myobject2.myprocedure1']) {
        assert.deepEqual(value(await caller.session.call(uri)), ['w', uri]);
      }
      for (const uri of ['com.myapp2.myobject1.myprocedure1.mysubprocedure1', 'com.myapp2.myobject1.myprocedure2',
        'com.myapp3.myobject1.myprocedure1']) {
        assert.equal((await errorOf(caller.session.call(uri))).error, NO_SUCH_PROCEDURE, uri);
      }
    });
  });

  test('a prefix registration shared round-robin; each callee is told the called URI', async (ctx) => {
    const base = ctx.uri('sharedprefix');
    const seen = [];
    for (let i = 0; i < 3; i++) {
      const c = await ctx.connect({ variant: VARIANTS[i], label: `callee${i}` });
      await c.session.register(base, (a, k, d) => {
        seen.push([i, d.procedure]);
        return i;
      }, { match: 'prefix', invoke: 'roundrobin' });
    }
    const caller = await ctx.connect({ transport: 'rawsocket' });
    const uris = Array.from({ length: 6 }, (_, k) => `${base}.n${k}`);
    const got = [];
    for (const u of uris) got.push(await caller.session.call(u));
    assert.deepEqual(got, [0, 1, 2, 0, 1, 2]);
    assert.deepEqual(seen, uris.map((u, k) => [k % 3, u]));
  });

  // ------------------------------------------------------------------ timeouts

  for (const variant of VARIANTS) {
    test(`${variant.name}: call timeout: wamp.error.timeout at the deadline, INTERRUPT killnowait to a canceling callee`, async (ctx) => {
      const callee = await ctx.connect({ variant, cancelCapable: true, label: 'callee' });
      const caller = await ctx.connect({ variant: VARIANTS[(VARIANTS.indexOf(variant) + 1) % VARIANTS.length], label: 'caller' });
      const proc = ctx.uri('hang');
      const pending = [];
      await callee.session.register(proc, () => new Promise((resolve) => pending.push(resolve)));
      await callee.session.register(ctx.uri('probe'), () => 'alive');
      const timed = await timedError(caller, proc, { timeout: 200 }, 200);
      const { e } = timed;
      assert.equal(pending.length, 1);
      assert.deepEqual([e.error, e.args], [TIMEOUT, [TIMEOUT_MESSAGE]]);
      assertOnTime(timed, 200, 'timeout 200 ms');
      const call = caller.tx.find((m) => m[0] === MSG.CALL && m[3] === proc);
      assert.deepEqual(call[2], { timeout: 200 });
      await waitUntil(() => callee.interrupts.length === 1, 2000, 'INTERRUPT');
      const inv = callee.lastRx(MSG.INVOCATION);
      assert.deepEqual(callee.interrupts, [[MSG.INTERRUPT, inv[1], { mode: 'killnowait' }]]);
      // the callee's answer to the interrupted invocation is dropped
      callee.sendRaw([MSG.ERROR, MSG.INVOCATION, inv[1], {}, 'wamp.error.canceled']);
      pending[0]('late');
      assert.equal(await caller.session.call(ctx.uri('probe')), 'alive');
      assert.equal(caller.rx.filter((m) => m[0] === MSG.ERROR && m[2] === call[1]).length, 1);
    });
  }

  test('call timeout with a plain autobahn-js callee: no INTERRUPT, its late result dropped', async (ctx) => {
    const callee = await ctx.connect({ transport: 'rawsocket', label: 'callee' });
    const caller = await ctx.connect({ serializer: 'msgpack', label: 'caller' });
    const proc = ctx.uri('plain');
    const pending = [];
    await callee.session.register(proc, (args) => new Promise((resolve) => pending.push([args, resolve])));
    const timed = await timedError(caller, proc, { timeout: 150 }, 150);
    assert.equal(timed.e.error, TIMEOUT);
    assertOnTime(timed, 150, 'timeout 150 ms');
    pending[0][1]('late');
    const p = caller.session.call(proc, ['next']);
    await waitUntil(() => pending.length === 2, 2000, 'second INVOCATION');
    assert.deepEqual(pending[1][0], ['next']);
    pending[1][1]('second');
    assert.equal(await p, 'second');
    assert.ok(!callee.rx.some((m) => m[0] === MSG.INTERRUPT), 'INTERRUPT to a callee without call_canceling');
  });

  test('an answer before the timeout is a result; nothing happens at the deadline', async (ctx) => {
    const callee = await ctx.connect({ serializer: 'cbor', cancelCapable: true });
    const caller = await ctx.connect({ transport: 'rawsocket' });
    const proc = ctx.uri('quick');
    await callee.session.register(proc, async (args) => {
      await sleep(50);
      return args[0] * 2;
    });
    assert.equal(await caller.session.call(proc, [21], {}, { timeout: 400 }), 42);
    await sleep(450);
    assert.deepEqual(callee.interrupts, []);
    assert.equal(await caller.session.call(proc, [1], {}, { timeout: 400 }), 2);
  });

  test('timeout 0 means no timeout', async (ctx) => {
    const callee = await ctx.connect({ cancelCapable: true });
    const caller = await ctx.connect({ serializer: 'msgpack' });
    const proc = ctx.uri('zero');
    const pending = [];
    await callee.session.register(proc, () => new Promise((resolve) => pending.push(resolve)));
    const p = caller.session.call(proc, [], {}, { timeout: 0 });
    let settled = false;
    p.then(() => (settled = true), () => (settled = true));
    await waitUntil(() => pending.length === 1, 2000, 'INVOCATION');
    await sleep(300);
    assert.equal(settled, false);
    pending[0]('done');
    assert.equal(await p, 'done');
    assert.deepEqual(callee.interrupts, []);
  });

  test('CANCEL before the deadline: one ERROR (canceled), none at the deadline', async (ctx) => {
    const callee = await ctx.connect({ transport: 'rawsocket', cancelCapable: true });
    const caller = await ctx.connect({ serializer: 'cbor' });
    const proc = ctx.uri('cancel');
    const pending = [];
    await callee.session.register(proc, () => new Promise((resolve) => pending.push(resolve)));
    await callee.session.register(ctx.uri('probe'), () => 'alive');
    const p = caller.session.call(proc, [], {}, { timeout: 200 });
    await waitUntil(() => pending.length === 1, 2000, 'INVOCATION');
    const req = caller.lastTx(MSG.CALL)[1];
    caller.sendRaw([MSG.CANCEL, req, { mode: 'killnowait' }]);
    assert.equal((await errorOf(p)).error, 'wamp.error.canceled');
    await sleep(300);
    assert.deepEqual(caller.rx.filter((m) => m[0] === MSG.ERROR).map((m) => [m[2], m[4]]), [[req, 'wamp.error.canceled']]);
    assert.equal(callee.interrupts.length, 1);
    assert.equal(await caller.session.call(ctx.uri('probe')), 'alive');
  });

  test('realm max_call_timeout_ms caps calls asking for more or for none (own router)', async (ctx) => {
    await withRouter(ctx, CAP_CONFIG, async (connect) => {
      const callee = await connect({ transport: 'rawsocket', cancelCapable: true });
      const caller = await connect({ serializer: 'msgpack' });
      const proc = 'com.example.cap';
      await callee.session.register(proc, () => new Promise(() => {}));
      await callee.session.register('com.example.cap.quick', () => 'quick');
      assert.equal(await caller.session.call('com.example.cap.quick'), 'quick');
      const cases = [['none', undefined, 300], ['above', { timeout: 1000 }, 300], ['below', { timeout: 100 }, 100]];
      const results = await Promise.all(cases.map(([, options, expected]) => timedError(caller, proc, options, expected)));
      for (const [[name, , expected], timed] of cases.map((c, i) => [c, results[i]])) {
        assert.equal(timed.e.error, TIMEOUT, name);
        assertOnTime(timed, expected, name);
      }
      await waitUntil(() => callee.interrupts.length === 3, 2000, '3 INTERRUPTs');
      assert.deepEqual(callee.interrupts.map((m) => m[2]), [{ mode: 'killnowait' }, { mode: 'killnowait' }, { mode: 'killnowait' }]);
    });
  });
});
