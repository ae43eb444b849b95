// KubeCluster (client-node 1.4 informers and claim writes) against the kube-apiserver double: caches and
// events, the claim store's outcomes, an unreachable API server (bounded backoff), an API server restart,
// 410 Gone after the watch history moved on, the watchdog on a silent connection, and a clean stop().
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IPClaim, IPPool } from '../../src/config/schemas.ts';
import { ApiUnavailableError, type CacheEvent } from '../../src/kube/cluster.ts';
import { KubeCluster, RestartingInformer, defaultInformerOptions, loadKubeConfig, withKeepAlive, type InformerOptions } from '../../src/kube/client.ts';
import { tempDir } from '../sandbox/helpers.ts';
import { closedPort, kubeConfigWithServer, recordingLogger, removeDir, sleep, startAdmitlbSandbox, startProxy, waitFor, type Sandbox } from './helpers.ts';

const fast: Partial<InformerOptions> = { backoffBaseMs: 50, backoffCapMs: 400, healthyAfterMs: 300, idleTimeoutMs: 30_000 };

const poolBody = (name: string, addresses: string[]): IPPool => ({ apiVersion: 'admitlb.io/v1alpha1', kind: 'IPPool', metadata: { name }, spec: { addresses } as IPPool['spec'] });
const claimBody = (address: string, holder = 'web'): IPClaim => ({
  apiVersion: 'admitlb.io/v1alpha1',
  kind: 'IPClaim',
  metadata: { name: address },
  spec: { address, pool: 'default', holders: [{ namespace: 'default', name: holder, use: 'LoadBalancer', ports: [], backend: '' }] },
});

async function created(sb: Sandbox, path: string, body: unknown): Promise<any> {
  const res = await sb.request('POST', path, body);
  assert.equal(res.status, 201, res.text);
  return res.json();
}

