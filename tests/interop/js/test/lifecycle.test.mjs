// Router process lifecycle: the ready line, SIGTERM with sessions attached.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startRouter, openClient, within, show } from './helpers.mjs';

describe('router process', () => {
  it('prints one JSON "listening" line with usable addresses and exits on SIGTERM, closing sessions', { timeout: 20000 }, async (t) => {
    const router = await startRouter();
    const clients = [];
    try {
      assert.equal(router.ready.event, 'listening');
      assert.match(router.ready.websocket, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
      assert.match(router.ready.rawsocket, /^127\.0\.0\.1:\d+$/);
      assert.ok('unix' in router.ready);
      assert.equal(router.ready.unix, null);
      assert.notEqual(router.rawsocket.port, 0);
      clients.push(await openClient(router, { serializer: 'json' }));
      clients.push(await openClient(router, { transport: 'rawsocket' }));
      router.proc.kill('SIGTERM');
      const exit = await within(router._exitPromise, 10000, 'router exit after SIGTERM');
      t.diagnostic(`router exit after SIGTERM: ${show(exit)}`);
      assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', `exit ${show(exit)}`);
      const closes = await within(Promise.all(clients.map((c) => c.closed)), 5000, 'sessions closed');
      for (const [i, c] of closes.entries()) {
        t.diagnostic(`${clients[i].label}: ${c.reason} ${show(c.details.reason)} ${show(c.details.message)}`);
      }
      // only one line on stdout
      assert.equal(router._stdout.trim().split('\n').length, 1, `stdout: ${router._stdout}`);
    } catch (e) {
      e.message += `\n--- router stderr ---\n${router.stderr().slice(-8000)}`;
      throw e;
    } finally {
      await router.stop();
    }
  });
});
