// A realm's [limits] seen by autobahn-js: publications and calls over a session's token
// bucket are refused with wamp.error.rate_limited exactly at the burst (after a refusal
// the router reads nothing more from the session until its next token, so refusals and
// admissions then alternate), and sessions beyond the realm's or one authid's limit are
// refused with ABORT wamp.error.limit_reached.

import assert from 'node:assert/strict';
import { routerSuite, expectOpenFailure } from './helpers.mjs';

const CONFIG = `
[[realms]]
name = "realm1"
anonymous = "anonymous"
[[realms.roles]]
name = "anonymous"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
[[realms.principals]]
authid = "svc"
ticket = "svc-secret"
role = "anonymous"
[realms.limits]
max_sessions = 4
max_sessions_per_authid = 2
publications_per_second = 5
publication_burst = 5
calls_per_second = 5
call_burst = 3
`;

/** 'ok' or the error URI of each promise, in order. */
async function outcomes(promises) {
  const settled = await Promise.allSettled(promises);
  return settled.map((s) => (s.status === 'fulfilled' ? 'ok' : s.reason.error || String(s.reason)));
}

const LIMITED = 'wamp.error.rate_limited';

routerSuite('realm limits (--config)', { config: CONFIG }, (test) => {
  for (const serializer of ['json', 'msgpack', 'cbor']) {
    test(`${serializer}: acknowledged publications stop at the burst of 5, then go at 5/s`, async (ctx) => {
      const c = await ctx.connect({ serializer });
      const topic = ctx.uri('quota');
      const got = await outcomes([...Array(9).keys()].map((i) => c.session.publish(topic, [i], {}, { acknowledge: true })));
      assert.deepEqual(got, ['ok', 'ok', 'ok', 'ok', 'ok', LIMITED, 'ok', LIMITED, 'ok']);
      await c.close();
    });
  }

  test('calls stop at their own burst of 3; the callee keeps its own bucket', async (ctx) => {
    const callee = await ctx.connect({ transport: 'rawsocket' });
    const caller = await ctx.connect({ serializer: 'msgpack' });
    const proc = ctx.uri('echo');
    await callee.session.register(proc, (args) => args[0]);
    const got = await outcomes([...Array(5).keys()].map((i) => caller.session.call(proc, [i])));
    assert.deepEqual(got, ['ok', 'ok', 'ok', LIMITED, 'ok']);
    assert.equal(await callee.session.call(proc, ['mine']), 'mine');
    await caller.close();
    await callee.close();
  });

  test('sessions stop at 2 per authid and 4 in the realm', async (ctx) => {
    const svc = [];
    for (let i = 0; i < 2; i++) svc.push(await ctx.connect({ authid: 'svc', ticket: 'svc-secret' }));
    const third = await expectOpenFailure(ctx.router, { authid: 'svc', ticket: 'svc-secret' });
    ctx.clients.push(third.client);
    assert.equal(third.details.reason, 'wamp.error.limit_reached');
    assert.equal(third.details.message, "'svc' may hold at most 2 sessions in realm 'realm1'");
    for (let i = 0; i < 2; i++) await ctx.connect({ serializer: 'cbor' });
    const fifth = await expectOpenFailure(ctx.router, {});
    ctx.clients.push(fifth.client);
    assert.equal(fifth.details.reason, 'wamp.error.limit_reached');
    assert.equal(fifth.details.message, "realm 'realm1' holds at most 4 sessions");
  });
});
