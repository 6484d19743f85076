// The live console: subscribe to a topic or a pattern (prefix, wildcard) with some
// history, and see each event's topic, position (`Details._pos`), publisher (when
// disclosed) and payload as history and then live events arrive; publish a test event.

import { Feed, type FeedState, type Match } from './feed';
import { errorText, type Link } from './link';
import { LogView, type Row } from './logview';
import { payloadText } from './containers';

interface EventRow extends Row {
  time: string;
  topic: string;
  pos: string;
  publisher: string;
}

function renderEvent(el: HTMLElement, r: EventRow): void {
  if (r.cls) {
    el.textContent = r.text;
    return;
  }
  // Four cells, made once per row element and refilled after.
  if (el.childElementCount !== 5) {
    el.textContent = '';
    for (const c of ['time', 'topic', 'pos', 'publisher', 'payload']) {
      const s = document.createElement('span');
      s.className = c;
      el.appendChild(s);
    }
  }
  const cells = el.children;
  cells[0].textContent = r.time;
  cells[1].textContent = r.topic;
  cells[2].textContent = r.pos;
  cells[3].textContent = r.publisher;
  cells[4].textContent = r.text;
}

function clock(): string {
  const d = new Date();
  return d.toTimeString().slice(0, 8) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

export class Console {
  readonly el: HTMLElement;
  readonly view: LogView<EventRow>;
  /** The current subscription (the tests read its counters). */
  feed: Feed | null = null;
  private stateEl: HTMLElement;
  private publishResult: HTMLElement;

  constructor(private link: Link) {
    this.el = document.createElement('section');
    this.el.className = 'console';
    this.el.innerHTML = `
      <form class="subscribe">
        <input name="topic" value="com.example." aria-label="topic or pattern" size="28">
        <select name="match" aria-label="match">
          <option value="exact">exact</option>
          <option value="prefix" selected>prefix</option>
          <option value="wildcard">wildcard</option>
        </select>
        <label>history <input name="last" type="number" min="0" max="10000" value="100" size="5"></label>
        <button>subscribe</button>
        <span class="state" data-state="closed"></span>
      </form>
      <div class="head row"><span class="time">received</span><span class="topic">topic</span><span class="pos">_pos</span><span class="publisher">publisher</span><span class="payload">payload</span></div>
      <form class="publish">
        <input name="topic" value="com.example.hello" aria-label="publish to topic" size="28">
        <input name="payload" value='["hello from the workbench"]' aria-label="arguments (JSON list, or text)" size="40">
        <button>publish</button>
        <span class="result"></span>
      </form>`;
    this.stateEl = this.el.querySelector('.subscribe .state')!;
    this.publishResult = this.el.querySelector('.publish .result')!;
    this.view = new LogView<EventRow>({ capacity: 20_000, render: renderEvent });
    this.el.querySelector('.head')!.after(this.view.el);
    const sub = this.el.querySelector<HTMLFormElement>('form.subscribe')!;
    sub.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = sub.elements;
      const value = (name: string) => (f.namedItem(name) as HTMLInputElement).value;
      this.subscribe(value('topic').trim(), value('match') as Match, Number(value('last')) || 0);
    });
    const pub = this.el.querySelector<HTMLFormElement>('form.publish')!;
    pub.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const f = pub.elements;
      const value = (name: string) => (f.namedItem(name) as HTMLInputElement).value;
      void this.publish(value('topic').trim(), value('payload'));
    });
  }

  /** Starts with what the form shows (the page calls it once it is connected). */
  start(): void {
    this.el.querySelector<HTMLFormElement>('form.subscribe')!.requestSubmit();
  }

  stop(): void {
    this.feed?.stop();
    this.feed = null;
  }

  subscribe(topic: string, match: Match, last: number): void {
    this.stop();
    this.view.clear();
    this.feed = new Feed(this.link, {
      topic,
      match,
      last,
      onEvent: (e) => {
        const d = e.details;
        const who = d.publisher !== undefined ? `${d.publisher}${d.publisher_authid ? ` (${d.publisher_authid})` : ''}` : '';
        this.view.push({
          cls: '',
          time: clock(),
          topic: e.topic,
          pos: d._pos !== undefined ? String(d._pos) : '',
          publisher: who,
          text: payloadText(e),
        });
      },
      onGap: (n) => this.view.push({ cls: 'gap', text: `… ${n} events no longer retained …`, time: '', topic: '', pos: '', publisher: '' }),
      onState: (s: FeedState, why) => {
        this.stateEl.dataset.state = s;
        this.stateEl.textContent = why ? `${s}: ${why}` : s;
      },
    });
  }

  private async publish(topic: string, payload: string): Promise<void> {
    const session = this.link.session;
    if (!session) {
      this.publishResult.textContent = 'not connected';
      return;
    }
    // A JSON list is the arguments; anything else is sent as one string.
    let args: unknown[];
    try {
      const parsed: unknown = JSON.parse(payload);
      args = Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      args = [payload];
    }
    try {
      const pub = await session.publish(topic, args, {}, { acknowledge: true, exclude_me: false, disclose_me: true });
      this.publishResult.textContent = `published (${pub ? pub.id : '?'})`;
    } catch (e) {
      this.publishResult.textContent = errorText(e);
    }
  }
}
