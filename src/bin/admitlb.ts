#!/usr/bin/env node
// The admitlb command. `npm run build` compiles this to dist/bin/admitlb.js, which the image and an
// installed package run; bin/admitlb.js runs it (the sources through tsx in a development checkout).
import { main } from '../cmd/cli.ts';

try {
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exit(code); // a negative code means a server is running
} catch (err) {
  // Configuration and usage errors: one clear message, non-zero exit, no stack trace.
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  if (e?.name === 'ConfigError' || (typeof e?.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS'))) {
    console.error(`admitlb: ${String(e.message)}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
}
