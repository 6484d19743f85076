// The workbench realm for the interop tests: a database, a router on it, the graph.
// The autobahn-python suite's harness/workbench.py does the same.
//
//   workbenchSuite('name', (test, wb) => {
//     test('…', async (ctx, wb) => {        // the graph is LAB, applied by the router
//       const alice = await ctx.connect(wb.user(await wb.token('alice')));
//       const seq = await wb.sql("delete from grants where …; select max(seq) from switchyard_graph_changes");
//       await wb.settle(Number(seq));         // the router applied it
//     });
//   });
//
// One database per test file (created, migrated with `switchyard migrate`, dropped on a
// $DATABASE_URL server) and one router on it, configured with switchyard.toml
// (realms_dir = "realms"), realms/workbench.toml (tests/interop/workbench-realm.toml with
// database_url under [graph]) and policies/workbench.toml (tests/interop/workbench-policy.toml).
// "Applied" is the router's own word: switchyard_graph_applied_seq{realm="workbench"} on
// /metrics, the last change-log seq whose re-checks are done.
//
// Importing this file has no side effects (node --test runs it as an empty test file).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import { routerBinary, routerSuite, sleep } from './helpers.mjs';
import { Postgres, psql } from './postgres.mjs';

const REALM_TEMPLATE = new URL('../../workbench-realm.toml', import.meta.url);
const POLICY = new URL('../../workbench-policy.toml', import.meta.url);

export const SERVICE_TICKETS = { 'controller-1': 'controller-1-secret', 'dispatcher-1': 'dispatcher-1-secret' };

// The graph of tests/workbench/main.rs: users alice, bob, carol (admin); role `lab` with
// alice and bob as readers; project `p1` shared with `lab` at read, owning containers c1
// and c2; c3 owned by carol.
export const LAB = `
insert into principals (id, kind) values ('alice', 'user'), ('bob', 'user'), ('lab', 'role'), ('p1', 'project');
insert into principals (id, kind, is_admin) values ('carol', 'user', true);
insert into objects (id, kind, owner_id) values ('c1', 'container', 'p1'), ('c2', 'container', 'p1'), ('c3', 'container', 'carol');
insert into grants (tail_id, head_id, level) values ('alice', 'lab', 1), ('bob', 'lab', 1), ('lab', 'p1', 1);
`;

export const CHANGES_MAX = 'select max(seq) from switchyard_graph_changes';
const APPLIED = 'switchyard_graph_applied_seq{realm="workbench"} ';
const ONLINE = 'switchyard_graph_online{realm="workbench"} 1';

