// Shared harness for the autobahn-js interoperability tests.
//
// - startRouter(): spawns `switchyard serve` on ephemeral ports, waits for its one-line
//   JSON "listening" announcement and keeps its stderr for failure reports.
// - routerSuite(): a describe() block with one router for all its tests; each test gets
//   a context that opens autobahn sessions, closes them afterwards and, on failure,
//   appends the router's stderr and the raw WAMP traffic of every session it opened.
// - openClient(): one autobahn Connection over WebSocket (json/msgpack/cbor) or
//   RawSocket (json only: the only serializer autobahn-js implements for RawSocket),
//   with a tap that records every WAMP message sent and received (decoded form).
//
// This file is also picked up by `node --test test/` (every .mjs file under a test/
// directory is run); importing it has no side effects, so it counts as an empty file.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import net from 'node:net';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';

const require = createRequire(import.meta.url);
export const autobahn = require('autobahn');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEBUG = !!process.env.SWITCHYARD_TEST_DEBUG;

// autobahn logs "connection closed" etc. through log.warn: keep the test output clean.
autobahn.log.warn = (...a) => { if (DEBUG) console.error('[autobahn]', ...a); };

// ---------------------------------------------------------------------------------
// WAMP constants

export const MSG = {
  HELLO: 1, WELCOME: 2, ABORT: 3, CHALLENGE: 4, AUTHENTICATE: 5, GOODBYE: 6, ERROR: 8,
  PUBLISH: 16, PUBLISHED: 17, SUBSCRIBE: 32, SUBSCRIBED: 33, UNSUBSCRIBE: 34,
  UNSUBSCRIBED: 35, EVENT: 36, CALL: 48, CANCEL: 49, RESULT: 50, REGISTER: 64,
  REGISTERED: 65, UNREGISTER: 66, UNREGISTERED: 67, INVOCATION: 68, INTERRUPT: 69,
  YIELD: 70,
};

// The transport/serializer combinations autobahn-js can do in Node.
export const VARIANTS = [
  { name: 'ws-json', transport: 'websocket', serializer: 'json' },
  { name: 'ws-msgpack', transport: 'websocket', serializer: 'msgpack' },
  { name: 'ws-cbor', transport: 'websocket', serializer: 'cbor' },
  { name: 'rawsocket-json', transport: 'rawsocket', serializer: 'json' },
];

export const BROKER_FEATURES = [
  'publisher_identification',
  'publisher_exclusion',
  'subscriber_blackwhite_listing',
  'pattern_based_subscription',
  'subscription_revocation',
  // meta.test.mjs
  'session_meta_api',
  'subscription_meta_api',
  // tests/passthru.rs (Rust client)
  'payload_passthru_mode',
  // Announced by realms that store events (realm1 stores every topic): replay.test.mjs.
  'event_history',
  'event_retention',
];
export const DEALER_FEATURES = [
  'caller_identification',
  'progressive_call_results',
  'call_canceling',
  'registration_revocation',
  // rpc_advanced.test.mjs
  'shared_registration',
  'pattern_based_registration',
  'call_timeout',
  // meta.test.mjs
  'session_meta_api',
  'registration_meta_api',
  'testament_meta_api',
  'payload_passthru_mode',
];

// The TOML configuration shared with the autobahn-python suite (ticket principal
// alice/user; the python suite also uses bob/reader).
export const AUTH_CONFIG = readFileSync(new URL('../../interop-config.toml', import.meta.url), 'utf8');

// ---------------------------------------------------------------------------------
// Small async utilities

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class TimeoutError extends Error {}

/** Resolves/rejects like `promise`, or rejects with TimeoutError after `ms`. */
export function within(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), t]).finally(() => clearTimeout(timer));
}

/** Waits for `promise` to reject and returns the rejection value. */
export async function expectReject(promise, ms, what) {
  let value;
  try {
    value = await within(promise, ms, what);
  } catch (e) {
    if (e instanceof TimeoutError) throw e;
    return e;
  }
  throw new Error(`expected rejection (${what}), but it resolved with ${show(value)}`);
}

