// The plugin's command line in-process: every subcommand is listed, bad command lines exit 2 with
// the subcommand's usage, and input it cannot use exits 1 with one error line, before any cluster
// is contacted.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runPlugin } from '../../src/cmd/plugin.ts';
import type { PluginIO } from '../../src/kubectl/io.ts';

async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const io: PluginIO = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), readStdin: async () => '' };
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await runPlugin(argv, io);
    return { code, stdout, stderr };
  } finally {
    process.env = saved;
  }
}

describe('kubectl admitlb command line', () => {
  it('help lists every subcommand', async () => {
    const r = await run(['help']);
    assert.equal(r.code, 0);
    for (const name of ['status', 'explain', 'plan', 'doctor', 'migrate']) assert.match(r.stdout, new RegExp(`\\n {2}${name} +\\S`), name);
  });

  const usage: [string[], RegExp, RegExp][] = [
    [['explain'], /^error: svc\/NAME or -f FILE is required/, /usage: kubectl admitlb explain svc\/NAME/],
    [['explain', 'pod/x'], /^error: expected svc\/NAME, got "pod\/x"/, /usage: kubectl admitlb explain/],
    [['explain', 'svc/a', '-f', 'x.yaml'], /^error: give svc\/NAME or -f FILE, not both/, /usage: kubectl admitlb explain/],
    [['plan'], /^error: -f FILE is required/, /usage: kubectl admitlb plan -f pool\.yaml/],
    [['status', '--bogus'], /^error: Unknown option '--bogus'/, /usage: kubectl admitlb status/],
    [['doctor', '-o', 'wide'], /^error: --output: expected yaml or json, got "wide"/, /usage: kubectl admitlb doctor/],
  ];
  for (const [argv, message, text] of usage) {
    it(`${argv.join(' ')}: exit 2 with the usage`, async () => {
      const r = await run(argv);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
      assert.match(r.stderr, text);
    });
  }

  it('a missing file or kubeconfig: one error line, exit 1', async () => {
    const plan = await run(['plan', '-f', '/nonexistent/pool.yaml']);
    assert.equal(plan.code, 1);
    assert.equal(plan.stderr, 'error: /nonexistent/pool.yaml: cannot read it: no such file or directory\n');
    const status = await run(['status', '--kubeconfig', '/nonexistent/kubeconfig']);
    assert.equal(status.code, 1);
    assert.match(status.stderr, /^error: cannot load the kubeconfig \/nonexistent\/kubeconfig: .*\n$/);
    const explain = await run(['explain', '-f', 'package.json']);
    assert.equal(explain.code, 1);
    assert.equal(explain.stderr, 'error: package.json: expected exactly one Service, found 0\n');
  });
});
