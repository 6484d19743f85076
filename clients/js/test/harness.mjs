// What the switchyard-tail tests run against: the real router binary
// ($SWITCHYARD_BIN, else target/debug/switchyard), a TCP proxy whose cut() resets
// every connection through it, an autobahn-js publisher, and switchyard-tail itself
// as a child process whose stdout and stderr are collected line by line.
//
// node --test runs every file under test/; importing this one has no side effects,
// so it counts as an empty test file.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const autobahn = require('autobahn');
autobahn.log.warn = () => {};

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const TAIL = path.resolve(HERE, '../bin/switchyard-tail.mjs');
export const REPO = path.resolve(HERE, '../../..');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 10 ms; rejects with `what()` after `ms`. */
export async function until(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await sleep(10);
  }
}

const children = new Set(); // routers and tails, killed when the test process exits
const tails = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Kills the tails still running: a failed test leaves its tail behind, which would
 *  keep the test process alive (run it afterEach). */
export function killTails() {
  for (const t of tails) t.kill('SIGKILL');
}

export function routerBinary() {
  return path.resolve(process.env.SWITCHYARD_BIN || path.join(REPO, 'target/debug/switchyard'));
}

/**
 * Starts `switchyard serve` on an ephemeral port; resolves once it announced its
 * listeners. `config`: TOML for --config; `files`: more files beside it ({ rel: text }).
 */
export async function startRouter({ config = null, files = {} } = {}) {
  const args = ['serve', '--listen', '127.0.0.1:0', '--rawsocket', 'off'];
  let dir = null;
  if (config !== null) {
    dir = mkdtempSync(path.join(tmpdir(), 'switchyard-tail-'));
    for (const [rel, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      writeFileSync(path.join(dir, rel), text);
    }
    writeFileSync(path.join(dir, 'switchyard.toml'), config);
    args.push('--config', path.join(dir, 'switchyard.toml'));
  }
  const proc = spawn(routerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let timer;
  const ready = await Promise.race([
    new Promise((resolve) => proc.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.includes('"listening"'));
      if (line) resolve(JSON.parse(line));
    })),
    exited.then((e) => { throw new Error(`${routerBinary()} exited (${JSON.stringify(e)}) before listening:\n${stderr}`); }),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${routerBinary()} did not announce its listeners in 15 s:\n${stderr}`)), 15000);
    }),
  ]).finally(() => clearTimeout(timer));
  const url = new URL(ready.websocket);
  return {
    ws: ready.websocket,
    port: Number(url.port),
    stderr: () => stderr,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
      children.delete(proc);
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A TCP proxy to the router: `ws` is the URL through it; cut() resets every
 *  connection it carries (no close frame, no GOODBYE: a lost connection). */
export async function cuttableProxy(router) {
  const pairs = new Set();
  const server = net.createServer((down) => {
    const up = net.connect(router.port, '127.0.0.1');
    const pair = [down, up];
    pairs.add(pair);
    down.pipe(up);
    up.pipe(down);
    for (const [a, b] of [[down, up], [up, down]]) {
      a.on('error', () => b.destroy());
      a.on('close', () => {
        b.destroy();
        pairs.delete(pair);
      });
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    ws: `ws://127.0.0.1:${server.address().port}/ws`,
    cut() {
      for (const pair of pairs) for (const s of pair) s.resetAndDestroy();
      pairs.clear();
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

/** An autobahn-js session (for publishing); `opts`: realm, authid, ticket. */
export function connect(url, { realm = 'realm1', authid, ticket } = {}) {
  return new Promise((resolve, reject) => {
    const connection = new autobahn.Connection({
      url,
      realm,
      authid,
      authmethods: ticket === undefined ? undefined : ['ticket'],
      onchallenge: () => ticket,
      max_retries: 0,
      retry_if_unreachable: false,
      use_es6_promises: true,
    });
    connection.onopen = (session) => resolve({ session, close: () => connection.close() });
    connection.onclose = (reason, details) => {
      reject(new Error(`session to ${url} closed before it was joined: ${reason} ${JSON.stringify(details)}`));
      return true;
    };
    connection.open();
  });
}

/** Publishes each line as an acknowledged event (args [line]), in order. */
export async function publishLines(session, topic, lines) {
  for (const line of lines) await session.publish(topic, [line], {}, { acknowledge: true });
}

/** ['line 1', ..., 'line n'] for from..to inclusive. */
export const lines = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}`);

/**
 * Runs switchyard-tail with `args`. The handle collects complete lines:
 * out() / err() (arrays), waitOut(n) / waitErr(pattern) to wait for them,
 * stop(signal) and exited (resolves with { code, signal, out, err }).
 */
export function runTail(args, { env = {} } = {}) {
  // The caller's own ticket must not log the tail in.
  const { SWITCHYARD_TICKET, ...inherited } = process.env;
  const proc = spawn(process.execPath, [TAIL, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...inherited, ...env } });
  children.add(proc);
  tails.add(proc);
  const buf = { out: '', err: '' };
  proc.stdout.on('data', (d) => (buf.out += d));
  proc.stderr.on('data', (d) => (buf.err += d));
  const complete = (s) => s.split('\n').slice(0, -1);
  const t = {
    out: () => complete(buf.out),
    err: () => complete(buf.err),
    describe: () => `switchyard-tail ${args.join(' ')}\n--- stdout ---\n${buf.out}\n--- stderr ---\n${buf.err}`,
    waitOut: (n, ms = 5000) => until(() => t.out().length >= n, ms, () => `${n} line(s) on stdout; ${t.describe()}`),
    waitErr: (pattern, ms = 5000) => until(() => t.err().some((l) => pattern.test(l)), ms, () => `${pattern} on stderr; ${t.describe()}`),
    stop: (signal = 'SIGTERM') => proc.kill(signal),
  };
  t.exited = new Promise((resolve) => proc.on('close', (code, signal) => {
    children.delete(proc);
    tails.delete(proc);
    resolve({ code, signal, out: t.out(), err: t.err(), raw: buf });
  }));
  /** Waits for the exit (killing it after `ms`). */
  t.result = async (ms = 10000) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    const r = await t.exited;
    clearTimeout(timer);
    return r;
  };
  return t;
}
