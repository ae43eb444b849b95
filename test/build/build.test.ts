// The built package: `npm pack` (whose prepack is `npm run build`) makes the tarball a user installs;
// unpacked into a temp folder, next to a node_modules that holds only the production dependencies
// (symlinks to this checkout's packages that package-lock.json does not mark dev), with NODE_OPTIONS
// empty and no --import, the built CLI must work: help, `certs` into a temp folder, the heartbeat
// worker thread (which loads its module by its own URL), and `admitlb sandbox` admitting a Service
// created with kubectl, on the API double and on the real control plane.
//
// The tarball holds no TypeScript and tsx cannot be resolved from it (both checked first), so what
// runs is the emitted JavaScript: no loader could compile anything even if one were registered.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILD_HINT, builtBinaries } from '../../src/sandbox/cluster-binaries.ts';
import { removeDir, runKubectl, tempDir } from '../sandbox/helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const inCI = process.env.CI === 'true';
const realBinaries = builtBinaries();
const planes = ['sandbox', ...(realBinaries || inCI ? ['real'] : [])] as const;
if (!realBinaries && !inCI) console.log(`# built package on the real control plane skipped: its binaries are not built (${BUILD_HINT})`);

/** The environment of every child: no loader from the test runner or the caller. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', ...extra };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

describe('the built package (npm pack), run without tsx', { timeout: 280_000 }, () => {
  const work = tempDir('built-package');
  const pkgDir = join(work, 'package');
  let files: string[] = [];
  after(() => removeDir(work));

  before(() => {
    const packed = spawnSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8', env: cleanEnv() });
    assert.equal(packed.status, 0, `npm pack failed:\n${packed.stderr}`);
    // npm prints the prepack script's output before the JSON.
    const report = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('\n[') + 1)) as { filename: string; files: { path: string }[] }[];
    files = report[0]!.files.map((f) => f.path);
    const untar = spawnSync('tar', ['-xzf', join(work, report[0]!.filename), '-C', work], { encoding: 'utf8' });
    assert.equal(untar.status, 0, untar.stderr);
    // The production closure, as `npm install` would place it (the lockfile is hoisted: every package
    // it does not mark dev, at the top level, with whatever it nests).
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    for (const [path, meta] of Object.entries(lock.packages)) {
      if (!path.startsWith('node_modules/') || path.lastIndexOf('node_modules/') !== 0 || meta.dev) continue;
      const target = join(ROOT, path);
      if (!existsSync(target)) continue; // another platform's optional package
      mkdirSync(join(pkgDir, path, '..'), { recursive: true });
      symlinkSync(target, join(pkgDir, path), 'dir');
    }
  });

  const run = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) =>
    spawnSync(process.execPath, args, { cwd: opts.cwd ?? work, encoding: 'utf8', env: cleanEnv(opts.env), timeout: 60_000 });

  it('holds bin/, dist/ (JavaScript and source maps) and the manifests, and no TypeScript, sources or keys', () => {
    assert.ok(files.includes('dist/bin/admitlb.js') && files.includes('dist/cmd/cli.js') && files.includes('dist/speaker/heartbeat-worker.js'), files.join('\n'));
    assert.ok(files.includes('dist/cmd/cli.js.map'));
    assert.ok(files.includes('bin/admitlb.js') && files.includes('bin/kubectl-admitlb.js'));
    assert.ok(files.includes('webhook-manifests/kustomization.yaml') && files.includes('webhook-manifests/rbac.yaml'));
    assert.deepEqual(files.filter((f) => f.endsWith('.ts') || f.startsWith('src/') || f.includes('/generated/') || f.startsWith('certs/')), []);
  });

  it('tsx cannot be resolved from the package (its dependencies are the production ones)', () => {
    const probe = run(['--input-type=module', '-e', "import('tsx/esm/api').then(() => console.log('found'), (e) => console.log(e.code))"], { cwd: pkgDir });
    assert.equal(probe.stdout.trim(), 'ERR_MODULE_NOT_FOUND', probe.stderr);
    const fastify = run(['--input-type=module', '-e', "import('fastify').then(() => console.log('found'), (e) => console.log(e.code))"], { cwd: pkgDir });
    assert.equal(fastify.stdout.trim(), 'found', 'a production dependency is there');
  });

  it('the built CLI prints its usage, through bin/ (the package bin) and dist/ (the image ENTRYPOINT); so does the kubectl plugin', () => {
    for (const entry of ['bin/admitlb.js', 'dist/bin/admitlb.js']) {
      const r = run([join(pkgDir, entry), 'help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^usage: admitlb <command> \[flags\]/, entry);
      const bad = run([join(pkgDir, entry), 'webhook', '--port', '70000']);
      assert.equal(bad.status, 2, `${entry}: a usage error exits 2\n${bad.stderr}`);
      assert.match(bad.stderr, /^admitlb: /);
    }
    const plugin = run([join(pkgDir, 'bin/kubectl-admitlb.js'), '--help']);
    assert.equal(plugin.status, 0, plugin.stderr);
    assert.match(plugin.stdout, /^usage: kubectl admitlb <command>/);
  });

  it('`admitlb certs` writes the CA, serving pair, signing keys and the generated component into temp folders', () => {
    const certs = join(work, 'certs');
    const manifests = join(work, 'manifests');
    cpSync(join(pkgDir, 'webhook-manifests'), manifests, { recursive: true });
    const r = run([join(pkgDir, 'bin/admitlb.js'), 'certs', '--out-dir', certs, '--manifests-dir', manifests]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    for (const f of ['ca.crt', 'tls.crt', 'tls.key', 'signing/active', 'apiserver-client/admission-configuration.yaml', 'heartbeat/key']) assert.ok(existsSync(join(certs, f)), f);
    assert.ok(existsSync(join(manifests, 'generated', 'kustomization.yaml')));
  });

  it('the heartbeat worker thread starts from the built module and fails start on a missing key', () => {
    const keys = join(work, 'certs', 'heartbeat');
    const script = `
      const { HeartbeatThread } = await import(${JSON.stringify(join(pkgDir, 'dist/speaker/heartbeat-worker.js'))});
      const logger = { info: () => {}, warn: () => {} };
      const t = new HeartbeatThread({ nodeName: 'node-a', address: '127.0.0.1', port: 0, intervalMs: 50, missed: 3, keysDir: ${JSON.stringify(keys)}, logger });
      await t.start();
      await t.stop();
      const bad = new HeartbeatThread({ nodeName: 'node-b', address: '127.0.0.1', port: 0, intervalMs: 50, missed: 3, keysDir: ${JSON.stringify(join(work, 'no-keys'))}, logger });
      const err = await bad.start().then(() => 'started', (e) => e.message);
      await bad.stop();
      console.log(JSON.stringify({ ok: true, err }));`;
    // A file, not -e: a worker thread inherits the parent's execArgv.
    writeFileSync(join(work, 'heartbeat-check.mjs'), script);
    const r = run([join(work, 'heartbeat-check.mjs')], { cwd: pkgDir });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { ok: boolean; err: string };
    assert.match(out.err, /cannot read the heartbeat key/);
  });

  for (const plane of planes) {
    it(`\`admitlb sandbox --control-plane ${plane}\`: kubectl creates a LoadBalancer Service and gets its address at admission; Ctrl-C exits 0`, async () => {
      assert.ok(plane === 'sandbox' || realBinaries, `the real control plane is not built: ${BUILD_HINT}`);
      const dataDir = tempDir(`built-${plane}`);
      const cacheDir = tempDir(`built-${plane}-kubecache`);
      // The real control plane is a development feature: it takes its pins from test/cluster/ (a Go
      // module, not in the package) and its binaries from this checkout's cache.
      if (plane === 'real' && !existsSync(join(pkgDir, 'test', 'cluster'))) {
        mkdirSync(join(pkgDir, 'test'));
        symlinkSync(join(ROOT, 'test', 'cluster'), join(pkgDir, 'test', 'cluster'), 'dir');
      }
      const child = spawn(process.execPath, [join(pkgDir, 'bin/admitlb.js'), 'sandbox', '--control-plane', plane, '--data-dir', dataDir, '--listen', '127.0.0.1:0'], {
        cwd: work,
        stdio: ['ignore', 'pipe', 'pipe'],
        // The control plane's binaries live in this checkout's cache, not in the package.
        env: cleanEnv(realBinaries ? { ADMITLB_CLUSTER_BIN_DIR: resolve(realBinaries['kube-apiserver'], '..') } : {}),
      });
      const exited = new Promise<{ code: number | null; signal: string | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
      let out = '';
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      try {
        const kubeconfig = await new Promise<string>((res, rej) => {
          const timer = setTimeout(() => rej(new Error(`no kubeconfig line within 120 s:\n${out}\n${err}`)), 120_000);
          child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
            const m = out.match(/^kubeconfig: (.+)$/m);
            if (m && out.includes('Ctrl-C')) {
              clearTimeout(timer);
              res(m[1]!);
            }
          });
          child.once('exit', () => {
            clearTimeout(timer);
            rej(new Error(`exited early:\n${out}\n${err}`));
          });
        });
        const created = await runKubectl(kubeconfig, cacheDir, ['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
        assert.equal(created.code, 0, created.stderr);
        const ip = await runKubectl(kubeconfig, cacheDir, ['get', 'svc', 'web', '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}']);
        assert.equal(ip.stdout, '203.0.113.1');
        child.kill('SIGINT');
        const { code, signal } = await exited;
        assert.deepEqual({ code, signal }, { code: 0, signal: null }, `${out}\n${err}`);
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
        removeDir(dataDir);
        removeDir(cacheDir);
      }
    });
  }
});