/** Compact printable form of a decoded WAMP value (binary shown as hex). */
export function show(v, max = 400) {
  let s;
  try {
    s = JSON.stringify(v, function (k, val) {
      const orig = this[k];
      if (orig instanceof Uint8Array) {
        const hex = Buffer.from(orig.buffer, orig.byteOffset, orig.byteLength).toString('hex');
        return `<bin ${orig.byteLength}B ${hex.slice(0, 64)}${hex.length > 64 ? '…' : ''}>`;
      }
      if (typeof val === 'string' && val.length > 200) return `${val.slice(0, 60)}…(${val.length} chars)`;
      if (typeof val === 'bigint') return `${val}n`;
      if (val instanceof Map) return Object.fromEntries(val);
      return val;
    });
  } catch (e) {
    s = String(v);
  }
  if (s === undefined) s = String(v);
  return s.length > max ? s.slice(0, max) + '…' : s;
}

/** Deep copy with every Uint8Array turned into a Buffer, for deepStrictEqual. */
export function normBin(v) {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return v.map(normBin);
  if (v instanceof Map) {
    const o = {};
    for (const [k, x] of v) o[k] = normBin(x);
    return o;
  }
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = normBin(v[k]);
    return o;
  }
  return v;
}

/** Collects events (or anything) and lets a test wait for a count. */
export class Inbox {
  constructor(label = 'inbox') {
    this.label = label;
    this.items = [];
    this._waiters = [];
    // autobahn subscription handler signature: (args, kwargs, details: autobahn.Event)
    this.handler = (args, kwargs, details) => this.push({ args, kwargs, details });
  }

  push(item) {
    this.items.push(item);
    this._waiters = this._waiters.filter((w) => {
      if (this.items.length >= w.n) {
        w.resolve(this.items.slice(0, w.n));
        return false;
      }
      return true;
    });
  }

  /** Resolves with the first n items once there are n of them. */
  waitFor(n, ms = 3000) {
    if (this.items.length >= n) return Promise.resolve(this.items.slice(0, n));
    const p = new Promise((resolve) => this._waiters.push({ n, resolve }));
    return within(p, ms, `${this.label}: waiting for ${n} item(s), have ${this.items.length}: ` +
      show(this.items.map((i) => i.args), 600)).catch((e) => {
      e.message = `${this.label}: expected ${n} item(s) within ${ms} ms, got ${this.items.length}: ` +
        show(this.items.map((i) => ({ args: i.args, kwargs: i.kwargs })), 800);
      throw e;
    });
  }

  args() {
    return this.items.map((i) => i.args);
  }
}

/**
 * A deferred factory for autobahn (`use_deferred`) whose promise is a native Promise
 * and which records progressive results: `promise.progress` is the list of values
 * passed to notify(), `promise.onprogress` an optional callback.
 */
function progressDeferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => {
    d.resolve = resolve;
    d.reject = reject;
  });
  d.promise.progress = [];
  d.promise.onprogress = null;
  d.notify = (v) => {
    d.promise.progress.push(v);
    if (d.promise.onprogress) d.promise.onprogress(v);
  };
  return d;
}

// ---------------------------------------------------------------------------------
// JSON with the WAMP binary convention: bytes <-> "\u0000" + base64

export function jsonBinReplacer(key, value) {
  const orig = this[key];
  if (orig instanceof Uint8Array) {
    return '\u0000' + Buffer.from(orig.buffer, orig.byteOffset, orig.byteLength).toString('base64');
  }
  return value;
}

export function jsonBinReviver(key, value) {
  if (typeof value === 'string' && value.length > 0 && value.charCodeAt(0) === 0) {
    return Buffer.from(value.slice(1), 'base64');
  }
  return value;
}

function makeSerializer(name, binary) {
  const S = autobahn.serializer;
  switch (name) {
    case 'json':
      return binary ? new S.JSONSerializer(jsonBinReplacer, jsonBinReviver) : new S.JSONSerializer();
    case 'msgpack':
      if (!S.MsgpackSerializer) throw new Error('autobahn-js: msgpack serializer not available');
      return new S.MsgpackSerializer();
    case 'cbor':
      if (!S.CBORSerializer) throw new Error('autobahn-js: cbor serializer not available');
      return new S.CBORSerializer();
    default:
      throw new Error(`unknown serializer ${name}`);
  }
}

// ---------------------------------------------------------------------------------
// Tapping transports: record decoded messages, capture the TCP socket.

class CapturingAgent extends http.Agent {
  constructor(onSocket) {
    super({ keepAlive: false });
    this._onSocket = onSocket;
  }

  createConnection(options) {
    const s = net.createConnection(options);
    this._onSocket(s);
    return s;
  }
}

