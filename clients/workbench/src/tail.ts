// The log of one container: `containers.<id>.logs`, one line of text per event
// (args[0]), the last N lines and then live ones, in a LogView that follows at the
// bottom. Its state line says what the reader needs to trust it: connecting, live,
// reconnecting (it resumes after the last position it showed), a gap (lines the router
// no longer had when it resumed) and revoked (access withdrawn: the log stops).

import { Feed, type FeedState } from './feed';
import type { Link } from './link';
import { LogView, type Row } from './logview';

/** Lines a tail holds; older ones leave the page (the router still has them). */
export const TAIL_CAPACITY = 100_000;

const STATE_TEXT: Record<FeedState, string> = {
  connecting: 'connecting',
  live: 'live',
  reconnecting: 'reconnecting',
  revoked: 'revoked',
  refused: 'refused',
  closed: 'closed',
};

/** A log line as text: the line itself, or JSON for anything that is not a string. */
export function lineText(args: unknown[], kwargs: Record<string, unknown>): string {
  const first = args[0];
  if (typeof first === 'string') return first;
  if (first !== undefined) return JSON.stringify(first);
  return Object.keys(kwargs).length ? JSON.stringify(kwargs) : '';
}

export class LogTail {
  readonly el: HTMLElement;
  readonly view: LogView<Row>;
  readonly feed: Feed;
  /** Lines the router said it no longer had, over every resume. */
  gap = 0;
  /** Log lines shown (rows that are not notices). */
  lines = 0;
  private stateEl: HTMLElement;
  private countEl: HTMLElement;
  private gapEl: HTMLElement;
  private followBtn: HTMLButtonElement;
  private whyEl: HTMLElement;

  constructor(link: Link, readonly container: string, last: number) {
    this.el = document.createElement('section');
    this.el.className = 'tail';
    this.el.innerHTML = `
      <div class="bar">
        <strong class="name"></strong>
        <span class="state" data-state="connecting">connecting</span>
        <span class="count">0 lines</span>
        <span class="gap" hidden></span>
        <span class="why"></span>
        <button class="follow" hidden>follow</button>
      </div>`;
    const q = <E extends HTMLElement>(sel: string) => this.el.querySelector(sel) as E;
    q('.name').textContent = `containers.${container}.logs`;
    this.stateEl = q('.state');
    this.countEl = q('.count');
    this.gapEl = q('.gap');
    this.whyEl = q('.why');
    this.followBtn = q<HTMLButtonElement>('.follow');
    this.view = new LogView<Row>({
      capacity: TAIL_CAPACITY,
      onFollow: (following, unseen) => {
        this.followBtn.hidden = following;
        this.followBtn.textContent = unseen ? `paused: ${unseen} new lines, follow ↓` : 'paused, follow ↓';
      },
    });
    this.followBtn.addEventListener('click', () => this.view.follow());
    this.el.appendChild(this.view.el);
    this.feed = new Feed(link, {
      topic: `containers.${container}.logs`,
      match: 'exact',
      last,
      onEvent: (e) => {
        this.view.push({ text: lineText(e.args, e.kwargs), cls: '' });
        this.lines++;
        this.countLater();
      },
      onGap: (n) => {
        this.gap += n;
        this.view.push({ text: `… ${n} line${n === 1 ? '' : 's'} no longer retained by the router …`, cls: 'gap' });
        this.gapEl.hidden = false;
        this.gapEl.dataset.gap = String(this.gap);
        this.gapEl.textContent = `gap: ${this.gap} lines lost`;
      },
      onState: (state, why) => this.showState(state, why),
    });
  }

  stop(): void {
    this.feed.stop();
  }

  private showState(state: FeedState, why: string): void {
    this.stateEl.dataset.state = state;
    this.stateEl.textContent = STATE_TEXT[state];
    this.whyEl.textContent = why;
    if (state === 'revoked') {
      this.view.push({ text: `access withdrawn (${why}): this log has stopped`, cls: 'notice' });
    } else if (state === 'refused') {
      this.view.push({ text: `cannot open this log: ${why}`, cls: 'notice' });
    }
  }

  // The line count is text in the DOM: updated once per frame, not once per line.
  private countPending = false;
  private countLater(): void {
    if (this.countPending) return;
    this.countPending = true;
    requestAnimationFrame(() => {
      this.countPending = false;
      this.countEl.textContent = `${this.lines.toLocaleString('en')} lines`;
    });
  }
}
