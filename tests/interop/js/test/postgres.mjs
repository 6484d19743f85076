// PostgreSQL for the workbench tests, as tests/support/postgres.rs does it for Rust and
// tests/interop/python/harness/postgres.py for the autobahn-python suite.
//
// - Postgres.shared() is the server of $DATABASE_URL when it is set; otherwise one
//   throwaway cluster for this test process (node --test runs each file in a process of
//   its own), made with `initdb` and started with `pg_ctl` on a free port in a temporary
//   directory (trust auth), and stopped and removed when the process exits. As root the
//   cluster runs as the `postgres` system user, since initdb refuses root. Clusters left
//   behind by a killed run are reaped by the next one (the directory names are those of
//   the Rust and Python harnesses: switchyard-pg-<pid>-…).
// - createDatabase() makes sy_js_<pid>_<random> and resolves with its URL;
//   dropDatabase(url) drops it on a $DATABASE_URL server (a throwaway cluster goes as a
//   whole).
// - psql(url, sql) runs SQL with the `psql` client, no driver needed: one call is one
//   transaction; resolves with the output of the last statement, unaligned, no headers.
//
// The binaries come from $PG_BIN, else PATH, else the newest /usr/lib/postgresql/*/bin.
// Importing this file has no side effects (node --test runs it as an empty test file).

import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

const DIR_PREFIX = 'switchyard-pg-';

export function pgBin(name) {
  if (process.env.PG_BIN) return path.join(process.env.PG_BIN, name);
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(dir, name);
    if (dir && existsSync(p) && statSync(p).isFile()) return p;
  }
  let best = null;
  try {
    for (const v of readdirSync('/usr/lib/postgresql')) {
      const p = path.join('/usr/lib/postgresql', v, 'bin', name);
      if (/^\d+$/.test(v) && existsSync(p) && (!best || Number(v) > best.v)) best = { v: Number(v), p };
    }
  } catch {}
  if (!best) throw new Error(`no ${name}: install PostgreSQL, set PG_BIN, or set DATABASE_URL`);
  return best.p;
}

let runAsCache;
/** { uid, gid } of the `postgres` user when we are root, else null. */
function runAs() {
  if (runAsCache !== undefined) return runAsCache;
  runAsCache = null;
  if (process.getuid && process.getuid() === 0) {
    const id = (flag) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    const u = id('-u');
    const g = id('-g');
    if (u.status !== 0 || g.status !== 0) {
      throw new Error('running as root needs a `postgres` user to run the cluster as');
    }
    runAsCache = { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
  }
  return runAsCache;
}

function pg(dir, name, args) {
  return spawnSync(pgBin(name), args, {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
    timeout: 120000,
    ...(runAs() || {}),
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function stopCluster(dir) {
  if (existsSync(path.join(dir, 'data', 'postmaster.pid'))) {
    pg(dir, 'pg_ctl', ['-D', path.join(dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }
}

/** Stops and removes the clusters of test processes that are gone. */
function reapStaleClusters() {
  for (const name of readdirSync(tmpdir())) {
    const m = name.startsWith(DIR_PREFIX) && /^(\d+)-/.exec(name.slice(DIR_PREFIX.length));
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // alive
    } catch (e) {
      if (e.code === 'EPERM') continue; // alive, someone else's
    }
    const dir = path.join(tmpdir(), name);
    stopCluster(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

class Cluster {
  static async create() {
    reapStaleClusters();
    const c = new Cluster();
    c.dir = mkdtempSync(path.join(tmpdir(), `${DIR_PREFIX}${process.pid}-`));
    process.on('exit', () => c.remove());
    const user = runAs();
    if (user) chownSync(c.dir, user.uid, user.gid);
    const init = pg(c.dir, 'initdb', ['-D', path.join(c.dir, 'data'), '-A', 'trust', '-U', 'postgres',
      '-E', 'UTF8', '--locale=C', '--no-sync']);
    if (init.status !== 0) throw new Error(`initdb failed:\n${init.stdout}${init.stderr}`);
    let last = '';
    // a port free a moment ago may be taken when the server binds it
    for (let i = 0; i < 5; i++) {
      c.port = await freePort();
      const options = `-k ${c.dir} -h 127.0.0.1 -p ${c.port} -F -c max_connections=100`;
      const out = pg(c.dir, 'pg_ctl', ['-D', path.join(c.dir, 'data'), '-l', path.join(c.dir, 'log'),
        '-w', '-t', '60', '-o', options, 'start']);
      if (out.status === 0) return c;
      let log = '';
      try {
        log = readFileSync(path.join(c.dir, 'log'), 'utf8');
      } catch {}
      last = `${out.stderr}\n${log}`;
    }
    c.remove();
    throw new Error(`the throwaway cluster does not start:\n${last}`);
  }

  url(database = 'postgres') {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  remove() {
    if (!this.dir) return;
    stopCluster(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
  }
}

/** `url` naming database `name` (query kept). */
export function withDatabase(url, name) {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs `sql` (one transaction) and resolves with the last statement's output, trimmed. */
export function psql(url, sql) {
  const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql];
  return new Promise((resolve, reject) => {
    execFile(pgBin('psql'), args, { encoding: 'utf8', timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql failed (${err.code}) on ${JSON.stringify(sql)}:\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
}

export class Postgres {
  constructor(adminUrl, cluster) {
    this.adminUrl = adminUrl;
    this.cluster = cluster;
  }

  /** $DATABASE_URL's server, else this process's throwaway cluster (made once). */
  static shared() {
    if (!Postgres._shared) {
      Postgres._shared = process.env.DATABASE_URL
        ? Promise.resolve(new Postgres(process.env.DATABASE_URL, null))
        : Cluster.create().then((c) => new Postgres(c.url(), c));
    }
    return Postgres._shared;
  }

  async createDatabase() {
    const name = `sy_js_${process.pid}_${randomBytes(6).toString('hex')}`;
    await psql(this.adminUrl, `create database ${name}`);
    return withDatabase(this.adminUrl, name);
  }

  async dropDatabase(url) {
    if (this.cluster) return;
    const name = new URL(url).pathname.slice(1);
    await psql(this.adminUrl, `drop database if exists ${name} with (force)`);
  }
}
