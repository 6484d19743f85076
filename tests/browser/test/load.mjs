// A log at a fixed rate into one open tail, measured in the page: what the speed test
// (logs.test.mjs, a few seconds) and the benchmark (bench.mjs, 30 s) both run.
//
// The publisher is a bare WAMP session over WebSocket (the `ws` package, JSON): each
// 10 ms tick it sends the lines due by then as PUBLISH messages without acknowledgement,
// corked into one write, so a 2-core machine shared with the router and Chromium can
// offer 10,000 lines/s (autobahn-js writes each message on its own, and could not).
// Each line is numbered, so the page's last line says whether every line arrived in
// order. The page measures its own frames (window.workbench.meter, src/meter.ts);
// Chromium's Performance domain (CDP) gives the main thread's busy time and the JS heap.
//
// `page` is a driver: { evaluate(fn, arg), waitFor(fn, arg, what, ms), metrics() }, from
// overPlaywright(page) below or from ../cdp.mjs (the benchmark's, without Playwright's
// instrumentation of every WebSocket frame).
//
// Importing this file has no side effects (node --test runs it as an empty test file).

import { createRequire } from 'node:module';

import { sleep } from '../../interop/js/test/helpers.mjs';

// The `ws` package of the autobahn-js suite (tests/interop/js/node_modules).
const WebSocket = createRequire(new URL('../../interop/js/package.json', import.meta.url))('ws');

/** A line of about 110 bytes, like a worker's log line, carrying its number. */
export function logLine(n) {
  return `2026-12-03T06:00:00.000Z INFO  worker[3] step=${n} processed batch of 512 records in 4.2 ms (queue 17) seq=${n}`;
}

/** A session that authenticates with a ticket and then only publishes:
 *  `publish(topic, texts)` sends one PUBLISH per text (args [text]) in one write. */
export function publisher(url, realm, authid, ticket) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['wamp.2.json']);
    let request = 0;
    const session = {
      publish(topic, texts) {
        ws._socket.cork();
        for (const t of texts) ws.send(JSON.stringify([16, ++request, {}, topic, [t]]));
        process.nextTick(() => ws._socket.uncork());
      },
      close: () => ws.close(),
    };
    ws.on('open', () => ws.send(JSON.stringify([1, realm, { authid, authmethods: ['ticket'], roles: { publisher: {} } }])));
    ws.on('message', (data) => {
      const msg = JSON.parse(data);
      if (msg[0] === 4) ws.send(JSON.stringify([5, ticket, {}]));
      else if (msg[0] === 2) resolve(session);
      else if (msg[0] === 3) reject(new Error(`publisher refused: ${data}`));
    });
    ws.on('error', reject);
  });
}

/** The driver for a Playwright page. */
export async function overPlaywright(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  return {
    evaluate: (fn, arg = null) => page.evaluate(fn, arg),
    waitFor: (fn, arg, what, timeout) => page.waitForFunction(fn, arg, { timeout, polling: 50 }).then(() => {}, () => {
      throw new Error(`${what}: not within ${timeout} ms`);
    }),
    metrics: async () => Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value])),
  };
}

/**
 * Publishes lines first..first+rate*seconds-1 to `topic` at `rate` per second while
 * the page (with a tail open on `topic`) measures; waits until the page shows the last
 * line (or `drainMs` more pass), then returns the page's and Chromium's figures.
 */
export async function runLoad(page, session, { topic, rate, seconds, first = 1, drainMs = 15000 }) {
  const total = rate * seconds;
  const last = first + total - 1;
  const metrics = () => page.metrics();
  const linesBefore = await page.evaluate(() => window.workbench.tail().lines);
  const before = await metrics();
  await page.evaluate(() => window.workbench.meter.start());

  const started = Date.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((Date.now() - started) * rate) / 1000));
    const batch = [];
    for (; sent < due; sent++) batch.push(logLine(first + sent));
    session.publish(topic, batch);
    await sleep(10);
  }
  const publishMs = Date.now() - started;
  await page.waitFor((n) => window.workbench.tail().lines >= n, linesBefore + total, 'every line', drainMs).catch(() => {});
  const frames = await page.evaluate(() => window.workbench.meter.stop());
  const after = await metrics();
  const tail = await page.evaluate(() => {
    const t = window.workbench.tail();
    const newest = t.view.at(t.view.size - 1);
    return { lines: t.lines, repeated: t.feed.repeated, gap: t.gap, state: t.feed.state, held: t.view.size, newest: newest && newest.text };
  });
  const wallS = (after.Timestamp - before.Timestamp) || frames.durationMs / 1000;
  return {
    rate,
    seconds,
    published: total,
    publishMs,
    received: tail.lines - linesBefore,
    repeated: tail.repeated,
    gap: tail.gap,
    state: tail.state,
    rowsHeld: tail.held,
    lastLineShown: tail.newest === logLine(last),
    ...frames,
    mainThreadBusy: Math.round((100 * (after.TaskDuration - before.TaskDuration)) / wallS) / 100,
    scriptS: Math.round((after.ScriptDuration - before.ScriptDuration) * 100) / 100,
    layoutS: Math.round((after.LayoutDuration - before.LayoutDuration) * 100) / 100,
    jsHeapMiB: Math.round(after.JSHeapUsedSize / 1048576),
  };
}
