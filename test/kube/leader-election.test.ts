// LeaderElector on a coordination.k8s.io/v1 Lease against the API server double, with short timings
// (leaseDuration 2 s, renewDeadline 1.5 s, retryPeriod 0.3 s): one leader at a time, hand-over on stop(),
// take-over after a crash only once the lease expired, step-down when the API server is unreachable
// (connections refused, or silently hanging) for longer than the renew deadline.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LeaderElector } from '../../src/kube/leader-election.ts';
import { loadKubeConfig } from '../../src/kube/client.ts';
import { kubeConfigWithServer, recordingLogger, removeDir, sleep, startProxy, startSandbox, waitFor, type Sandbox, type TcpProxy } from './helpers.ts';
import type { KubeConfig } from '@kubernetes/client-node';

const timing = { leaseDurationSeconds: 2, renewDeadlineSeconds: 1.5, retryPeriodSeconds: 0.3 };
const NS = 'kube-system';

interface Candidate {
  elector: LeaderElector;
  calls: string[];
  newLeaders: string[];
}

function candidate(kc: KubeConfig, name: string, identity: string): Candidate {
  const calls: string[] = [];
  const newLeaders: string[] = [];
  const elector = new LeaderElector({
    kc,
    namespace: NS,
    name,
    identity,
    ...timing,
    logger: recordingLogger(),
    onStartedLeading: () => void calls.push('started'),
    onStoppedLeading: () => void calls.push('stopped'),
    onNewLeader: (id) => void newLeaders.push(id),
  });
  return { elector, calls, newLeaders };
}

/** Samples isLeader() of every candidate every 5 ms and remembers the largest number of simultaneous leaders. */
function sampler(cs: Candidate[]) {
  let max = 0;
  let samples = 0;
  const timer = setInterval(() => {
    samples++;
    max = Math.max(max, cs.filter((c) => c.elector.isLeader()).length);
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      return { max, samples };
    },
  };
}