describe('KubeCluster against the API server double', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await startAdmitlbSandbox('kube-client');
    await created(sb, '/apis/admitlb.io/v1alpha1/ippools', poolBody('default', ['192.0.2.0/28']));
    await created(sb, '/apis/admitlb.io/v1alpha1/ipclaims', claimBody('192.0.2.1'));
    await created(sb, '/api/v1/namespaces', { metadata: { name: 'team-a', labels: { team: 'a' } } });
    await created(sb, '/api/v1/namespaces/default/services', { metadata: { name: 'web' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
  });
  after(async () => {
    await sb.close();
    removeDir(sb.dataDir);
  });

  it('syncs pools, claims, namespaces and services, and reports add/update/delete through onEvent', async () => {
    const log = recordingLogger();
    const cluster = new KubeCluster(loadKubeConfig(sb.api.kubeconfigPath), log, { watchServices: true, informer: fast });
    const events: CacheEvent[] = [];
    cluster.onEvent((e) => events.push(e));
    assert.equal(cluster.synced(), false);
    await cluster.start();
    try {
      assert.equal(cluster.synced(), true, 'start() resolves after the first list');
      assert.deepEqual(cluster.listPools().map((p) => p.metadata.name), ['default']);
      assert.deepEqual(cluster.listPools()[0]!.spec.addresses, ['192.0.2.0/28']);
      assert.deepEqual(cluster.listClaims().map((c) => c.metadata.name), ['192.0.2.1']);
      assert.equal(cluster.namespace('team-a')?.metadata.labels?.team, 'a');
      assert.equal(cluster.namespace('nope'), undefined);
      assert.deepEqual(cluster.listServices().map((s) => `${s.metadata.namespace}/${s.metadata.name}`).sort(), ['default/kubernetes', 'default/web']);
      assert.ok(events.some((e) => e.kind === 'pool' && e.type === 'upsert' && e.pool.metadata.name === 'default'), 'the initial list is reported as upserts');

      // add, update, delete of each kind arrive through the watch
      events.length = 0;
      const p2 = await created(sb, '/apis/admitlb.io/v1alpha1/ippools', poolBody('p2', ['198.51.100.0/28']));
      const c2 = await created(sb, '/apis/admitlb.io/v1alpha1/ipclaims', claimBody('192.0.2.2'));
      await created(sb, '/api/v1/namespaces', { metadata: { name: 'team-b' } });
      await created(sb, '/api/v1/namespaces/team-b/services', { metadata: { name: 'api' }, spec: { type: 'LoadBalancer', ports: [{ port: 443 }] } });
      await waitFor('adds', () => cluster.listPools().length === 2 && cluster.listClaims().length === 2 && !!cluster.namespace('team-b') && cluster.listServices().length === 3);
      const upd = await sb.request('PUT', '/apis/admitlb.io/v1alpha1/ippools/p2', { ...p2, spec: { addresses: ['198.51.100.0/27'] } });
      assert.equal(upd.status, 200, upd.text);
      const svcPatch = await sb.request('PATCH', '/api/v1/namespaces/team-b/services/api', { metadata: { labels: { tier: 'edge' } } }, { 'Content-Type': 'application/merge-patch+json' });
      assert.equal(svcPatch.status, 200, svcPatch.text);
      await waitFor('updates', () => cluster.listPools().find((p) => p.metadata.name === 'p2')?.spec.addresses[0] === '198.51.100.0/27' && cluster.listServices().some((s) => s.metadata.labels?.tier === 'edge'));
      assert.equal((await sb.request('DELETE', `/apis/admitlb.io/v1alpha1/ipclaims/${c2.metadata.name}`)).status, 200);
      assert.equal((await sb.request('DELETE', '/apis/admitlb.io/v1alpha1/ippools/p2')).status, 200);
      assert.equal((await sb.request('DELETE', '/api/v1/namespaces/team-b/services/api')).status, 200);
      await waitFor('deletes', () => cluster.listPools().length === 1 && cluster.listClaims().length === 1 && cluster.listServices().length === 2);

      const seen = (kind: CacheEvent['kind'], type: CacheEvent['type'], pred: (e: any) => boolean) => events.some((e) => e.kind === kind && e.type === type && pred(e));
      assert.ok(seen('pool', 'upsert', (e) => e.pool.metadata.name === 'p2' && e.pool.spec.addresses[0] === '198.51.100.0/28'), 'pool add');
      assert.ok(seen('pool', 'upsert', (e) => e.pool.metadata.name === 'p2' && e.pool.spec.addresses[0] === '198.51.100.0/27'), 'pool update');
      assert.ok(seen('pool', 'delete', (e) => e.pool.metadata.name === 'p2'), 'pool delete');
      assert.ok(seen('claim', 'upsert', (e) => e.claim.metadata.name === '192.0.2.2'), 'claim add');
      assert.ok(seen('claim', 'delete', (e) => e.claim.metadata.name === '192.0.2.2'), 'claim delete');
      assert.ok(seen('namespace', 'upsert', (e) => e.namespace.metadata.name === 'team-b'), 'namespace add');
      assert.ok(seen('service', 'upsert', (e) => e.service.metadata.name === 'api' && e.service.metadata.labels?.tier === 'edge'), 'service update');
      assert.ok(seen('service', 'delete', (e) => e.service.metadata.name === 'api'), 'service delete');
      assert.ok(cluster.informerStats().every((s) => s.synced && s.watching && s.restarts === 0 && s.lists === 1), JSON.stringify(cluster.informerStats()));
    } finally {
      await cluster.stop();
    }
  });

  it('API calls reuse one kept-alive connection; one the server drops as it is reused is retried on a fresh one', async () => {
    const proxy = await startProxy(Number(new URL(sb.api.url).port));
    try {
      const cluster = new KubeCluster(withKeepAlive(kubeConfigWithServer(sb.api.kubeconfigPath, proxy.url)), recordingLogger(), { informer: fast });
      assert.equal(await cluster.get('192.0.2.14'), undefined);
      assert.equal(await cluster.get('192.0.2.14'), undefined);
      assert.equal(proxy.stats().accepted, 1, 'the second call reused the connection');
      proxy.resetIdleOnNextRequest();
      const r = await cluster.create(claimBody('192.0.2.14', 'retried'));
      assert.equal(r.ok, true, 'the create went through on a fresh connection');
      assert.deepEqual(proxy.stats(), { accepted: 2, reset: 1 });
      assert.equal(await cluster.delete('192.0.2.14'), true);
    } finally {
      await proxy.close();
    }
  });

  it('claim store: create, AlreadyExists with the current claim, Conflict, NotFound, delete preconditions, get', async () => {
    const cluster = new KubeCluster(loadKubeConfig(sb.api.kubeconfigPath), recordingLogger(), { informer: fast });
    const first = await cluster.create(claimBody('192.0.2.9', 'first'));
    assert.equal(first.ok, true);
    assert.ok(first.ok && first.claim.metadata.resourceVersion, 'the created claim has a resourceVersion');
    const firstRv = first.ok ? first.claim.metadata.resourceVersion! : '';

    const again = await cluster.create(claimBody('192.0.2.9', 'second'));
    assert.equal(again.ok, false);
    assert.equal(!again.ok && again.reason, 'AlreadyExists');
    assert.equal(!again.ok && again.current?.spec.holders[0]?.name, 'first', 'AlreadyExists returns the claim that won');
    assert.equal(!again.ok && again.current?.metadata.resourceVersion, firstRv);

    const current = (await cluster.get('192.0.2.9'))!;
    const shared = { ...current, spec: { ...current.spec, holders: [...current.spec.holders, { namespace: 'default', name: 'second', use: 'LoadBalancer' as const, ports: [], backend: '' }] } };
    const ok = await cluster.update(shared);
    assert.ok(ok.ok, 'update with the current resourceVersion');
    const newRv = ok.ok ? ok.claim.metadata.resourceVersion! : '';
    assert.notEqual(newRv, firstRv);

    const stale = await cluster.update({ ...shared, metadata: { ...shared.metadata, resourceVersion: firstRv } });
    assert.deepEqual(stale, { ok: false, reason: 'Conflict' });
    const missing = await cluster.update({ ...claimBody('192.0.2.10'), metadata: { name: '192.0.2.10', resourceVersion: '1' } });
    assert.deepEqual(missing, { ok: false, reason: 'NotFound' });

    assert.equal(await cluster.delete('192.0.2.9', firstRv), false, 'stale precondition: not deleted');
    assert.ok(await cluster.get('192.0.2.9'));
    assert.equal(await cluster.delete('192.0.2.9', newRv), true);
    assert.equal(await cluster.get('192.0.2.9'), undefined);
    assert.equal(await cluster.delete('192.0.2.9'), false, 'deleting a missing claim');
    assert.equal(await cluster.get('203.0.113.99'), undefined);
    await cluster.stop();
  });

  it('stop() leaves nothing behind: a process that started clusters (synced and backing off) exits on its own', async () => {
    const dir = tempDir('kube-stop');
    const script = join(dir, 'stop.mts');
    const client = new URL('../../src/kube/client.ts', import.meta.url).pathname;
    const helpers = new URL('./helpers.ts', import.meta.url).pathname;
    writeFileSync(
      script,
      `import { KubeCluster, loadKubeConfig } from ${JSON.stringify(client)};
import { kubeConfigWithServer } from ${JSON.stringify(helpers)};
const t0 = Date.now();
const mark = (m) => console.log(m, Date.now() - t0);
const log = { info() {}, warn() {}, error() {} };
const kc = loadKubeConfig(process.argv[2]);
const live = new KubeCluster(kc, log, { watchServices: true });
await live.start();
mark('live started');
if (!live.synced()) throw new Error('not synced');
const down = new KubeCluster(kubeConfigWithServer(process.argv[2], 'https://127.0.0.1:' + process.argv[3]), log);
await down.start();
mark('down started');
await new Promise((r) => setTimeout(r, 400));
await live.stop();
mark('live stopped');
await down.stop();
console.log('stopped', Date.now());
`,
    );
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', script, sb.api.kubeconfigPath, String(await closedPort())], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
        // Generous: starting tsx on a loaded 2-core machine takes seconds; what counts is the time after stop().
    let stoppedSeen = 0;
    child.stdout.on('data', () => {
      if (!stoppedSeen && /^stopped \d+$/m.test(out)) stoppedSeen = Date.now();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const watchdog = setInterval(() => {
      if (stoppedSeen && Date.now() - stoppedSeen > 5000) child.kill('SIGKILL');
    }, 100);
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
    const exited = Date.now();
    clearTimeout(killer);
    clearInterval(watchdog);
    removeDir(dir);
    assert.equal(signal, null, `the process did not exit by itself after stop() (stdout: ${out}, stderr: ${err})`);
    assert.equal(code, 0, err);
    const stoppedAt = Number(/^stopped (\d+)$/m.exec(out)?.[1]);
    assert.ok(stoppedAt > started, out);
    assert.ok(exited - stoppedAt < 3000, `exited ${exited - stoppedAt} ms after stop()`);
  });
});

describe('KubeCluster when the API server is unreachable', () => {
  it('start() resolves, synced() stays false, restarts follow the backoff, writes throw ApiUnavailableError', async () => {
    const sb = await startAdmitlbSandbox('kube-unreachable');
    const kc = kubeConfigWithServer(sb.api.kubeconfigPath, `https://127.0.0.1:${await closedPort()}`);
    await sb.close();
    removeDir(sb.dataDir);
    const log = recordingLogger();
    // base 100 ms, factor 2, jitter 0.2: restart k (1-based) waits at least 80·2^(k-1) ms, so k restarts need
    // Σ_{i<k-1} 80·2^i = 80·(2^(k-1) - 1) ms before the k-th can be scheduled; within 2 s: 2^(k-1) ≤ 26, k ≤ 5.
    const opts: Partial<InformerOptions> = { backoffBaseMs: 100, backoffFactor: 2, backoffJitter: 0.2, backoffCapMs: 30_000 };
    const cluster = new KubeCluster(kc, log, { watchServices: true, informer: opts });
    const t0 = Date.now();
    await cluster.start();
    assert.ok(Date.now() - t0 < 1000, 'start() does not wait for the API server');
    assert.equal(cluster.synced(), false);
    await sleep(2000 - (Date.now() - t0));
    const stats = cluster.informerStats();
    await assert.rejects(cluster.create(claimBody('192.0.2.5')), (e: unknown) => e instanceof ApiUnavailableError && /ECONNREFUSED/.test(String(e.message)));
    await assert.rejects(cluster.get('192.0.2.5'), ApiUnavailableError);
    await cluster.stop();
    const restartLogs = log.entries.filter((e) => e.msg.includes('restarting'));
    assert.equal(stats.length, 4);
    for (const s of stats) {
      assert.equal(s.synced, false);
      assert.ok(s.restarts >= 3 && s.restarts <= 5, `${s.name}: ${s.restarts} restarts in 2 s (the old code made ~8 per informer)`);
      const delays = restartLogs.filter((e) => e.obj.informer === s.name).map((e) => e.obj.delayMs as number);
      const attempts = restartLogs.filter((e) => e.obj.informer === s.name).map((e) => e.obj.attempt as number);
      assert.deepEqual(attempts, delays.map((_, i) => i + 1), 'each restart is logged with its attempt number');
      delays.forEach((d, i) => assert.ok(d >= 80 * 2 ** i && d <= 120 * 2 ** i, `${s.name} delay #${i + 1} = ${d} ms`));
    }
    assert.equal(cluster.synced(), false);
  });

  it('the backoff delay grows by the factor, is jittered within bounds and capped', () => {
    const o = defaultInformerOptions;
    assert.equal(RestartingInformer.backoffDelay(o, 0, 0.5), 250);
    assert.equal(RestartingInformer.backoffDelay(o, 3, 0.5), 2000);
    assert.equal(RestartingInformer.backoffDelay(o, 0, 0), 200);
    assert.equal(RestartingInformer.backoffDelay(o, 0, 1), 300);
    assert.equal(RestartingInformer.backoffDelay(o, 7, 0.5), 30_000);
    assert.equal(RestartingInformer.backoffDelay(o, 7, 1), 30_000, 'jitter does not exceed the cap');
    assert.equal(RestartingInformer.backoffDelay(o, 50, 0), 24_000);
    assert.equal(RestartingInformer.backoffDelay(o, 5000, 0.5), 30_000, 'no overflow');
  });
});

describe('KubeCluster across API server outages', () => {
  it('reconnects after the API server restarts on the same port and dataDir', async () => {
    const dataDir = tempDir('kube-restart');
    let sb = await startAdmitlbSandbox('kube-restart', {}, dataDir);
    const port = Number(new URL(sb.api.url).port);
    await created(sb, '/apis/admitlb.io/v1alpha1/ippools', poolBody('before', ['192.0.2.0/28']));
    const log = recordingLogger();
    const cluster = new KubeCluster(loadKubeConfig(sb.api.kubeconfigPath), log, { watchServices: true, informer: fast });
    try {
      await cluster.start();
      assert.deepEqual(cluster.listPools().map((p) => p.metadata.name), ['before']);
      // The double's close() hangs on a connection that is still in its TLS handshake (closeAllConnections
      // does not see it yet), so let every watch connect first.
      await waitFor('every informer watching', () => cluster.informerStats().every((s) => s.watching));
      await sb.close();
      await waitFor('the informers to notice', () => cluster.informerStats().every((s) => !s.watching && s.restarts > 0));
      await sleep(300);
      assert.equal(cluster.synced(), true, 'synced stays true while reconnecting (client-go HasSynced)');
      assert.deepEqual(cluster.listPools().map((p) => p.metadata.name), ['before'], 'the cache keeps serving its last state');
      sb = await startAdmitlbSandbox('kube-restart', { port }, dataDir);
      await created(sb, '/apis/admitlb.io/v1alpha1/ippools', poolBody('after', ['198.51.100.0/28']));
      await created(sb, '/apis/admitlb.io/v1alpha1/ipclaims', claimBody('198.51.100.1'));
      await created(sb, '/api/v1/namespaces', { metadata: { name: 'after-restart' } });
      await created(sb, '/api/v1/namespaces/default/services', { metadata: { name: 'after' }, spec: { ports: [{ port: 80 }] } });
      await waitFor(
        'objects created after the restart',
        () => cluster.listPools().length === 2 && cluster.listClaims().length === 1 && !!cluster.namespace('after-restart') && cluster.listServices().some((s) => s.metadata.name === 'after'),
        5000,
      );
      await waitFor('every informer watching', () => cluster.informerStats().every((s) => s.watching));
      assert.ok(log.entries.some((e) => e.level === 'warn' && typeof e.obj.delayMs === 'number' && e.obj.attempt === 1), 'a warning for the first restart attempt, with its delay');
    } finally {
      await cluster.stop();
      await sb.close();
      removeDir(dataDir);
    }
  });

  describe('behind a proxy', () => {
    let sb: Sandbox;
    let proxy: Awaited<ReturnType<typeof startProxy>>;
    before(async () => {
      sb = await startAdmitlbSandbox('kube-410', { watchHistorySize: 5, bookmarkIntervalMs: 100 });
      proxy = await startProxy(Number(new URL(sb.api.url).port));
    });
    after(async () => {
      await proxy.close();
      await sb.close();
      removeDir(sb.dataDir);
    });

    it('relists after 410 Gone: events beyond the watch history while disconnected end in a correct cache', async () => {
      for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) await created(sb, '/apis/admitlb.io/v1alpha1/ipclaims', claimBody(ip));
      const cluster = new KubeCluster(kubeConfigWithServer(sb.api.kubeconfigPath, proxy.url), recordingLogger(), { informer: { ...fast, backoffBaseMs: 100 } });
      const events: CacheEvent[] = [];
      cluster.onEvent((e) => events.push(e));
      try {
        await cluster.start();
        assert.equal(cluster.listClaims().length, 3);
        proxy.setMode('down');
        await waitFor('disconnected', () => cluster.informerStats().every((s) => !s.watching && s.restarts > 0));
        // 9 events while the informers cannot see them; the history keeps 5
        assert.equal((await sb.request('DELETE', '/apis/admitlb.io/v1alpha1/ipclaims/192.0.2.1')).status, 200);
        const c2 = (await sb.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims/192.0.2.2')).json();
        assert.equal((await sb.request('PUT', '/apis/admitlb.io/v1alpha1/ipclaims/192.0.2.2', { ...c2, spec: { ...c2.spec, holders: [{ ...c2.spec.holders[0], name: 'moved' }] } })).status, 200);
        for (let i = 4; i <= 10; i++) await created(sb, '/apis/admitlb.io/v1alpha1/ipclaims', claimBody(`192.0.2.${i}`));
        const claimsStats = () => cluster.informerStats().find((s) => s.name === 'ipclaims')!;
        const listsBefore = claimsStats().lists;
        events.length = 0;
        proxy.setMode('pass');
        const server = (await sb.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims')).json().items as IPClaim[];
        const key = (cs: readonly IPClaim[]) => cs.map((c) => `${c.metadata.name}@${c.metadata.resourceVersion}`).sort().join(',');
        await waitFor('the cache to match the server', () => key(cluster.listClaims()) === key(server), 5000);
        assert.ok(claimsStats().lists > listsBefore, 'the claims informer relisted');
        assert.ok(events.some((e) => e.kind === 'claim' && e.type === 'delete' && e.claim.metadata.name === '192.0.2.1'), 'the relist reports the deletion it missed');
        assert.ok(events.some((e) => e.kind === 'claim' && e.type === 'upsert' && e.claim.metadata.name === '192.0.2.2' && e.claim.spec.holders[0]!.name === 'moved'), 'the relist reports the change it missed');
        await waitFor('every informer watching', () => cluster.informerStats().every((s) => s.watching));
      } finally {
        await cluster.stop();
      }
    });

    it('the watchdog restarts informers whose connection went silent (no events, no bookmarks)', async () => {
      const cluster = new KubeCluster(kubeConfigWithServer(sb.api.kubeconfigPath, proxy.url), recordingLogger(), { informer: { ...fast, idleTimeoutMs: 500 } });
      try {
        await cluster.start();
        await sleep(700);
        assert.ok(cluster.informerStats().every((s) => s.watchdogRestarts === 0), 'bookmarks (every 100 ms) keep a quiet watch alive');
        proxy.setMode('blackhole');
        await waitFor('watchdog restarts', () => cluster.informerStats().every((s) => s.watchdogRestarts >= 1), 3000);
        proxy.setMode('pass');
        await created(sb, '/apis/admitlb.io/v1alpha1/ippools', poolBody('after-stall', ['203.0.113.0/28']));
        await waitFor('the pool created after the stall', () => cluster.listPools().some((p) => p.metadata.name === 'after-stall'), 5000);
      } finally {
        proxy.setMode('pass');
        await cluster.stop();
      }
    });
  });
});
