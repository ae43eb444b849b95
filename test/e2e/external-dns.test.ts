// external-dns (built from its Go module by `npm run tools:build`, rfc2136 provider) publishing a
// LoadBalancer Service's admitlb address to BIND 9 on 127.0.0.1, on both targets: the record
// resolves with `dig` within seconds of the create, follows a change of address, and goes with the
// Service. On the real control plane external-dns runs as a ServiceAccount with exactly the RBAC of
// the README's recipe (read from README.md, so the recipe cannot drift from what is tested); the
// double has no authorization and runs it as that account by impersonation.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { PROJECT_ROOT } from '../../src/sandbox/paths.ts';
import { impersonationKubeconfig, serviceAccountKubeconfig } from '../../src/sandbox/kustomize-install.ts';
import { TOOLS_BUILD_HINT, toolBinary } from '../../src/sandbox/tool-binaries.ts';
import { missingBind9, startBind9, type Bind9Server } from '../helpers/bind9.ts';
import { e2eTarget, pool, service, sleep, startCluster, type E2eCluster } from './cluster-helpers.ts';

const binary = toolBinary('external-dns');
const missing = [...(binary ? [] : [`external-dns (${TOOLS_BUILD_HINT})`]), ...missingBind9()];
const inCI = process.env.CI === 'true';
const skip = missing.length > 0 && !inCI ? `needs ${missing.join(', ')} (apt-get install bind9 bind9-dnsutils); set CI=true to make this a failure` : false;
if (skip) console.log(`# skipping external-dns e2e: ${skip}`);

const HOSTNAME = 'web.example.test';
const POOL = 'dns';
const FIRST = '198.51.100.40';
const SECOND = '198.51.100.41';
const ACCOUNT = { namespace: 'external-dns', name: 'external-dns' };
// Failure bound only (the measured time is printed): external-dns syncs every second here.
const RESOLVE_TIMEOUT_MS = 30_000;

