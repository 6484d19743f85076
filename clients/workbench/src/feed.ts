// One subscription that survives reconnects: history first (`_replay: {last: N}`), then
// live events; after a lost connection it subscribes again from where it stopped
// (`after_pos` for one topic, `after_publication` for a pattern, docs/replay.md), so no
// event is shown twice or left out. It ends for good when the router revokes it
// (UNSUBSCRIBED with request 0 and a reason, docs/permissions.md) or refuses it.

import type { Session, Subscription } from 'autobahn-browser';
import { errorText, Link, type RawDetails } from './link';

export type Match = 'exact' | 'prefix' | 'wildcard';

export type FeedState =
  | 'connecting' // subscribing for the first time
  | 'live' // subscribed: history delivered or on its way, then live events
  | 'reconnecting' // connection lost; will subscribe again and resume
  | 'revoked' // the router withdrew the subscription (access withdrawn)
  | 'refused' // the router refused the subscription
  | 'closed'; // the connection closed for good, or stopped by the page

export interface FeedEvent {
  args: unknown[];
  kwargs: Record<string, unknown>;
  topic: string;
  publication: number;
  details: RawDetails;
}

export interface FeedOptions {
  topic: string;
  match: Match;
  /** Events of history asked for on the first subscribe (0: none). */
  last: number;
  onEvent: (e: FeedEvent) => void;
  onState: (state: FeedState, why: string) => void;
  /** Called with N when the router says N events are no longer retained (`_gap`). */
  onGap?: (n: number) => void;
}

export class Feed {
  state: FeedState = 'connecting';
  /** The last position (exact topics) and publication seen: where a resume starts. */
  lastPos = 0;
  lastPublication = 0;
  /** Events the router sent again (a position not after the last seen): dropped, and
   *  counted, since they would otherwise be shown twice. */
  repeated = 0;
  private subscribedOnce = false;
  private sub: Subscription | null = null;
  private stopped = false;
  private detach: Array<() => void> = [];

  constructor(private link: Link, private o: FeedOptions) {
    this.detach.push(link.onSession((s) => void this.attach(s)));
    this.detach.push(
      link.onState((s) => {
        if (this.stopped) return;
        if (s === 'reconnecting' && this.subscribedOnce) this.set('reconnecting', 'connection lost');
        if (s === 'closed' && link.closeReason) this.finish('closed', `${link.closeReason} ${link.closeMessage}`.trim());
      }),
    );
  }

  /** Unsubscribes (if still subscribed) and stops following the connection. */
  stop(): void {
    const sub = this.sub;
    this.finish('closed', 'closed');
    if (sub && sub.active && this.link.session) void this.link.session.unsubscribe(sub).catch(() => {});
  }

  private replay(): Record<string, unknown> | null {
    if (!this.subscribedOnce) return this.o.last > 0 ? { last: this.o.last } : null;
    // A resume. Subscribed before and saw nothing: everything since is new.
    if (this.o.match === 'exact') return { after_pos: this.lastPos };
    if (this.lastPublication) return { after_publication: this.lastPublication };
    return this.o.last > 0 ? { last: this.o.last } : null;
  }

  private async attach(session: Session): Promise<void> {
    if (this.stopped) return;
    const options: Record<string, unknown> = {};
    if (this.o.match !== 'exact') options.match = this.o.match;
    const replay = this.replay();
    if (replay) options._replay = replay;
    let sub: Subscription;
    try {
      sub = await session.subscribe(this.o.topic, this.onEvent, options);
    } catch (e) {
      // A session lost meanwhile rejects too: the next session tries again.
      if (this.link.session === session && session.isOpen) this.finish('refused', errorText(e));
      return;
    }
    if (this.stopped) {
      void session.unsubscribe(sub).catch(() => {});
      return;
    }
    this.sub = sub;
    this.subscribedOnce = true;
    this.set('live', '');
    void sub.on_unsubscribe.then((reason) => {
      // No reason: our own unsubscribe, or the session ended (a reconnect resumes).
      if (reason && this.sub === sub) this.finish('revoked', reason);
    });
  }

  private onEvent = (args: unknown[], kwargs: Record<string, unknown>, ev: { topic: string; publication: number }): void => {
    if (this.stopped) return;
    const details = this.link.details;
    if (typeof details._gap === 'number' && details._gap > 0 && this.o.onGap) this.o.onGap(details._gap);
    const pos = details._pos;
    if (this.o.match === 'exact' && typeof pos === 'number') {
      if (pos <= this.lastPos) {
        this.repeated++;
        return;
      }
      this.lastPos = pos;
    }
    this.lastPublication = ev.publication;
    this.o.onEvent({ args: args || [], kwargs: kwargs || {}, topic: details.topic || ev.topic, publication: ev.publication, details });
  };

  private finish(state: FeedState, why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sub = null;
    for (const d of this.detach) d();
    this.set(state, why);
  }

  private set(state: FeedState, why: string): void {
    this.state = state;
    this.o.onState(state, why);
  }
}