/** The same for wss://: `tlsOptions` (e.g. { ca }) reach tls.connect through the agent. */
class CapturingTlsAgent extends https.Agent {
  constructor(onSocket, tlsOptions) {
    super({ keepAlive: false, ...tlsOptions });
    this._onSocket = onSocket;
  }

  createConnection(options) {
    const s = tls.connect(options);
    this._onSocket(s);
    return s;
  }
}

function installTap(transport, tap) {
  let userOnMessage = () => {};
  Object.defineProperty(transport, 'onmessage', {
    configurable: true,
    get() {
      return (msg) => {
        tap.rx.push(msg);
        tap.log.push(['<-', msg]);
        userOnMessage(msg);
      };
    },
    set(f) {
      userOnMessage = f;
    },
  });
  let userOnClose = () => {};
  Object.defineProperty(transport, 'onclose', {
    configurable: true,
    get() {
      return (evt) => {
        tap.closeEvent = evt; // {code, reason, wasClean} as the transport saw it
        userOnClose(evt);
      };
    },
    set(f) {
      userOnClose = f;
    },
  });
  const send = transport.send;
  transport.send = (msg) => {
    if (tap.onsend) msg = tap.onsend(msg) || msg;
    tap.tx.push(msg);
    tap.log.push(['->', msg]);
    return send(msg);
  };
}

function TapWebSocketFactory(options) {
  const tap = options.__tap;
  const onSocket = (s) => tap.onSocket(s);
  options.agent = options.tls ? new CapturingTlsAgent(onSocket, options.tls) : new CapturingAgent(onSocket);
  this._inner = new (autobahn.transports.get('websocket'))(options);
  this._tap = tap;
}
TapWebSocketFactory.prototype.type = 'websocket';
TapWebSocketFactory.prototype.create = function () {
  const tr = this._inner.create();
  installTap(tr, this._tap);
  return tr;
};

function TapRawSocketFactory(options) {
  this._inner = new (autobahn.transports.get('rawsocket'))(options);
  this._tap = options.__tap;
}
TapRawSocketFactory.prototype.type = 'rawsocket';
TapRawSocketFactory.prototype.create = function () {
  // autobahn's rawsocket transport calls require('net').connect() synchronously
  // inside create(): capture the socket so tests can reset it.
  const orig = net.connect;
  net.connect = (...a) => {
    const s = orig.apply(net, a);
    this._tap.onSocket(s);
    return s;
  };
  let tr;
  try {
    tr = this._inner.create();
  } finally {
    net.connect = orig;
  }
  installTap(tr, this._tap);
  return tr;
};

autobahn.transports.register('tap-websocket', TapWebSocketFactory);
autobahn.transports.register('tap-rawsocket', TapRawSocketFactory);

// ---------------------------------------------------------------------------------
// Router process

const liveRouters = new Set();
process.on('exit', () => {
  for (const p of liveRouters) {
    try {
      p.kill('SIGKILL');
    } catch {}
  }
});

export function routerBinary() {
  if (process.env.SWITCHYARD_BIN) return path.resolve(process.env.SWITCHYARD_BIN);
  return path.resolve(HERE, '../../../../target/debug/switchyard');
}

/**
 * Starts `switchyard serve` and resolves once it printed its "listening" line.
 * `config`: TOML text written to a temporary file and passed with --config.
 * `files`: more files the configuration names (realm and policy files), as
 * { 'relative/path': text }, written into the same temporary folder.
 */
