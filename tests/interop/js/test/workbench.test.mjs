// The workbench realm with autobahn-js: users log in with API tokens, and what the
// permission graph in PostgreSQL withdraws ends while the sessions are live.
//
// Every test starts from the LAB graph (workbench.mjs): alice and bob read containers c1
// and c2 through role `lab`, c3 is carol's, carol is an admin. Events come from the
// static principal controller-1 (role controller); dispatcher-1 has role dispatcher.
// Graph changes are committed with psql, as the platform would, and a test that needs
// the router to have applied one waits for /metrics to show its seq.
//
// autobahn-js 22.11 announces subscription_revocation and registration_revocation and
// implements both (lib/session.js, _process_UNSUBSCRIBED / _process_UNREGISTERED, the
// `request === 0` branch): the subscription (registration) is marked inactive, its
// on_unsubscribe (on_unregister) promise resolves with the reason, it leaves
// session.subscriptions (session.registrations), and the session stays open.
//
// A subscriber's sentinel: alice may always read records.alice.changes (a user has
// manage on itself). Events of one publisher reach a subscriber in publication order,
// across topics, so once alice has the sentinel the controller published last, she has
// everything before it she will ever get.

import assert from 'node:assert/strict';
import { Inbox, MSG, VARIANTS, expectOpenFailure, sleep, within } from './helpers.mjs';
import { CHANGES_MAX, tokenSha256, workbenchSuite } from './workbench.mjs';

const NOT_AUTHORIZED = 'wamp.error.not_authorized';
const AUTH_FAILED = 'wamp.error.authentication_failed';
const ACK = { acknowledge: true };

/** Deletes alice's membership of `lab`; resolves with the change's seq. */
async function revokeAliceFromLab(wb) {
  return Number(await wb.sql(`delete from grants where tail_id = 'alice' and head_id = 'lab'; ${CHANGES_MAX}`));
}

/** alice's sentinel topic: subscribes it, and returns a function that publishes a
 *  sentinel from `publisher` and waits for alice to get it. */
async function sentinel(alice, publisher) {
  const inbox = new Inbox('alice sentinel');
  await alice.session.subscribe('records.alice.changes', inbox.handler);
  let n = 0;
  return async () => {
    n += 1;
    await publisher.session.publish('records.alice.changes', [`sentinel ${n}`], {}, ACK);
    await inbox.waitFor(n);
    assert.deepEqual(inbox.args()[n - 1], [`sentinel ${n}`]);
  };
}

