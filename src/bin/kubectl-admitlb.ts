#!/usr/bin/env node
// The kubectl plugin binary: kubectl runs `kubectl-admitlb` from the PATH for `kubectl admitlb ...`.
// Built to dist/bin/kubectl-admitlb.js; bin/kubectl-admitlb.js runs it (as bin/admitlb.js does).
import { processIO } from '../kubectl/io.ts';
import { runPlugin } from '../cmd/plugin.ts';

try {
  // exitCode rather than exit(): stdout may still be draining into a pipe.
  process.exitCode = await runPlugin(process.argv.slice(2), processIO, 'kubectl admitlb');
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}
