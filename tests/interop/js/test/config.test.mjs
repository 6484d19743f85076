// Behaviour driven by the contract's configuration file: message size limit
// (max_message_size = 65536) and the user role's Crossbar-style `disclose` rules.

import assert from 'node:assert/strict';
import { routerSuite, AUTH_CONFIG, MSG, show, within, requireFeature, rawSocketHandshake } from './helpers.mjs';

const ALICE = { authid: 'alice', ticket: 'alice-secret' };

routerSuite('configuration (--config)', { config: AUTH_CONFIG }, (test) => {
  test('RawSocket handshake announces the 64 KiB limit (length exponent 16) for json', async (ctx) => {
    // client: json (1), max length 2^24
    assert.deepEqual(await rawSocketHandshake(ctx.router, 0xf1), [0x7f, 0x71, 0x00, 0x00]);
  });

  test('a message under max_message_size passes, one over it ends the session with wamp.error.protocol_violation', async (ctx) => {
    const pub = await ctx.connect({ label: 'pub' });
    const sub = await ctx.connect({ label: 'sub', serializer: 'msgpack' });
    const got = [];
    await sub.session.subscribe(ctx.uri('big'), (args) => got.push(args[0].length));
    await pub.session.publish(ctx.uri('big'), ['x'.repeat(60000)], {}, { acknowledge: true });
    // ~100 KB JSON message: over the limit
    pub.session.publish(ctx.uri('big'), ['y'.repeat(100000)], {}, { acknowledge: true });
    const closed = await within(pub.closed, 3000, 'connection closed after an oversized message');
    const abort = pub.rx.find((m) => m[0] === MSG.ABORT);
    ctx.t.diagnostic(`oversized message: router sent ${show(abort)}; transport close ${show(pub.transportClose())}; autobahn: ${closed.reason}`);
    assert.ok(abort, `expected ABORT, received ${show(pub.rx.slice(-3))}`);
    assert.equal(abort[2], 'wamp.error.protocol_violation');
    // autobahn-js does not expect ABORT once a session is open: it calls that a protocol
    // violation of its own and closes. That is the client's limitation, not the router's.
    assert.deepEqual(pub.violations, ['unexpected message type 3']);
    pub.violations.length = 0;
    assert.deepEqual(got, [60000]);
    assert.ok(sub.isOpen(), 'other sessions are not affected');
  });

  test('caller identification: the user role\'s disclose.caller discloses alice without disclose_me', async (ctx) => {
    const proc = ctx.uri('who');
    const callee = await ctx.connect({ label: 'callee' });
    requireFeature(ctx, callee, 'dealer', 'caller_identification');
    const alice = await ctx.connect({ label: 'alice', ...ALICE, serializer: 'cbor' });
    const anon = await ctx.connect({ label: 'anon', transport: 'rawsocket' });
    await callee.session.register(proc, (args, kwargs, details) =>
      [details.caller === undefined ? null : details.caller, details.caller_authid || null, details.caller_authrole || null]);
    const byRole = await alice.session.call(proc);
    assert.deepEqual(byRole, [alice.id, 'alice', 'user']);
    assert.deepEqual(await anon.session.call(proc), [null, null, null]);
    const disclosed = await anon.session.call(proc, [], {}, { disclose_me: true });
    assert.equal(disclosed[0], anon.id);
  });
});
