// switchyard-tail against the router's embedded default realm (realm1 stores the last
// 1,000 events of every topic): history and exit, --json, history then live with -f,
// and the errors a user meets first. Each test uses a topic of its own.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { connect, killTails, lines, publishLines, runTail, startRouter } from './harness.mjs';

describe('switchyard-tail on realm1', { timeout: 30000 }, () => {
  let router;
  let pub;
  before(async () => {
    router = await startRouter();
    pub = await connect(router.ws);
  });
  afterEach(killTails);
  after(async () => {
    if (pub) pub.close();
    if (router) await router.stop();
  });

  it('prints the last N lines and exits', async () => {
    await publishLines(pub.session, 'tail.t1.logs', lines(1, 15));
    const r = await runTail(['--url', router.ws, '--topic', 'tail.t1.logs', '--last', '3']).result();
    assert.deepEqual(r, { code: 0, signal: null, out: ['line 13', 'line 14', 'line 15'], err: [], raw: r.raw });
  });

  it('--json prints topic, position and payload; a payload that is not a line stays JSON', async () => {
    await publishLines(pub.session, 'tail.t2.logs', ['first']);
    await pub.session.publish('tail.t2.logs', [{ level: 'warn' }, 2], { host: 'h1' }, { acknowledge: true });
    await pub.session.publish('tail.t2.logs', ['with newline\n'], {}, { acknowledge: true });
    const json = await runTail(['--url', router.ws, '--topic', 'tail.t2.logs', '--json']).result();
    assert.deepEqual(json.out, [
      '{"topic":"tail.t2.logs","_pos":1,"args":["first"],"kwargs":{}}',
      '{"topic":"tail.t2.logs","_pos":2,"args":[{"level":"warn"},2],"kwargs":{"host":"h1"}}',
      '{"topic":"tail.t2.logs","_pos":3,"args":["with newline\\n"],"kwargs":{}}',
    ]);
    const text = await runTail(['--url', router.ws, '--topic', 'tail.t2.logs']).result();
    assert.deepEqual(text.out, ['first', '{"args":[{"level":"warn"},2],"kwargs":{"host":"h1"}}', 'with newline']);
    assert.deepEqual([json.code, json.err, text.code, text.err], [0, [], 0, []]);
  });

  it('a topic without events: prints nothing and exits', async () => {
    const r = await runTail(['--url', router.ws, '--topic', 'tail.t3.logs', '-n', '5']).result();
    assert.deepEqual([r.code, r.out, r.err], [0, [], []]);
  });

  it('-f: history, then live events, until SIGTERM', async () => {
    await publishLines(pub.session, 'tail.t4.logs', lines(1, 5));
    const t = runTail(['--url', router.ws, '--topic', 'tail.t4.logs', '--last', '2', '-f']);
    await t.waitOut(2);
    await publishLines(pub.session, 'tail.t4.logs', lines(6, 8));
    await t.waitOut(5);
    t.stop();
    const r = await t.result();
    assert.deepEqual([r.code, r.out, r.err], [0, lines(4, 8), []]);
  });

  it('errors: no router, an unknown realm, a topic that is not a URI, a bad option', async () => {
    const cases = [
      // port 1 (tcpmux) is not listening on a test machine: the connection is refused
      [['--url', 'ws://127.0.0.1:1/ws', '--topic', 'a.b'], 1,
        ['switchyard-tail: cannot reach a WAMP router at ws://127.0.0.1:1/ws']],
      [['--url', router.ws, '--realm', 'nope', '--topic', 'a.b'], 1,
        ["switchyard-tail: the router refused to join realm nope: wamp.error.no_such_realm: no such realm 'nope'"]],
      [['--url', router.ws, '--topic', 'a..b'], 1,
        ["switchyard-tail: cannot subscribe to a..b: wamp.error.invalid_uri: invalid URI 'a..b'"]],
    ];
    for (const [args, code, err] of cases) {
      const r = await runTail(args).result();
      assert.deepEqual([r.code, r.out, r.err], [code, [], err], args.join(' '));
    }
    const usage = await runTail(['--topic', 'a.b', '--last', 'many']).result();
    assert.equal(usage.code, 2);
    assert.deepEqual(usage.err.slice(0, 3), ["switchyard-tail: --last must be a non-negative integer, not 'many'", '', 'usage: switchyard-tail --topic TOPIC [options]']);
  });
});
