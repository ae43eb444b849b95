// What the cluster-reading subcommands share: the kubectl-style flags, table rendering and the
// -o yaml|json output of a report.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { stringify } from 'yaml';
import { UsageError } from './io.ts';
import type { KubeFlags } from './kube.ts';

export const KUBE_FLAGS_USAGE = `      --kubeconfig FILE  the kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)
      --context NAME     the kubeconfig context to use (default: its current context)`;

export type OutputFormat = 'table' | 'yaml' | 'json';

export interface CommonFlags extends KubeFlags {
  output: OutputFormat;
  help: boolean;
}

/** Parses the command's own options plus --kubeconfig, --context, -o and -h. */
export function parseCommandArgs(args: string[], usage: string, options: NonNullable<ParseArgsConfig['options']> = {}, positionals = false) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: positionals,
      options: {
        ...options,
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        output: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message, usage);
  }
  const v = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const output = (v.output as string | undefined) ?? 'table';
  if (output !== 'table' && output !== 'yaml' && output !== 'json') throw new UsageError(`--output: expected yaml or json, got "${output}"`, usage);
  const common: CommonFlags = {
    output,
    help: !!v.help,
    ...(typeof v.kubeconfig === 'string' ? { kubeconfig: v.kubeconfig } : {}),
    ...(typeof v.context === 'string' ? { context: v.context } : {}),
  };
  return { common, values: v, positionals: parsed.positionals };
}

/** A report as -o yaml or -o json prints it. */
export function structured(report: unknown, output: 'yaml' | 'json'): string {
  return output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : stringify(report, { version: '1.1', lineWidth: 0 });
}

/** kubectl-style columns: upper-case headers, left-aligned, three spaces apart. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}
