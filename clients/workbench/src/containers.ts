// The workbench realm's side panels: the containers the user may read and the changes
// of the records they may read. Both are one pattern subscription each
// (`containers..events`, `records..changes`, wildcard) with some history; the router's
// authorizer filters them per object, so each lists exactly what this user may see.
// (Container *events*, not `containers.` by prefix: a prefix would also bring every
// log line of every readable container into the page a second time.)

import { Feed, type FeedEvent } from './feed';
import type { Link } from './link';

/** Compact one-line JSON of an event's payload. */
export function payloadText(e: { args: unknown[]; kwargs: Record<string, unknown> }): string {
  const parts: string[] = [];
  if (e.args.length) parts.push(e.args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  if (Object.keys(e.kwargs).length) parts.push(JSON.stringify(e.kwargs));
  return parts.join(' ');
}

/** The middle component of `kind.<id>.what`. */
function objectId(topic: string): string {
  const parts = topic.split('.');
  return parts.length === 3 ? parts[1] : topic;
}

export class Containers {
  readonly el: HTMLElement;
  private list: HTMLElement;
  private stateEl: HTMLElement;
  private last = new Map<string, string>();
  private selected = '';
  private pending = false;
  private feed: Feed | null = null;

  constructor(private link: Link, private open: (id: string) => void) {
    this.el = document.createElement('section');
    this.el.className = 'containers panel';
    this.el.innerHTML = `
      <h2>Containers <span class="state"></span></h2>
      <form class="open-by-id"><input name="id" placeholder="container id" aria-label="container id"><button>open</button></form>
      <ul class="list"></ul>`;
    this.list = this.el.querySelector('.list')!;
    this.stateEl = this.el.querySelector('.state')!;
    const form = this.el.querySelector('form')!;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = (form.elements.namedItem('id') as HTMLInputElement).value.trim();
      if (id) this.choose(id);
    });
    this.list.addEventListener('click', (ev) => {
      const li = (ev.target as HTMLElement).closest('li');
      if (li && li.dataset.id) this.choose(li.dataset.id);
    });
  }

  start(): void {
    this.feed = new Feed(this.link, {
      topic: 'containers..events',
      match: 'wildcard',
      last: 1000,
      onEvent: (e) => this.onEvent(e),
      onState: (s, why) => {
        this.stateEl.dataset.state = s;
        this.stateEl.textContent = s === 'live' ? '' : `${s} ${why}`;
      },
    });
  }

  stop(): void {
    this.feed?.stop();
  }

  choose(id: string): void {
    this.selected = id;
    if (!this.last.has(id)) this.last.set(id, '');
    this.render();
    this.open(id);
  }

  private onEvent(e: FeedEvent): void {
    this.last.set(objectId(e.topic), payloadText(e));
    // History arrives as a burst of events: draw the list once per frame.
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  private render(): void {
    const ids = [...this.last.keys()].sort();
    this.list.replaceChildren(
      ...ids.map((id) => {
        const li = document.createElement('li');
        li.dataset.id = id;
        if (id === this.selected) li.className = 'selected';
        const name = document.createElement('span');
        name.className = 'id';
        name.textContent = id;
        const last = document.createElement('span');
        last.className = 'last';
        last.textContent = this.last.get(id) || '';
        li.append(name, last);
        return li;
      }),
    );
  }
}

/** Changes of records, newest first, bounded. */
export class Records {
  readonly el: HTMLElement;
  private list: HTMLElement;
  private stateEl: HTMLElement;
  private feed: Feed | null = null;
  static readonly KEEP = 200;

  constructor(private link: Link) {
    this.el = document.createElement('section');
    this.el.className = 'records panel';
    this.el.innerHTML = `<h2>Record changes <span class="state"></span></h2><ol class="list"></ol>`;
    this.list = this.el.querySelector('.list')!;
    this.stateEl = this.el.querySelector('.state')!;
  }

  start(): void {
    this.feed = new Feed(this.link, {
      topic: 'records..changes',
      match: 'wildcard',
      last: 50,
      onEvent: (e) => {
        const li = document.createElement('li');
        const id = document.createElement('span');
        id.className = 'id';
        id.textContent = objectId(e.topic);
        const pos = document.createElement('span');
        pos.className = 'pos';
        pos.textContent = e.details._pos !== undefined ? `#${e.details._pos}` : '';
        const body = document.createElement('span');
        body.className = 'payload';
        body.textContent = payloadText(e);
        li.append(id, pos, body);
        this.list.prepend(li);
        while (this.list.children.length > Records.KEEP) this.list.lastElementChild!.remove();
      },
      onState: (s, why) => {
        this.stateEl.dataset.state = s;
        this.stateEl.textContent = s === 'live' ? '' : `${s} ${why}`;
      },
    });
  }

  stop(): void {
    this.feed?.stop();
  }
}
