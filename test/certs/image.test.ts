// The container image and the manifests that use it: the Dockerfile (parsed, not built: no engine
// here), .dockerignore, package.json's runtime dependencies and every image reference, rendered by the
// real `kubectl kustomize` with the committed reference and with a custom one.
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { runCertsCommand } from '../../src/certs/command.ts';
import { PLACEHOLDER, readManifestImage } from '../../scripts/image.ts';
import { kustomize, tempInstall, workloadImages } from './helpers.ts';

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

  it('two stages (build, runtime) on one slim Node 22/24 base, pinned by digest, that satisfies engines.node', () => {
    const from = all('FROM');
    const ref = `$${'{NODE_IMAGE}'}`; // the ARG, as the Dockerfile writes it
    assert.deepEqual(from.map((f) => f.args), [`${ref} AS build`, ref]);
    const base = args.NODE_IMAGE ?? '';
    assert.match(base, /^node:(22|24)(\.\d+)*-(bookworm-|trixie-)?slim@sha256:[0-9a-f]{64}$/);
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

  it('the build stage compiles with the dev dependencies; the runtime stage installs production dependencies only and copies dist/', () => {
    const runtimeStart = ins.findIndex((i) => i.op === 'FROM' && !/ AS /i.test(i.args));
    const build = ins.slice(0, runtimeStart);
    const runtime = ins.slice(runtimeStart);
    const buildCi = build.find((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
    assert.ok(buildCi && !/--omit=dev/.test(buildCi.args), 'the build stage has tsc');
    assert.ok(build.some((i) => i.op === 'RUN' && /\bnpm run build\b/.test(i.args)));
    assert.ok(build.some((i) => i.op === 'COPY' && /\bsrc\//.test(i.args)));
    const npm = runtime.find((r) => r.op === 'RUN' && /\bnpm ci\b/.test(r.args));
    assert.ok(npm);
    assert.match(npm.args, /--omit=dev/);
    assert.match(npm.args, /--ignore-scripts/);
    // Lockfile copied before npm ci, the built code after it (layer caching); no sources at run time.
    const idx = (pred: (i: Instruction) => boolean) => runtime.findIndex(pred);
    assert.ok(idx((i) => i.op === 'COPY' && i.args.includes('package-lock.json')) < idx((i) => i === npm), 'the lockfile is copied before npm ci');
    assert.ok(idx((i) => i === npm) < idx((i) => i.op === 'COPY' && i.args.startsWith('--from=build ') && /\/dist\/? dist\/?$/.test(i.args)), 'dist/ is copied after npm ci');
    assert.ok(!runtime.some((i) => i.op === 'COPY' && /\bsrc\/|\bbin\//.test(i.args)), 'neither src/ nor bin/ reaches the runtime stage');
  });

  it('runs as a numeric non-root user by default, ENTRYPOINT node dist/bin/admitlb.js in exec form', () => {
    const user = last('USER');
    assert.ok(user);
    const [uid] = user.args.split(':');
    assert.match(uid!, /^\d+$/, 'numeric, so runAsNonRoot can check it');
    assert.notEqual(Number(uid), 0);
    assert.equal(last('ENTRYPOINT')?.args, '["node", "/app/dist/bin/admitlb.js"]');
    assert.equal(last('WORKDIR')?.args, '/app');
    assert.equal(pkg.bin.admitlb, 'bin/admitlb.js');
  });
});

describe('runtime dependencies', () => {
  it('tsx is a development dependency only (the built code runs without it: test/build/build.test.ts)', () => {
    assert.ok(pkg.devDependencies.tsx, 'tsx in devDependencies');
    assert.equal(pkg.dependencies.tsx, undefined);
    for (const f of ['bin/admitlb.js', 'bin/kubectl-admitlb.js', 'bin/launch.js']) {
      assert.doesNotMatch(readFileSync(join(ROOT, f), 'utf8'), /^\s*import\b[^(]*'tsx/m, `${f} imports tsx only on demand`);
    }
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
    assert.deepEqual(allowed.sort(), ['package-lock.json', 'package.json', 'src', 'tsconfig.build.json', 'tsconfig.json']);
  });

  it('admits everything the Dockerfile copies', () => {
    const copies = instructions(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
      .filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1))
      .map((s) => s.replace(/\/$/, ''));
    const allowed = new Set(lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, '')));
    for (const c of copies) assert.ok(allowed.has(c), c);
  });
});

describe('image references', () => {
  const kustomization = join(ROOT, 'webhook-manifests', 'kustomization.yaml');

  it(`every container in webhook-manifests/ names the placeholder ${PLACEHOLDER}, no tag: kustomization.yaml says which image`, () => {
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
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (f.endsWith('.yaml')) for (const doc of parseAllDocuments(readFileSync(p, 'utf8'))) visit(doc.toJS());
      }
    };
    walk(dir);
    assert.ok(images.length >= 2, 'the webhook Deployment and the speaker DaemonSet');
    for (const image of images) assert.equal(image, PLACEHOLDER);
  });

  it(`the one reference, kustomization.yaml's images: entry, is ${IMAGE} as committed (package.json's version)`, () => {
    assert.deepEqual(readManifestImage(kustomization), { repository: 'ghcr.io/admitlb/admitlb', tag: pkg.version });
  });

  describe('rendered by kubectl kustomize', () => {
    const inst = tempInstall();
    before(async () => {
      await runCertsCommand({ outDir: inst.certsDir, manifestsDir: inst.manifestsDir });
    });
    after(() => inst.cleanup());

    /** Renders an overlay of the temp install with these images: entries. */
    const renderOverlay = (name: string, images: Record<string, string>[]) => {
      const dir = join(inst.root, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'kustomization.yaml'), stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['../webhook-manifests'], images }));
      return workloadImages(kustomize(dir));
    };
    const assertAllRun = (images: Map<string, string>, expected: string) => {
      assert.ok(images.has('Deployment/admitlb-webhook webhook'), [...images.keys()].join(', '));
      assert.ok(images.has('DaemonSet/admitlb-speaker speaker'), [...images.keys()].join(', '));
      for (const [where, image] of images) assert.equal(image, expected, where);
    };

    it(`every container and initContainer of every workload runs ${IMAGE}`, () => {
      assertAllRun(workloadImages(kustomize(inst.manifestsDir)), IMAGE);
    });

    it('an overlay with its own images: entry (a custom repository and tag) reaches every workload', () => {
      assertAllRun(renderOverlay('custom-tag', [{ name: PLACEHOLDER, newName: 'registry.example.test:5000/team/admitlb', newTag: 'dev-1' }]), 'registry.example.test:5000/team/admitlb:dev-1');
    });

    it('so does a digest', () => {
      const digest = `sha256:${'0123456789abcdef'.repeat(4)}`;
      assertAllRun(renderOverlay('custom-digest', [{ name: PLACEHOLDER, newName: 'registry.example.test/admitlb', digest }]), `registry.example.test/admitlb@${digest}`);
    });
  });
});