export async function startRouter({ config = null, files = {}, startTimeout = 15000 } = {}) {
  const bin = routerBinary();
  const args = ['serve', '--listen', '127.0.0.1:0', '--rawsocket', '127.0.0.1:0'];
  let dir = null;
  if (config !== null) {
    dir = mkdtempSync(path.join(tmpdir(), 'switchyard-js-'));
    for (const [rel, text] of Object.entries(files)) {
      const f = path.join(dir, rel);
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(f, text);
    }
    const file = path.join(dir, 'switchyard.toml');
    writeFileSync(file, config);
    args.push('--config', file);
  }
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  liveRouters.add(proc);

  const r = {
    bin,
    args,
    proc,
    ready: null,
    ws: null,
    rawsocket: null,
    exited: null, // {code, signal} once exited
    _stderr: '',
    _stdout: '',
    stderr() {
      return this._stderr;
    },
    describeExit() {
      return this.exited ? `router exited (code ${this.exited.code}, signal ${this.exited.signal})` : 'router running';
    },
    async stop(ms = 5000) {
      if (!this.exited) {
        proc.kill('SIGTERM');
        try {
          await within(this._exitPromise, ms, 'router exit after SIGTERM');
        } catch {
          proc.kill('SIGKILL');
          await this._exitPromise;
        }
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      return this.exited;
    },
  };

  const MAX_STDERR = 4 * 1024 * 1024;
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    if (DEBUG) process.stderr.write(d);
    // eslint-disable-next-line no-control-regex
    if (r._stderr.length < MAX_STDERR) r._stderr += d.replace(/\x1b\[[0-9;]*m/g, '');
  });
  r._exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      r.exited = { code, signal };
      liveRouters.delete(proc);
      resolve(r.exited);
    });
  });

  const ready = new Promise((resolve, reject) => {
    proc.on('error', (e) => reject(new Error(`cannot start router ${bin}: ${e.message}`)));
    proc.stdout.setEncoding('utf8');
    let buf = '';
    proc.stdout.on('data', (d) => {
      r._stdout += d;
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let j;
        try {
          j = JSON.parse(line);
        } catch {
          reject(new Error(`router printed a non-JSON line on stdout: ${line}`));
          continue;
        }
        if (j && j.event === 'listening') resolve(j);
      }
    });
    r._exitPromise.then((ex) =>
      reject(new Error(`router exited before listening (code ${ex.code}, signal ${ex.signal})`)));
  });

  try {
    r.ready = await within(ready, startTimeout, `router "listening" line on stdout (${bin} ${args.join(' ')})`);
  } catch (e) {
    proc.kill('SIGKILL');
    await r._exitPromise;
    e.message += `\n--- router stdout ---\n${r._stdout}\n--- router stderr ---\n${tail(r._stderr, 60)}`;
    throw e;
  }
  r.ws = r.ready.websocket;
  const rs = r.ready.rawsocket;
  if (typeof rs === 'string') {
    const i = rs.lastIndexOf(':');
    r.rawsocket = { host: rs.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(rs.slice(i + 1)) };
  }
  return r;
}

function tail(s, lines) {
  const a = s.split('\n');
  if (a.length <= lines) return s;
  return `…(${a.length - lines} earlier lines)\n` + a.slice(-lines).join('\n');
}

// ---------------------------------------------------------------------------------
// Sessions

export class ConnectError extends Error {
  constructor(message, reason, details, client) {
    super(message);
    this.reason = reason; // autobahn's transport-level reason: closed/lost/unreachable
    this.details = details; // details.reason: the WAMP reason URI (ABORT/GOODBYE)
    this.client = client;
  }
}

let clientCounter = 0;

/**
 * Opens an autobahn session. Options:
 *   transport: 'websocket' | 'rawsocket'; serializer: 'json' | 'msgpack' | 'cbor'
 *   variant: one of VARIANTS (sets transport and serializer)
 *   realm (default realm1), authid, ticket (implies authmethods ['ticket']), authmethods
 *   authextra: HELLO.Details.authextra; onchallenge(session, method, extra): the answer to
 *     a CHALLENGE other than a ticket's (e.g. autobahn.auth_cra.sign(key, extra.challenge))
 *   binary: for json over WebSocket, convert bytes per the WAMP convention (default true)
 *   cancelCapable: announce callee.features.call_canceling and record INTERRUPTs
 *   label: name used in failure dumps
 * Resolves with a client: { session, connection, id, welcome, rx, tx, closed, ... }.
 * Rejects with ConnectError if the connection closes before the session is joined.
 */
