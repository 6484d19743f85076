// Sessions and subscriptions of the realm, from the meta API (docs/meta.md): listed once
// per session (wamp.session.list/get, wamp.subscription.list/get/list_subscribers) and
// kept live by the meta events, to which the panel subscribes before it lists, so
// nothing that happens while it lists is missed. A busy router has more sessions than
// a panel can show: it holds at most MAX of each.

import type { Session } from 'autobahn-browser';
import { errorText, type Link } from './link';

const MAX = 300;

interface SessionInfo {
  session: number;
  authid?: string;
  authrole?: string;
  authmethod?: string;
  transport?: { type?: string; peer?: string };
}

interface SubscriptionInfo {
  id: number;
  uri: string;
  match: string;
  subscribers: Set<number>;
}

export class MetaPanel {
  readonly el: HTMLElement;
  private sessions = new Map<number, SessionInfo>();
  private subs = new Map<number, SubscriptionInfo>();
  private me = 0;
  /** Sessions and subscriptions that ended while the panel was listing them. */
  private gone = new Set<number>();
  private deleted = new Set<number>();
  private listing = false;
  private pending = false;
  private sessionsEl: HTMLElement;
  private subsEl: HTMLElement;
  private noteEl: HTMLElement;
  private detach: (() => void) | null = null;

  constructor(private link: Link) {
    this.el = document.createElement('aside');
    this.el.className = 'meta panel';
    this.el.innerHTML = `
      <h2>Sessions <span class="n"></span></h2>
      <p class="note"></p>
      <table class="sessions"><thead><tr><th>session</th><th>authid</th><th>role</th><th>peer</th></tr></thead><tbody></tbody></table>
      <h2>Subscriptions</h2>
      <table class="subscriptions"><thead><tr><th>id</th><th>uri</th><th>match</th><th>subscribers</th></tr></thead><tbody></tbody></table>`;
    this.sessionsEl = this.el.querySelector('.sessions tbody')!;
    this.subsEl = this.el.querySelector('.subscriptions tbody')!;
    this.noteEl = this.el.querySelector('.note')!;
  }

  start(): void {
    this.detach = this.link.onSession((s) => void this.load(s));
  }

  stop(): void {
    this.detach?.();
    this.detach = null;
  }

  private async load(s: Session): Promise<void> {
    this.sessions.clear();
    this.subs.clear();
    this.gone.clear();
    this.deleted.clear();
    this.listing = true;
    this.me = s.id;
    this.noteEl.textContent = '';
    const on = (topic: string, f: (args: unknown[]) => void) => s.subscribe(topic, (args) => {
      f(args);
      this.renderLater();
    });
    try {
      await Promise.all([
        on('wamp.session.on_join', ([info]) => this.addSession(info as SessionInfo)),
        on('wamp.session.on_leave', ([id]) => this.dropSession(id as number)),
        on('wamp.subscription.on_create', ([, sub]) => this.addSub(sub as { id: number; uri: string; match: string })),
        on('wamp.subscription.on_subscribe', ([session, id]) => void this.subscribed(s, session as number, id as number)),
        on('wamp.subscription.on_unsubscribe', ([session, id]) => this.subs.get(id as number)?.subscribers.delete(session as number)),
        on('wamp.subscription.on_delete', ([, id]) => {
          this.subs.delete(id as number);
          if (this.listing) this.deleted.add(id as number);
        }),
      ]);
      const ids = await s.call<number[]>('wamp.session.list');
      const infos = await Promise.all(ids.slice(0, MAX).map((id) => s.call<SessionInfo>('wamp.session.get', [id]).catch(() => null)));
      for (const info of infos) if (info && !this.gone.has(info.session)) this.addSession(info);
      const list = await s.call<Record<string, number[]>>('wamp.subscription.list');
      const subIds = [...(list.exact || []), ...(list.prefix || []), ...(list.wildcard || [])];
      await Promise.all(subIds.slice(0, MAX).map((id) => this.fetchSub(s, id)));
      if (ids.length > MAX || subIds.length > MAX) {
        this.noteEl.textContent = `${ids.length} sessions and ${subIds.length} subscriptions: the first ${MAX} of each are shown`;
      }
    } catch (e) {
      // The workbench realm gives the meta API to admins only.
      this.noteEl.textContent = `meta API: ${errorText(e)}`;
    }
    // Only the listing could race with the events: the sets would only grow after it.
    this.listing = false;
    this.gone.clear();
    this.deleted.clear();
    this.renderLater();
  }

  private addSession(info: SessionInfo): void {
    if (this.sessions.size < MAX || this.sessions.has(info.session)) this.sessions.set(info.session, info);
  }

  private dropSession(id: number): void {
    this.sessions.delete(id);
    if (this.listing) this.gone.add(id);
    for (const sub of this.subs.values()) sub.subscribers.delete(id);
  }

  private addSub(sub: { id: number; uri: string; match: string }): void {
    if (!this.subs.has(sub.id) && !this.deleted.has(sub.id) && this.subs.size < MAX) this.subs.set(sub.id, { ...sub, subscribers: new Set() });
  }

  private async subscribed(s: Session, session: number, id: number): Promise<void> {
    const sub = this.subs.get(id);
    if (sub) sub.subscribers.add(session);
    else await this.fetchSub(s, id);
  }

  private async fetchSub(s: Session, id: number): Promise<void> {
    try {
      const [info, subscribers] = await Promise.all([
        s.call<{ id: number; uri: string; match: string }>('wamp.subscription.get', [id]),
        s.call<number[]>('wamp.subscription.list_subscribers', [id]),
      ]);
      this.addSub(info);
      const sub = this.subs.get(id);
      for (const who of subscribers) if (sub && !this.gone.has(who)) sub.subscribers.add(who);
    } catch {
      // Gone meanwhile: its on_delete removes it (or already did).
    }
    this.renderLater();
  }

  private renderLater(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  private render(): void {
    this.el.querySelector('h2 .n')!.textContent = `(${this.sessions.size})`;
    const cell = (tr: HTMLElement, text: string) => {
      const td = document.createElement('td');
      td.textContent = text;
      tr.appendChild(td);
    };
    const sessions = [...this.sessions.values()].sort((a, b) => a.session - b.session);
    this.sessionsEl.replaceChildren(
      ...sessions.map((i) => {
        const tr = document.createElement('tr');
        tr.dataset.session = String(i.session);
        if (i.session === this.me) tr.className = 'me';
        cell(tr, String(i.session));
        cell(tr, i.authid || '');
        cell(tr, i.authrole || '');
        cell(tr, (i.transport && i.transport.peer) || '');
        return tr;
      }),
    );
    // The panel's own meta-event subscriptions would fill it with noise: left out.
    const ownMeta = (x: SubscriptionInfo) => x.uri.startsWith('wamp.') && x.subscribers.size === 1 && x.subscribers.has(this.me);
    const subs = [...this.subs.values()].filter((x) => x.subscribers.size > 0 && !ownMeta(x)).sort((a, b) => a.uri.localeCompare(b.uri) || a.id - b.id);
    this.subsEl.replaceChildren(
      ...subs.map((x) => {
        const tr = document.createElement('tr');
        tr.dataset.uri = x.uri;
        cell(tr, String(x.id));
        cell(tr, x.uri);
        cell(tr, x.match);
        const who = [...x.subscribers].sort((a, b) => a - b).map((id) => (id === this.me ? `${id} (this page)` : String(id)));
        cell(tr, who.join(', '));
        return tr;
      }),
    );
  }
}
