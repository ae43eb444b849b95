#!/usr/bin/env node
// The kubectl plugin binary: kubectl runs `kubectl-admitlb` from the PATH for `kubectl admitlb ...`.
// Loads tsx so the TypeScript sources run as they are (as bin/admitlb.js does).
import { register } from 'tsx/esm/api';
register();
const { runPlugin } = await import('../src/kubectl/plugin.ts');
const { processIO } = await import('../src/kubectl/io.ts');
try {
  // exitCode rather than exit(): stdout may still be draining into a pipe.
  process.exitCode = await runPlugin(process.argv.slice(2), processIO, 'kubectl admitlb');
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
