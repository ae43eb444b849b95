#!/usr/bin/env node
// Entry point of the admitlb CLI: loads tsx so the TypeScript sources run as they are.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli.ts');
try {
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exit(code); // a negative code means a server is running
} catch (err) {
  // Configuration and usage errors: one clear message, non-zero exit, no stack trace.
  if (err?.name === 'ConfigError' || err?.code?.startsWith?.('ERR_PARSE_ARGS')) {
    console.error(`admitlb: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
}
