// The kubectl plugin: `kubectl admitlb <subcommand>` runs bin/kubectl-admitlb.js, and the same
// subcommands are reachable as `admitlb <subcommand>` (src/cmd/cli.ts dispatches here). A subcommand is
// one entry of PLUGIN_COMMANDS: adding one makes it reachable both ways and lists it in the usage.
import { MigrateError } from '../migrate/metallb.ts';
import { runMigrateCommand } from '../kubectl/migrate.ts';
import { runStatusCommand } from '../kubectl/status.ts';
import { runExplainCommand } from '../kubectl/explain.ts';
import { runPlanCommand } from '../kubectl/pool-plan.ts';
import { runDoctorCommand } from '../kubectl/doctor.ts';
import { CommandError, UsageError, type PluginIO } from '../kubectl/io.ts';

export interface PluginCommand {
  name: string;
  /** One line for the usage text. */
  summary: string;
  run(args: string[], io: PluginIO): Promise<number>;
}

export const PLUGIN_COMMANDS: readonly PluginCommand[] = [
  {
    name: 'status',
    summary: 'pools, claims, Services waiting for an address, who announces what, BGP peers (-o yaml|json)',
    run: runStatusCommand,
  },
  {
    name: 'explain',
    summary: 'why a Service has its address, or is denied or pending (svc/NAME [-n NS] or -f FILE)',
    run: runExplainCommand,
  },
  {
    name: 'plan',
    summary: 'what applying an IPPool change would do to its holders: kept, moved, stranded (-f FILE)',
    run: runPlanCommand,
  },
  {
    name: 'doctor',
    summary: 'check the installation: one line per check, pass or fail with the fix (exit 1 on a failure)',
    run: runDoctorCommand,
  },
  {
    name: 'migrate',
    summary: 'print the admitlb objects equivalent to a MetalLB configuration (-f FILE..., -o yaml|json)',
    run: runMigrateCommand,
  },
];

export const isPluginCommand = (name: string | undefined): boolean => PLUGIN_COMMANDS.some((c) => c.name === name);

export function pluginUsage(program: string): string {
  const width = Math.max(...PLUGIN_COMMANDS.map((c) => c.name.length)) + 2;
  return [
    `usage: ${program} <command> [flags]`,
    '',
    'commands:',
    ...PLUGIN_COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    `  ${'help'.padEnd(width)}show this text (${program} <command> --help: the command's flags)`,
  ].join('\n');
}

/**
 * Runs one subcommand and returns the exit status: 0 done, 1 input it cannot use (one `error:` line
 * on stderr, nothing on stdout), 2 a bad command line (the usage on stderr).
 */
export async function runPlugin(argv: string[], io: PluginIO, program = 'kubectl admitlb'): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    (name === undefined ? io.stderr : io.stdout)(`${pluginUsage(program)}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = PLUGIN_COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr(`error: unknown command "${name}" for "${program}"\n\n${pluginUsage(program)}\n`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n\n${err.usage ?? pluginUsage(program)}\n`);
      return 2;
    }
    if (err instanceof MigrateError || err instanceof CommandError) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
