// The README's whole story, as a person would live it: `scripts/demo --json` starts the
// router on the workbench realm with its permission graph, ships container c1's log
// with the Python shipper, and prints the page's URL, two users' tokens and the SQL
// that unshares c1. Alice (who owns c1) and bob (c1 shared with him, read) each open
// the page in a browser of their own and tail c1; running the printed SQL stops bob's
// log, saying why, while alice's goes on. Then SIGTERM ends the demo, and with it the
// router, the shipper and the demo's database.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

import { REPO, launchBrowser, openPage, shownRows, waitInPage } from './harness.mjs';
import { routerBinary } from '../../interop/js/test/helpers.mjs';

const TAIL = '.tail .view';
// One line of the demo's generated log, as the shipper publishes it.
const LINE = /^\d\d:\d\d:\d\d\.\d{3} c1 step (\d+): \d+ samples processed$/;

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts scripts/demo --json and resolves with the JSON line it prints once running. */
async function startDemo(port, database) {
  const child = spawn(`${REPO}/scripts/demo`, ['--json', '--port', String(port), '--database-name', database], {
    env: { ...process.env, SWITCHYARD_BIN: routerBinary() },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so a failed test can end all of it
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const story = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the demo printed nothing in 120 s; stderr: ${stderr}`)), 120000);
    child.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(JSON.parse(out.slice(0, nl)));
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (${code ?? signal}) before it was ready; stderr: ${stderr}`));
    });
  });
  return { child, story, exited, stderr: () => stderr };
}

const portOpen = (port) => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1');
  s.on('connect', () => { s.destroy(); resolve(true); });
  s.on('error', () => resolve(false));
});

describe('scripts/demo, in two browsers', () => {
  const database = `switchyard_demo_test_${process.pid}`;
  let demo;
  let port;
  let browser;

  before(async () => {
    port = await freePort();
    demo = await startDemo(port, database);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    if (demo && demo.child.exitCode === null && demo.child.signalCode === null) {
      try { process.kill(-demo.child.pid, 'SIGKILL'); } catch {}
    }
  });

  /** The demo's page, logged in with `token`, tailing c1 with the last 100 lines. */
  async function tailC1(token) {
    const page = await openPage(browser, demo.story.page);
    await page.fill('#login input[name="token"]', token);
    await page.click('#login button');
    await waitInPage(page, () => document.querySelector('#link-state')?.dataset.state === 'open', null, 'signed in',
      () => document.querySelector('#link-state')?.textContent);
    // c1 is listed from the lifecycle event the demo published through the HTTP bridge.
    await waitInPage(page, () => document.querySelector('.containers li[data-id="c1"]'), null, 'c1 listed',
      () => document.querySelector('.containers')?.textContent);
    await page.selectOption('#history', '100');
    await page.click('.containers li[data-id="c1"]');
    await waitInPage(page, () => document.querySelector('.tail .state')?.dataset.state === 'live', null, 'c1 live',
      () => document.querySelector('.tail .bar')?.textContent);
    return page;
  }

  /** The step numbers of the lines a page shows; every row must be a line of c1's log. */
  async function steps(page) {
    return (await shownRows(page, TAIL)).map((row) => {
      const m = LINE.exec(row);
      assert.ok(m, `a row that is not a line of c1's log: ${JSON.stringify(row)}`);
      return Number(m[1]);
    });
  }

  const lineCount = (page) => page.evaluate(() => window.workbench.tail().lines);
  const waitForMore = (page, than) => waitInPage(page, (n) => window.workbench.tail().lines > n, than,
    `more than ${than} lines`, () => window.workbench.tail().lines);

  it('prints the page, both tokens and the unshare SQL', () => {
    const { page, websocket, alice, bob, unshare } = demo.story;
    assert.equal(page, `http://127.0.0.1:${port}/?realm=workbench`);
    assert.equal(websocket, `ws://127.0.0.1:${port}/ws`);
    assert.match(alice, /^sy_/);
    assert.match(bob, /^sy_/);
    assert.notEqual(alice, bob);
    assert.match(unshare, new RegExp(`^psql '.*/${database}' -c "delete from grants where tail_id = 'bob' and head_id = 'c1'"$`));
  });

  it("tails c1 live for alice and bob; unsharing stops bob's log and says why, alice's goes on", async () => {
    const alice = await tailC1(demo.story.alice);
    const bob = await tailC1(demo.story.bob);
    // The shipper writes a line every 200 ms: both see new lines arrive.
    for (const page of [alice, bob]) await waitForMore(page, await lineCount(page) + 2);

    // Both see the same log: consecutive steps, no line twice or missing, and the one
    // who opened it later sees at least what the other saw then.
    const [a, b] = [await steps(alice), await steps(bob)];
    for (const s of [a, b]) assert.deepEqual(s, s.map((_, i) => s[0] + i), `steps not consecutive: ${s}`);
    assert.ok(b.at(-1) >= a.at(-1), `bob's last step ${b.at(-1)} is behind alice's ${a.at(-1)}`);

    const started = Date.now();
    await promisify(execFile)('sh', ['-c', demo.story.unshare]);
    const unshared = Date.now();
    await waitInPage(bob, () => document.querySelector('.tail .state').dataset.state === 'revoked', null, "bob's tail revoked",
      () => document.querySelector('.tail .bar')?.textContent);
    const revokedMs = Date.now() - unshared;
    assert.equal(await bob.$eval('.tail .why', (e) => e.textContent), 'wamp.error.not_authorized');
    const stoppedAt = await lineCount(bob);
    const rows = await shownRows(bob, TAIL);
    assert.equal(rows.at(-1), '[notice] access withdrawn (wamp.error.not_authorized): this log has stopped');

    // Alice's log goes on; bob's stays where it stopped.
    const aliceAt = await lineCount(alice);
    await waitForMore(alice, aliceAt + 3);
    const after = await steps(alice);
    assert.deepEqual(after, after.map((_, i) => after[0] + i));
    assert.equal(await lineCount(bob), stoppedAt);
    assert.equal(await bob.$eval('.tail .state', (e) => e.dataset.state), 'revoked');
    assert.equal(await alice.$eval('.tail .state', (e) => e.dataset.state), 'live');
    assert.deepEqual([alice.errors, bob.errors], [[], []]);
    console.log(`# unshare: psql ran ${unshared - started} ms; bob's page said revoked ${revokedMs} ms after it returned`);
  });

  it('stops everything on SIGTERM: the router, the shipper and the database', async () => {
    process.kill(demo.child.pid, 'SIGTERM');
    const { code } = await demo.exited;
    assert.equal(code, 130, demo.stderr());
    assert.equal(await portOpen(port), false);
    const dbUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
    const { stdout } = await promisify(execFile)('psql', [dbUrl, '-Atqc', `select count(*) from pg_database where datname = '${database}'`])
      .catch(() => ({ stdout: 'skip' }));
    if (stdout.trim() !== 'skip') assert.equal(stdout.trim(), '0');
  });
});