/** The RBAC objects of README.md's "Publishing DNS with external-dns" recipe: its first yaml block. */
function readmeRbac(): Record<string, any>[] {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^### Publishing DNS with external-dns$/m)[1];
  assert.ok(section, 'README.md has a "### Publishing DNS with external-dns" section');
  const block = section.match(/^```yaml\n([\s\S]*?)^```$/m)?.[1];
  assert.ok(block, 'the recipe has a yaml block with the RBAC');
  return parseAllDocuments(block).map((d) => d.toJS() as Record<string, any>);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

interface ExternalDns {
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

function startExternalDns(kubeconfig: string, bind: Bind9Server, logFile: string, metricsPort: number): ExternalDns {
  const child = spawn(
    binary!,
    [
      '--source=service',
      '--provider=rfc2136',
      `--kubeconfig=${kubeconfig}`,
      `--rfc2136-host=${bind.host}`,
      `--rfc2136-port=${bind.port}`,
      `--rfc2136-zone=${bind.zone}`,
      `--rfc2136-tsig-keyname=${bind.tsig.name}`,
      `--rfc2136-tsig-secret=${bind.tsig.secret}`,
      `--rfc2136-tsig-secret-alg=${bind.tsig.algorithm}`,
      '--rfc2136-tsig-axfr',
      `--domain-filter=${bind.zone}`,
      '--interval=1s',
      '--policy=sync',
      '--registry=txt',
      '--txt-owner-id=admitlb-e2e',
      // its metrics listener defaults to :7979 on every address
      `--metrics-address=127.0.0.1:${metricsPort}`,
    ],
    { stdio: ['ignore', openSync(logFile, 'a'), openSync(logFile, 'a')] },
  );
  const exited = new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve())));
  return {
    child,
    logFile,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

describe('external-dns publishes admitlb addresses to BIND 9 (rfc2136)', { skip, concurrency: 1, timeout: 240_000 }, () => {
  let c: E2eCluster | undefined;
  let bind: Bind9Server | undefined;
  let edns: ExternalDns | undefined;

  // the first line is external-dns's whole configuration: left out
  const logTail = () => (edns ? readFileSync(edns.logFile, 'utf8').split('\n').filter((l) => !l.includes('msg="config: ')).slice(-25).join('\n') : '');

  /** Polls DNS until `want` (the A answers) holds; returns the seconds it took from `since`. */
  async function resolvesTo(want: string[], since: number): Promise<number> {
    const deadline = Date.now() + RESOLVE_TIMEOUT_MS;
    let last: string[] = [];
    for (;;) {
      assert.equal(edns!.child.exitCode, null, `external-dns exited:\n${logTail()}`);
      last = await bind!.query(HOSTNAME, 'A');
      if (JSON.stringify(last) === JSON.stringify(want)) return (performance.now() - since) / 1000;
      if (Date.now() > deadline) assert.fail(`${HOSTNAME} answered ${JSON.stringify(last)}, not ${JSON.stringify(want)}, after ${RESOLVE_TIMEOUT_MS} ms; external-dns log:\n${logTail()}`);
      await sleep(100);
    }
  }

  async function statusIPs(): Promise<string> {
    const r = await c!.kubectl(['get', 'svc', 'web', '-o', 'jsonpath={.status.loadBalancer.ingress[*].ip}']);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }

  before(async () => {
    bind = await startBind9({ zone: 'example.test', keyName: 'external-dns' });
    c = await startCluster('external-dns');
    const applied = await c.apply(pool(POOL, { addresses: ['198.51.100.40/29'], autoAssign: false }));
    assert.equal(applied.code, 0, applied.stderr);
    await c.waitForPool(POOL);
    let kubeconfig: string;
    if (e2eTarget() === 'real') {
      const rbac = await c.apply(...readmeRbac());
      assert.equal(rbac.code, 0, rbac.stderr);
      kubeconfig = await serviceAccountKubeconfig(c.sandbox.api, c.dataDir, ACCOUNT);
    } else {
      kubeconfig = impersonationKubeconfig(c.sandbox.api, c.dataDir, ACCOUNT);
    }
    edns = startExternalDns(kubeconfig, bind, join(c.dataDir, 'external-dns.log'), await freePort());
  });
  after(async () => {
    await edns?.stop();
    await c?.close();
    await bind?.stop();
  });

  it('the README recipe grants external-dns read access to what its service source watches', () => {
    const role = readmeRbac().find((o) => o.kind === 'ClusterRole');
    assert.ok(role, 'a ClusterRole');
    const granted = (group: string, resource: string) => role.rules.some((r: any) => r.apiGroups.includes(group) && r.resources.includes(resource) && ['get', 'list', 'watch'].every((v) => r.verbs.includes(v)));
    for (const [group, resource] of [['', 'services'], ['', 'pods'], ['', 'nodes'], ['discovery.k8s.io', 'endpointslices']] as const) assert.ok(granted(group, resource), `${group || 'core'}/${resource}`);
  });

  it('a Service with the hostname annotation resolves to its admitlb address', async () => {
    assert.deepEqual(await bind!.query(HOSTNAME, 'A'), [], 'no record before the Service');
    const t0 = performance.now();
    const r = await c!.apply(service('web', { annotations: { 'admitlb.io/pool': POOL, 'admitlb.io/ips': FIRST, 'external-dns.alpha.kubernetes.io/hostname': HOSTNAME } }));
    assert.equal(r.code, 0, r.stderr);
    const seconds = await resolvesTo([FIRST], t0);
    console.log(`# ${e2eTarget()}: ${HOSTNAME} resolved to ${FIRST} ${seconds.toFixed(1)} s after kubectl apply`);
    assert.equal(await statusIPs(), FIRST);
    // The TXT registry marks the record as this instance's.
    const txt = (await bind!.query(`a-${HOSTNAME}`, 'TXT')).join(' ');
    assert.match(txt, /external-dns\/owner=admitlb-e2e/);
  });

  it('a new address for the Service is followed by DNS', async () => {
    const t0 = performance.now();
    const r = await c!.kubectl(['annotate', 'svc', 'web', `admitlb.io/ips=${SECOND}`, '--overwrite']);
    assert.equal(r.code, 0, r.stderr);
    const seconds = await resolvesTo([SECOND], t0);
    console.log(`# ${e2eTarget()}: ${HOSTNAME} followed to ${SECOND} ${seconds.toFixed(1)} s after kubectl annotate`);
    assert.equal(await statusIPs(), SECOND);
  });

  it('deleting the Service removes the record', async () => {
    assert.deepEqual(await bind!.query(HOSTNAME, 'A'), [SECOND], 'the record is there before the delete');
    const t0 = performance.now();
    const r = await c!.kubectl(['delete', 'svc', 'web']);
    assert.equal(r.code, 0, r.stderr);
    const seconds = await resolvesTo([], t0);
    console.log(`# ${e2eTarget()}: ${HOSTNAME} gone ${seconds.toFixed(1)} s after kubectl delete`);
    assert.deepEqual(await bind!.query(`a-${HOSTNAME}`, 'TXT'), [], 'the ownership record goes too');
  });
});
