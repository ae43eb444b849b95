// Builds every test tool under test/tools/ (see src/sandbox/tool-binaries.ts) into .cache/tools/,
// skipping those already built for their current pins. Run by `npm run cluster:build`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { toolSpecs } from '../src/sandbox/tool-binaries.ts';

const seconds = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
let failed = false;
for (const spec of toolSpecs()) {
  const started = performance.now();
  const names = spec.binaries.map((b) => b.name).join(', ');
  if (spec.binaries.every((b) => existsSync(join(spec.binDir, b.name)))) {
    console.log(`tools:build: ${names} already built in ${spec.binDir} (${seconds(started)})`);
    continue;
  }
  console.log(`tools:build: building ${names} from ${spec.moduleDir} into ${spec.binDir}`);
  const staging = `${spec.binDir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    for (const b of spec.binaries) {
      const t = performance.now();
      const tags = b.tags ? ['-tags', b.tags] : [];
      const r = spawnSync('go', ['build', '-trimpath', '-ldflags', b.ldflags ?? '-s -w', ...tags, '-o', join(staging, b.name), b.pkg], { cwd: spec.moduleDir, stdio: 'inherit', env: process.env });
      if (r.status !== 0) throw new Error(`go build ${b.pkg} failed (exit ${r.status ?? r.signal})`);
      console.log(`  ${b.name.padEnd(24)} ${seconds(t)}`);
    }
    rmSync(spec.binDir, { recursive: true, force: true });
    renameSync(staging, spec.binDir);
    console.log(`tools:build: ${spec.tool} done in ${seconds(started)}`);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    console.error(`tools:build: ${spec.tool}: ${(err as Error).message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
