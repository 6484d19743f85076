#!/usr/bin/env node
// switchyard-tail: prints a topic's recent events, then (-f) live ones, from a
// Switchyard router (clients/js/README.md). This file wires the tail to the process:
// options, stdout/stderr, signals, exit status (0 done, 1 error, 2 usage).

import { parseOptions, UsageError, USAGE } from '../lib/options.mjs';
import { Tail } from '../lib/tail.mjs';

const PROG = 'switchyard-tail';

function exit(code) {
  // Let stdout drain first: `switchyard-tail ... > file` must get every line.
  process.stdout.write('', () => process.exit(code));
}

// `switchyard-tail ... | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

let opts;
try {
  opts = parseOptions(process.argv.slice(2), process.env);
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  process.stderr.write(`${PROG}: ${e.message}\n\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  process.stdout.write(USAGE);
  exit(0);
} else {
  const tail = new Tail(opts, {
    line: (text) => process.stdout.write(`${text}\n`),
    note: (text) => process.stderr.write(`${PROG}: ${text}\n`),
  });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => tail.stop());
  tail.run().then(exit, (e) => {
    process.stderr.write(`${PROG}: ${e && e.stack ? e.stack : e}\n`);
    exit(1);
  });
}
