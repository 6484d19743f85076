// TLS: autobahn-js over wss:// trusting only a CA made here with the openssl CLI
// (autobahn-js has no RawSocket over TLS; the Python and Rust suites cover that).
// Events and calls carry exact values over every WebSocket serializer, a client
// without the CA is refused, and /health answers over HTTPS.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { routerSuite, autobahn, within, expectReject } from './helpers.mjs';

const ARGS = [1, 'two', 3.5, true, null, [1, [2, -3]], { k: 'v' }, ''];
const KWARGS = { a: 1, nested: { c: [1, 2], d: { e: false } }, unicode: 'grüße €𝄞' };

const REALM = `
[[realms]]
name = "realm1"
anonymous = "anonymous"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }
`;

/** A CA and a server certificate for localhost and 127.0.0.1 signed by it, as PEM text. */
function makePki() {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-js-pki-'));
  const f = (n) => path.join(dir, n);
  const openssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  try {
    openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1',
      '-subj', '/CN=Switchyard test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', ...ec, '-keyout', f('key.pem'), '-out', f('server.csr'), '-subj', '/CN=localhost');
    writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
      '-CAcreateserial', '-out', f('cert.pem'), '-days', '1', '-extfile', f('ext.cnf'));
    return { ca: readFileSync(f('ca.pem'), 'utf8'), cert: readFileSync(f('cert.pem'), 'utf8'), key: readFileSync(f('key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pki = makePki();

/** GET `path` on the router's HTTPS port, trusting the test CA: { status, data }. */
function httpsGet(router, path) {
  const url = new URL(router.ws.replace(/^wss:/, 'https:').replace(/\/ws$/, path));
  return within(new Promise((resolve, reject) => {
    https.get(url, { ca: pki.ca }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode, data }));
    }).on('error', reject);
  }), 5000, `GET ${path}`);
}

const WSS = [
  { name: 'wss-json', transport: 'websocket', serializer: 'json' },
  { name: 'wss-msgpack', transport: 'websocket', serializer: 'msgpack' },
  { name: 'wss-cbor', transport: 'websocket', serializer: 'cbor' },
];

routerSuite('TLS (wss://, test CA)', {
  prepare: () => ({
    config: `[tls]\ncertificate = "tls/cert.pem"\nkey = "tls/key.pem"\n${REALM}`,
    files: { 'tls/cert.pem': pki.cert, 'tls/key.pem': pki.key },
  }),
}, (test) => {
  const trust = { ca: pki.ca };

  test('the ready line announces wss://', async (ctx) => {
    assert.match(ctx.router.ws, /^wss:\/\/127\.0\.0\.1:\d+\/ws$/);
    assert.equal(ctx.router.ready.rawsocket_tls, true);
  });

  for (const variant of WSS) {
    test(`${variant.name}: an event with exact args/kwargs`, async (ctx) => {
      const topic = ctx.uri('topic');
      const sub = await ctx.connect({ variant, tls: trust, label: 'sub' });
      const pub = await ctx.connect({ variant, tls: trust, label: 'pub' });
      const inbox = ctx.inbox('subscriber');
      const s = await sub.session.subscribe(topic, inbox.handler);
      const p = await pub.session.publish(topic, ARGS, KWARGS, { acknowledge: true });
      const [ev] = await inbox.waitFor(1);
      assert.deepEqual(ev.args, ARGS);
      assert.deepEqual(ev.kwargs, KWARGS);
      assert.equal(ev.details.publication, p.id);
      assert.equal(sub.lastRx(36)[1], s.id);
    });

    test(`${variant.name}: a call with exact results`, async (ctx) => {
      const proc = ctx.uri('echo');
      const callee = await ctx.connect({ variant, tls: trust, label: 'callee' });
      const caller = await ctx.connect({ variant, tls: trust, label: 'caller' });
      await callee.session.register(proc, (args, kwargs) => new autobahn.Result(['r', ...args], { echoed: kwargs, n: args.length }));
      const res = await within(caller.session.call(proc, ARGS, KWARGS), 3000, 'call result');
      assert.deepEqual(res.args, ['r', ...ARGS]);
      assert.deepEqual(res.kwargs, { echoed: KWARGS, n: ARGS.length });
    });
  }

  test('a client that does not trust the CA is refused before WELCOME', async (ctx) => {
    // The system's roots only: the client must reject the router's certificate.
    const e = await expectReject(ctx.connect({ transport: 'websocket', serializer: 'json', tls: {}, label: 'untrusting' }), 5000, 'untrusted connection');
    assert.equal(e.reason, 'unreachable');
    // The router saw the client abort the handshake (the suite's only failed one).
    const metrics = await httpsGet(ctx.router, '/metrics');
    assert.match(metrics.data, /^switchyard_tls_handshakes_failed_total 1$/m);
  });

  test('/health over HTTPS', async (ctx) => {
    const body = await httpsGet(ctx.router, '/health');
    assert.equal(body.status, 200);
    const health = JSON.parse(body.data);
    assert.equal(health.status, 'ok');
    assert.equal(typeof health.connections, 'number');
  });
});
