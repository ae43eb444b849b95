// The real control plane for tests and `admitlb sandbox --control-plane real`: etcd, kube-apiserver and
// kube-controller-manager (built by `npm run cluster:build`) as child processes on 127.0.0.1, in the
// shape controller-runtime's envtest uses, plus what envtest leaves out and admitlb needs:
//   - RBAC enforced (--authorization-mode=Node,RBAC), so admitlb's own ServiceAccounts can be tested;
//   - a service-account issuer and signing key, so TokenRequest (`kubectl create token`) works;
//   - an AdmissionConfiguration through which the API server presents a client certificate to every
//     webhook (admitlb's webhook can then require it: --client-ca-file = pki/webhook-client-ca.crt);
//   - kube-controller-manager with the controllers that work without kubelets (namespace deletion,
//     garbage collection, service-account tokens, the aggregated roles such as `edit`).
// The result has the same shape as the API double (url, kubeconfigPath, token, caPem), so everything
// written against the double runs against this unchanged.
//
// Layout of the data folder (kept across restarts, like the double's):
//   kubeconfig, token                 the admin identity (a static token in system:masters)
//   pki/                              cluster CA, serving pair, service-account keys, webhook client CA + pair
//   etcd/                             etcd's data
//   admission/                        AdmissionConfiguration and the kubeconfig it names
//   logs/<binary>.log                 each process's output
//   logs/audit.log                    the requests of admitlb's ServiceAccounts (readAuditLog)
//   control-plane.pids                PIDs of the running processes (a crashed run's leftovers are stopped)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { BUILD_HINT, builtBinaries, clusterPins, type ControlPlaneBinary } from './cluster-binaries.ts';
import { admissionConfiguration, webhookClientKubeconfig } from '../certs/admission-config.ts';
import { ensureWebhookClientPki, loadOrCreateServerPki, type CertificateAuthority } from './certs.ts';
import type { ApiServer } from './apiserver.ts';

export class ControlPlaneError extends Error {
  override name = 'ControlPlaneError';
}

export interface RealControlPlaneOptions {
  dataDir: string;
  /** only loopback addresses are accepted: this is a test cluster with a static admin token */
  host?: string;
  /** kube-apiserver's secure port (0 = any free port) */
  port?: number;
  /** the service network (both families: dual-stack like the double) */
  serviceCidrs?: string[];
  /** how long to wait for /readyz (default 90 s: a cold disk and 2 cores take a while) */
  startTimeoutMs?: number;
}

export interface RealControlPlane extends ApiServer {
  kind: 'real';
  /** the versions that run */
  versions: { kubernetes: string; etcd: string };
  /** PIDs of etcd, kube-apiserver and kube-controller-manager */
  pids(): Record<ControlPlaneBinary, number | undefined>;
}

export const DEFAULT_SERVICE_CIDRS = ['10.96.0.0/16', 'fd00:10:96::/112'];
const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/** Controllers that need no kubelet, no scheduler and no cloud. EndpointSlices are written by tests. */
const CONTROLLERS = [
  'namespace-controller',
  'garbage-collector-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  // builds the aggregated roles (admin, edit, view) that tenants are given
  'clusterrole-aggregation-controller',
  'service-cidr-controller',
];

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

// ---- PKI and configuration files ---------------------------------------------------------------

interface Pki {
  ca: CertificateAuthority;
  servingCert: string;
  servingKey: string;
  saKey: string;
  saPub: string;
  webhookClientCa: string;
  webhookClientCert: string;
  webhookClientKey: string;
}

