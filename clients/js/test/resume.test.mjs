// switchyard-tail -f across lost connections: the tail connects through a TCP proxy
// whose cut() resets the connection (no GOODBYE), reconnects after 0.5 s and resumes
// with _replay {after_pos: P}. The printed lines must be exactly the published ones:
// none repeated, none missing, also when the cut comes before the first event, and
// what the router no longer has is reported as a gap on stderr.
//
// realm1 here stores topics under tail.small. with only 5 events each (for the gap),
// every other topic with 1,000. The tail's history without -f, which ends where the
// subscription attached, is here too: it is delivered like a resume.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';

import { connect, killTails, cuttableProxy, lines, publishLines, runTail, sleep, startRouter, until } from './harness.mjs';

const CONFIG = `
# A small outbox, so that long histories are delivered in many catch-up rounds
# (replies to calls can then overtake them).
[limits]
outbox_messages = 16

[[realms]]
name = "realm1"
anonymous = "anonymous"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = { call = true, register = true, publish = true, subscribe = true }

[realms.replay]

[[realms.replay.topics]]
uri = "tail.small."
match = "prefix"
max_events = 5

[[realms.replay.topics]]
uri = ""
match = "prefix"
max_events = 1000
`;

const LOST = 'switchyard-tail: connection lost; reconnecting in 0.5 s';
const resumed = (pos) => `switchyard-tail: reconnected; resuming after position ${pos}`;

describe('switchyard-tail -f across lost connections', { timeout: 30000 }, () => {
  let router;
  let pub;
  let proxy;
  before(async () => {
    router = await startRouter({ config: CONFIG });
    pub = await connect(router.ws);
    proxy = await cuttableProxy(router);
  });
  afterEach(killTails);
  after(async () => {
    if (proxy) proxy.close();
    if (pub) pub.close();
    if (router) await router.stop();
  });

  it('two cuts while a publisher writes: every line once, in order', async () => {
    const topic = 'tail.r1.logs';
    await publishLines(pub.session, topic, lines(1, 50));
    const t = runTail(['--url', proxy.ws, '--topic', topic, '--last', '1000', '-f']);
    // Writes about a line per millisecond until told to stop, so that both cuts come
    // while events are flowing (and some are published while the tail is away).
    let published = 50;
    let writing = true;
    const publishing = (async () => {
      while (writing) {
        await publishLines(pub.session, topic, lines(published + 1, published + 5));
        published += 5;
        await sleep(5);
      }
    })();
    const resumes = [];
    for (let cut = 0; cut < 2; cut++) {
      await t.waitOut(t.out().length + 100);
      proxy.cut();
      // "connection lost; …" and "reconnected; resuming after position P"
      await until(() => t.err().length === 2 * (cut + 1), 5000, () => t.describe());
      resumes.push(Number(t.err().at(-1).split(' ').pop()));
    }
    await t.waitOut(t.out().length + 100);
    writing = false;
    await publishing;
    await t.waitOut(published);
    t.stop();
    const r = await t.result();
    assert.deepEqual(r.out, lines(1, published));
    assert.deepEqual([r.code, r.err], [0, [LOST, resumed(resumes[0]), LOST, resumed(resumes[1])]]);
    // each resume point is a line printed before the cut (the line number is the position)
    assert.ok(resumes[0] >= 100 && resumes[1] >= resumes[0] + 100, r.raw.err);
  });

  it('--last 0 on a quiet topic: a cut before the first event loses nothing', async () => {
    const topic = 'tail.r2.logs';
    await publishLines(pub.session, topic, lines(1, 3));
    const t = runTail(['--url', proxy.ws, '--topic', topic, '--last', '0', '-f', '-v']);
    // the tail knows where it attached (position 3) before the connection is cut
    await t.waitErr(/attached at position 3/);
    proxy.cut();
    await publishLines(pub.session, topic, lines(4, 6)); // while it is disconnected
    await t.waitOut(3);
    await publishLines(pub.session, topic, lines(7, 7));
    await t.waitOut(4);
    t.stop();
    const r = await t.result();
    assert.deepEqual([r.code, r.out], [0, lines(4, 7)]);
    assert.deepEqual(r.err.filter((l) => !l.includes(': subscribed to ')), [
      'switchyard-tail: attached at position 3', LOST, resumed(3),
    ]);
  });

  it('events the router no longer has when it reconnects: reported as a gap', async () => {
    const topic = 'tail.small.r3.logs';
    await publishLines(pub.session, topic, lines(1, 3));
    const t = runTail(['--url', proxy.ws, '--topic', topic, '--last', '10', '-f']);
    await t.waitOut(3);
    proxy.cut();
    await publishLines(pub.session, topic, lines(4, 20)); // the store keeps 16..20
    await t.waitOut(8);
    t.stop();
    const r = await t.result();
    assert.deepEqual([r.code, r.out], [0, [...lines(1, 3), ...lines(16, 20)]]);
    assert.deepEqual(r.err, [LOST, resumed(3), `switchyard-tail: gap: 12 event(s) of ${topic} no longer retained by the router`]);
  });

  it('without -f, asking for more than the router keeps: the gap, then what it has', async () => {
    const topic = 'tail.small.r4.logs';
    await publishLines(pub.session, topic, lines(1, 8));
    const r = await runTail(['--url', router.ws, '--topic', topic, '--last', '7']).result();
    assert.deepEqual([r.code, r.out, r.err], [0, lines(4, 8), [`switchyard-tail: gap: 2 event(s) of ${topic} no longer retained by the router`]]);
  });

  it('without -f, a history longer than the outbox: every line, then exit', async () => {
    const topic = 'tail.r5.logs';
    const pad = 'x'.repeat(8000);
    const big = lines(1, 1000).map((l) => `${l} ${pad}`);
    await Promise.all(big.map((l) => pub.session.publish(topic, [l], {}, { acknowledge: true })));
    const r = await runTail(['--url', router.ws, '--topic', topic, '--last', '1000']).result();
    assert.deepEqual([r.code, r.out.length, r.err], [0, 1000, []]);
    assert.deepEqual(r.out, big);
  });
});
