// `admitlb sandbox` / `npm start`: the newcomer's walkthrough, restarts on the same data folder, the
// CLI as a child process (printed kubeconfig, Ctrl-C), and the start-up errors.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_DATA_DIR, DEFAULT_REAL_DATA_DIR, PROJECT_ROOT, SandboxError, parseListen, parseSandboxArgs, startSandbox } from '../../src/cmd/sandbox.ts';
import { removeDir, runKubectl, tempDir } from '../sandbox/helpers.ts';
import { e2eTarget, pool, startCluster, type E2eCluster } from './cluster-helpers.ts';

const target = e2eTarget();
const controlPlaneArgs = target === 'real' ? ['--control-plane', 'real'] : [];

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const assigned = async (c: E2eCluster, name: string) =>
  (await c.kubectl(['get', 'svc', name, '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}'])).stdout;

describe('the newcomer walkthrough, then a restart on the same data folder', () => {
  it('addresses at create, a denial naming the pool, and everything kept across a restart', async () => {
    const dataDir = tempDir('e2e-restart');
    cleanups.push(() => removeDir(dataDir));
    let c = await startCluster('restart', { dataDir, defaultPool: false });
    cleanups.push(() => c.close({ keepData: true }));
    // A small "default" pool so that it runs out (the sandbox's own default is a /24).
    const p = await c.apply(pool('default', { addresses: ['203.0.113.10-203.0.113.12'] }));
    assert.equal(p.code, 0, p.stderr);
    await c.waitForPool('default');

    for (const [name, ip] of [['web', '203.0.113.10'], ['web2', '203.0.113.11']] as const) {
      const r = await c.kubectl(['create', 'service', 'loadbalancer', name, '--tcp=80:80']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `service/${name} created`);
      assert.equal(await assigned(c, name), ip);
    }
    // `kubectl get svc web` shows the address (the controller's status), never <pending>.
    for (let i = 0, get = await c.kubectl(['get', 'svc', 'web']); ; i++, get = await c.kubectl(['get', 'svc', 'web'])) {
      if (/web\s+LoadBalancer\s+\S+\s+203\.0\.113\.10\s/.test(get.stdout)) break;
      assert.ok(i < 100, `EXTERNAL-IP not shown: ${get.stdout}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    // Restart: the API double's journal, the webhook's CA and signing keys all live in dataDir.
    await c.close({ keepData: true });
    c = await startCluster('restart', { dataDir });
    assert.equal(c.sandbox.createdDefaultPool, false, 'a cluster with pools gets no second default pool');
    const svcs = await c.kubectl(['get', 'svc', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.metadata.annotations.admitlb\\.io/assigned-ips} {end}']);
    assert.equal(svcs.stdout.trim(), 'kubernetes= web=203.0.113.10 web2=203.0.113.11');
    const claims = await c.kubectl(['get', 'ipclaims', '-o', 'jsonpath={range .items[*]}{.spec.address}={.spec.heldBy} {end}']);
    assert.equal(claims.stdout.trim(), '203.0.113.10=default/web 203.0.113.11=default/web2');

    // The assignment signed before the restart still verifies: an update keeps it.
    const annotate = await c.kubectl(['annotate', 'svc', 'web', 'team=blue']);
    assert.equal(annotate.code, 0, annotate.stderr);
    assert.equal(await assigned(c, 'web'), '203.0.113.10');

    const third = await c.kubectl(['create', 'service', 'loadbalancer', 'web3', '--tcp=80:80']);
    assert.equal(third.code, 0, third.stderr);
    assert.equal(await assigned(c, 'web3'), '203.0.113.12', 'no address reused after the restart');

    const full = await c.kubectl(['create', 'service', 'loadbalancer', 'web4', '--tcp=80:80']);
    assert.notEqual(full.code, 0);
    assert.equal(
      full.stderr.trim(),
      'error: failed to create LoadBalancer service: admission webhook "services.admitlb.io" denied the request: ' +
        'spec.type: cannot allocate an IPv4 address: IPPool "default" has no free IPv4 address',
    );

    // One process per data folder, and a busy port is named.
    await assert.rejects(startSandbox({ dataDir, port: 0 }), (err: Error) => err instanceof SandboxError && /is in use by process \d+/.test(err.message));
    const busyPort = Number(new URL(c.sandbox.api.url).port);
    const other = tempDir('e2e-busy');
    cleanups.push(() => removeDir(other));
    await assert.rejects(
      startSandbox({ dataDir: other, host: '127.0.0.1', port: busyPort }),
      (err: Error) => err instanceof SandboxError && err.message.includes(`cannot listen on 127.0.0.1:${busyPort}: the address is already in use`),
    );
  });

  it('a fresh data folder gets the default pool on documentation addresses', async () => {
    const c = await startCluster('fresh');
    cleanups.push(() => c.close());
    assert.equal(c.sandbox.createdDefaultPool, true);
    const pools = await c.kubectl(['get', 'ippools', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.spec.addresses} {end}']);
    assert.equal(pools.stdout.trim(), 'default=["203.0.113.0/24","2001:db8:100::/120"]');
    const crds = await c.kubectl(['get', 'crds', '-o', 'name']);
    assert.deepEqual(crds.stdout.trim().split('\n').sort(), ['bgpadvertisements', 'bgppeers', 'ipclaims', 'ippools', 'l2advertisements', 'nodeannouncements'].map((p) => `customresourcedefinition.apiextensions.k8s.io/${p}.admitlb.io`));
    const hooks = await c.kubectl(['get', 'mutatingwebhookconfigurations', 'admitlb', '-o', 'json']);
    const w = JSON.parse(hooks.stdout).webhooks[0];
    assert.equal(w.name, 'services.admitlb.io');
    assert.equal(w.clientConfig.service, undefined);
    assert.equal(w.clientConfig.url, `https://127.0.0.1:${new URL(c.sandbox.webhook.url).port}/mutate/services`);
    assert.ok(w.clientConfig.caBundle);
    assert.equal(w.failurePolicy, 'Fail');
    assert.equal(w.sideEffects, 'NoneOnDryRun');
    assert.equal(w.matchConditions[0].name, 'admitlb-relevant-service');
  });
});

describe('admitlb sandbox, the command', () => {
  it('prints the kubeconfig path that kubectl then uses; SIGINT stops it cleanly with exit code 0', async () => {
    const dataDir = tempDir('e2e-cli');
    const cacheDir = tempDir('e2e-cli-kubecache');
    cleanups.push(() => {
      removeDir(dataDir);
      removeDir(cacheDir);
    });
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/admitlb.js'), 'sandbox', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...controlPlaneArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const kubeconfig = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no kubeconfig line within 60 s:\n${out}\n${err}`)), 60_000);
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const m = out.match(/^kubeconfig: (.+)$/m);
        if (m && out.includes('Ctrl-C')) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', () => reject(new Error(`exited early:\n${out}\n${err}`)));
    });
    assert.equal(kubeconfig, join(dataDir, 'kubeconfig'));
    assert.match(out, new RegExp(`^  export KUBECONFIG=${kubeconfig.replace(/[.\\/]/g, '\\$&')}$`, 'm'));
    assert.match(out, /^ {2}kubectl create service loadbalancer web --tcp=80:80$/m);
    if (target === 'real') {
      assert.match(out, /^admitlb sandbox: kube-apiserver v1\.\d+\.\d+ \(etcd v3\.\d+\.\d+\) https:\/\/127\.0\.0\.1:\d+, webhook https:\/\/127\.0\.0\.1:\d+ \(as ServiceAccount admitlb-system\/admitlb\)$/m);
    } else {
      assert.match(out, /^admitlb sandbox: API server https:\/\/127\.0\.0\.1:\d+, webhook https:\/\/127\.0\.0\.1:\d+$/m);
    }
    // The processes of the real control plane, to check that Ctrl-C leaves none behind.
    const pids = target === 'real' ? readFileSync(join(dataDir, 'control-plane.pids'), 'utf8').trim().split('\n').map(Number) : [];
    assert.equal(pids.length, target === 'real' ? 3 : 0);
    assert.ok(pids.every(pidAlive));

    const created = await runKubectl(kubeconfig, cacheDir, ['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), 'service/web created');
    const ip = await runKubectl(kubeconfig, cacheDir, ['get', 'svc', 'web', '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}']);
    assert.equal(ip.stdout, '203.0.113.1');

    child.kill('SIGINT');
    const { code, signal } = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `${out}\n${err}`);
    assert.match(out, /stopped; the cluster is kept in /);
    assert.doesNotMatch(err, /error/i);
    assert.deepEqual(pids.filter(pidAlive), [], 'no etcd, kube-apiserver or kube-controller-manager left running');
    assert.equal(existsSync(join(dataDir, 'control-plane.pids')), false);
  });

  it('--control-plane real without built binaries says how to build them and exits non-zero', async () => {
    const dataDir = tempDir('e2e-cli-nobin');
    cleanups.push(() => removeDir(dataDir));
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/admitlb.js'), 'sandbox', '--control-plane', 'real', '--data-dir', dataDir, '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ADMITLB_CLUSTER_BIN_DIR: join(dataDir, 'no-binaries-here') },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 1, out);
    assert.match(out, /^admitlb sandbox: the real control plane \(kubernetes v1\.\d+\.\d+, etcd v3\.\d+\.\d+\) is not built in .*no-binaries-here: build them with `npm run cluster:build` \(needs Go 1\.24 or newer/m);
    assert.doesNotMatch(out, /kubeconfig:/);
  });

  it('a data folder holds one kind of cluster: the other kind is refused with a message', async () => {
    const dataDir = tempDir('e2e-kind');
    cleanups.push(() => removeDir(dataDir));
    const c = await startCluster('kind', { dataDir, defaultPool: false });
    await c.close({ keepData: true });
    const other = target === 'real' ? 'sandbox' : 'real';
    await assert.rejects(
      startSandbox({ controlPlane: other, dataDir, host: '127.0.0.1', port: 0 }),
      (err: Error) => err instanceof SandboxError && err.message.includes(`holds a cluster of the ${target === 'real' ? 'real control plane' : 'API double'}; pass --control-plane ${target} or another --data-dir`),
    );
  });

  it('flags: --data-dir, --listen HOST:PORT, defaults for npm start', () => {
    assert.deepEqual(parseSandboxArgs([]), { controlPlane: 'sandbox', dataDir: DEFAULT_DATA_DIR, host: '127.0.0.1', port: 6443, webhookPort: 0 });
    assert.equal(DEFAULT_DATA_DIR, join(PROJECT_ROOT, '.sandbox'));
    assert.deepEqual(parseSandboxArgs(['--data-dir', '/tmp/x', '--listen', '10.0.0.1:7443', '--webhook-port', '9444']), { controlPlane: 'sandbox', dataDir: '/tmp/x', host: '10.0.0.1', port: 7443, webhookPort: 9444 });
    assert.deepEqual(parseSandboxArgs(['--control-plane', 'real']), { controlPlane: 'real', dataDir: DEFAULT_REAL_DATA_DIR, host: '127.0.0.1', port: 6443, webhookPort: 0 });
    assert.equal(DEFAULT_REAL_DATA_DIR, join(PROJECT_ROOT, '.sandbox-real'));
    assert.throws(() => parseSandboxArgs(['--control-plane', 'kind']), /--control-plane must be sandbox \(the API double\) or real \(etcd \+ kube-apiserver\), got kind/);
    assert.deepEqual(parseListen('[::1]:8443'), { host: '::1', port: 8443 });
    assert.deepEqual(parseListen('0.0.0.0'), { host: '0.0.0.0', port: 6443 });
    assert.deepEqual(parseListen(':0'), { host: '127.0.0.1', port: 0 });
    assert.throws(() => parseListen('127.0.0.1:http'), /the port must be a number/);
    assert.throws(() => parseListen('example.com:80'), /not an IP address/);
  });
});
