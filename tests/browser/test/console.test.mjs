// The workbench page on the embedded default (realm1, anonymous), in headless Chromium:
// the console shows history then live events with their topic, position, publisher and
// payload; the meta panel follows sessions and subscriptions as they come and go; the
// publish box publishes; a pattern subscription resumes after a cut connection
// (`after_publication`) with no event twice or missing; and the page finds a WebSocket
// path other than /ws.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  SCREENSHOT_DIR, httpBase, launchBrowser, openClient, openPage, shownRows, startProxy, startRouter, waitInPage,
} from './harness.mjs';

const CONSOLE_VIEW = '.console .view';

describe('the console on realm1', () => {
  let router;
  let browser;
  const clients = [];
  const connect = async (opts = {}) => {
    const c = await openClient(router, opts);
    clients.push(c);
    return c;
  };

  before(async () => {
    router = await startRouter();
    browser = await launchBrowser();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await browser?.close();
    await router?.stop();
  });

  it('shows history, then live events, with topic, _pos, publisher and payload', async () => {
    const pub = await connect({ label: 'publisher' });
    const p = pub.session;
    await p.publish('com.example.t1', ['e1'], {}, { acknowledge: true });
    await p.publish('com.example.t2', [{ n: 2 }], { k: 'v' }, { acknowledge: true });
    await p.publish('com.example.t1', ['e3'], {}, { acknowledge: true, disclose_me: true });
    await p.publish('org.other.t1', ['not for the console'], {}, { acknowledge: true });

    const page = await openPage(browser, `${httpBase(router)}/`);
    await waitInPage(page, () => document.querySelector('.console .subscribe .state')?.dataset.state === 'live', null, 'the console subscribed');
    await waitInPage(page, () => window.workbench.console.view.size === 3, null, 'three events of history');
    await p.publish('com.example.t2', ['e4'], {}, { acknowledge: true, disclose_me: true });
    await p.publish('com.example.deep.t3', ['e5', 5], {}, { acknowledge: true });
    await waitInPage(page, () => window.workbench.console.view.size === 5, null, 'two live events');

    const rows = (await shownRows(page, CONSOLE_VIEW, true)).map(([, topic, pos, publisher, payload]) => [topic, pos, publisher, payload]);
    const who = `${pub.id} (${pub.welcome.authid})`;
    assert.deepEqual(rows, [
      ['com.example.t1', '1', '', 'e1'],
      ['com.example.t2', '1', '', '{"n":2} {"k":"v"}'],
      ['com.example.t1', '2', who, 'e3'],
      ['com.example.t2', '2', who, 'e4'],
      ['com.example.deep.t3', '1', '', 'e5 5'],
    ]);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  it('follows sessions and subscriptions in the meta panel, and publishes from the page', async () => {
    const page = await openPage(browser, `${httpBase(router)}/`);
    await waitInPage(page, () => document.querySelector('#link-state')?.dataset.state === 'open', null, 'the page joined');
    const me = await page.evaluate(() => window.workbench.link.session.id);
    const sessionRows = () => page.$$eval('aside.meta .sessions tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    const subscriptionOf = (uri) => page.$$eval('aside.meta .subscriptions tbody tr', (trs, uri) => {
      const tr = trs.find((t) => t.dataset.uri === uri);
      return tr ? [...tr.children].slice(1).map((td) => td.textContent) : null;
    }, uri);

    const watcher = await connect({ label: 'watcher' });
    await waitInPage(page, (id) => !!document.querySelector(`aside.meta tr[data-session="${id}"]`), watcher.id, 'the watcher in the sessions panel');
    const rows = await sessionRows();
    const ids = rows.map((r) => Number(r[0]));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'sessions in id order');
    const row = rows.find((r) => Number(r[0]) === watcher.id);
    assert.deepEqual(row.slice(1, 3), [watcher.welcome.authid, 'anonymous']);
    assert.match(row[3], /^127\.0\.0\.1:\d+$/);
    assert.ok(ids.includes(me), 'the page itself is listed');

    await watcher.session.subscribe('com.example.watch', () => {});
    await waitInPage(page, () => !!document.querySelector('aside.meta tr[data-uri="com.example.watch"]'), null, 'the subscription in the panel');
    assert.deepEqual(await subscriptionOf('com.example.watch'), ['com.example.watch', 'exact', String(watcher.id)]);
    // The page's own console subscription, marked as its own.
    assert.deepEqual(await subscriptionOf('com.example.'), ['com.example.', 'prefix', `${me} (this page)`]);

    // The publish box, prefilled: the event comes back to the console, from this page.
    const before = await page.evaluate(() => window.workbench.console.view.size);
    await page.click('.console form.publish button');
    await waitInPage(page, () => /^published \(\d+\)$/.test(document.querySelector('.console .publish .result').textContent), null, 'PUBLISHED');
    await waitInPage(page, (n) => window.workbench.console.view.size === n + 1, before, 'the published event');
    const last = (await shownRows(page, CONSOLE_VIEW, true)).at(-1);
    assert.deepEqual(last.slice(1), ['com.example.hello', '1', `${me} (${await page.evaluate(() => document.querySelector('tr.me td:nth-child(2)').textContent)})`, 'hello from the workbench']);
    if (SCREENSHOT_DIR) await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'workbench-console.png') });
    await watcher.close();
    await waitInPage(page, (id) => !document.querySelector(`aside.meta tr[data-session="${id}"]`), watcher.id, 'the watcher gone from the panel');
    await waitInPage(page, () => !document.querySelector('aside.meta tr[data-uri="com.example.watch"]'), null, 'its subscription gone');

    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
  it('resumes a pattern subscription after a cut connection, no event twice or missing', async () => {
    const proxy = await startProxy(new URL(router.ws).port);
    try {
      const pub = await connect({ label: 'publisher' });
      const send = async (from, to) => {
        for (let i = from; i <= to; i++) await pub.session.publish(`com.resume.t${i % 2}`, [`r${i}`], {}, { acknowledge: true });
      };
      const page = await openPage(browser, `http://127.0.0.1:${proxy.port}/`);
      await waitInPage(page, () => document.querySelector('.console .subscribe .state')?.dataset.state === 'live', null, 'the first subscription');
      await page.fill('.console form.subscribe input[name="topic"]', 'com.resume.');
      await page.click('.console form.subscribe button');
      await waitInPage(page, () => window.workbench.console.feed.state === 'live' && window.workbench.console.feed.o.topic === 'com.resume.',
        null, 'subscribed to com.resume.');
      await send(1, 4);
      const shown = (n) => waitInPage(page, (n) => window.workbench.console.view.size === n, n, `${n} events`,
        () => window.workbench.console.view.size);
      await shown(4);
      proxy.hold(true);
      proxy.cut();
      await waitInPage(page, () => document.querySelector('.console .subscribe .state')?.dataset.state === 'reconnecting', null, 'reconnecting');
      await send(5, 9);
      proxy.hold(false);
      await waitInPage(page, () => document.querySelector('.console .subscribe .state')?.dataset.state === 'live', null, 'live again');
      await send(10, 11);
      await shown(11);
      const rows = (await shownRows(page, CONSOLE_VIEW, true)).map(([, topic, pos, , payload]) => `${topic} ${pos} ${payload}`);
      const expected = [];
      for (let i = 1; i <= 11; i++) expected.push(`com.resume.t${i % 2} ${Math.ceil(i / 2)} r${i}`);
      assert.deepEqual(rows, expected);
      assert.equal(await page.evaluate(() => window.workbench.console.feed.repeated), 0);
      await page.context().close();
    } finally {
      await proxy.close();
    }
  });

  it('serves, on a router with another WebSocket path, a page that connects to that path', async () => {
    const config = `[transport]\nws_path = "/wamp"\n\n[[realms]]\nname = "realm1"\nanonymous = "anonymous"\n\n` +
      `[[realms.roles]]\nname = "anonymous"\n[[realms.roles.permissions]]\nuri = ""\nmatch = "prefix"\n` +
      `allow = { call = true, register = true, publish = true, subscribe = true }\n`;
    const other = await startRouter({ config });
    try {
      assert.ok(other.ws.endsWith('/wamp'), other.ws);
      const page = await openPage(browser, `${httpBase(other)}/`);
      await waitInPage(page, () => document.querySelector('#link-state')?.dataset.state === 'open', null, 'the page joined over /wamp',
        () => document.querySelector('#link-state')?.textContent);
      assert.equal(await page.getAttribute('meta[name="switchyard-ws-path"]', 'content'), '/wamp');
      await page.context().close();
    } finally {
      await other.stop();
    }
  });
});
