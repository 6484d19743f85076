// switchyard-tail on the workbench realm: a user logs in with an API token and reads
// the containers the permission graph lets her read; a token that is refused, a
// container she may not read, and a permission withdrawn while she follows end the
// tail with a message.
//
// The database, the realm and its policy are the interop suites' (PostgreSQL from
// tests/interop/js/test/postgres.mjs: $DATABASE_URL's server, else a throwaway
// cluster; tests/interop/workbench-realm.toml and workbench-policy.toml). The graph is
// written before the router starts: alice reads containers c1 and c2 through role
// `lab`; c3 is carol's. Events come from the static principal controller-1.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { Postgres, psql } from '../../../tests/interop/js/test/postgres.mjs';
import { REPO, connect, killTails, lines, publishLines, routerBinary, runTail, sleep, startRouter } from './harness.mjs';

const GRAPH = `
insert into principals (id, kind) values ('alice', 'user'), ('lab', 'role'), ('p1', 'project');
insert into principals (id, kind, is_admin) values ('carol', 'user', true);
insert into objects (id, kind, owner_id) values ('c1', 'container', 'p1'), ('c3', 'container', 'carol');
insert into grants (tail_id, head_id, level) values ('alice', 'lab', 1), ('lab', 'p1', 1);
`;

/** The router's files: the interop realm with this database, and its policy. */
function routerFiles(databaseUrl) {
  const realm = readFileSync(path.join(REPO, 'tests/interop/workbench-realm.toml'), 'utf8');
  if (!realm.includes('\n[graph]\n')) throw new Error('tests/interop/workbench-realm.toml has no [graph] table');
  return {
    config: 'realms_dir = "realms"\n',
    files: {
      'realms/workbench.toml': realm.replace('\n[graph]\n', `\n[graph]\ndatabase_url = "${databaseUrl}"\n`),
      'policies/workbench.toml': readFileSync(path.join(REPO, 'tests/interop/workbench-policy.toml'), 'utf8'),
    },
  };
}

function metrics(router) {
  return new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${router.port}/metrics`, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** Waits until the router reached the realm's database (its own word, on /metrics). */
async function waitOnline(router, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await metrics(router)).includes('switchyard_graph_online{realm="workbench"} 1')) {
    if (Date.now() > deadline) throw new Error(`the workbench realm did not come online within ${ms} ms:\n${router.stderr()}`);
    await sleep(20);
  }
}

describe('switchyard-tail on the workbench realm', { timeout: 60000 }, () => {
  let pg;
  let db;
  let router;
  let controller;
  let token;
  const cli = (...args) => execFileSync(routerBinary(), [...args, '--database-url', db], { encoding: 'utf8' }).trim();

  before(async () => {
    pg = await Postgres.shared();
    db = await pg.createDatabase();
    cli('migrate');
    await psql(db, GRAPH);
    token = cli('token', 'create', '--user', 'alice');
    const { config, files } = routerFiles(db);
    router = await startRouter({ config, files });
    await waitOnline(router);
    controller = await connect(router.ws, { realm: 'workbench', authid: 'controller-1', ticket: 'controller-1-secret' });
  });
  afterEach(killTails);
  after(async () => {
    if (controller) controller.close();
    if (router) await router.stop();
    if (pg && db) await pg.dropDatabase(db);
  });

  const tail = (args, env) => runTail(['--url', router.ws, '--realm', 'workbench', ...args], { env });

  it('a token reads a container it may read: history, then live', async () => {
    await publishLines(controller.session, 'containers.c1.logs', lines(1, 4));
    const once = await tail(['--ticket', token, '--topic', 'containers.c1.logs', '--last', '2']).result();
    assert.deepEqual([once.code, once.out, once.err], [0, lines(3, 4), []]);
    // the token from the environment, as the README suggests (it stays out of `ps`)
    const t = tail(['--topic', 'containers.c1.logs', '--last', '1', '-f'], { SWITCHYARD_TICKET: token });
    await t.waitOut(1);
    await publishLines(controller.session, 'containers.c1.logs', lines(5, 6));
    await t.waitOut(3);
    t.stop();
    const r = await t.result();
    assert.deepEqual([r.code, r.out, r.err], [0, lines(4, 6), []]);
  });

  it('refused: a wrong token, a container she may not read', async () => {
    const bad = await tail(['--ticket', 'sy_nonsense', '--topic', 'containers.c1.logs']).result();
    assert.deepEqual([bad.code, bad.out], [1, []]);
    assert.deepEqual(bad.err, ['switchyard-tail: the router refused to join realm workbench: wamp.error.authentication_failed: unknown token']);
    const c3 = await tail(['--ticket', token, '--topic', 'containers.c3.logs']).result();
    assert.deepEqual([c3.code, c3.out], [1, []]);
    assert.deepEqual(c3.err, ["switchyard-tail: cannot subscribe to containers.c3.logs: wamp.error.not_authorized: session is not authorized to subscribe 'containers.c3.logs'"]);
  });

  it('a permission withdrawn while following ends the tail', async () => {
    await publishLines(controller.session, 'containers.c1.logs', ['before the withdrawal']);
    const t = tail(['--ticket', token, '--topic', 'containers.c1.logs', '--last', '1', '-f']);
    await t.waitOut(1);
    await psql(db, "delete from grants where tail_id = 'alice' and head_id = 'lab'");
    const r = await t.result(5000);
    assert.deepEqual([r.code, r.out], [1, ['before the withdrawal']]);
    assert.deepEqual(r.err, ['switchyard-tail: the router ended the subscription to containers.c1.logs: wamp.error.not_authorized']);
  });
});