export function openClient(router, opts = {}) {
  const v = opts.variant || {};
  const transport = opts.transport || v.transport || 'websocket';
  const serializer = opts.serializer || v.serializer || 'json';
  const binary = opts.binary !== undefined ? opts.binary : true;
  const label = opts.label || `c${++clientCounter}`;

  const client = {
    label: `${label}[${transport}/${serializer}${opts.authid ? '/' + opts.authid : ''}]`,
    transport,
    serializer,
    rx: [],
    tx: [],
    log: [], // ['->' | '<-', msg] in order
    violations: [], // autobahn "protocol violation" reasons (router sent something invalid)
    userErrors: [],
    internalErrors: [],
    interrupts: [],
    onInterrupt: null,
    socket: null,
    session: null,
    connection: null,
    id: null,
    welcome: null,
    closeInfo: null,
  };

  const tap = {
    rx: client.rx,
    tx: client.tx,
    log: client.log,
    onSocket: (s) => {
      client.socket = s;
    },
    onsend: null,
  };
  if (opts.cancelCapable) {
    tap.onsend = (msg) => {
      if (msg[0] !== MSG.HELLO) return msg;
      // do not touch autobahn's shared WAMP_FEATURES object: copy it
      const details = JSON.parse(JSON.stringify(msg[2]));
      details.roles.callee.features.call_canceling = true;
      return [msg[0], msg[1], details];
    };
  }

  let topts;
  if (transport === 'websocket') {
    if (!router.ws) throw new Error('router announced no websocket listener');
    topts = { type: 'tap-websocket', url: opts.url || router.ws, serializers: [makeSerializer(serializer, binary)] };
    // wss://: options for tls.connect, such as { ca } to trust a test CA.
    if (opts.tls) topts.tls = opts.tls;
  } else if (transport === 'rawsocket') {
    if (serializer !== 'json') throw new Error('autobahn-js RawSocket supports only json');
    if (!router.rawsocket) throw new Error('router announced no rawsocket listener');
    topts = { type: 'tap-rawsocket', host: router.rawsocket.host, port: router.rawsocket.port };
  } else {
    throw new Error(`unknown transport ${transport}`);
  }
  topts.__tap = tap;

  const authmethods = opts.authmethods || (opts.ticket !== undefined ? ['ticket'] : undefined);
  const connection = new autobahn.Connection({
    transports: [topts],
    realm: opts.realm === undefined ? 'realm1' : opts.realm,
    authid: opts.authid,
    authmethods,
    authextra: opts.authextra,
    onchallenge: (session, method, extra) => {
      client.challenge = { method, extra };
      if (method === 'ticket' && opts.ticket !== undefined) return opts.ticket;
      if (opts.onchallenge) return opts.onchallenge(session, method, extra);
      throw new Error(`unexpected challenge ${method}`);
    },
    max_retries: 0,
    retry_if_unreachable: false,
    use_deferred: progressDeferred,
    on_user_error: (e, m) => client.userErrors.push([m, e]),
    on_internal_error: (e, m) => client.internalErrors.push([m, e]),
  });
  client.connection = connection;

  let resolveClosed;
  client.closed = new Promise((r) => {
    resolveClosed = r;
  });

  const opened = new Promise((resolve, reject) => {
    connection.onopen = (session, details) => {
      client.session = session;
      client.id = session.id;
      client.welcome = details;
      resolve(client);
    };
    connection.onclose = (reason, details) => {
      client.closeInfo = { reason, details: { ...details }, at: Date.now() };
      resolveClosed(client.closeInfo);
      reject(new ConnectError(
        `${client.label}: connection closed before WELCOME: ${reason} ${show(details)}; received ${show(client.rx)}`,
        reason, details, client));
      return true; // never retry
    };
  });

  connection.open();
  const s = connection._session;
  if (s) {
    client.session = s;
    const pv = s._protocol_violation;
    s._protocol_violation = (reason) => {
      client.violations.push(reason);
      pv(reason);
    };
    if (opts.cancelCapable) {
      s._MESSAGE_MAP[MSG.INTERRUPT] = (msg) => {
        client.interrupts.push(msg);
        if (client.onInterrupt) client.onInterrupt(msg);
      };
    }
  }

  client.isOpen = () => connection.isOpen;
  /** The transport-level close event ({code, reason, wasClean}), once closed. */
  client.transportClose = () => tap.closeEvent || null;
  /** Sends a raw WAMP message (array) on this session's transport. */
  client.sendRaw = (msg) => client.session._send_wamp(msg);
  /** Leaves with GOODBYE and waits for the transport to close. */
  client.close = async (ms = 3000) => {
    if (client.closeInfo) return client.closeInfo;
    try {
      connection.close();
    } catch {}
    return within(client.closed, ms, `${client.label}: close after GOODBYE`);
  };
  /** Closes the transport without GOODBYE (WebSocket close frame / TCP FIN). */
  client.dropTransport = () => {
    connection._transport && connection._transport.close();
  };
  /** Resets the TCP connection (no WebSocket close frame, no GOODBYE). */
  client.resetSocket = () => {
    if (!client.socket) throw new Error('no captured socket');
    client.socket.resetAndDestroy();
  };
  /** Last received message of a type (optionally also matching a predicate). */
  client.lastRx = (type, pred = () => true) => [...client.rx].reverse().find((m) => m[0] === type && pred(m));
  client.lastTx = (type, pred = () => true) => [...client.tx].reverse().find((m) => m[0] === type && pred(m));
  /** Waits until a received message matches (type, pred). */
  client.waitRx = async (type, pred = () => true, ms = 3000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = client.rx.find((x) => x[0] === type && pred(x));
      if (m) return m;
      if (Date.now() > deadline) {
        throw new TimeoutError(`${client.label}: no message of type ${type} within ${ms} ms; received ${show(client.rx.slice(-10), 1500)}`);
      }
      await sleep(10);
    }
  };

  return within(opened, opts.openTimeout || 5000, `${client.label}: session open (HELLO→WELCOME); received ${show(client.rx)}`)
    .catch((e) => {
      if (!(e instanceof ConnectError)) {
        try {
          client.dropTransport();
        } catch {}
      }
      e.client = client;
      throw e;
    });
}

