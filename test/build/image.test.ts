// `npm run image` (scripts/image.ts): which build tool it picks and the commands it runs. No container
// engine exists where these tests run, so docker, podman and buildah are stand-in executables on a
// PATH that holds nothing else: each appends its command line to a log and exits as the test tells it
// (a docker client without an engine fails `docker info`). What is tested is the script's choice,
// its command lines and its edit of kustomization.yaml (rendered with the real kubectl kustomize),
// not an image build.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseReference, readManifestImage } from '../../scripts/image.ts';
import { runCertsCommand } from '../../src/certs/command.ts';
import { kustomize, tempInstall, workloadImages } from '../certs/helpers.ts';
import { removeDir, tempDir } from '../sandbox/helpers.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;

type Fake = 'ok' | 'no-engine' | 'build-fails';

/** A PATH with only the given stand-ins; returns it and the log of their command lines. */
function fakeTools(dir: string, tools: Partial<Record<'docker' | 'podman' | 'buildah', Fake>>): { path: string; log: string } {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  for (const [tool, mode] of Object.entries(tools)) {
    const probeFails = mode === 'no-engine' ? `if [ "$1" = info ]; then echo "Cannot connect to the ${tool} daemon" >&2; exit 1; fi\n` : '';
    const buildFails = mode === 'build-fails' ? 'if [ "$1" = build ]; then exit 7; fi\n' : '';
    writeFileSync(join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> '${log}'\n${probeFails}${buildFails}exit 0\n`);
    chmodSync(join(bin, tool), 0o755);
  }
  return { path: bin, log };
}

function runImage(args: string[], path: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: path };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/image.ts'), ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const calls = (log: string) => readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
const DOCKERFILE = join(ROOT, 'Dockerfile');

describe('npm run image', () => {
  const work = tempDir('image-script');
  let n = 0;
  const fresh = () => join(work, String(n++));
  after(() => removeDir(work));

  it('a docker client without an engine is passed over for podman; the tag is the kustomization entry; --dry-run runs only the probes', () => {
    const { path, log } = fakeTools(fresh(), { docker: 'no-engine', podman: 'ok', buildah: 'ok' });
    const r = runImage(['--dry-run'], path);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^# skipped docker: `docker info --format \{\{\.ServerVersion\}\}` failed \(Cannot connect to the docker daemon\)$/m);
    assert.equal(r.stdout.trim(), `podman build -f ${DOCKERFILE} -t ghcr.io/admitlb/admitlb:${VERSION} ${ROOT}`);
    assert.deepEqual(calls(log), ['docker info --format {{.ServerVersion}}', 'podman info --format {{.Host.Arch}}']);
  });

  it('docker with an engine comes first; --push, --image and --base make the build and push commands, run in order', () => {
    const { path, log } = fakeTools(fresh(), { docker: 'ok', podman: 'ok' });
    const r = runImage(['--push', '--image', 'registry.example.test:5000/team/admitlb:dev-1', '--base', `node:22-bookworm-slim@${DIGEST}`, '--platform', 'linux/arm64'], path);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(calls(log), [
      'docker info --format {{.ServerVersion}}',
      `docker build -f ${DOCKERFILE} -t registry.example.test:5000/team/admitlb:dev-1 --build-arg NODE_IMAGE=node:22-bookworm-slim@${DIGEST} --platform linux/arm64 ${ROOT}`,
      'docker push registry.example.test:5000/team/admitlb:dev-1',
    ]);
    assert.match(r.stdout, /the manifests do not name registry\.example\.test:5000\/team\/admitlb:dev-1; --set-manifests records it there/);
  });

  it('buildah alone (no docker, no podman on the PATH); a repository without a tag gets the package version', () => {
    const { path, log } = fakeTools(fresh(), { buildah: 'ok' });
    const r = runImage(['--push', '--image', 'registry.example.test/admitlb'], path);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /# skipped docker: not on the PATH\n# skipped podman: not on the PATH/);
    assert.deepEqual(calls(log), ['buildah version', `buildah build -f ${DOCKERFILE} -t registry.example.test/admitlb:${VERSION} ${ROOT}`, `buildah push registry.example.test/admitlb:${VERSION}`]);
  });

  it('no usable tool: exit 1 and why each was passed over; --tool restricts the choice', () => {
    const none = fakeTools(fresh(), { docker: 'no-engine' });
    const r = runImage([], none.path);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /skipped docker: .*failed/);
    assert.match(r.stderr, /skipped podman: not on the PATH/);
    assert.match(r.stderr, /skipped buildah: not on the PATH/);
    assert.match(r.stderr, /no usable build tool \(docker, podman, buildah\)/);
    const only = fakeTools(fresh(), { docker: 'ok', buildah: 'ok' });
    const b = runImage(['--tool', 'buildah', '--dry-run'], only.path);
    assert.equal(b.code, 0, b.stderr);
    assert.deepEqual(calls(only.log), ['buildah version']);
    assert.equal(runImage(['--tool', 'kaniko'], only.path).code, 2);
  });

  it('a failed build stops before the push and leaves the manifests alone', () => {
    const inst = tempInstall();
    try {
      const { path, log } = fakeTools(fresh(), { podman: 'build-fails' });
      const before = readFileSync(join(inst.manifestsDir, 'kustomization.yaml'), 'utf8');
      const r = runImage(['--push', '--set-manifests', '--image', 'registry.example.test/admitlb:x', '--manifests-dir', inst.manifestsDir], path);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /`podman build` failed \(exit 7\)/);
      assert.deepEqual(calls(log).map((c) => c.split(' ').slice(0, 2).join(' ')), ['podman info', 'podman build']);
      assert.equal(readFileSync(join(inst.manifestsDir, 'kustomization.yaml'), 'utf8'), before);
    } finally {
      inst.cleanup();
    }
  });

  it('rejects malformed references and a digest to build', () => {
    const { path } = fakeTools(fresh(), { docker: 'ok' });
    for (const bad of ['Registry.example/UPPER:1', 'registry.example.test/admitlb:bad tag', `registry.example.test/admitlb@sha256:abc`]) {
      const r = runImage(['--image', bad, '--dry-run'], path);
      assert.equal(r.code, 2, bad);
    }
    const d = runImage(['--image', `registry.example.test/admitlb@${DIGEST}`], path);
    assert.equal(d.code, 2);
    assert.match(d.stderr, /a digest names an existing image/);
    assert.deepEqual(parseReference('localhost:5000/admitlb'), { repository: 'localhost:5000/admitlb' });
    assert.deepEqual(parseReference(`r.example/a/b:1.2@${DIGEST}`) instanceof Error, true, 'a tag and a digest');
  });

  describe('--set-manifests: the one reference, rendered', () => {
    const inst = tempInstall();
    const kustomization = join(inst.manifestsDir, 'kustomization.yaml');
    before(async () => {
      await runCertsCommand({ outDir: inst.certsDir, manifestsDir: inst.manifestsDir });
    });
    after(() => inst.cleanup());

    it('after the build and push, every workload runs the new tag; comments stay', () => {
      const { path } = fakeTools(fresh(), { docker: 'ok' });
      const r = runImage(['--push', '--set-manifests', '--image', 'registry.example.test/team/admitlb:v2', '--manifests-dir', inst.manifestsDir], path);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readManifestImage(kustomization), { repository: 'registry.example.test/team/admitlb', tag: 'v2' });
      assert.match(readFileSync(kustomization, 'utf8'), /# The image every workload runs, in one place/);
      const images = workloadImages(kustomize(inst.manifestsDir));
      assert.ok(images.size >= 2);
      for (const [where, image] of images) assert.equal(image, 'registry.example.test/team/admitlb:v2', where);
    });

    it('a digest (what the push printed) replaces the tag and builds nothing; --dry-run changes nothing', () => {
      const { path, log } = fakeTools(fresh(), { docker: 'ok' });
      const dry = runImage(['--set-manifests', '--dry-run', '--image', `registry.example.test/team/admitlb@${DIGEST}`, '--manifests-dir', inst.manifestsDir], path);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /would set the images: entry/);
      assert.deepEqual(readManifestImage(kustomization), { repository: 'registry.example.test/team/admitlb', tag: 'v2' });
      const r = runImage(['--set-manifests', '--image', `registry.example.test/team/admitlb@${DIGEST}`, '--manifests-dir', inst.manifestsDir], path);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(calls(log), [], 'no tool was even probed');
      assert.deepEqual(readManifestImage(kustomization), { repository: 'registry.example.test/team/admitlb', digest: DIGEST });
      const entry = (parse(readFileSync(kustomization, 'utf8')) as { images: Record<string, string>[] }).images;
      assert.deepEqual(entry, [{ name: 'ghcr.io/admitlb/admitlb', newName: 'registry.example.test/team/admitlb', digest: DIGEST }], 'no newTag left beside the digest');
      for (const [where, image] of workloadImages(kustomize(inst.manifestsDir))) assert.equal(image, `registry.example.test/team/admitlb@${DIGEST}`, where);
      // Building from a digest-pinned entry needs a tag to build.
      const build = runImage(['--dry-run', '--manifests-dir', inst.manifestsDir], path);
      assert.equal(build.code, 2);
      assert.match(build.stderr, /--image REPO:TAG to build/);
    });
  });
});
