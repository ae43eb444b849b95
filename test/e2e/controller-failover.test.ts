// Two `admitlb controller` processes elect one leader through the `admitlb-controller` Lease. Killing
// the leader (SIGKILL: no lease release) hands over to the standby, which finishes the work the
// leader left: no address lost, none held twice, no orphan left behind.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { objectBody, PROJECT_ROOT } from '../../src/cmd/sandbox.ts';
import { checkNoAddressHeldTwice, startCluster, type E2eCluster } from './cluster-helpers.ts';
import { until } from './cluster-helpers.ts';

let c: E2eCluster;
const children: ChildProcess[] = [];

before(async () => {
  // The sandbox's own webhook runs without its controller here: the two processes below compete.
  c = await startCluster('failover', { controller: { enabled: false } });
});
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await c?.close();
});


function spawnController(podName: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'bin/admitlb.js'),
      'controller',
      '--signing-keys-dir', c.sandbox.files.signingKeysDir,
      '--kubeconfig', c.kubeconfig,
      '--host', '127.0.0.1',
      '--port', '0',
      '--orphan-grace-seconds', '2',
      '--log-level', 'warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, POD_NAME: podName } },
  );
  children.push(child);
  return child;
}

async function holder(): Promise<string | undefined> {
  const r = await c.request('GET', '/apis/coordination.k8s.io/v1/namespaces/admitlb-system/leases/admitlb-controller');
  return r.status === 200 ? (objectBody(r).spec?.holderIdentity as string | undefined) || undefined : undefined;
}

async function converged(names: string[]): Promise<boolean> {
  const r = await c.request('GET', '/api/v1/namespaces/default/services');
  const byName = new Map<string, any>(objectBody(r).items.map((s: any) => [s.metadata.name, s]));
  return names.every((n) => {
    const s = byName.get(n);
    const ips = s?.metadata?.annotations?.['admitlb.io/assigned-ips'];
    const status = (s?.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip).join(',');
    return ips && ips === status;
  });
}

it('killing the leader hands over to the standby with no lost or duplicated address', async () => {
  const procs = { 'ctl-a': spawnController('ctl-a'), 'ctl-b': spawnController('ctl-b') };
  // Two Node processes compile and sync their caches first: minutes of CPU on a loaded two-core machine are possible.
  const first = await until('a leader', holder, 60_000);
  const leaderName = first.split('_')[0] as keyof typeof procs;
  assert.ok(leaderName in procs, `lease held by ${first}`);
  const standbyName = leaderName === 'ctl-a' ? 'ctl-b' : 'ctl-a';

  const names: string[] = [];
  for (let i = 0; i < 5; i++) {
    const n = `before-${i}`;
    assert.equal((await c.kubectl(['create', 'service', 'loadbalancer', n, '--tcp=80:80'])).code, 0);
    names.push(n);
  }
  await until('status from the first leader', async () => ((await converged(names)) ? true : undefined), 30_000);

  procs[leaderName].kill('SIGKILL');
  const killedAt = Date.now();
  // Work for the next leader: new Services need status, a deleted one leaves a claim to release.
  for (let i = 0; i < 5; i++) {
    const n = `during-${i}`;
    assert.equal((await c.kubectl(['create', 'service', 'loadbalancer', n, '--tcp=80:80'])).code, 0);
    names.push(n);
  }
  assert.equal((await c.kubectl(['delete', 'svc', 'before-0'])).code, 0);
  names.splice(names.indexOf('before-0'), 1);

  const next = await until('the standby takes the lease', async () => {
    const h = await holder();
    return h && h !== first ? h : undefined;
  }, 15_000);
  console.log(`# lease moved from ${first} to ${next} ${Date.now() - killedAt} ms after SIGKILL (leaseDuration 5 s)`);
  assert.ok(next.startsWith(`${standbyName}_`), next);
  await until('the new leader converges', async () => ((await converged(names)) ? true : undefined), 15_000);
  await until('the deleted Service releases its claim', async () => {
    const check = await checkNoAddressHeldTwice(c.sandbox.api);
    return check.orphans.length === 0 ? check : undefined;
  }, 15_000);
  const check = await checkNoAddressHeldTwice(c.sandbox.api);
  assert.deepEqual(check.problems, []);
  assert.equal(check.services, 9);
  assert.equal(check.claims, 9);
});