workbenchSuite('workbench realm: tokens and live revocation (autobahn-js)', { timeout: 10000 }, (test) => {
  for (const variant of VARIANTS) {
    test(`${variant.name}: a token logs in its user (authid, authrole user/admin, authprovider graph)`, async (ctx, wb) => {
      const alice = await ctx.connect(wb.user(await wb.token('alice'), { variant }));
      assert.deepEqual(
        [alice.welcome.authid, alice.welcome.authrole, alice.welcome.authmethod, alice.welcome.authprovider],
        ['alice', 'user', 'ticket', 'graph']);
      const hello = alice.tx.find((m) => m[0] === MSG.HELLO);
      assert.equal(hello[2].authid, undefined);
      assert.deepEqual(hello[2].authmethods, ['ticket']);
      assert.equal(alice.challenge.method, 'ticket');
      // the authid may be given too, when it is the token's user
      const again = await ctx.connect(wb.user(await wb.token('alice'), { variant, authid: 'alice' }));
      assert.equal(again.welcome.authid, 'alice');
      const carol = await ctx.connect(wb.user(await wb.token('carol'), { variant }));
      assert.deepEqual(
        [carol.welcome.authid, carol.welcome.authrole, carol.welcome.authmethod, carol.welcome.authprovider],
        ['carol', 'admin', 'ticket', 'graph']);
    });
  }

  test('a wrong, expired, revoked, disabled or foreign token is refused, saying which', async (ctx, wb) => {
    const expired = await wb.token('alice', '24h');
    await wb.sql(`update tokens set expires_at = now() - interval '1 minute' where token_sha256 = '${tokenSha256(expired)}'`);
    const revoked = await wb.token('alice');
    assert.equal(await wb.revokeToken(revoked), 'revoked a token of alice');
    const disabled = await wb.token('bob');
    await wb.sql("update principals set disabled = true where id = 'bob'");
    const good = await wb.token('alice');
    const cases = [
      ['sy_nonsense', undefined, 'unknown token'],
      [expired, undefined, 'token expired'],
      [revoked, undefined, 'token revoked'],
      [disabled, undefined, 'token of disabled user "bob"'],
      [good, 'bob', "the token does not belong to 'bob'"],
    ];
    for (const [token, authid, message] of cases) {
      const r = await expectOpenFailure(ctx.router, wb.user(token, { authid }));
      ctx.clients.push(r.client);
      assert.deepEqual([r.details.reason, r.details.message], [AUTH_FAILED, message]);
      const abort = r.client.rx.find((m) => m[0] === MSG.ABORT);
      assert.deepEqual(abort, [MSG.ABORT, { message }, AUTH_FAILED]);
    }
    const alice = await ctx.connect(wb.user(good, { authid: 'alice' }));
    assert.equal(alice.welcome.authid, 'alice');
  });

  test('a revoked token or a disabled user closes their sessions with wamp.close.revoked', async (ctx, wb) => {
    const [t1, t2] = [await wb.token('alice'), await wb.token('alice')];
    const a1 = await ctx.connect(wb.user(t1));
    const a2 = await ctx.connect(wb.user(t2, { transport: 'rawsocket' }));
    const bob = await ctx.connect(wb.user(await wb.token('bob'), { serializer: 'cbor' }));
    const closedBefore = await wb.metric('switchyard_sessions_closed_by_router_total');

    assert.equal(await wb.revokeToken(t1), 'revoked a token of alice');
    const c1 = await within(a1.closed, 3000, 'a1 closed');
    assert.deepEqual([c1.details.reason, c1.details.message], ['wamp.close.revoked', 'the token was revoked']);
    assert.deepEqual(a1.rx.at(-1), [MSG.GOODBYE, { message: 'the token was revoked' }, 'wamp.close.revoked']);
    assert.deepEqual(a1.tx.at(-1), [MSG.GOODBYE, {}, 'wamp.error.goodbye_and_out']);
    // autobahn-js answers GOODBYE and closes the WebSocket with a Close frame without a
    // status code; the router echoes it (an empty Close), and autobahn-js under Node
    // counts only code 1000 as clean: it reports the end of a session the router closed
    // with GOODBYE as "lost" (the same for wamp.close.system_shutdown).
    assert.equal(c1.reason, 'lost');
    assert.deepEqual(a1.transportClose(), { code: 1005, reason: '', wasClean: false });
    await wb.settle();
    assert.ok(a2.isOpen() && bob.isOpen());

    await wb.sql("update principals set disabled = true where id = 'alice'");
    const c2 = await within(a2.closed, 3000, 'a2 closed');
    assert.deepEqual([c2.reason, c2.details.reason, c2.details.message], ['closed', 'wamp.close.revoked', 'the user was disabled or removed']);
    assert.deepEqual(a2.rx.at(-1), [MSG.GOODBYE, { message: 'the user was disabled or removed' }, 'wamp.close.revoked']);
    await wb.settle();
    assert.ok(bob.isOpen());
    assert.equal(await wb.metric('switchyard_sessions_closed_by_router_total'), closedBefore + 2);
    const r = await expectOpenFailure(ctx.router, wb.user(t1));
    ctx.clients.push(r.client);
    assert.deepEqual([r.details.reason, r.details.message], [AUTH_FAILED, 'token revoked']);
  });

  for (const variant of [VARIANTS[0], VARIANTS[3]]) {
    test(`${variant.name}: removed from the role while tailing a log, alice is told and gets nothing more; bob goes on`, async (ctx, wb) => {
      const controller = await ctx.connect(wb.service('controller-1'));
      const alice = await ctx.connect(wb.user(await wb.token('alice'), { variant }));
      const bob = await ctx.connect(wb.user(await wb.token('bob'), { serializer: 'msgpack' }));
      const aIn = new Inbox('alice');
      const bIn = new Inbox('bob');
      const a = await alice.session.subscribe('containers.c1.logs', aIn.handler);
      await bob.session.subscribe('containers.c1.logs', bIn.handler);
      const settled = await sentinel(alice, controller);

      await controller.session.publish('containers.c1.logs', ['line 1'], {}, ACK);
      await aIn.waitFor(1);
      await bIn.waitFor(1);

      const seq = await revokeAliceFromLab(wb);
      assert.equal(await within(a.on_unsubscribe, 3000, 'on_unsubscribe'), NOT_AUTHORIZED);
      assert.deepEqual(alice.rx.filter((m) => m[0] === MSG.UNSUBSCRIBED),
        [[MSG.UNSUBSCRIBED, 0, { subscription: a.id, reason: NOT_AUTHORIZED }]]);
      assert.equal(a.active, false);
      assert.deepEqual(alice.session.subscriptions.map((subs) => subs.map((s) => s.topic)), [['records.alice.changes']]);
      // autobahn-js sent nothing back, and the session stays open
      assert.ok(!alice.tx.some((m) => m[0] === MSG.UNSUBSCRIBE));
      assert.ok(alice.isOpen());
      await wb.settle(seq);

      await controller.session.publish('containers.c1.logs', ['line 2'], {}, ACK);
      await bIn.waitFor(2);
      await settled();
      assert.deepEqual(bIn.args(), [['line 1'], ['line 2']]);
      assert.deepEqual(aIn.args(), [['line 1']]);
      // subscribing again is refused now
      const e = await alice.session.subscribe('containers.c1.logs', aIn.handler).then(
        () => assert.fail('subscribe after the revocation succeeded'), (err) => err);
      assert.equal(e.error, NOT_AUTHORIZED);
      assert.ok(alice.isOpen());
    });
  }

  test('a prefix subscription to containers. gets only the readable containers', async (ctx, wb) => {
    const controller = await ctx.connect(wb.service('controller-1', { transport: 'rawsocket' }));
    const dispatcher = await ctx.connect(wb.service('dispatcher-1', { serializer: 'msgpack' }));
    const alice = await ctx.connect(wb.user(await wb.token('alice'), { serializer: 'cbor' }));
    const carol = await ctx.connect(wb.user(await wb.token('carol')));
    const [aIn, dIn, cIn] = [new Inbox('alice'), new Inbox('dispatcher'), new Inbox('carol')];
    await alice.session.subscribe('containers.', aIn.handler, { match: 'prefix' });
    await dispatcher.session.subscribe('containers..events', dIn.handler, { match: 'wildcard' });
    await carol.session.subscribe('containers.', cIn.handler, { match: 'prefix' });

    const published = [['containers.c1.events', 'queued'], ['containers.c3.events', 'secret'],
      ['containers.c2.logs', 'hello'], ['containers.c3.logs', 'hidden'], ['containers.c1.events', 'end']];
    for (const [topic, line] of published) await controller.session.publish(topic, [line], {}, ACK);
    // in publication order: once a subscriber has "end" (all three may read it), it has
    // everything it will get
    const got = (inbox) => inbox.items.map((i) => [i.details.topic, ...i.args]);
    const untilEnd = async (inbox) => {
      const deadline = Date.now() + 3000;
      while (!(inbox.items.length && inbox.items.at(-1).args[0] === 'end')) {
        if (Date.now() > deadline) assert.fail(`${inbox.label}: no "end" within 3 s: ${JSON.stringify(got(inbox))}`);
        await sleep(5);
      }
    };
    await Promise.all([untilEnd(aIn), untilEnd(dIn), untilEnd(cIn)]);
    assert.deepEqual(got(aIn), [['containers.c1.events', 'queued'], ['containers.c2.logs', 'hello'], ['containers.c1.events', 'end']]);
    // the dispatcher's role reads every container's events, and no logs
    assert.deepEqual(got(dIn), [['containers.c1.events', 'queued'], ['containers.c3.events', 'secret'], ['containers.c1.events', 'end']]);
    // carol is an admin: she reads everything
    assert.deepEqual(got(cIn), published);

    // c2 moves out of alice's reach: its events stop, the subscription stays
    await wb.sql("update objects set owner_id = 'carol' where id = 'c2'");
    await wb.settle();
    await controller.session.publish('containers.c2.logs', ['after'], {}, ACK);
    await controller.session.publish('containers.c1.logs', ['still'], {}, ACK);
    await aIn.waitFor(4);
    assert.deepEqual(got(aIn).slice(3), [['containers.c1.logs', 'still']]);
    assert.ok(!alice.rx.some((m) => m[0] === MSG.UNSUBSCRIBED));
    assert.equal(alice.session.subscriptions.length, 1);
  });

  test('a revoked registration: the call in flight gets wamp.error.canceled, the callee UNREGISTERED 0', async (ctx, wb) => {
    const alice = await ctx.connect(wb.user(await wb.token('alice')));
    const bob = await ctx.connect(wb.user(await wb.token('bob'), { transport: 'rawsocket' }));
    let invoked;
    const invocation = new Promise((resolve) => (invoked = resolve));
    const reg = await alice.session.register('containers.c1.inspect', () => {
      invoked();
      return new Promise(() => {}); // answers never
    });
    const call = bob.session.call('containers.c1.inspect', []).then(
      (r) => assert.fail(`the call returned ${JSON.stringify(r)}`), (err) => err);
    await within(invocation, 3000, 'INVOCATION');

    const seq = await revokeAliceFromLab(wb);
    const e = await within(call, 3000, 'the call fails');
    assert.deepEqual([e.error, e.args], ['wamp.error.canceled', ["the callee's permission for this procedure was withdrawn"]]);
    assert.equal(await within(reg.on_unregister, 3000, 'on_unregister'), NOT_AUTHORIZED);
    await wb.settle(seq);
    // autobahn-js did not announce call_canceling: no INTERRUPT, only the revocation
    const i = alice.rx.findIndex((m) => m[0] === MSG.INVOCATION);
    assert.deepEqual(alice.rx.slice(i + 1), [[MSG.UNREGISTERED, 0, { registration: reg.id, reason: NOT_AUTHORIZED }]]);
    assert.equal(reg.active, false);
    assert.deepEqual(alice.session.registrations, []);
    assert.ok(alice.isOpen());

    // nobody serves the procedure now; alice may not register it again
    const again = await bob.session.call('containers.c1.inspect', []).then(() => null, (err) => err);
    assert.equal(again && again.error, 'wamp.error.no_such_procedure');
    const rereg = await alice.session.register('containers.c1.inspect', () => 1).then(() => null, (err) => err);
    assert.equal(rereg && rereg.error, NOT_AUTHORIZED);
  });

  test('1,000 events/s while alice is revoked: nothing after the applied change reaches her; bob gets all in order', { timeout: 15000 }, async (ctx, wb) => {
    const RATE = 1000;
    const DURATION = 2000;
    const total = (RATE * DURATION) / 1000;
    const controller = await ctx.connect(wb.service('controller-1', { serializer: 'msgpack' }));
    const alice = await ctx.connect(wb.user(await wb.token('alice')));
    const bob = await ctx.connect(wb.user(await wb.token('bob'), { transport: 'rawsocket' }));
    const aIn = new Inbox('alice');
    const bIn = new Inbox('bob');
    const a = await alice.session.subscribe('containers.c1.logs', aIn.handler);
    await bob.session.subscribe('containers.c1.logs', bIn.handler);
    const settled = await sentinel(alice, controller);
    let published = 0;
    let marker = null;

    const publisher = async () => {
      const start = Date.now();
      while (published < total) {
        const due = Math.min(total, Math.floor(((Date.now() - start) * RATE) / 1000));
        while (published < due) {
          controller.session.publish('containers.c1.logs', [published]);
          published += 1;
        }
        await sleep(2);
      }
    };
    const revoker = async () => {
      await sleep(DURATION / 3);
      const seq = await revokeAliceFromLab(wb);
      await wb.settle(seq);
      // the first number published once the router has applied the change
      marker = published;
    };
    await Promise.all([publisher(), revoker()]);
    await bIn.waitFor(total, 5000);
    await settled();

    const bobGot = bIn.args().map((args) => args[0]);
    assert.deepEqual(bobGot, Array.from({ length: total }, (_, i) => i), 'bob missed, repeated or reordered events');
    const aliceGot = aIn.args().map((args) => args[0]);
    assert.ok(marker !== null && marker > 0 && marker < total, `marker ${marker}`);
    assert.deepEqual(aliceGot, Array.from({ length: aliceGot.length }, (_, i) => i), "alice's events before the change have gaps");
    assert.ok(aliceGot.length > 0 && aliceGot.length <= marker, `alice got ${aliceGot.length} events, marker ${marker}`);
    ctx.t.diagnostic(`alice got ${aliceGot.length} events; marker ${marker} of ${total}`);
    assert.equal(await a.on_unsubscribe, NOT_AUTHORIZED);
    assert.deepEqual(alice.rx.filter((m) => m[0] === MSG.UNSUBSCRIBED),
      [[MSG.UNSUBSCRIBED, 0, { subscription: a.id, reason: NOT_AUTHORIZED }]]);
    assert.ok(alice.isOpen());
  });
});
