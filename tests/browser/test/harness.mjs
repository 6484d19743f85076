// What the browser tests share: headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), the page's own readings of what it shows, a TCP proxy that can cut
// and refuse connections, and publishers (autobahn-js in Node, from the interop suite's
// harness, which also starts the router binary: SWITCHYARD_BIN, default
// target/debug/switchyard).
//
// Importing this file has no side effects (node --test runs it as an empty test file).

import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export { startRouter, openClient, sleep, within } from '../../interop/js/test/helpers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '../../..');

/** Where tests save screenshots when SCREENSHOTS is set (scripts/screenshots). */
export const SCREENSHOT_DIR = process.env.SCREENSHOTS ? path.resolve(REPO, process.env.SCREENSHOTS) : null;

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // Root in a container has no user namespace for the sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
}

/** A new page at `url`; errors thrown in the page fail the test that reads `errors`. */
export async function openPage(browser, url, viewport = { width: 1400, height: 860 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.goto(url);
  return page;
}

/** The HTTP base URL of a router started by startRouter(). */
export function httpBase(router) {
  const u = new URL(router.ws);
  return `http://${u.host}`;
}

// ------------------------------------------------------------------ reading the page

/** Every row of a LogView (`sel` is its .view element), oldest first, as the page
 *  draws them: scrolls from top to bottom and reads the rows on screen at each step
 *  (only those exist in the DOM), then scrolls back to the bottom so the view follows
 *  again. Returns the rows' text (or `cells(row)` of each). */
export async function shownRows(page, sel, cells = null) {
  return page.evaluate(async ({ sel, cells }) => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    const v = document.querySelector(sel);
    const seen = new Map();
    const read = () => {
      for (const row of v.querySelectorAll('.row')) {
        if (row.style.display === 'none') continue;
        const value = cells ? [...row.children].map((c) => c.textContent) : row.textContent;
        seen.set(Number(row.dataset.n), row.classList.length > 1 && !cells ? `[${[...row.classList].slice(1).join(' ')}] ${value}` : value);
      }
    };
    // Scroll to the top until it stays there. A view once snapped back to the bottom
    // here in CI, under load, while drawing a batch (not reproduced since; the view now
    // also checks for the reader's scroll in each frame, and turns off the browser's
    // scroll anchoring): should it happen again, the reading still starts at the top.
    for (let tries = 0; tries < 20; tries++) {
      v.scrollTop = 0;
      await frame();
      await frame();
      if (v.scrollTop === 0) break;
    }
    for (;;) {
      read();
      if (v.scrollTop + v.clientHeight >= v.scrollHeight - 1) break;
      v.scrollTop += Math.floor(v.clientHeight / 2);
      await frame();
      await frame();
    }
    v.scrollTop = v.scrollHeight;
    await frame();
    const numbers = [...seen.keys()].sort((a, b) => a - b);
    for (let i = 1; i < numbers.length; i++) {
      if (numbers[i] !== numbers[i - 1] + 1) throw new Error(`rows ${numbers[i - 1]} and ${numbers[i]} are not contiguous`);
    }
    return numbers.map((n) => seen.get(n));
  }, { sel, cells });
}

/** Waits until `fn(arg)` in the page is truthy; `what` names it in the timeout error,
 *  with what `show` returns then. */
export async function waitInPage(page, fn, arg, what, show = null, timeout = 10000) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 20 });
  } catch (e) {
    const now = show ? await page.evaluate(show).catch((x) => `(${x.message})`) : '';
    throw new Error(`${what}: not within ${timeout} ms${show ? `; now ${JSON.stringify(now)}` : ''}`);
  }
}

/** Numbers 1..n as the lines a test publishes: "line 1", "line 2", ... */
export function lines(from, to, prefix = 'line') {
  const out = [];
  for (let i = from; i <= to; i++) out.push(`${prefix} ${i}`);
  return out;
}

/** Publishes each text as one event (args[0]) with acknowledgement, in order. */
export async function publishLines(client, topic, texts) {
  for (const t of texts) await client.session.publish(topic, [t], {}, { acknowledge: true });
}

// ------------------------------------------------------------------ a TCP proxy

/** A TCP proxy to `port` on loopback. cut() resets every connection through it;
 *  hold(true) also resets every new one at once, until hold(false). */
export async function startProxy(port) {
  const live = new Set();
  let holding = false;
  const server = net.createServer((client) => {
    if (holding) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(port, '127.0.0.1');
    const pair = { client, upstream };
    live.add(pair);
    const end = () => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    cut() {
      for (const { client, upstream } of live) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      live.clear();
    },
    hold(on) {
      holding = on;
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
