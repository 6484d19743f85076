// A scrolling list that stays responsive at tens of thousands of rows per second:
// rows go into a bounded ring (the oldest leave first), the DOM holds only the rows on
// screen (a fixed row height makes the visible range a division), and the DOM is
// updated at most once per animation frame, however many rows arrived since the last.
// It follows the newest row while scrolled to the bottom and pauses when the reader
// scrolls up; the "follow" control or scrolling back down resumes.

export interface Row {
  text: string;
  /** A CSS class for the row ('gap', 'notice', ...), or '' for an ordinary row. */
  cls: string;
}

export interface ViewOptions<T extends Row> {
  capacity: number;
  /** Fills a row element; the default sets its text. */
  render?: (el: HTMLElement, row: T) => void;
  /** Told whether the view follows the newest row, and how many arrived while not. */
  onFollow?: (following: boolean, unseen: number) => void;
}

const ROW_HEIGHT = 18; // px; must match .view .row in style.css

export class LogView<T extends Row> {
  readonly el: HTMLElement;
  /** Rows ever pushed, and rows that left the ring to keep it bounded. */
  pushed = 0;
  dropped = 0;
  /** Rows pushed when the last frame was drawn: what reached the screen. */
  drawn = 0;
  following = true;
  private ring: (T | undefined)[];
  private start = 0;
  private count = 0;
  private spacer: HTMLElement;
  private rowsEl: HTMLElement;
  private pool: HTMLElement[] = [];
  private shownIndex: number[] = [];
  private scheduled = false;
  private droppedAtLastFrame = 0;
  private unseen = 0;
  private ownScrollTop = -1;
  /** The view's height, kept by a ResizeObserver so a frame need not ask for it. */
  private viewHeight = 0;
  private render: (el: HTMLElement, row: T) => void;

  constructor(private o: ViewOptions<T>) {
    this.ring = new Array(o.capacity);
    this.render = o.render || ((el, row) => (el.textContent = row.text));
    this.el = document.createElement('div');
    this.el.className = 'view';
    this.spacer = document.createElement('div');
    this.spacer.className = 'spacer';
    this.rowsEl = document.createElement('div');
    this.rowsEl.className = 'rows';
    this.spacer.appendChild(this.rowsEl);
    this.el.appendChild(this.spacer);
    this.el.addEventListener('scroll', () => this.onScroll(), { passive: true });
    new ResizeObserver((entries) => {
      this.viewHeight = entries[entries.length - 1].contentRect.height;
      this.schedule();
    }).observe(this.el);
  }

  get size(): number {
    return this.count;
  }

  push(row: T): void {
    const cap = this.o.capacity;
    if (this.count === cap) {
      this.ring[this.start] = row;
      this.start = (this.start + 1) % cap;
      this.dropped++;
    } else {
      this.ring[(this.start + this.count) % cap] = row;
      this.count++;
    }
    this.pushed++;
    if (!this.following) this.unseen++;
    this.schedule();
  }

  /** Row i of those held (0: the oldest still held). */
  at(i: number): T | undefined {
    return i < 0 || i >= this.count ? undefined : this.ring[(this.start + i) % this.o.capacity];
  }

  clear(): void {
    this.ring = new Array(this.o.capacity);
    this.start = this.count = this.pushed = this.dropped = this.drawn = this.droppedAtLastFrame = this.unseen = 0;
    // Every pooled row element is redrawn (-2 matches no row number).
    this.shownIndex = this.pool.map(() => -2);
    this.follow();
  }

  /** Scrolls to the newest row and keeps following. */
  follow(): void {
    this.following = true;
    this.unseen = 0;
    this.o.onFollow?.(true, 0);
    this.schedule();
  }

  private onScroll(): void {
    if (this.readerScrolled()) this.schedule();
  }

  /** Whether the reader moved the view since we last scrolled it, deciding from where
   *  they left it whether the view follows. Our own scrolling (following, or keeping
   *  the view still while rows leave the ring) ends where we put it; anything else is
   *  the reader's. Asked by the scroll event and again by each frame, so that the
   *  reader's scroll counts even when a frame runs before its event: following then
   *  would put the view back at the bottom, and the event would find it where we put
   *  it (the reader's scroll lost). */
  private readerScrolled(): boolean {
    const top = this.el.scrollTop;
    if (top === this.ownScrollTop) return false;
    this.ownScrollTop = top;
    const atBottom = top + this.el.clientHeight >= this.el.scrollHeight - ROW_HEIGHT;
    if (atBottom !== this.following) {
      this.following = atBottom;
      if (atBottom) this.unseen = 0;
      this.o.onFollow?.(atBottom, this.unseen);
    }
    return true;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      this.frame();
    });
  }

  // Reads the scroll position once, before any write, so the frame forces at most one
  // layout (setting scrollTop needs one), and that one stays inside the view.
  private frame(): void {
    this.readerScrolled();
    const height = this.count * ROW_HEIGHT;
    const viewHeight = this.viewHeight;
    let top = this.following ? Math.max(0, height - viewHeight) : this.el.scrollTop;
    if (!this.following) {
      // Rows that left the ring moved everything up: keep the reader's rows in place.
      top = Math.max(0, top - (this.dropped - this.droppedAtLastFrame) * ROW_HEIGHT);
      this.o.onFollow?.(false, this.unseen);
    }
    this.droppedAtLastFrame = this.dropped;
    if (this.spacer.style.height !== `${height}px`) this.spacer.style.height = `${height}px`;
    top = this.setScrollTop(top);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT));
    const visible = Math.min(this.count - first, Math.ceil(viewHeight / ROW_HEIGHT) + 1);
    while (this.pool.length < visible) {
      const row = document.createElement('div');
      this.rowsEl.appendChild(row);
      this.pool.push(row);
      this.shownIndex.push(-1);
    }
    this.rowsEl.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    for (let k = 0; k < this.pool.length; k++) {
      const rowEl = this.pool[k];
      if (k >= visible) {
        if (this.shownIndex[k] !== -1) {
          rowEl.style.display = 'none';
          this.shownIndex[k] = -1;
        }
        continue;
      }
      // The absolute number of the row, so a row already in place is left alone.
      const abs = this.dropped + first + k;
      if (this.shownIndex[k] === abs) continue;
      const row = this.at(first + k)!;
      rowEl.style.display = '';
      rowEl.className = row.cls ? `row ${row.cls}` : 'row';
      rowEl.dataset.n = String(abs);
      this.render(rowEl, row);
      this.shownIndex[k] = abs;
    }
    this.drawn = this.pushed;
  }

  /** Scrolls to `top` unless already there; returns where the view is. */
  private setScrollTop(top: number): number {
    if (top === this.ownScrollTop || top === this.el.scrollTop) return top;
    this.el.scrollTop = top;
    this.ownScrollTop = this.el.scrollTop;
    return this.ownScrollTop;
  }
}