/** Opens a connection that must NOT be welcomed; resolves with {reason, details, client}. */
/** Runs fn(connect) against a router of its own with `config`; connect(opts) opens a
 *  session on it, closed with the test's others. */
export async function withRouter(ctx, config, fn) {
  const r = await startRouter({ config });
  try {
    return await fn(async (opts = {}) => {
      try {
        const c = await openClient(r, opts);
        ctx.clients.push(c);
        return c;
      } catch (e) {
        if (e.client) ctx.clients.push(e.client);
        throw e;
      }
    });
  } finally {
    await ctx.cleanup();
    await r.stop();
  }
}

export async function expectOpenFailure(router, opts, ms = 5000) {
  let client;
  try {
    client = await openClient(router, { ...opts, openTimeout: ms });
  } catch (e) {
    if (e instanceof ConnectError) return { reason: e.reason, details: e.details, client: e.client };
    throw e;
  }
  await client.close().catch(() => {});
  throw new Error(`${client.label}: expected the session to be refused, got WELCOME ${show(client.welcome)}`);
}

// ---------------------------------------------------------------------------------
// Suites and tests

let suiteCounter = 0;

/** Per-test context: opens clients, makes unique URIs, cleans up. */
export class TestContext {
  constructor(router, t, prefix) {
    this.router = router;
    this.t = t;
    this.clients = [];
    this._prefix = prefix;
    this._n = 0;
  }

  /** A unique strict-URI-safe URI for this test. */
  uri(name = 'x') {
    return `${this._prefix}.${name}`;
  }

  async connect(opts = {}) {
    try {
      const c = await openClient(this.router, opts);
      this.clients.push(c);
      return c;
    } catch (e) {
      if (e.client) this.clients.push(e.client);
      throw e;
    }
  }

  inbox(label) {
    return new Inbox(label);
  }

  async cleanup() {
    await Promise.all(this.clients.map(async (c) => {
      if (c.closeInfo) return;
      try {
        await c.close(2000);
      } catch {
        try {
          c.dropTransport();
        } catch {}
        if (c.socket) c.socket.destroy();
      }
    }));
  }

  dump() {
    const parts = [];
    for (const c of this.clients) {
      parts.push(`  ${c.label} session=${c.id}${c.closeInfo ? ' closed=' + show(c.closeInfo) : ''}`);
      if (c.violations.length) parts.push(`    autobahn protocol violations: ${show(c.violations)}`);
      const skipped = Math.max(0, c.log.length - 24);
      if (skipped) parts.push(`    …(${skipped} earlier messages)`);
      for (const [dir, m] of c.log.slice(-24)) {
        let v = m;
        if (m[0] === MSG.HELLO) {
          // autobahn's roles are always the same: keep the dump short
          const { roles, ...rest } = m[2] || {};
          const callee = roles && roles.callee && roles.callee.features;
          v = [m[0], m[1], { ...rest, roles: callee && callee.call_canceling ? '(autobahn roles + callee.call_canceling)' : '(autobahn roles)' }];
        }
        parts.push(`    ${dir} ${show(v, 400)}`);
      }
    }
    return parts.join('\n');
  }
}

