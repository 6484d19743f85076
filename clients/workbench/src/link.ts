// The page's one WAMP connection (autobahn-js), kept open across network cuts: every
// part of the page registers with onSession() and is handed each new session, so it can
// subscribe again (and resume where it stopped) after a reconnect.

import autobahn from 'autobahn-browser';
import type { Connection, Session } from 'autobahn-browser';

export type LinkState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface Login {
  url: string;
  realm: string;
  /** An API token (or a static ticket): ticket authentication; anonymous without. */
  token?: string;
  authid?: string;
}

/** EVENT.Details as the router sent them: autobahn hands subscribers only a few
 *  fields, and the workbench needs the router's own (`_pos`, `_gap`, `_replayed`). */
export interface RawDetails {
  topic?: string;
  publisher?: number;
  publisher_authid?: string;
  _pos?: number;
  _gap?: number;
  _replayed?: boolean;
  _dropped?: number;
  [key: string]: unknown;
}

const EVENT = 36;

// autobahn warns on every lost connection; the page shows those itself.
autobahn.log.warn = () => {};

export class Link {
  state: LinkState = 'closed';
  session: Session | null = null;
  /** Why the connection closed for good (ABORT or GOODBYE reason and message). */
  closeReason = '';
  closeMessage = '';
  /** Details of the EVENT being dispatched: valid inside an event handler only. */
  details: RawDetails = {};
  private connection: Connection | null = null;
  private sessionListeners: Array<(s: Session) => void> = [];
  private stateListeners: Array<(s: LinkState) => void> = [];

  open(login: Login): void {
    this.close();
    const conn = new autobahn.Connection({
      url: login.url,
      realm: login.realm,
      authmethods: login.token ? ['ticket'] : ['anonymous'],
      authid: login.authid || undefined,
      onchallenge: (_s, method) => {
        if (method !== 'ticket' || !login.token) throw new Error(`cannot answer a ${method} challenge`);
        return login.token;
      },
      // Reconnect for ever, soon: a log view should come back by itself.
      max_retries: -1,
      initial_retry_delay: 0.3,
      max_retry_delay: 5,
      retry_delay_growth: 1.5,
      use_es6_promises: true,
    });
    this.connection = conn;
    this.closeReason = this.closeMessage = '';
    conn.onopen = (session) => {
      if (conn !== this.connection) return;
      this.hookDetails(session);
      this.session = session;
      this.setState('open');
      for (const f of this.sessionListeners) f(session);
    };
    conn.onclose = (reason, details) => {
      if (conn !== this.connection) return true;
      this.session = null;
      if (details.will_retry) {
        this.setState('reconnecting');
        return false;
      }
      this.closeReason = details.reason || reason;
      this.closeMessage = details.message || '';
      this.setState('closed');
      return true;
    };
    this.setState('connecting');
    conn.open();
  }

  close(): void {
    const conn = this.connection;
    this.connection = null;
    this.session = null;
    if (conn) {
      try {
        conn.close();
      } catch {
        // already closed
      }
      this.setState('closed');
    }
  }

  /** `f` gets the current session (if any) and every later one. */
  onSession(f: (s: Session) => void): () => void {
    this.sessionListeners.push(f);
    if (this.session) f(this.session);
    return () => {
      this.sessionListeners = this.sessionListeners.filter((g) => g !== f);
    };
  }

  onState(f: (s: LinkState) => void): () => void {
    this.stateListeners.push(f);
    f(this.state);
    return () => {
      this.stateListeners = this.stateListeners.filter((g) => g !== f);
    };
  }

  private setState(s: LinkState): void {
    this.state = s;
    for (const f of this.stateListeners) f(s);
  }

  /** Wraps autobahn's EVENT handler so `details` holds the message's Details while the
   *  subscribers' handlers run (autobahn calls them synchronously from it). */
  private hookDetails(session: Session): void {
    const original = session._MESSAGE_MAP[EVENT];
    session._MESSAGE_MAP[EVENT] = (msg) => {
      this.details = (msg[3] as RawDetails) || {};
      original(msg);
    };
  }
}

/** The text of a WAMP error as autobahn rejects with it. */
export function errorText(e: unknown): string {
  if (e && typeof e === 'object' && 'error' in e) {
    const err = e as { error: string; args?: unknown[] };
    const msg = err.args && err.args.length ? `: ${String(err.args[0])}` : '';
    return `${err.error}${msg}`;
  }
  return String(e);
}
