// How long the controller takes to converge on N Services (default 5,000) on the sandbox double
// (allocateLoadBalancerNodePorts: false, as the node port range holds only 2,768 Services):
//   back-stop   N Services created while the webhook is down: the controller assigns, claims,
//               signs, annotates and writes status for all of them;
//   restart     a fresh controller on the converged cluster: list, verify every signature, check
//               every claim, write nothing (asserted: no Service's resourceVersion moves);
//   baseline    a bare informer list of the same cluster (KubeCluster start → synced), the floor
//               any restart pays. Restart and baseline alternate; medians and their ratio printed.
//
//   npm run bench:controller             BENCH_SERVICES=1000 npm run bench:controller
//   E2E_TARGET=real: the same on etcd + kube-apiserver (part of `npm run bench:real`), the controller
//   running as its ServiceAccount.
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { controllerCommandConfigSchema } from '../src/config/webhook-config.ts';
import { startControllerProcess } from '../src/cmd/controller.ts';
import { KubeCluster, loadKubeConfig } from '../src/kube/client.ts';
import { apiRequest, objectBody, startSandbox } from '../src/cmd/sandbox.ts';

const N = Number(process.env.BENCH_SERVICES ?? 5000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = 20;
const silent = pino({ level: 'silent' });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dataDir = mkdtempSync(join(tmpdir(), 'admitlb-bench-controller-'));
const target = process.env.E2E_TARGET === 'real' ? 'real' : 'sandbox';
const sandbox = await startSandbox({ controlPlane: target, dataDir, host: '127.0.0.1', port: 0, logger: silent, defaultPool: false, controller: { enabled: false } });
console.log(`controller bench on the ${target === 'real' ? `real control plane (kube-apiserver ${sandbox.real!.versions.kubernetes}, etcd ${sandbox.real!.versions.etcd})` : 'API double'}, ${N} Services`);
try {
  const api = sandbox.api;
  await apiRequest(api, 'POST', '/apis/admitlb.io/v1alpha1/ippools', { apiVersion: 'admitlb.io/v1alpha1', kind: 'IPPool', metadata: { name: 'bench' }, spec: { addresses: ['2001:db8:5000::/112'] } });
  // The webhook is "down": every Service bypasses admission and waits for the back-stop.
  await apiRequest(api, 'DELETE', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/admitlb');
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      for (let i = next++; i < N; i = next++) {
        const body = { apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${i}` }, spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack', selector: { app: `a${i}` }, ports: [{ port: 80, protocol: 'TCP' }] } };
        const r = await apiRequest(api, 'POST', '/api/v1/namespaces/default/services', body, agent);
        if (r.status !== 201) throw new Error(`create svc-${i}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
      }
      agent.destroy();
    }),
  );
  console.log(`created ${N} Services (no webhook) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const controllerKubeconfig = await sandbox.identity('controller');
  const config = controllerCommandConfigSchema.parse({ signingKeysDir: sandbox.files.signingKeysDir, kubeconfig: controllerKubeconfig, host: '127.0.0.1', port: 0 });
  const converge = async (): Promise<number> => {
    const started = performance.now();
    const proc = await startControllerProcess(config, { logger: silent });
    try {
      for (let i = 0; !proc.controller.isLeader(); i++) {
        if (i > 2000) throw new Error('controller not elected within 20 s');
        await new Promise((r) => setTimeout(r, 10));
      }
      await proc.controller.controller.idle();
      return performance.now() - started;
    } finally {
      await proc.close();
    }
  };
  const versions = async () => {
    const r = await apiRequest(api, 'GET', '/api/v1/namespaces/default/services');
    const items = (objectBody(r).items as any[]).filter((s) => s.spec.type === 'LoadBalancer');
    const withStatus = items.filter((s) => s.status?.loadBalancer?.ingress?.[0]?.ip === s.metadata.annotations?.['admitlb.io/assigned-ips']).length;
    return { rv: items.map((s) => `${s.metadata.name}@${s.metadata.resourceVersion}`).sort().join(), withStatus };
  };

  const backstop = await converge();
  const after = await versions();
  if (after.withStatus !== N) throw new Error(`back-stop left ${N - after.withStatus} Services without a matching status`);
  console.log(`back-stop: ${N} Services assigned, claimed, annotated and given status in ${(backstop / 1000).toFixed(2)} s (${(N / (backstop / 1000)).toFixed(0)}/s)`);

  const restarts: number[] = [];
  const baselines: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const b0 = performance.now();
    const informers = new KubeCluster(loadKubeConfig(controllerKubeconfig), silent, { watchServices: true });
    await informers.start();
    while (!informers.synced()) await new Promise((r) => setTimeout(r, 5));
    baselines.push(performance.now() - b0);
    await informers.stop();
    restarts.push(await converge());
    const now = await versions();
    if (now.rv !== after.rv) throw new Error('a restart rewrote a Service that was already converged');
  }
  const r = median(restarts);
  const b = median(baselines);
  console.log(`restart (elect, list, verify ${N} signatures, check claims, write nothing): median ${(r / 1000).toFixed(2)} s  [${restarts.map((x) => (x / 1000).toFixed(2)).join(', ')}]`);
  console.log(`baseline (informer list of the same cluster):                      median ${(b / 1000).toFixed(2)} s  [${baselines.map((x) => (x / 1000).toFixed(2)).join(', ')}]`);
  console.log(`ratio restart / baseline: ${(r / b).toFixed(2)} (election and verification on top of the list)`);
} finally {
  await sandbox.close();
  rmSync(dataDir, { recursive: true, force: true });
}
