// The tail: one autobahn-js session at a time, subscribed to one topic with the
// router's transactional subscribe (SUBSCRIBE.Options._replay, docs/replay.md).
//
// The first subscription asks for {last: N}: history, then live events, no gap and
// no duplicate between them. Every stored event carries its topic position
// (Details._pos); the tail remembers the last one it printed and, after a lost
// connection, subscribes again with {after_pos: P}, so the router sends exactly what
// was missed and then live events: across a reconnect no line is repeated or missing.
// What the router no longer has is told in Details._gap and reported on stderr.
//
// Reconnecting is done here, not by autobahn's own retry: autobahn stops retrying
// after a GOODBYE (a router restart says wamp.close.system_shutdown), and the resume
// point must be chosen anew for each session.

import { createRequire } from 'node:module';

import { jsonLine, lineText } from './output.mjs';

const require = createRequire(import.meta.url);
const autobahn = require('autobahn');

// autobahn logs every closed connection through log.warn; the tail says it itself.
autobahn.log.warn = () => {};

const EVENT = 36; // WAMP message type
const RETRY_FIRST_S = 0.5;
const RETRY_MAX_S = 30;

/**
 * autobahn-js hands event handlers an Event with a fixed set of fields, without the
 * router's own details (_pos, _replayed, _gap). This wraps the session's EVENT
 * processing so that, while a handler runs, `box.details` is the raw Details.
 */
function captureEventDetails(session) {
  const box = { details: {} };
  const process = session._MESSAGE_MAP[EVENT];
  session._MESSAGE_MAP[EVENT] = (msg) => {
    box.details = msg[3] || {};
    try {
      process(msg);
    } finally {
      box.details = {};
    }
  };
  return box;
}

/** An autobahn error (or anything thrown) as one line. */
function errorText(e) {
  if (e && typeof e.error === 'string') {
    const more = [...(e.args || []).map(String)];
    if (e.kwargs && Object.keys(e.kwargs).length) more.push(JSON.stringify(e.kwargs));
    return more.length ? `${e.error}: ${more.join(' ')}` : e.error;
  }
  return e instanceof Error ? e.message : String(e);
}

export class Tail {
  /**
   * opts: from parseOptions(); io: { line(text): stdout, note(text): stderr }.
   */
  constructor(opts, io) {
    this.opts = opts;
    this.io = io;
    // Where to resume: the position of the last event printed or, before the first
    // one, the position just before the history asked for. null: not known yet.
    this.after = null;
    this.sessions = 0;
    this.connection = null;
    this.stopping = false;
    this.wake = null; // ends a pause between attempts early (stop)
    this.warnedUnstored = false;
  }

