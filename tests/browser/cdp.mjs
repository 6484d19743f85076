// Headless Chromium driven through the DevTools protocol directly, for the benchmark.
// Playwright turns on the Network domain in every page it controls, and Chromium then
// copies every WebSocket frame into a protocol event for it: at 10,000 messages per
// second that copying, not the page, used most of the CPU (the browser process and the
// renderer's main thread). This driver enables only what it uses: Runtime (to run the
// page's own measuring code) and Performance.
//
//   const chrome = await launchChromium();
//   const page = await chrome.open(url);
//   await page.evaluate((x) => ..., arg);   // a function and one JSON argument
//   await page.metrics();                  // Performance.getMetrics as { name: value }
//   await chrome.close();

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

const WebSocket = createRequire(new URL('../interop/js/package.json', import.meta.url))('ws');

/** One DevTools connection: send(method, params) resolves with the result. */
function connect(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    const pending = new Map();
    let id = 0;
    ws.on('message', (data) => {
      const msg = JSON.parse(data);
      const p = msg.id !== undefined && pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    });
    ws.on('open', () => resolve({
      send(method, params = {}) {
        return new Promise((res, rej) => {
          pending.set(++id, { resolve: res, reject: rej, method });
          ws.send(JSON.stringify({ id, method, params }));
        });
      },
      close: () => ws.close(),
    }));
    ws.on('error', reject);
  });
}

export async function launchChromium({ width = 1400, height = 860 } = {}) {
  const profile = mkdtempSync(path.join(tmpdir(), 'switchyard-chromium-'));
  const proc = spawn(process.env.CHROMIUM || '/usr/bin/chromium', [
    '--headless', '--no-sandbox', '--disable-dev-shm-usage', '--remote-debugging-port=0',
    `--user-data-dir=${profile}`, `--window-size=${width},${height}`, 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const endpoint = await new Promise((resolve, reject) => {
    let err = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      err += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${err}`)));
  });
  const browser = await connect(endpoint);
  return {
    version: async () => (await browser.send('Browser.getVersion')).product,
    async open(url) {
      const { targetId } = await browser.send('Target.createTarget', { url: 'about:blank' });
      const target = await connect(`${endpoint.replace(/browser\/.*$/, '')}page/${targetId}`);
      await target.send('Runtime.enable');
      await target.send('Performance.enable');
      await target.send('Page.navigate', { url });
      return {
        /** Runs fn(arg) in the page; resolves with its (awaited) JSON value. */
        async evaluate(fn, arg = null) {
          const r = await target.send('Runtime.evaluate', {
            expression: `(${fn})(${JSON.stringify(arg)})`, awaitPromise: true, returnByValue: true,
          });
          if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description || r.exceptionDetails.text}`);
          return r.result.value;
        },
        /** Resolves once fn(arg) is truthy in the page (polling every 50 ms). */
        async waitFor(fn, arg = null, what = 'a condition', timeout = 15000) {
          const deadline = Date.now() + timeout;
          for (;;) {
            if (await this.evaluate(fn, arg).catch(() => false)) return;
            if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
            await new Promise((r) => setTimeout(r, 50));
          }
        },
        async metrics() {
          return Object.fromEntries((await target.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
        },
      };
    },
    async close() {
      browser.close();
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
