// The workbench page under load: 10,000 log lines per second into one open log for
// 30 s (by default), measured in headless Chromium, for BENCHMARKS.md. Not part of
// scripts/test (logs.test.mjs runs a few seconds of the same load).
//
//   node bench.mjs [--rate 10000] [--seconds 30] [--playwright | --baseline | --inject N]
//
// A router on the workbench realm (PostgreSQL as the tests get it: DATABASE_URL or a
// throwaway cluster), alice logged in through the page's form, a tail open on c1 with
// 100 lines of history, and controller-1 publishing. Chromium is driven through the
// DevTools protocol directly (cdp.mjs); --playwright drives it with Playwright as the
// tests do, whose instrumentation of every WebSocket frame costs the browser more than
// the page does. --baseline replaces the workbench page by the least a page can do: a
// bare WebSocket that joins as alice, subscribes to the same log and counts EVENTs
// (window.workbench faked for load.mjs, with a frame meter like the page's): what
// Chromium on this machine can take at that moment, for comparison. --inject N
// publishes nothing: it hands N EVENTs for the open log straight to autobahn-js's
// message handler in the page, with no network, and reports the page's own cost per
// line. Prints one JSON object (the figures of test/load.mjs) on stdout.

import { parseArgs } from 'node:util';

import { SERVICE_TICKETS, Workbench } from '../interop/js/test/workbench.mjs';
import { launchChromium } from './cdp.mjs';
import { launchBrowser, openPage, startRouter } from './test/harness.mjs';
import { overPlaywright, publisher, runLoad } from './test/load.mjs';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '30' },
    playwright: { type: 'boolean', default: false },
    baseline: { type: 'boolean', default: false },
    inject: { type: 'string' },
  },
});

/** In the page: n EVENTs for the open log, as the JSON text the router sends, parsed
 *  and handed to autobahn-js's session as its WebSocket transport does, then to the log
 *  view, as fast as they go; resolves with the time per EVENT once a frame drew them. */
async function inject(n) {
  const session = window.workbench.link.session;
  const id = Number(Object.keys(session._subscriptions).find((k) => session._subscriptions[k][0].topic === 'containers.c1.logs'));
  const texts = [];
  for (let i = 1; i <= n; i++) {
    const line = `2026-12-03T06:00:00.000Z INFO  worker[3] step=${i} processed batch of 512 records in 4.2 ms (queue 17) seq=${i}`;
    texts.push(JSON.stringify([36, id, i, { _pos: 1000000 + i }, [line]]));
  }
  const before = window.workbench.tail().lines;
  const t0 = performance.now();
  for (const text of texts) session._socket.onmessage(JSON.parse(text));
  const t1 = performance.now();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return { injected: n, shown: window.workbench.tail().lines - before, usPerEvent: Math.round(((t1 - t0) * 1000 * 10) / n) / 10 };
}

/** In the page: the bare WebSocket subscriber of --baseline; resolves once subscribed. */
function bareSubscriber([url, token]) {
  const VSYNC_MS = 1000 / 60;
  const t = { lines: 0, gap: 0, newest: '', feed: { repeated: 0, state: 'live' } };
  t.view = { get size() { return 1; }, at: () => ({ text: t.newest }), get drawn() { return t.lines; } };
  let times = [];
  let drawnAtStart = 0;
  let drawnNow = 0;
  let running = false;
  window.workbench = {
    tail: () => t,
    meter: {
      start() {
        times = [];
        drawnAtStart = drawnNow = t.lines;
        running = true;
        const tick = (now) => {
          if (!running) return;
          times.push(now);
          drawnNow = t.lines;
          requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      },
      stop() {
        running = false;
        let dropped = 0;
        let longest = 0;
        let over50 = 0;
        for (let i = 1; i < times.length; i++) {
          const gap = times[i] - times[i - 1];
          longest = Math.max(longest, gap);
          if (gap > 50) over50++;
          dropped += Math.max(0, Math.round(gap / VSYNC_MS) - 1);
        }
        const durationMs = times.length > 1 ? times[times.length - 1] - times[0] : 0;
        const rowsDrawn = drawnNow - drawnAtStart;
        return {
          durationMs: Math.round(durationMs), frames: times.length, droppedFrames: dropped, longestFrameMs: Math.round(longest * 10) / 10,
          framesOver50ms: over50, rowsDrawn, rowsPerSecond: durationMs > 0 ? Math.round((rowsDrawn * 1000) / durationMs) : 0,
        };
      },
    },
  };
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['wamp.2.json']);
    ws.onopen = () => ws.send(JSON.stringify([1, 'workbench', { authmethods: ['ticket'], roles: { subscriber: {} } }]));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m[0] === 36) {
        t.lines++;
        t.newest = m[4][0];
        if (m[3]._gap) t.gap += m[3]._gap;
      } else if (m[0] === 4) ws.send(JSON.stringify([5, token, {}]));
      else if (m[0] === 2) ws.send(JSON.stringify([32, 1, {}, 'containers.c1.logs']));
      else if (m[0] === 33) resolve();
      else reject(new Error(e.data));
    };
  });
}

/** The page at `url`, through Playwright or the bare protocol: a load.mjs driver. */
async function open(url) {
  if (values.playwright) {
    const browser = await launchBrowser();
    const page = await overPlaywright(await openPage(browser, url));
    return { page, version: browser.version(), close: () => browser.close() };
  }
  const chrome = await launchChromium();
  const page = await chrome.open(url);
  return { page, version: await chrome.version(), close: () => chrome.close() };
}

const wb = new Workbench();
const { config, files } = await wb.prepare();
const router = await startRouter({ config, files });
wb.router = router;
let browser;
let pub;
try {
  await wb.waitOnline();
  await wb.reset();
  const token = await wb.token('alice');
  browser = await open(`${router.ws.replace('ws:', 'http:').replace(/\/ws$/, '')}/?realm=workbench`);
  const { page } = browser;
  // The page's script has run (a form submitted before it would be posted, not joined).
  await page.waitFor(() => !!window.workbench, null, 'the page');
  if (values.baseline) {
    await page.evaluate(bareSubscriber, [router.ws, token]);
  } else {
    await openLog(page, token);
  }
  if (values.inject) {
    console.log(JSON.stringify({ chromium: browser.version, driver: 'cdp, injected', ...(await page.evaluate(inject, Number(values.inject))) }));
  } else {
    pub = await publisher(router.ws, 'workbench', 'controller-1', SERVICE_TICKETS['controller-1']);
    const report = await runLoad(page, pub, { topic: 'containers.c1.logs', rate: Number(values.rate), seconds: Number(values.seconds) });
    const driver = values.baseline ? 'cdp, bare WebSocket page' : values.playwright ? 'playwright' : 'cdp';
    console.log(JSON.stringify({ chromium: browser.version, driver, ...report }));
  }
} finally {
  pub?.close();
  await browser?.close();
  await router.stop();
  await wb.finish();
}

/** As a person would: the token into the form, connect, container c1 with 100 lines. */
async function openLog(page, token) {
  await page.evaluate((token) => {
    document.querySelector('#login input[name="token"]').value = token;
    document.querySelector('#login').requestSubmit();
  }, token);
  await page.waitFor(() => document.querySelector('#link-state')?.dataset.state === 'open', null, 'alice joined');
  await page.evaluate(() => {
    document.querySelector('#history').value = '100';
    document.querySelector('.containers input[name="id"]').value = 'c1';
    document.querySelector('.containers form').requestSubmit();
  });
  await page.waitFor(() => document.querySelector('.tail .state')?.dataset.state === 'live', null, 'the tail is live');
}
