// The part of autobahn-js (npm `autobahn-browser`, a UMD bundle without types) that the
// workbench uses, typed by hand.

declare module 'autobahn-browser' {
  export interface EventDetails {
    publication: number;
    topic: string;
    publisher?: number;
    publisher_authid?: string;
    publisher_authrole?: string;
  }

  export type Handler = (args: unknown[], kwargs: Record<string, unknown>, details: EventDetails) => void;

  export interface Subscription {
    id: number;
    topic: string;
    active: boolean;
    /** Resolves when the subscription ends: with no value after our own UNSUBSCRIBE,
     *  with the router's reason when the router revoked it (UNSUBSCRIBED with request 0). */
    on_unsubscribe: Promise<string | undefined>;
  }

  export interface Session {
    id: number;
    isOpen: boolean;
    subscribe(topic: string, handler: Handler, options?: Record<string, unknown>): Promise<Subscription>;
    unsubscribe(sub: Subscription): Promise<boolean>;
    publish(topic: string, args?: unknown[], kwargs?: Record<string, unknown>, options?: Record<string, unknown>): Promise<{ id: number } | undefined>;
    call<T = unknown>(procedure: string, args?: unknown[], kwargs?: Record<string, unknown>): Promise<T>;
    /** Internal: the handler of each message type. The workbench wraps the EVENT
     *  entry to read EVENT.Details, which autobahn does not hand to subscribers. */
    _MESSAGE_MAP: Record<number, (msg: unknown[]) => void>;
  }

  export interface CloseDetails {
    reason: string | null;
    message: string | null;
    will_retry: boolean;
    retry_delay: number | null;
  }

  export interface ConnectionOptions {
    url: string;
    realm: string;
    authmethods?: string[];
    authid?: string;
    onchallenge?: (session: Session, method: string, extra: unknown) => string;
    max_retries?: number;
    initial_retry_delay?: number;
    max_retry_delay?: number;
    retry_delay_growth?: number;
    use_es6_promises?: boolean;
  }

  export class Connection {
    constructor(options: ConnectionOptions);
    onopen: (session: Session, details: Record<string, unknown>) => void;
    /** reason: "lost", "unreachable", "closed" or "unsupported"; return true to stop retrying. */
    onclose: (reason: string, details: CloseDetails) => boolean;
    open(): void;
    close(reason?: string, message?: string): void;
  }

  export class Error {
    error: string;
    args: unknown[];
    kwargs: Record<string, unknown>;
  }

  const autobahn: { Connection: typeof Connection; log: { warn: (...a: unknown[]) => void; debug: (...a: unknown[]) => void } };
  export default autobahn;
}