describe('LeaderElector', () => {
  let sb: Sandbox;
  let kc: KubeConfig;
  before(async () => {
    sb = await startSandbox('leader');
    kc = loadKubeConfig(sb.api.kubeconfigPath);
  });
  after(async () => {
    await sb.close();
    removeDir(sb.dataDir);
  });

  it('one of two candidates leads, never two at once; stop() of the leader hands over within about one retry period', async () => {
    const a = candidate(kc, 'admitlb-controller', 'a');
    const b = candidate(kc, 'admitlb-controller', 'b');
    const s = sampler([a, b]);
    try {
      await Promise.all([a.elector.start(), b.elector.start()]);
      await waitFor('a leader', () => a.elector.isLeader() || b.elector.isLeader(), 3000);
      await sleep(1000); // several renewals
      const [leader, standby] = a.elector.isLeader() ? [a, b] : [b, a];
      assert.equal(standby.elector.isLeader(), false);
      assert.deepEqual(leader.calls, ['started']);
      assert.deepEqual(standby.calls, []);
      assert.deepEqual(standby.newLeaders, [leader.elector.identity], 'the standby reports who leads');
      assert.equal(standby.elector.leader(), leader.elector.identity);

      const lease = (await sb.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/admitlb-controller`)).json();
      assert.equal(lease.spec.holderIdentity, leader.elector.identity);
      assert.equal(lease.spec.leaseDurationSeconds, 2);
      assert.match(lease.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime with six fractional digits');
      assert.match(lease.spec.acquireTime, /\.\d{6}Z$/);
      const transitions = lease.spec.leaseTransitions;

      const t0 = Date.now();
      await leader.elector.stop();
      assert.equal(leader.elector.isLeader(), false);
      assert.deepEqual(leader.calls, ['started', 'stopped']);
      const released = (await sb.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/admitlb-controller`)).json();
      assert.ok(!released.spec.holderIdentity || released.spec.holderIdentity === standby.elector.identity, 'released (or already taken over)');
      await waitFor('the standby to take over', () => standby.elector.isLeader(), 2000, 5);
      const dt = Date.now() - t0;
      // a candidate retries after retryPeriod·(1 + 1.2·random) ≤ 0.66 s
      assert.ok(dt < 1000, `took over ${dt} ms after the release`);
      assert.deepEqual(standby.calls, ['started']);
      const taken = (await sb.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/admitlb-controller`)).json();
      assert.equal(taken.spec.holderIdentity, standby.elector.identity);
      assert.equal(taken.spec.leaseTransitions, transitions + 1);
    } finally {
      const { max, samples } = s.stop();
      await a.elector.stop();
      await b.elector.stop();
      assert.ok(samples > 100, `${samples} samples`);
      assert.equal(max, 1, 'never two leaders at once');
    }
  });

  it('a leader that dies without releasing is replaced only after the lease duration', async () => {
    const a = candidate(kc, 'crash', 'a');
    const b = candidate(kc, 'crash', 'b');
    await a.elector.start();
    assert.ok(a.elector.isLeader(), 'the first candidate creates the Lease and leads');
    await b.elector.start();
    const s = sampler([a, b]);
    try {
      await sleep(700);
      assert.equal(b.elector.isLeader(), false);
      const t0 = Date.now();
      a.elector.crash();
      await waitFor('b to take over', () => b.elector.isLeader(), 5000, 5);
      const dt = Date.now() - t0;
      // b first saw a's last renewal at most one retry period (plus a request) before the crash, and must
      // see that record unchanged for leaseDuration (2 s) on its own clock; then it retries within 0.66 s.
      assert.ok(dt >= 1500 && dt <= 3200, `took over ${dt} ms after the crash`);
      assert.deepEqual(a.calls, ['started'], 'a crashed process runs no callback');
      assert.deepEqual(b.calls, ['started']);
    } finally {
      const { max } = s.stop();
      await b.elector.stop();
      assert.equal(max, 1, 'never two leaders at once');
    }
  });

  it('rejects timings that cannot be safe', () => {
    const base = { kc, namespace: NS, name: 'x', identity: 'x', logger: recordingLogger(), onStartedLeading() {}, onStoppedLeading() {} };
    assert.throws(() => new LeaderElector({ ...base, leaseDurationSeconds: 2, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.3 }), /greater than renewDeadline/);
    assert.throws(() => new LeaderElector({ ...base, leaseDurationSeconds: 2, renewDeadlineSeconds: 1.5, retryPeriodSeconds: 1.3 }), /1\.2 × retryPeriod/);
    assert.throws(() => new LeaderElector({ ...base, identity: '' }), /identity/);
  });
});

describe('LeaderElector when the API server goes away', () => {
  let sb: Sandbox;
  let proxy: TcpProxy;
  before(async () => {
    sb = await startSandbox('leader-down');
    proxy = await startProxy(Number(new URL(sb.api.url).port));
  });
  after(async () => {
    await proxy.close();
    await sb.close();
    removeDir(sb.dataDir);
  });

  for (const mode of ['down', 'blackhole'] as const) {
    it(`steps down after the renew deadline when the API server is ${mode === 'down' ? 'refusing connections' : 'silent'}, and leads again when it is back`, async () => {
      const a = candidate(kubeConfigWithServer(sb.api.kubeconfigPath, proxy.url), `down-${mode}`, 'a');
      try {
        await a.elector.start();
        assert.ok(a.elector.isLeader());
        await sleep(400);
        const t0 = Date.now();
        proxy.setMode(mode);
        await waitFor('step-down', () => a.calls.includes('stopped'), 3000, 5);
        const dt = Date.now() - t0;
        assert.equal(a.elector.isLeader(), false);
        // the last renew was sent at most one retry period before the outage; the deadline is 1.5 s after it
        assert.ok(dt >= 1000 && dt <= 1700, `stepped down ${dt} ms after the outage began`);
        await sleep(300);
        assert.deepEqual(a.calls, ['started', 'stopped']);
        proxy.setMode('pass');
        await waitFor('leading again', () => a.elector.isLeader(), 3000);
        assert.deepEqual(a.calls, ['started', 'stopped', 'started']);
      } finally {
        proxy.setMode('pass');
        await a.elector.stop();
      }
    });
  }
});
