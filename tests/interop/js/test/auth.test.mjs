// WAMP-Ticket authentication against the router contract's configuration
// (principal alice / ticket alice-secret / role user; anonymous allowed).

import assert from 'node:assert/strict';
import { routerSuite, AUTH_CONFIG, VARIANTS, MSG, expectOpenFailure, show } from './helpers.mjs';

routerSuite('ticket authentication (--config)', { config: AUTH_CONFIG }, (test) => {
  for (const variant of VARIANTS) {
    test(`${variant.name}: alice with the right ticket is welcomed as user`, async (ctx) => {
      const c = await ctx.connect({ variant, authid: 'alice', ticket: 'alice-secret' });
      const challenge = c.rx.find((m) => m[0] === MSG.CHALLENGE);
      assert.ok(challenge, 'CHALLENGE received');
      assert.equal(challenge[1], 'ticket');
      assert.equal(typeof challenge[2], 'object');
      const hello = c.tx.find((m) => m[0] === MSG.HELLO);
      assert.deepEqual(hello[2].authmethods, ['ticket']);
      const auth = c.tx.find((m) => m[0] === MSG.AUTHENTICATE);
      assert.equal(auth[1], 'alice-secret');
      assert.equal(c.welcome.authid, 'alice');
      assert.equal(c.welcome.authrole, 'user');
      assert.equal(c.welcome.authmethod, 'ticket');
    });
  }

  for (const variant of VARIANTS) {
    test(`${variant.name}: wrong ticket is refused with wamp.error.authentication_failed`, async (ctx) => {
      const r = await expectOpenFailure(ctx.router, { variant, authid: 'alice', ticket: 'wrong-secret' });
      ctx.clients.push(r.client);
      assert.equal(r.details.reason, 'wamp.error.authentication_failed');
      const abort = r.client.rx.find((m) => m[0] === MSG.ABORT);
      assert.ok(abort, `expected ABORT, got ${show(r.client.rx)}`);
      assert.equal(abort[2], 'wamp.error.authentication_failed');
      assert.ok(!r.client.rx.some((m) => m[0] === MSG.WELCOME));
    });
  }

  test('unknown authid with a ticket is refused with wamp.error.authentication_failed', async (ctx) => {
    const r = await expectOpenFailure(ctx.router, { authid: 'mallory', ticket: 'alice-secret' });
    ctx.clients.push(r.client);
    assert.equal(r.details.reason, 'wamp.error.authentication_failed');
  });

  test('anonymous session on the configured realm gets authrole anonymous', async (ctx) => {
    const c = await ctx.connect({ serializer: 'cbor' });
    assert.equal(c.welcome.authrole, 'anonymous');
    assert.ok(!c.rx.some((m) => m[0] === MSG.CHALLENGE));
  });

  test('unknown realm on the configured router: wamp.error.no_such_realm', async (ctx) => {
    const r = await expectOpenFailure(ctx.router, { realm: 'realm2', authid: 'alice', ticket: 'alice-secret' });
    ctx.clients.push(r.client);
    assert.equal(r.details.reason, 'wamp.error.no_such_realm');
  });
});
