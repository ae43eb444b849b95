// The container image and the manifests that use it: the Dockerfile (parsed, not built: no engine
// here), .dockerignore, package.json's runtime dependencies and every image reference.
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const IMAGE = `ghcr.io/admitlb/admitlb:${pkg.version}`;

interface Instruction {
  op: string;
  args: string;
}
/** Dockerfile instructions with line continuations joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!current && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // comment inside a continuation
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const m = /^(\w+)\s+([\s\S]*)$/.exec(current);
    assert.ok(m, `cannot parse: ${current}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
    current = '';
  }
  return out;
}

describe('Dockerfile', () => {
  const ins = instructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const all = (op: string) => ins.filter((i) => i.op === op);
  const last = (op: string) => all(op).at(-1);
  const args = Object.fromEntries(all('ARG').map((a) => a.args.split('=') as [string, string]));

  it('one stage on a slim Node 22/24 base that satisfies engines.node', () => {
    const from = all('FROM');
    assert.equal(from.length, 1);
    const base = from[0]!.args.replace(/^\$\{(\w+)\}$/, (_m, name: string) => args[name] ?? '');
    assert.match(base, /^node:(22|24)(\.\d+)*-(bookworm-|trixie-)?slim$/);
    const major = Number(/^node:(\d+)/.exec(base)![1]);
    const engines = /(\d+)/.exec((pkg as unknown as { engines: { node: string } }).engines.node)![1];
    assert.ok(major >= Number(engines), `node ${major} satisfies engines ${engines}`);
  });

  it('installs the programs the speaker execs', () => {
    const apt = all('RUN').find((r) => r.args.includes('apt-get install'));
    assert.ok(apt);
    for (const p of ['iproute2', 'iputils-arping', 'ipv6toolkit']) assert.match(apt.args, new RegExp(`\\b${p}\\b`), p);
    assert.match(apt.args, /--no-install-recommends/);
    assert.match(apt.args, /rm -rf \/var\/lib\/apt\/lists/);
  });

  it('installs production dependencies only, from the lockfile', () => {
    const npm = all('RUN').find((r) => /\bnpm ci\b/.test(r.args));
    assert.ok(npm);
    assert.match(npm.args, /--omit=dev/);
    const copies = all('COPY').map((c) => c.args);
    assert.ok(copies.some((c) => c.includes('package-lock.json')));
    // Lockfile copied before npm ci, sources after it (layer caching).
    const idx = (pred: (i: Instruction) => boolean) => ins.findIndex(pred);
    assert.ok(idx((i) => i.op === 'COPY' && i.args.includes('package-lock.json')) < idx((i) => i === npm), 'the lockfile is copied before npm ci');
    assert.ok(idx((i) => i === npm) < idx((i) => i.op === 'COPY' && /\bsrc\//.test(i.args)), 'the sources are copied after npm ci');
  });

  it('runs as a numeric non-root user by default, ENTRYPOINT node bin/admitlb.js in exec form', () => {
    const user = last('USER');
    assert.ok(user);
    const [uid] = user.args.split(':');
    assert.match(uid!, /^\d+$/, 'numeric, so runAsNonRoot can check it');
    assert.notEqual(Number(uid), 0);
    assert.equal(last('ENTRYPOINT')?.args, '["node", "/app/bin/admitlb.js"]');
    assert.equal(last('WORKDIR')?.args, '/app');
    assert.equal(pkg.bin.admitlb, 'bin/admitlb.js');
  });
});

describe('runtime dependencies', () => {
  it('tsx, which bin/admitlb.js registers, is a runtime dependency', () => {
    const bin = readFileSync(join(ROOT, 'bin/admitlb.js'), 'utf8');
    assert.match(bin, /from 'tsx\/esm\/api'/);
    assert.ok(pkg.dependencies.tsx, 'tsx in dependencies');
    assert.equal(pkg.devDependencies.tsx, undefined);
  });

  it('every package imported at runtime by src/ (type-only imports aside) is in dependencies', () => {
    const files: string[] = [];
    (function walk(dir: string) {
      for (const e of readdirSync(dir)) {
        const p = join(dir, e);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts')) files.push(p);
      }
    })(join(ROOT, 'src'));
    const missing: string[] = [];
    let checked = 0;
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      const specs = [
        ...[...text.matchAll(/^\s*import\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/gm)].filter((m) => !m[1]).map((m) => m[2]!),
        ...[...text.matchAll(/^\s*export\s+(?!type\b)[^'";]*?\s+from\s+'([^']+)'/gm)].map((m) => m[1]!),
        ...[...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]!),
      ];
      for (const spec of specs) {
        if (spec.startsWith('.') || spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        checked++;
        if (!pkg.dependencies[name]) missing.push(`${relative(ROOT, f)}: ${spec}`);
      }
    }
    assert.deepEqual(missing, []);
    assert.ok(checked > 20, `the scan found imports (${checked})`);
  });
});

describe('.dockerignore', () => {
  const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('is an allow-list that keeps private keys and local state out of the build context', () => {
    assert.equal(lines[0], '*', 'everything excluded first');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    assert.deepEqual(allowed.sort(), ['bin', 'package-lock.json', 'package.json', 'src', 'tsconfig.json']);
  });

  it('admits everything the Dockerfile copies', () => {
    const copies = instructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
      .filter((i) => i.op === 'COPY')
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .map((s) => s.replace(/\/$/, ''));
    const allowed = new Set(lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, '')));
    for (const c of copies) assert.ok(allowed.has(c), c);
  });
});

describe('image references', () => {
  it(`every container in webhook-manifests/ runs ${IMAGE}`, () => {
    const dir = join(ROOT, 'webhook-manifests');
    const images: string[] = [];
    const visit = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(visit);
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if ((k === 'containers' || k === 'initContainers') && Array.isArray(v)) for (const c of v as { image: string }[]) images.push(c.image);
          else visit(v);
        }
      }
    };
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
      for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) visit(doc.toJS());
    }
    assert.ok(images.length >= 2, 'the webhook Deployment and the speaker DaemonSet');
    for (const image of images) assert.equal(image, IMAGE);
  });
});
