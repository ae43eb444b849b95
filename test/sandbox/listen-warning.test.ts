// `admitlb sandbox --listen` on an address other machines can reach warns on stderr: the API
// double's stored token is cluster-admin. The command is run as a child process; the non-loopback
// run uses a documentation address that no interface has, so it never listens beyond loopback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PROJECT_ROOT, exposureWarning, isLoopback } from '../../src/cmd/sandbox.ts';
import { removeDir, tempDir } from './helpers.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function runSandbox(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/admitlb.js'), 'sandbox', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running after 30 s:\n${stdout}\n${stderr}`));
    }, 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('admitlb sandbox --listen: a warning when other machines can reach the API server', () => {
  it('loopback addresses are recognised, wildcards and routable addresses are not', () => {
    for (const h of ['127.0.0.1', '127.3.2.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '[::1]']) assert.equal(isLoopback(h), true, h);
    for (const h of ['0.0.0.0', '::', '192.0.2.1', '2001:db8::1', '::ffff:192.0.2.1', '128.0.0.1']) assert.equal(isLoopback(h), false, h);
    assert.equal(exposureWarning('127.0.0.1', 6443, '/d'), undefined);
    const w = exposureWarning('0.0.0.0', 6443, '/d');
    assert.match(w ?? '', /WARNING: the API server listens on 0\.0\.0\.0:6443, which other machines can reach/);
    assert.match(w ?? '', /\/d\/token.*cluster-admin/);
    assert.match(exposureWarning('::', 7443, '/d') ?? '', /listens on \[::\]:7443/);
  });

  it('the command prints the warning on stderr for a non-loopback address', async () => {
    const dataDir = tempDir('listen-warning');
    cleanups.push(() => removeDir(dataDir));
    // 192.0.2.1 (TEST-NET-1) is on no interface: the start fails after the warning, nothing listens.
    const r = await runSandbox(['--data-dir', dataDir, '--listen', '192.0.2.1:0']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^admitlb sandbox: WARNING: the API server listens on 192\.0\.2\.1:0, which other machines can reach\.$/m);
    assert.match(r.stderr, new RegExp(`Its bearer token \\(${join(dataDir, 'token').replace(/[.\\/]/g, '\\$&')}, also in the kubeconfig\\) is cluster-admin`));
    assert.match(r.stderr, /no interface has the address 192\.0\.2\.1/);
    assert.doesNotMatch(r.stdout, /WARNING/, 'the warning goes to stderr only');
  });

  it('no warning for a loopback address', async () => {
    const dataDir = tempDir('listen-warning-lo');
    cleanups.push(() => removeDir(dataDir));
    // A busy loopback port: the start fails quickly, and there must be no warning before the error.
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => busy.close(() => r())));
    const port = (busy.address() as net.AddressInfo).port;
    const r = await runSandbox(['--data-dir', dataDir, '--listen', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /the address is already in use/);
    assert.doesNotMatch(r.stderr, /WARNING/);
  });
});