async function ensurePki(dataDir: string, host: string): Promise<Pki> {
  const pki = join(dataDir, 'pki');
  // The serving certificate also names the in-cluster addresses of the `kubernetes` Service.
  const { ca } = await loadOrCreateServerPki(dataDir, [host, 'localhost', '127.0.0.1', '10.96.0.1', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local']);
  const saKey = join(pki, 'sa.key');
  const saPub = join(pki, 'sa.pub');
  if (!existsSync(saKey) || !existsSync(saPub)) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    writeFileSync(saKey, privateKey, { mode: 0o600 });
    writeFileSync(saPub, publicKey);
  }
  const client = await ensureWebhookClientPki(pki);
  return {
    ca,
    servingCert: join(pki, 'apiserver.crt'),
    servingKey: join(pki, 'apiserver.key'),
    saKey,
    saPub,
    webhookClientCa: client.caFile,
    webhookClientCert: client.certFile,
    webhookClientKey: client.keyFile,
  };
}

function readOrCreateToken(path: string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const token = randomBytes(24).toString('hex');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return token;
}

/** A kubeconfig for one bearer token against this server. */
export function tokenKubeconfig(url: string, caPem: string, user: string, token: string): string {
  return stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'admitlb', cluster: { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'admitlb', context: { cluster: 'admitlb', user } }],
    'current-context': 'admitlb',
  });
}

/**
 * The AdmissionConfiguration: both webhook admission plugins read one kubeconfig whose user `*` (any
 * webhook host) carries the client certificate. This is the exact configuration the README gives
 * operators, with their own paths.
 */
function writeAdmissionConfiguration(dataDir: string, pki: Pki): string {
  const dir = join(dataDir, 'admission');
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, 'webhook-client.kubeconfig');
  writeFileSync(kubeconfig, webhookClientKubeconfig(['*'], { certFile: pki.webhookClientCert, keyFile: pki.webhookClientKey }));
  const path = join(dir, 'admission-configuration.yaml');
  writeFileSync(path, admissionConfiguration(kubeconfig));
  return path;
}

/**
 * Audit policy: every request of admitlb's ServiceAccounts at Metadata level (who, verb, resource,
 * name, response code), nothing else. Tests read it to compare what each component does with what
 * its RBAC grants (logs/audit.log, one JSON event per line).
 */
function writeAuditPolicy(dataDir: string): string {
  const path = join(dataDir, 'admission', 'audit-policy.yaml');
  writeFileSync(
    path,
    stringifyYaml({
      apiVersion: 'audit.k8s.io/v1',
      kind: 'Policy',
      omitStages: ['RequestReceived'],
      rules: [{ level: 'Metadata', userGroups: [`system:serviceaccounts:${ADMITLB_NAMESPACE}`] }, { level: 'None' }],
    }),
  );
  return path;
}

export const ADMITLB_NAMESPACE = 'admitlb-system';

export interface AuditEvent {
  user: string;
  verb: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  code: number;
  uri: string;
}

/** The audit log's events (see writeAuditPolicy), flattened. */
export function readAuditLog(dataDir: string): AuditEvent[] {
  const path = join(dataDir, 'logs', 'audit.log');
  if (!existsSync(path)) return [];
  const out: AuditEvent[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as { user?: { username?: string }; verb?: string; requestURI?: string; objectRef?: Record<string, string>; responseStatus?: { code?: number } };
    out.push({
      user: e.user?.username ?? '',
      verb: e.verb ?? '',
      apiGroup: e.objectRef?.apiGroup ?? '',
      resource: e.objectRef?.resource ?? '',
      subresource: e.objectRef?.subresource ?? '',
      namespace: e.objectRef?.namespace ?? '',
      name: e.objectRef?.name ?? '',
      code: e.responseStatus?.code ?? 0,
      uri: e.requestURI ?? '',
    });
  }
  return out;
}

// ---- processes ----------------------------------------------------------------------------------

const PIDS_FILE = 'control-plane.pids';

/**
 * Stops processes a crashed run of this data folder left behind: only PIDs from our pid file whose
 * executable is one of our binaries (a PID reused by something else is left alone).
 */
function stopLeftovers(dataDir: string, binaries: Record<ControlPlaneBinary, string>): void {
  const path = join(dataDir, PIDS_FILE);
  if (!existsSync(path)) return;
  const ours = new Set(Object.values(binaries));
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const pid = Number(line.trim());
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let exe: string;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      continue;
    }
    if (ours.has(exe.replace(/ \(deleted\)$/, ''))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  rmSync(path, { force: true });
}

