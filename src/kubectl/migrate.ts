// `kubectl admitlb migrate -f FILE...` (also `admitlb migrate`): reads MetalLB configuration from
// files, directories or stdin and prints the admitlb objects; notes on what has no equivalent go to
// stderr, so that stdout can be piped to `kubectl apply -f -` as it is.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { migrateMetalLB, MigrateError, type KubeObject, type MigrateSource } from '../migrate/metallb.ts';
import { UsageError, type PluginIO } from './io.ts';

export const MIGRATE_USAGE = `usage: kubectl admitlb migrate -f FILE [-f FILE...] [-o yaml|json]

Reads MetalLB configuration and prints the equivalent admitlb objects (IPPool, BGPPeer with its
password Secret, L2Advertisement, BGPAdvertisement) on stdout; what has no admitlb equivalent is
listed on stderr, one line each.

Input, detected per document: the MetalLB ConfigMap (metallb-system/config) of MetalLB 0.2 to 0.12,
or its content alone; metallb.io objects of MetalLB 0.13+ (IPAddressPool, L2Advertisement,
BGPAdvertisement, BGPPeer, Community, and v1 Secrets that BGPPeers reference), one per document or
in a List, as \`kubectl get -o yaml\` prints them.

  -f, --filename FILE   a file, a directory (its .yaml, .yml and .json files) or - for stdin; repeatable
  -o, --output FORMAT   yaml (default: multi-document YAML) or json (a v1 List)

  kubectl -n metallb-system get configmap config -o yaml | kubectl admitlb migrate -f - | kubectl apply -f -`;

async function readSources(files: string[], io: PluginIO): Promise<MigrateSource[]> {
  const sources: MigrateSource[] = [];
  let stdinUsed = false;
  for (const file of files) {
    if (file === '-') {
      if (stdinUsed) throw new UsageError('-f - (stdin) may be given once');
      stdinUsed = true;
      sources.push({ name: '<stdin>', text: await io.readStdin() });
      continue;
    }
    let paths = [file];
    try {
      if (statSync(file).isDirectory()) {
        paths = readdirSync(file)
          .filter((e) => /\.(ya?ml|json)$/.test(e))
          .sort()
          .map((e) => join(file, e));
        if (paths.length === 0) throw new MigrateError(`${file}: the directory holds no .yaml, .yml or .json file`);
      }
      for (const path of paths) sources.push({ name: path, text: readFileSync(path, 'utf8') });
    } catch (err) {
      if (err instanceof MigrateError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new MigrateError(`${file}: cannot read it: ${code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
    }
  }
  return sources;
}

/** Multi-document YAML, YAML 1.1-safe: strings a 1.1 reader (kubectl) would take for numbers or booleans are quoted. */
export function toYaml(objects: KubeObject[]): string {
  return objects.map((o) => stringify(o, { version: '1.1', lineWidth: 0 })).join('---\n');
}

export function toJsonList(objects: KubeObject[]): string {
  return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', metadata: {}, items: objects }, null, 2)}\n`;
}

export async function runMigrateCommand(args: string[], io: PluginIO): Promise<number> {
  let values: { filename?: string[]; output?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        filename: { type: 'string', short: 'f', multiple: true },
        output: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message, MIGRATE_USAGE);
  }
  if (values.help) {
    io.stdout(`${MIGRATE_USAGE}\n`);
    return 0;
  }
  const output = values.output ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw new UsageError(`--output: expected yaml or json, got "${output}"`, MIGRATE_USAGE);
  if (!values.filename?.length) throw new UsageError('-f FILE is required (- for stdin)', MIGRATE_USAGE);

  const sources = await readSources(values.filename, io);
  const result = migrateMetalLB(sources);
  for (const note of result.notes) io.stderr(`${note}\n`);
  if (result.objects.length === 0) io.stderr('no admitlb objects: the input configures nothing admitlb can use\n');
  io.stdout(output === 'json' ? toJsonList(result.objects) : toYaml(result.objects));
  return 0;
}