/**
 * describe() block with one router shared by its tests.
 * body(test, suite) registers tests with test(name, [opts], async (ctx) => ...).
 * opts: { config, timeout, prepare, finish }: `prepare` (async) runs before the router
 * starts and may return { config, files } for it; `finish` (async) runs after it stopped.
 */
export function routerSuite(name, opts, body) {
  if (typeof opts === 'function') {
    body = opts;
    opts = {};
  }
  const suiteNo = ++suiteCounter;
  const state = { router: null };
  describe(name, () => {
    before(async () => {
      const prepared = (opts.prepare && (await opts.prepare())) || {};
      state.router = await startRouter({ config: prepared.config || opts.config || null, files: prepared.files });
    });
    after(async () => {
      if (!state.router) {
        if (opts.finish) await opts.finish();
        return;
      }
      const exit = await state.router.stop();
      if (opts.finish) await opts.finish();
      // a panic in a connection task need not kill the router: look for it in the log
      const log = state.router.stderr();
      const i = log.indexOf('panicked at');
      if (i >= 0) {
        throw new Error(`router panicked during this suite:\n${log.slice(Math.max(0, i - 2000), i + 3000)}`);
      }
      if (exit && exit.code !== 0 && exit.signal !== 'SIGTERM') {
        throw new Error(`router exited with ${show(exit)} on SIGTERM at the end of the suite\n${tail(log, 40)}`);
      }
    });
    let testNo = 0;
    const test = (tname, topts, fn) => {
      if (typeof topts === 'function') {
        fn = topts;
        topts = {};
      }
      const n = ++testNo;
      const timeout = topts.timeout || opts.timeout || 10000;
      it(tname, { timeout: timeout + 5000, skip: topts.skip }, async (t) => {
        const router = state.router;
        if (!router) throw new Error('router did not start');
        if (router.exited) throw new Error(`${router.describeExit()} before this test`);
        const mark = router.stderr().length;
        const ctx = new TestContext(router, t, `sy.s${suiteNo}.t${n}`);
        ctx.skip = (why) => {
          const e = new Error(why);
          e.skipTest = why;
          throw e;
        };
        try {
          await within(fn(ctx), timeout, `test "${tname}"`);
          const bad = ctx.clients.filter((c) => c.violations.length);
          if (bad.length) {
            throw new Error('autobahn-js saw protocol violations from the router: ' +
              bad.map((c) => `${c.label}: ${show(c.violations)}`).join('; '));
          }
        } catch (e) {
          if (e && e.skipTest) {
            t.skip(e.skipTest);
            return;
          }
          const err = e instanceof Error ? e : new Error(`rejected with ${show(e)}`);
          const log = router.stderr().slice(mark);
          err.message += `\n--- ${router.describeExit()}` +
            `\n--- WAMP traffic of this test's sessions (-> sent, <- received, last 24 each) ---\n${ctx.dump()}` +
            `\n--- router stderr during this test ---\n${tail(log, 80) || '(empty)'}`;
          throw err;
        } finally {
          await ctx.cleanup();
        }
      });
    };
    body(test, state);
  });
}

/** Skip helper: returns the WELCOME feature flags of a role ('broker'|'dealer'). */
export function features(client, role) {
  const r = client.welcome && client.welcome.roles && client.welcome.roles[role];
  return (r && r.features) || {};
}

export function requireFeature(ctx, client, role, feature) {
  if (features(client, role)[feature] !== true) ctx.skip(`router does not announce ${role}.${feature}`);
}

/** Asserts the exact sequence of event args an inbox received, with a compact message. */
export function assertArgsSeq(inbox, expected) {
  const actual = inbox.args();
  assert.deepStrictEqual(actual, expected, `${inbox.label} received ${show(actual, 800)}, expected ${show(expected, 800)}`);
}

/** Sends a RawSocket handshake and returns the router's 4-byte reply. */
export async function rawSocketHandshake(router, byte1) {
  const sock = net.connect(router.rawsocket.port, router.rawsocket.host);
  try {
    return await within(new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      sock.on('connect', () => sock.write(Buffer.from([0x7f, byte1, 0, 0])));
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 4) resolve([...buf.subarray(0, 4)]);
      });
      sock.on('error', reject);
      sock.on('close', () => reject(new Error(`closed after ${buf.length} bytes`)));
    }), 2000, 'RawSocket handshake reply');
  } finally {
    sock.destroy();
  }
}
