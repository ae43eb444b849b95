// Test tools built from Go modules besides the control plane (helm, promtool, external-dns, …).
// Each tool is a folder test/tools/<name>/ holding its own Go module (go.mod, go.sum, tools.go, so
// that its dependencies never meet the control plane's pins) and a tool.json naming the binaries:
//   { "binaries": [{ "name": "helm", "pkg": "helm.sh/helm/v4/cmd/helm", "ldflags": "-s -w" }] }
// ("tags": "a,b" adds go build -tags, e.g. to leave out parts of a large module a test never runs.)
// Binaries go to .cache/tools/<name>-<hash of those four files>/, rebuilt only when they change.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TOOLS_DIR = join(PROJECT_ROOT, 'test', 'tools');
export const TOOLS_CACHE_DIR = join(PROJECT_ROOT, '.cache', 'tools');

export interface ToolSpec {
  /** the folder name under test/tools/ */
  tool: string;
  moduleDir: string;
  binaries: { name: string; pkg: string; ldflags?: string; tags?: string }[];
  /** the cache folder for exactly this module's pins */
  binDir: string;
}

export function toolSpecs(): ToolSpec[] {
  if (!existsSync(TOOLS_DIR)) return [];
  return readdirSync(TOOLS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(TOOLS_DIR, d.name, 'tool.json')))
    .map((d) => toolSpec(d.name));
}

export function toolSpec(tool: string): ToolSpec {
  const moduleDir = join(TOOLS_DIR, tool);
  const hash = createHash('sha256');
  for (const f of ['tool.json', 'go.mod', 'go.sum', 'tools.go']) hash.update(readFileSync(join(moduleDir, f)));
  const { binaries } = JSON.parse(readFileSync(join(moduleDir, 'tool.json'), 'utf8')) as { binaries: ToolSpec['binaries'] };
  return { tool, moduleDir, binaries, binDir: join(TOOLS_CACHE_DIR, `${tool}-${hash.digest('hex').slice(0, 12)}`) };
}

/**
 * The path of a built tool binary (e.g. toolBinary('helm')), or undefined when it is not built.
 * Tests that need one fail under CI=true when it is missing and skip with this hint otherwise.
 */
export function toolBinary(name: string): string | undefined {
  for (const spec of toolSpecs()) {
    if (!spec.binaries.some((b) => b.name === name)) continue;
    const path = join(spec.binDir, name);
    return existsSync(path) ? path : undefined;
  }
  return undefined;
}

export const TOOLS_BUILD_HINT = 'build it with `npm run cluster:build` (Go modules under test/tools/; needs Go and the module proxy)';