  /** Runs until the history is printed (without -f), stop() or a fatal error;
   *  resolves with the exit status (0 or 1). */
  async run() {
    let delay = RETRY_FIRST_S;
    let joinedOnce = false;
    for (;;) {
      const r = await this.session();
      if (r.fatal) {
        this.io.note(r.fatal);
        return 1;
      }
      if (this.stopping || r.done) return 0;
      if (r.joined) joinedOnce = true;
      if (!joinedOnce) {
        // The first attempt failing is a wrong URL or a router that is not running:
        // say so instead of waiting for it.
        this.io.note(`cannot reach a WAMP router at ${this.opts.url}`);
        return 1;
      }
      if (!this.opts.follow) {
        this.io.note('connection lost before the history was complete');
        return 1;
      }
      if (r.subscribed) delay = RETRY_FIRST_S;
      this.io.note(`${this.describeClose(r)}; reconnecting in ${delay} s`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay * 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
      if (this.stopping) return 0;
      delay = Math.min(delay * 2, RETRY_MAX_S);
    }
  }

  /** Leaves (GOODBYE) and makes run() resolve with 0. */
  stop() {
    this.stopping = true;
    if (this.wake) this.wake();
    this.close(this.connection);
  }

  close(connection) {
    try {
      if (connection) connection.close();
    } catch {
      // already closed: autobahn throws rather than ignoring it
    }
  }

  describeClose(r) {
    if (r.reason === 'unreachable') return `cannot reach ${this.opts.url}`;
    // A GOODBYE from the router (wamp.close.system_shutdown when it stops), whether or
    // not the connection then closed cleanly.
    if (r.details && r.details.reason) return `the router closed the session (${r.details.reason})`;
    return r.reason === 'closed' ? 'connection closed' : 'connection lost';
  }

  /** One connection: resolves when it closed, with what happened on it. */
  session() {
    const { url, realm, authid, ticket } = this.opts;
    const state = { joined: false, subscribed: false, done: false, fatal: null, endPos: undefined, reason: null, details: null };
    return new Promise((resolve) => {
      const connection = new autobahn.Connection({
        url,
        realm,
        authid,
        authmethods: ticket !== undefined ? ['ticket'] : undefined,
        // Only 'ticket' is offered, so only a ticket challenge can come.
        onchallenge: () => ticket,
        max_retries: 0,
        retry_if_unreachable: false,
        use_es6_promises: true,
        on_user_error: (e) => this.fail(state, connection, `internal error: ${errorText(e)}`),
      });
      this.connection = connection;
      connection.onopen = (session) => {
        state.joined = true;
        this.sessions += 1;
        this.subscribe(session, state, connection).catch((e) => {
          // A request cut short by a lost connection is not an error: run() reconnects.
          if (connection.isOpen) this.fail(state, connection, errorText(e));
        });
      };
      connection.onclose = (reason, details) => {
        if (!state.joined && reason === 'closed' && details && details.reason) {
          // ABORT: the router refused the session (bad ticket, unknown realm, ...).
          const why = details.message ? `${details.reason}: ${details.message}` : details.reason;
          state.fatal = state.fatal || `the router refused to join realm ${realm}: ${why}`;
        }
        Object.assign(state, { reason, details });
        this.connection = null;
        resolve(state);
        return true; // no autobahn retry: run() decides
      };
      connection.open();
    });
  }

  fail(state, connection, message) {
    state.fatal = state.fatal || message;
    this.close(connection);
  }

  /** The SUBSCRIBE.Options._replay for this session. */
  replayFrom() {
    return this.after === null ? { last: this.opts.last } : { after_pos: this.after };
  }

  async subscribe(session, state, connection) {
    const { topic, follow, last } = this.opts;
    const raw = captureEventDetails(session);
    const replay = this.replayFrom();
    // Said before subscribing: history events may be handled before subscribe() resolves.
    if (this.sessions > 1) {
      this.io.note(replay.after_pos !== undefined ? `reconnected; resuming after position ${replay.after_pos}` : 'reconnected');
    }
    let sub;
    try {
      sub = await session.subscribe(topic, (args, kwargs) => this.onEvent(args, kwargs, raw.details, state, connection), { _replay: replay });
    } catch (e) {
      if (connection.isOpen) this.fail(state, connection, `cannot subscribe to ${topic}: ${errorText(e)}`);
      return;
    }
    state.subscribed = true;
    if (this.opts.verbose) this.io.note(`session ${session.id}: subscribed to ${topic} with _replay ${JSON.stringify(replay)}`);
    // We never unsubscribe: a resolution is the router revoking the subscription.
    sub.on_unsubscribe.then((reason) => {
      if (connection.isOpen) this.fail(state, connection, `the router ended the subscription to ${topic}: ${reason || 'no reason given'}`);
    });
    if (this.after !== null && follow) return;

    // Where this subscription attached: history and get_events both end at that
    // point, so the last entry get_events returns is the last event of the history.
    // Without -f it is where to stop; with -f, where to resume if the connection is
    // lost before the first event (with --last 0, or before the history arrives).
    const entries = await session.call('wamp.subscription.get_events', [sub.id, 1]);
    const attach = entries.length && typeof entries[0]._pos === 'number' ? entries[0]._pos : null;
    if (this.opts.verbose) this.io.note(attach === null ? 'attached: no history' : `attached at position ${attach}`);
    if (this.after === null) this.after = attach === null ? 0 : Math.max(0, attach - last);
    if (!follow) {
      state.endPos = last === 0 ? null : attach;
      this.checkHistoryDone(state, connection);
    }
  }

  onEvent(args, kwargs, details, state, connection) {
    const { topic, follow, json } = this.opts;
    if (state.done) return;
    if (!follow && details._replayed !== true) {
      // A live event: the history is over (its last event may have been evicted).
      this.finish(state, connection);
      return;
    }
    if (typeof details._gap === 'number' && details._gap > 0) {
      this.io.note(`gap: ${details._gap} event(s) of ${topic} no longer retained by the router`);
    }
    const pos = typeof details._pos === 'number' ? details._pos : null;
    this.io.line(json ? jsonLine(details.topic || topic, pos, args, kwargs) : lineText(args, kwargs));
    if (pos !== null) {
      this.after = pos;
      state.lastPos = pos;
    } else if (!this.warnedUnstored) {
      this.warnedUnstored = true;
      this.io.note(`${topic} is not stored by the router: no history, and events published while disconnected are lost`);
    }
    if (!follow) this.checkHistoryDone(state, connection);
  }

  checkHistoryDone(state, connection) {
    if (state.endPos === undefined) return; // get_events has not answered yet
    if (state.endPos === null || (state.lastPos !== undefined && state.lastPos >= state.endPos)) {
      this.finish(state, connection);
    }
  }

  finish(state, connection) {
    state.done = true;
    this.close(connection);
  }
}