export function tokenSha256(token) {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** The router's switchyard.toml and its realm and policy files. */
export function routerFiles(databaseUrl) {
  const realm = readFileSync(REALM_TEMPLATE, 'utf8');
  if (!realm.includes('\n[graph]\n')) throw new Error('tests/interop/workbench-realm.toml has no [graph] table');
  return {
    config: 'realms_dir = "realms"\n',
    files: {
      'realms/workbench.toml': realm.replace('\n[graph]\n', `\n[graph]\ndatabase_url = "${databaseUrl}"\n`),
      'policies/workbench.toml': readFileSync(POLICY, 'utf8'),
    },
  };
}

function httpGet(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url}: timed out`)));
  });
}

export class Workbench {
  constructor() {
    this.pg = null;
    this.url = null;
    this.router = null; // set by workbenchSuite for each test
  }

  /** A fresh database, migrated; resolves with the router's configuration for it. */
  async prepare() {
    this.pg = await Postgres.shared();
    this.url = await this.pg.createDatabase();
    await this.cli('migrate');
    return routerFiles(this.url);
  }

  async finish() {
    if (this.pg && this.url) await this.pg.dropDatabase(this.url);
  }

  // ------------------------------------------------------------------ the CLI

  cli(...args) {
    const cmd = [...args, '--database-url', this.url];
    return new Promise((resolve, reject) => {
      execFile(routerBinary(), cmd, { encoding: 'utf8', timeout: 30000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`switchyard ${cmd.join(' ')} failed (${err.code}):\n${stderr}`));
        else resolve({ stdout, stderr });
      });
    });
  }

  /** `switchyard token create --user USER [--ttl TTL]`: the token. */
  async token(user, ttl = null) {
    const { stdout } = await this.cli('token', 'create', '--user', user, ...(ttl ? ['--ttl', ttl] : []));
    return stdout.trim();
  }

  /** `switchyard token revoke TOKEN`: what it says on stderr. */
  async revokeToken(token) {
    const { stderr } = await this.cli('token', 'revoke', token);
    return stderr.trim();
  }

  /** connect() options for a user's session by token (authid left out unless given). */
  user(token, opts = {}) {
    return { realm: 'workbench', ticket: token, ...opts };
  }

  /** connect() options for a static service principal. */
  service(authid, opts = {}) {
    return { realm: 'workbench', authid, ticket: SERVICE_TICKETS[authid], ...opts };
  }

  // ------------------------------------------------------------------ the graph

  /** Runs `statements` in one transaction, as the platform would; resolves with the
   *  output of the last one. */
  sql(statements) {
    return psql(this.url, statements);
  }

  async lastSeq() {
    return Number(await this.sql('select coalesce(max(seq), 0) from switchyard_graph_changes'));
  }

  /** Empties the graph (a TRUNCATE: the router drops its whole cache), loads LAB and
   *  waits until the router has applied it. */
  async reset() {
    const seq = await this.sql(`truncate grants, read_via, tokens, user_keys, objects, principals; ${LAB}; ${CHANGES_MAX}`);
    await this.settle(Number(seq));
  }

  // ------------------------------------------------------------------ the router

  metrics() {
    const port = new URL(this.router.ws).port;
    return httpGet(`http://127.0.0.1:${port}/metrics`);
  }

  async metric(name) {
    const line = (await this.metrics()).split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    if (!line) throw new Error(`no ${name} on /metrics`);
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }

  async appliedSeq() {
    const line = (await this.metrics()).split('\n').find((l) => l.startsWith(APPLIED));
    if (!line) throw new Error(`no ${APPLIED.trim()} on /metrics`);
    return Number(line.slice(APPLIED.length));
  }

  async waitOnline(ms = 10000) {
    const deadline = Date.now() + ms;
    while (!(await this.metrics()).includes(ONLINE)) {
      if (Date.now() > deadline) throw new Error(`the workbench realm did not come online within ${ms} ms`);
      await sleep(20);
    }
  }

  /** Waits until the router has applied change `seq` (default: every change committed
   *  so far); resolves with the applied seq. */
  async settle(seq = null, ms = 5000) {
    if (seq === null) seq = await this.lastSeq();
    const deadline = Date.now() + ms;
    for (;;) {
      const applied = await this.appliedSeq();
      if (applied >= seq) return applied;
      if (Date.now() > deadline) throw new Error(`the router did not apply change ${seq} within ${ms} ms (applied ${applied})`);
      await sleep(5);
    }
  }
}

/**
 * routerSuite() on a workbench: body(test, wb) registers tests with
 * test(name, [opts], async (ctx, wb) => ...); each starts from the LAB graph.
 */
export function workbenchSuite(name, opts, body) {
  if (typeof opts === 'function') {
    body = opts;
    opts = {};
  }
  const wb = new Workbench();
  routerSuite(name, { ...opts, prepare: () => wb.prepare(), finish: () => wb.finish() }, (test) => {
    const wbTest = (tname, topts, fn) => {
      if (typeof topts === 'function') {
        fn = topts;
        topts = {};
      }
      test(tname, topts, async (ctx) => {
        if (wb.router !== ctx.router) {
          wb.router = ctx.router;
          await wb.waitOnline();
        }
        await wb.reset();
        return fn(ctx, wb);
      });
    };
    body(wbTest, wb);
  });
}
