// Command-line options of switchyard-tail: parsed into one plain object, or a
// UsageError whose message is printed above the usage text (exit status 2).

import { parseArgs } from 'node:util';

export const USAGE = `usage: switchyard-tail --topic TOPIC [options]

Prints the last events of a topic, one line each, then (with -f) live events.

  --topic TOPIC      the topic to read, e.g. containers.c1.logs (exact URI)
  -n, --last N       how many past events to print first (default 10)
  -f, --follow       keep printing live events; reconnect and resume when the
                     connection is lost, so no line is repeated or missing
  --json             print each event as a JSON object (topic, _pos, args, kwargs)
  --url URL          the router's WebSocket URL (default ws://127.0.0.1:8080/ws)
  --realm REALM      the realm to join (default realm1)
  --ticket TICKET    log in with WAMP-Ticket: an API token of the workbench realm,
                     or a service's ticket (also --token; default $SWITCHYARD_TICKET)
  --authid AUTHID    the authid to log in as (tokens need none)
  -v, --verbose      say on stderr where each subscription attached
  -h, --help         this text
`;

export class UsageError extends Error {}

const SPEC = {
  topic: { type: 'string' },
  last: { type: 'string', short: 'n' },
  follow: { type: 'boolean', short: 'f' },
  json: { type: 'boolean' },
  url: { type: 'string' },
  realm: { type: 'string' },
  ticket: { type: 'string' },
  token: { type: 'string' },
  authid: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
};

/** Parses argv (without node and the script); `env` supplies SWITCHYARD_TICKET. */
export function parseOptions(argv, env = {}) {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: SPEC, strict: true, allowPositionals: false }));
  } catch (e) {
    // parseArgs explains what is wrong (unknown option, missing value): keep its words.
    throw new UsageError(e.message);
  }
  if (values.help) return { help: true };
  if (!values.topic) throw new UsageError('--topic is required');
  if (values.ticket !== undefined && values.token !== undefined) {
    throw new UsageError('give --ticket or --token, not both');
  }
  const last = values.last === undefined ? 10 : Number(values.last);
  if (!/^\d+$/.test(values.last ?? '10') || !Number.isSafeInteger(last)) {
    throw new UsageError(`--last must be a non-negative integer, not '${values.last}'`);
  }
  const url = values.url ?? 'ws://127.0.0.1:8080/ws';
  if (!/^wss?:\/\//.test(url)) throw new UsageError(`--url must be a ws:// or wss:// URL, not '${url}'`);
  return {
    help: false,
    topic: values.topic,
    last,
    follow: !!values.follow,
    json: !!values.json,
    url,
    realm: values.realm ?? 'realm1',
    ticket: values.ticket ?? values.token ?? (env.SWITCHYARD_TICKET || undefined),
    authid: values.authid,
    verbose: !!values.verbose,
  };
}
