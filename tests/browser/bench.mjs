// The workbench page under load: 10,000 log lines per second into one open log for
// 30 s (by default), measured in headless Chromium, for BENCHMARKS.md. Not part of
// scripts/test (logs.test.mjs runs a few seconds of the same load).
//
//   node bench.mjs [--rate 10000] [--seconds 30]
//
// A router on the workbench realm (PostgreSQL as the tests get it: DATABASE_URL or a
// throwaway cluster), alice logged in through the page, a tail open on c1 with 100
// lines of history, and controller-1 publishing. Prints one JSON object (the figures
// of load.mjs) on stdout.

import { parseArgs } from 'node:util';

import { SERVICE_TICKETS, Workbench } from '../interop/js/test/workbench.mjs';
import { launchBrowser, openPage, startRouter, waitInPage } from './test/harness.mjs';
import { publisher, runLoad } from './test/load.mjs';

const { values } = parseArgs({ options: { rate: { type: 'string', default: '10000' }, seconds: { type: 'string', default: '30' } } });

const wb = new Workbench();
const { config, files } = await wb.prepare();
const router = await startRouter({ config, files });
wb.router = router;
const browser = await launchBrowser();
let pub;
try {
  await wb.waitOnline();
  await wb.reset();
  const token = await wb.token('alice');
  const page = await openPage(browser, `${router.ws.replace('ws:', 'http:').replace(/\/ws$/, '')}/?realm=workbench`);
  await page.fill('#login input[name="token"]', token);
  await page.click('#login button');
  await waitInPage(page, () => document.querySelector('#link-state')?.dataset.state === 'open', null, 'alice joined');
  await page.selectOption('#history', '100');
  await page.fill('.containers input[name="id"]', 'c1');
  await page.click('.containers form button');
  await waitInPage(page, () => document.querySelector('.tail .state')?.dataset.state === 'live', null, 'the tail is live');
  pub = await publisher(router.ws, 'workbench', 'controller-1', SERVICE_TICKETS['controller-1']);
  const report = await runLoad(page, pub, { topic: 'containers.c1.logs', rate: Number(values.rate), seconds: Number(values.seconds) });
  console.log(JSON.stringify({ chromium: browser.version(), ...report }));
} finally {
  pub?.close();
  await browser.close();
  await router.stop();
  await wb.finish();
}