const hasSetpriv = (() => {
  let cached: boolean | undefined;
  return () => (cached ??= spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0);
})();

interface Managed {
  name: ControlPlaneBinary;
  child: ChildProcess;
  exited: Promise<void>;
  logPath: string;
}

function startProcess(name: ControlPlaneBinary, binary: string, args: string[], logDir: string): Managed {
  const logPath = join(logDir, `${name}.log`);
  const fd = openSync(logPath, 'a');
  // setpriv --pdeathsig: the kernel kills the child if this process dies without closing it (a test
  // runner's timeout, SIGKILL), so no etcd or kube-apiserver outlives its owner.
  const [cmd, argv] = hasSetpriv() ? ['setpriv', ['--pdeathsig', 'KILL', '--', binary, ...args]] : [binary, args];
  const child = spawn(cmd as string, argv as string[], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', () => {});
  return { name, child, exited, logPath };
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function stopProcess(p: Managed, graceMs = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

function get(url: string, caPem: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca: caPem, headers: { Authorization: `Bearer ${token}` }, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
  });
}

async function waitFor(what: string, p: Managed, deadline: number, probe: () => Promise<boolean>): Promise<void> {
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new ControlPlaneError(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) before ${what}; the end of ${p.logPath}:\n${tail(p.logPath)}`);
    }
    if (await probe()) return;
    if (Date.now() > deadline) throw new ControlPlaneError(`timed out waiting for ${what}; the end of ${p.logPath}:\n${tail(p.logPath)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- start --------------------------------------------------------------------------------------

export async function startRealControlPlane(options: RealControlPlaneOptions): Promise<RealControlPlane> {
  const { dataDir } = options;
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new ControlPlaneError(`the real control plane listens on loopback only (got ${host}): it serves a static admin token`);
  const pins = clusterPins();
  const binaries = builtBinaries(pins);
  if (!binaries) throw new ControlPlaneError(`the real control plane (kubernetes ${pins.kubernetes}, etcd ${pins.etcd}) is not built in ${pins.binDir}: ${BUILD_HINT}`);
  mkdirSync(dataDir, { recursive: true });
  stopLeftovers(dataDir, binaries);
  const logDir = join(dataDir, 'logs');
  mkdirSync(logDir, { recursive: true });

  const pki = await ensurePki(dataDir, host);
  const caPem = pki.ca.certPem;
  const token = readOrCreateToken(join(dataDir, 'token'));
  const kcmToken = readOrCreateToken(join(dataDir, 'pki', 'kube-controller-manager.token'));
  const tokensCsv = join(dataDir, 'pki', 'tokens.csv');
  writeFileSync(tokensCsv, `${token},admin,admin,"system:masters"\n${kcmToken},system:kube-controller-manager,system:kube-controller-manager\n`, { mode: 0o600 });
  const admissionConfig = writeAdmissionConfiguration(dataDir, pki);
  const auditPolicy = writeAuditPolicy(dataDir);

  const bindHost = host === 'localhost' ? '127.0.0.1' : host;
  const [etcdClient, etcdPeer] = [await freePort(bindHost), await freePort(bindHost)];
  const port = options.port || (await freePort(bindHost));
  const url = `https://${bindHost.includes(':') ? `[${bindHost}]` : bindHost}:${port}`;
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;

  const running: Managed[] = [];
  const pidsPath = join(dataDir, PIDS_FILE);
  const recordPids = () => writeFileSync(pidsPath, running.map((p) => `${p.child.pid}\n`).join(''));
  const stopAll = async () => {
    for (const p of running.splice(0).reverse()) await stopProcess(p);
    rmSync(pidsPath, { force: true });
  };

  try {
    const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
    const etcd = startProcess(
      'etcd',
      binaries.etcd,
      [
        '--name=admitlb',
        `--data-dir=${join(dataDir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=admitlb=http://127.0.0.1:${etcdPeer}`,
        // Tests throw the data away; fsync per write only costs time here.
        '--unsafe-no-fsync',
        '--log-level=warn',
        '--listen-metrics-urls=',
      ],
      logDir,
    );
    running.push(etcd);
    recordPids();
    await waitFor('etcd to answer /health', etcd, deadline, async () => {
      const r = await new Promise<number>((resolve) => {
        const req = http.get(`${etcdUrl}/health`, { timeout: 1000 }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(0));
        req.on('timeout', () => req.destroy());
      });
      return r === 200;
    });

    const apiserver = startProcess(
      'kube-apiserver',
      binaries['kube-apiserver'],
      [
        `--etcd-servers=${etcdUrl}`,
        `--bind-address=${bindHost}`,
        `--advertise-address=${bindHost.includes(':') ? '::1' : '127.0.0.1'}`,
        `--secure-port=${port}`,
        `--tls-cert-file=${pki.servingCert}`,
        `--tls-private-key-file=${pki.servingKey}`,
        `--client-ca-file=${join(dataDir, 'pki', 'ca.crt')}`,
        `--token-auth-file=${tokensCsv}`,
        `--service-account-issuer=${SA_ISSUER}`,
        `--service-account-key-file=${pki.saPub}`,
        `--service-account-signing-key-file=${pki.saKey}`,
        `--service-cluster-ip-range=${(options.serviceCidrs ?? DEFAULT_SERVICE_CIDRS).join(',')}`,
        '--authorization-mode=Node,RBAC',
        `--admission-control-config-file=${admissionConfig}`,
        `--audit-policy-file=${auditPolicy}`,
        `--audit-log-path=${join(logDir, 'audit.log')}`,
        '--audit-log-format=json',
        // Written as requests finish, so a test reads what its component just did.
        '--audit-log-mode=blocking',
        '--allow-privileged=true',
        '--profiling=false',
        '--v=0',
      ],
      logDir,
    );
    running.push(apiserver);
    recordPids();
    await waitFor('kube-apiserver to be ready (/readyz)', apiserver, deadline, async () => (await get(`${url}/readyz`, caPem, token)).status === 200);
    // /readyz can pass a moment before the bootstrap controller has written the default namespace.
    await waitFor('the default namespace', apiserver, deadline, async () => (await get(`${url}/api/v1/namespaces/default`, caPem, token)).status === 200);

    const kcmKubeconfig = join(dataDir, 'pki', 'kube-controller-manager.kubeconfig');
    writeFileSync(kcmKubeconfig, tokenKubeconfig(url, caPem, 'system:kube-controller-manager', kcmToken), { mode: 0o600 });
    const kcm = startProcess(
      'kube-controller-manager',
      binaries['kube-controller-manager'],
      [
        `--kubeconfig=${kcmKubeconfig}`,
        `--authentication-kubeconfig=${kcmKubeconfig}`,
        `--authorization-kubeconfig=${kcmKubeconfig}`,
        `--controllers=${CONTROLLERS.join(',')}`,
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${join(dataDir, 'pki', 'ca.crt')}`,
        '--use-service-account-credentials=true',
        '--leader-elect=false',
        '--bind-address=127.0.0.1',
        `--secure-port=${await freePort('127.0.0.1')}`,
        '--v=0',
      ],
      logDir,
    );
    running.push(kcm);
    recordPids();
    // The controller manager is up when its service-account controller has made `default` in `default`.
    await waitFor('kube-controller-manager (the default ServiceAccount)', kcm, deadline, async () => (await get(`${url}/api/v1/namespaces/default/serviceaccounts/default`, caPem, token)).status === 200);

    const kubeconfigPath = join(dataDir, 'kubeconfig');
    writeFileSync(kubeconfigPath, tokenKubeconfig(url, caPem, 'admin', token), { mode: 0o600 });
    let closed: Promise<void> | undefined;
    return {
      kind: 'real',
      url,
      kubeconfigPath,
      token,
      caPem,
      webhookClientCaFile: pki.webhookClientCa,
      versions: { kubernetes: pins.kubernetes, etcd: pins.etcd },
      pids: () => ({ etcd: etcd.child.pid, 'kube-apiserver': apiserver.child.pid, 'kube-controller-manager': kcm.child.pid }),
      close: () => (closed ??= stopAll()),
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
