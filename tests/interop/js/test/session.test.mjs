// Session establishment: HELLO/WELCOME over every transport/serializer autobahn-js can
// do in Node, unknown realms, GOODBYE, subprotocol negotiation.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  routerSuite, VARIANTS, BROKER_FEATURES, DEALER_FEATURES, MSG, expectOpenFailure, show, within, rawSocketHandshake,
} from './helpers.mjs';

const require = createRequire(import.meta.url);

function assertSessionId(id, what) {
  assert.ok(Number.isSafeInteger(id) && id >= 1 && id <= 2 ** 53, `${what}: ${show(id)} is not a WAMP id in [1, 2^53]`);
}

routerSuite('session establishment (default config)', (test) => {
  for (const variant of VARIANTS) {
    test(`${variant.name}: join realm1, WELCOME details`, async (ctx) => {
      const c = await ctx.connect({ variant });
      assertSessionId(c.id, 'WELCOME session id');
      const welcome = c.rx.find((m) => m[0] === MSG.WELCOME);
      assert.ok(welcome, 'WELCOME received');
      assert.equal(welcome.length, 3, `WELCOME is [2, Session|id, Details|dict], got ${show(welcome)}`);
      assert.equal(welcome[1], c.id);
      const d = welcome[2];
      assert.equal(d.authrole, 'anonymous');
      assert.equal(d.authmethod, 'anonymous');
      assert.equal(typeof d.authid, 'string');
      assert.ok(d.authid.length > 0);
      assert.deepEqual(Object.keys(d.roles).sort(), ['broker', 'dealer']);
      for (const role of ['broker', 'dealer']) {
        const f = d.roles[role].features || {};
        for (const [k, val] of Object.entries(f)) {
          assert.equal(val, true, `roles.${role}.features.${k} must be true when announced, got ${show(val)}`);
        }
      }
      if (variant.transport === 'websocket') {
        assert.equal(c.welcome.transport.protocol, `wamp.2.${variant.serializer}`);
      }
      // the session is usable: a publish with acknowledge round-trips
      const pub = await c.session.publish(ctx.uri('ping'), [1], {}, { acknowledge: true });
      assertSessionId(pub.id, 'PUBLISHED publication id');
    });
  }

  test('WELCOME announces the advanced features of the router contract', async (ctx) => {
    const c = await ctx.connect();
    const d = c.welcome;
    const broker = Object.keys(d.roles.broker.features || {}).filter((k) => d.roles.broker.features[k] === true).sort();
    const dealer = Object.keys(d.roles.dealer.features || {}).filter((k) => d.roles.dealer.features[k] === true).sort();
    ctx.t.diagnostic(`broker features: ${broker.join(', ')}`);
    ctx.t.diagnostic(`dealer features: ${dealer.join(', ')}`);
    assert.deepEqual(broker, [...BROKER_FEATURES].sort());
    assert.deepEqual(dealer, [...DEALER_FEATURES].sort());
  });

  for (const variant of VARIANTS) {
    test(`${variant.name}: unknown realm is refused with wamp.error.no_such_realm`, async (ctx) => {
      const r = await expectOpenFailure(ctx.router, { variant, realm: 'no.such.realm' });
      ctx.clients.push(r.client);
      assert.equal(r.details.reason, 'wamp.error.no_such_realm');
      const abort = r.client.rx.find((m) => m[0] === MSG.ABORT);
      assert.ok(abort, `expected ABORT, received ${show(r.client.rx)}`);
      assert.equal(abort[2], 'wamp.error.no_such_realm');
      assert.equal(typeof abort[1], 'object');
      assert.equal(r.client.rx.length, 1, `only ABORT expected, got ${show(r.client.rx)}`);
    });
  }

  for (const variant of VARIANTS) {
    test(`${variant.name}: GOODBYE is answered with wamp.close.goodbye_and_out`, async (ctx) => {
      const c = await ctx.connect({ variant });
      const info = await c.close(3000);
      const bye = c.rx.find((m) => m[0] === MSG.GOODBYE);
      assert.ok(bye, `expected GOODBYE reply, received ${show(c.rx.slice(-3))}`);
      assert.equal(bye[2], 'wamp.close.goodbye_and_out');
      assert.equal(info.details.reason, 'wamp.close.goodbye_and_out');
    });
  }

  test('two sessions get distinct session ids', async (ctx) => {
    const [a, b] = await Promise.all([ctx.connect(), ctx.connect({ serializer: 'msgpack' })]);
    assert.notEqual(a.id, b.id);
  });

  test('RawSocket handshake: serializers 1/2/3 accepted with the 16 MiB default limit, others refused', async (ctx) => {
    // autobahn-js only speaks json over RawSocket; the other ids are checked on the raw handshake.
    // byte 1 = (length exponent - 9) << 4 | serializer id; 0xf_ = 2^24 = the 16 MiB default
    assert.deepEqual(await rawSocketHandshake(ctx.router, 0xf1), [0x7f, 0xf1, 0, 0], 'json');
    assert.deepEqual(await rawSocketHandshake(ctx.router, 0xf2), [0x7f, 0xf2, 0, 0], 'msgpack');
    assert.deepEqual(await rawSocketHandshake(ctx.router, 0xf3), [0x7f, 0xf3, 0, 0], 'cbor');
    // unknown serializer 5: error reply, error code 1 (serializer unsupported) in the high nibble
    assert.deepEqual(await rawSocketHandshake(ctx.router, 0xf5), [0x7f, 0x10, 0, 0], 'unsupported serializer');
  });

  test('WebSocket: the router picks a WAMP subprotocol the client offered', async (ctx) => {
    const WebSocket = require('ws');
    const ws = new WebSocket(ctx.router.ws, ['wamp.2.bogus', 'wamp.2.msgpack']);
    try {
      await within(new Promise((resolve, reject) => {
        ws.on('open', resolve);
        ws.on('error', reject);
      }), 3000, 'WebSocket open');
      assert.equal(ws.protocol, 'wamp.2.msgpack');
    } finally {
      ws.terminate();
    }
  });
});
