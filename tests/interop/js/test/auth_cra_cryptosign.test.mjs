// WAMP-CRA and WAMP-Cryptosign with autobahn-js's own helpers (autobahn.auth_cra,
// autobahn.auth_cryptosign, and the tweetnacl it ships as autobahn.nacl).
//
// The router's principals: carol has a plain WAMP-CRA secret, erin a salted one (the
// realm file holds the key derived from her password, computed here with Node's own
// PBKDF2, while the client derives it with autobahn's crypto-js), dave a Cryptosign
// key. On the workbench realm, graph users log in with keys stored in `user_keys`.

import assert from 'node:assert/strict';
import { pbkdf2Sync } from 'node:crypto';
import { autobahn, routerSuite, VARIANTS, MSG, expectOpenFailure } from './helpers.mjs';
import { workbenchSuite } from './workbench.mjs';

const AUTH_FAILED = 'wamp.error.authentication_failed';
const nacl = autobahn.nacl;
const fromHex = (h) => Uint8Array.from(Buffer.from(h, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');

// The spec's Cryptosign test-vector private keys: dave's, a stranger's, and alice's in the graph.
const DAVE = nacl.sign.keyPair.fromSeed(fromHex('4d57d97a68f555696620a6d849c0ce582568518d729eb753dc7c732de2804510'));
const OTHER = nacl.sign.keyPair.fromSeed(fromHex('d511fe78e23934b3dadb52fcd022974b80bd92bccc7c5cf404e46cc0a8a2f5cd'));
const ALICE = nacl.sign.keyPair.fromSeed(fromHex('6e1fde9cf9e2359a87420b65a87dc0c66136e66945196ba2475990d8a0c3a25b'));
const BOB = nacl.sign.keyPair.fromSeed(new Uint8Array(32).fill(0xaa));

const ERIN = { password: 'erin-password', salt: 'erin-salt', iterations: 1000, keylen: 32 };
const ERIN_KEY = pbkdf2Sync(ERIN.password, ERIN.salt, ERIN.iterations, ERIN.keylen, 'sha256').toString('base64');

const CONFIG = `
[transport]
listen = "127.0.0.1:0"
rawsocket = "127.0.0.1:0"

[limits]
auth_failures_per_minute = 1000

[[realms]]
name = "realm1"
roles = [{ name = "user" }, { name = "reader" }]

[[realms.principals]]
authid = "carol"
role = "user"
secret = "carol-secret"

[[realms.principals]]
authid = "erin"
role = "reader"
secret = "${ERIN_KEY}"
salt = "${ERIN.salt}"
iterations = ${ERIN.iterations}
keylen = ${ERIN.keylen}

[[realms.principals]]
authid = "dave"
role = "user"
cryptosign = ["${autobahn.auth_cryptosign.public_key(DAVE)}"]
`;

/** connect() options for WAMP-CRA: what an autobahn-js application's onchallenge does. */
function cra(authid, secret, opts = {}) {
  return {
    authid,
    authmethods: ['wampcra'],
    onchallenge: (session, method, extra) => {
      assert.equal(method, 'wampcra');
      const key = extra.salt ? autobahn.auth_cra.derive_key(secret, extra.salt, extra.iterations, extra.keylen) : secret;
      return autobahn.auth_cra.sign(key, extra.challenge);
    },
    ...opts,
  };
}

/** connect() options for Cryptosign with `pair`; `announce` overrides the key in HELLO. */
function cryptosign(pair, opts = {}) {
  const { announce, ...rest } = opts;
  return {
    authmethods: ['cryptosign'],
    authextra: { pubkey: announce || autobahn.auth_cryptosign.public_key(pair), channel_binding: null },
    onchallenge: (session, method, extra) => autobahn.auth_cryptosign.sign_challenge(pair, extra),
    ...rest,
  };
}

const who = (c) => [c.welcome.authid, c.welcome.authrole, c.welcome.authmethod, c.welcome.authprovider];

async function refused(ctx, opts) {
  const r = await expectOpenFailure(ctx.router, opts);
  ctx.clients.push(r.client);
  const abort = r.client.rx.find((m) => m[0] === MSG.ABORT);
  assert.ok(abort, 'ABORT received');
  assert.ok(!r.client.rx.some((m) => m[0] === MSG.WELCOME));
  return { reason: abort[2], message: abort[1].message, challenge: r.client.challenge };
}

routerSuite('WAMP-CRA and WAMP-Cryptosign (autobahn-js)', { config: CONFIG }, (test) => {
  for (const variant of VARIANTS) {
    test(`${variant.name}: wampcra welcomes carol; the challenge is the spec's JSON`, async (ctx) => {
      const c = await ctx.connect(cra('carol', 'carol-secret', { variant }));
      assert.deepEqual(who(c), ['carol', 'user', 'wampcra', 'static']);
      const fields = JSON.parse(c.challenge.extra.challenge);
      assert.deepEqual(Object.keys(fields).sort(), ['authid', 'authmethod', 'authprovider', 'authrole', 'nonce', 'session', 'timestamp']);
      assert.deepEqual([fields.authid, fields.authrole, fields.authmethod, fields.authprovider], ['carol', 'user', 'wampcra', 'static']);
      assert.equal(fields.session, c.id);
    });
  }

  test('salted wampcra welcomes erin (autobahn derives the key from the challenge)', async (ctx) => {
    const c = await ctx.connect(cra('erin', ERIN.password));
    assert.deepEqual(who(c), ['erin', 'reader', 'wampcra', 'static']);
    const { salt, iterations, keylen } = c.challenge.extra;
    assert.deepEqual({ salt, iterations, keylen }, { salt: ERIN.salt, iterations: ERIN.iterations, keylen: ERIN.keylen });
  });

  test('wampcra with a wrong secret or password is refused', async (ctx) => {
    for (const [authid, secret] of [['carol', 'carol-secreT'], ['erin', 'not-erins-password']]) {
      const r = await refused(ctx, cra(authid, secret));
      assert.deepEqual([r.reason, r.message], [AUTH_FAILED, 'invalid wampcra signature']);
      assert.equal(r.challenge.method, 'wampcra');
    }
  });

  test('wampcra for an unknown authid is challenged, then refused like a wrong secret', async (ctx) => {
    const r = await refused(ctx, cra('mallory', 'anything'));
    assert.deepEqual([r.reason, r.message], [AUTH_FAILED, 'invalid wampcra signature']);
    const fields = JSON.parse(r.challenge.extra.challenge);
    assert.equal(fields.authid, 'mallory');
    assert.ok(['user', 'reader'].includes(fields.authrole), fields.authrole);
  });

  for (const variant of VARIANTS) {
    test(`${variant.name}: cryptosign welcomes dave by his key alone`, async (ctx) => {
      const c = await ctx.connect(cryptosign(DAVE, { variant }));
      assert.deepEqual(who(c), ['dave', 'user', 'cryptosign', 'static']);
      assert.equal(c.challenge.extra.challenge.length, 64);
      assert.equal(c.challenge.extra.channel_binding, null);
      const auth = c.tx.find((m) => m[0] === MSG.AUTHENTICATE);
      assert.equal(auth[1].length, 192, 'signature and challenge, hex');
    });
  }

  test('cryptosign with the authid, and with the signature alone', async (ctx) => {
    const c = await ctx.connect(cryptosign(DAVE, { authid: 'dave' }));
    assert.deepEqual(who(c), ['dave', 'user', 'cryptosign', 'static']);
    const alone = (session, method, extra) => toHex(nacl.sign.detached(fromHex(extra.challenge), DAVE.secretKey));
    const d = await ctx.connect(cryptosign(DAVE, { onchallenge: alone }));
    assert.equal(d.welcome.authid, 'dave');
  });

  test('cryptosign refusals: unknown key, wrong signature, malformed signature', async (ctx) => {
    const cases = [
      [cryptosign(OTHER), 'unknown cryptosign key'],
      [cryptosign(OTHER, { announce: autobahn.auth_cryptosign.public_key(DAVE) }), 'invalid cryptosign signature'],
      [cryptosign(DAVE, { onchallenge: () => 'cafe' }),
        'the cryptosign signature must be hex of 64 bytes (signature) or 96 bytes (signature and challenge)'],
    ];
    for (const [opts, text] of cases) {
      const r = await refused(ctx, opts);
      assert.deepEqual([r.reason, r.message], [AUTH_FAILED, text]);
      assert.equal(r.challenge.method, 'cryptosign');
    }
  });

  test('a HELLO asking for TLS channel binding is refused before any challenge', async (ctx) => {
    const opts = cryptosign(DAVE);
    opts.authextra.channel_binding = 'tls-unique';
    const r = await refused(ctx, opts);
    assert.equal(r.reason, AUTH_FAILED);
    assert.match(r.message, /channel binding \(tls-unique\) is not supported/);
    assert.equal(r.challenge, undefined);
  });
});

workbenchSuite('Cryptosign keys of graph users (autobahn-js)', { timeout: 10000 }, (test) => {
  test('a stored key logs its user in; a disabled user\'s key does not', async (ctx, wb) => {
    const hex = (pair) => autobahn.auth_cryptosign.public_key(pair);
    await wb.sql(`insert into user_keys (pubkey, user_id) values ('${hex(ALICE)}', 'alice'), ('${hex(BOB)}', 'bob');
                  update principals set disabled = true where id = 'bob'`);
    const alice = await ctx.connect(cryptosign(ALICE, { realm: 'workbench' }));
    assert.deepEqual(who(alice), ['alice', 'user', 'cryptosign', 'graph']);
    const bob = await refused(ctx, cryptosign(BOB, { realm: 'workbench' }));
    assert.deepEqual([bob.reason, bob.message], [AUTH_FAILED, 'cryptosign key of disabled user "bob"']);
    const stranger = await refused(ctx, cryptosign(OTHER, { realm: 'workbench' }));
    assert.deepEqual([stranger.reason, stranger.message], [AUTH_FAILED, 'unknown cryptosign key']);
  });
});
