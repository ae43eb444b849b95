// The plugin binary as kubectl runs it (`kubectl-admitlb migrate ...`, a child process): exit codes,
// what goes to stdout and what to stderr, -f - and several -f, -o json; and `admitlb migrate`.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { migrateMetalLB } from '../../src/migrate/metallb.ts';
import { assertValid } from './helpers.ts';

const PLUGIN = 'bin/kubectl-admitlb.js';
const FIXTURES = 'test/fixtures/migrate';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

const yamlDocs = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
const lines = (text: string) => text.split('\n').filter(Boolean);

describe('kubectl-admitlb migrate (child process)', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'admitlb-migrate-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('package.json installs the plugin next to admitlb; the binary is executable', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
    assert.equal(pkg.bin['kubectl-admitlb'], PLUGIN);
    assert.equal(pkg.bin.admitlb, 'bin/admitlb.js');
    accessSync(PLUGIN, constants.X_OK);
    assert.match(readFileSync(PLUGIN, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  it('-f FILE: YAML objects on stdout, one note per line on stderr, exit 0', async () => {
    const file = join(FIXTURES, 'metallb-0.12.yaml');
    const r = await run(PLUGIN, ['migrate', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    const expected = migrateMetalLB([{ name: file, text: readFileSync(file, 'utf8') }]);
    assert.deepEqual(yamlDocs(r.stdout), expected.objects);
    assert.deepEqual(lines(r.stderr), expected.notes);
    assert.equal(lines(r.stderr).length, 1);
    assert.match(r.stderr, /peer 10\.0\.0\.1: password moved to Secret/);
    assertValid({ objects: yamlDocs(r.stdout) as never, notes: expected.notes });
  });

  it('-f - reads stdin; several -f are one configuration; -o json prints a v1 List', async () => {
    const crds = readFileSync(join(FIXTURES, 'metallb-0.13.yaml'), 'utf8');
    const configMap = join(FIXTURES, 'metallb-0.12.yaml');
    const r = await run(PLUGIN, ['migrate', '-f', '-', '-f', configMap, '-o', 'json'], crds);
    assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse(r.stdout) as { apiVersion: string; kind: string; items: Record<string, unknown>[] };
    assert.equal(list.apiVersion, 'v1');
    assert.equal(list.kind, 'List');
    const expected = migrateMetalLB([
      { name: '<stdin>', text: crds },
      { name: configMap, text: readFileSync(configMap, 'utf8') },
    ]);
    assert.deepEqual(list.items, expected.objects);
    assert.deepEqual(lines(r.stderr), expected.notes);
    assert.ok(lines(r.stderr).every((l) => l.startsWith('<stdin>: ') || l.startsWith(`${configMap}: `)), r.stderr);
    assert.deepEqual(
      list.items.filter((o) => o.kind === 'IPPool').map((o) => (o.metadata as { name: string }).name),
      ['default', 'bgp-public', 'expensive', 'ippool-ns-service-alloc-sample', 'bgp-with-advertisement'],
    );
    assertValid({ objects: list.items as never, notes: expected.notes });
  });

  it('a directory reads its YAML files, as kubectl -f does', async () => {
    writeFileSync(join(dir, 'pool.yaml'), 'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [192.0.2.0/24]}\n');
    writeFileSync(join(dir, 'l2.yml'), 'apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2}\n');
    writeFileSync(join(dir, 'README.md'), 'not read\n');
    const r = await run(PLUGIN, ['migrate', '-f', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      yamlDocs(r.stdout).map((o) => `${String(o.kind)}/${String((o.metadata as { name: string }).name)}`),
      ['IPPool/p', 'L2Advertisement/l2'],
    );
    assert.equal(r.stderr, '');
  });

  it('input it cannot read: exit 1, nothing on stdout, one error naming the file (and document)', async () => {
    const cases: [string, string, RegExp][] = [
      ['broken.yaml', 'address-pools: [\n', /^error: .*broken\.yaml, document 1: not valid YAML: /],
      ['deploy.yaml', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n', /^error: .*deploy\.yaml: no MetalLB configuration found/],
      [
        'cidr.yaml',
        'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: [192.0.2.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: b}\nspec: {addresses: [10.0.0.0/33]}\n',
        /^error: .*cidr\.yaml, document 2: IPAddressPool "b": spec\.addresses\[0\]: invalid CIDR "10\.0\.0\.0\/33"/,
      ],
      [
        'protocol.yaml',
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config, namespace: metallb-system}\ndata:\n  config: |\n    address-pools:\n    - {name: p, protocol: ospf, addresses: [10.0.0.0/24]}\n',
        /^error: .*protocol\.yaml, document 1: address pool "p": protocol: unknown protocol "ospf"/,
      ],
    ];
    for (const [name, text] of cases) writeFileSync(join(dir, name), text);
    // A good file first: nothing of it may reach stdout when a later one fails.
    const runs = await Promise.all(cases.map(([name]) => run(PLUGIN, ['migrate', '-f', join(FIXTURES, 'metallb-0.2.yaml'), '-f', join(dir, name)])));
    cases.forEach(([name, , message], i) => {
      const r = runs[i]!;
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.equal(r.stdout, '', name);
      assert.equal(lines(r.stderr).length, 1, r.stderr);
      assert.match(r.stderr, message);
    });
    const missing = await run(PLUGIN, ['migrate', '-f', join(dir, 'nope.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: .*nope\.yaml: cannot read it: no such file or directory/);
  });

  it('usage errors exit 2 with the usage: unknown or unregistered subcommand, no -f, bad -o', async () => {
    const argvs = [['frobnicate'], ['announce'], []];
    const runs = await Promise.all(argvs.map((args) => run(PLUGIN, args)));
    for (const [i, r] of runs.entries()) {
      assert.equal(r.code, 2, argvs[i]!.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /usage: kubectl admitlb <command>/);
      assert.match(r.stderr, /\n {2}migrate {2}/);
    }
    const noFile = await run(PLUGIN, ['migrate']);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /^error: -f FILE is required/);
    assert.match(noFile.stderr, /usage: kubectl admitlb migrate -f FILE/);
    const badOutput = await run(PLUGIN, ['migrate', '-f', join(FIXTURES, 'metallb-0.2.yaml'), '-o', 'wide']);
    assert.equal(badOutput.code, 2);
    assert.match(badOutput.stderr, /^error: --output: expected yaml or json, got "wide"/);
    const help = await run(PLUGIN, ['migrate', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: kubectl admitlb migrate/);
  });

  it('admitlb migrate is the same command', async () => {
    const file = join(FIXTURES, 'metallb-0.13.yaml');
    const [viaPlugin, viaAdmitlb] = await Promise.all([run(PLUGIN, ['migrate', '-f', file]), run('bin/admitlb.js', ['migrate', '-f', file])]);
    assert.equal(viaAdmitlb.code, 0, viaAdmitlb.stderr);
    assert.equal(viaAdmitlb.stdout, viaPlugin.stdout);
    assert.equal(viaAdmitlb.stderr, viaPlugin.stderr);
    const help = await run('bin/admitlb.js', ['help']);
    assert.match(help.stdout, /\n {2}migrate {3}print the admitlb objects/);
  });
});
