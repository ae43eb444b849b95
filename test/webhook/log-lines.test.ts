// Every log line is one valid JSON object whose keys are unique at every level: a repeated key is
// read differently by different log pipelines (most keep the last one, some reject the line).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { componentLogger, rootLogger } from '../../src/log.ts';
import { apiRequest, startSandbox } from '../../src/cmd/sandbox.ts';
import { removeDir, tempDir } from '../sandbox/helpers.ts';

/** The keys that appear twice in one object of `text` (a strict JSON scanner; throws on invalid JSON). */
export function duplicateKeys(text: string): string[] {
  let i = 0;
  const dups: string[] = [];
  const ws = () => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i;
    assert.equal(text[i], '"', `string expected at ${i}`);
    i++;
    while (text[i] !== '"') {
      if (i >= text.length) throw new SyntaxError('unterminated string');
      i += text[i] === '\\' ? 2 : 1;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    if (text[i] === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        const key = str();
        if (seen.has(key)) dups.push(path ? `${path}.${key}` : key);
        seen.add(key);
        ws();
        if (text[i++] !== ':') throw new SyntaxError(`':' expected at ${i - 1}`);
        value(path ? `${path}.${key}` : key);
        ws();
        const c = text[i++];
        if (c === '}') return;
        if (c !== ',') throw new SyntaxError(`',' or '}' expected at ${i - 1}`);
      }
    }
    if (text[i] === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value(`${path}[]`);
        ws();
        const c = text[i++];
        if (c === ']') return;
        if (c !== ',') throw new SyntaxError(`',' or ']' expected at ${i - 1}`);
      }
    }
    if (text[i] === '"') return void str();
    const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i));
    if (!m) throw new SyntaxError(`value expected at ${i}`);
    i += m[0].length;
  };
  value('');
  ws();
  if (i !== text.length) throw new SyntaxError(`trailing text at ${i}`);
  JSON.parse(text);
  return dups;
}

function checkLines(text: string): Record<string, unknown>[] {
  const lines = text.split('\n').filter((l) => l.length > 0);
  return lines.map((line) => {
    assert.deepEqual(duplicateKeys(line), [], `repeated key in log line: ${line}`);
    return JSON.parse(line) as Record<string, unknown>;
  });
}

function capture(): { stream: Writable; text(): string } {
  let buf = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => buf };
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the duplicate-key scanner', () => {
  it('finds a repeated key, nested ones too, and accepts unique keys', () => {
    assert.deepEqual(duplicateKeys('{"component":"webhook","component":"controller","msg":"x"}'), ['component']);
    assert.deepEqual(duplicateKeys('{"a":{"b":1,"b":[{"c":1,"c":2}]},"d":"}\\"{"}'), ['a.b', 'a.b[].c']);
    assert.deepEqual(duplicateKeys('{"a":1,"b":{"a":2}}'), []);
    assert.throws(() => duplicateKeys('{"a":1'));
  });
});

describe('component bindings', () => {
  it('a part started inside another part\'s process binds subcomponent, never a second component', () => {
    const out = capture();
    const webhook = pino({ level: 'info', base: { component: 'webhook' } }, out.stream);
    componentLogger(webhook, 'controller').info({ x: 1 }, 'from the controller');
    componentLogger(webhook, 'webhook').info({}, 'from the webhook');
    componentLogger(rootLogger('info', out.stream), 'controller').info({}, 'standalone controller');
    const lines = checkLines(out.text());
    assert.deepEqual(
      lines.map((l) => [l.component, l.subcomponent, l.msg]),
      [
        ['webhook', 'controller', 'from the controller'],
        ['webhook', undefined, 'from the webhook'],
        ['controller', undefined, 'standalone controller'],
      ],
    );
  });
});

describe('the log of a running webhook and controller', () => {
  it('every line of admitlb.log is JSON with unique keys, and says which component wrote it', async () => {
    const dataDir = tempDir('log-lines');
    cleanups.push(() => removeDir(dataDir));
    // No logger given: the sandbox writes the webhook's and the controller's lines to admitlb.log.
    const sandbox = await startSandbox({ dataDir, host: '127.0.0.1', port: 0, controller: { orphanGraceSeconds: 1 } });
    cleanups.push(() => sandbox.close());
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } };
    let created;
    for (let i = 0; ; i++) {
      created = await apiRequest(sandbox.api, 'POST', '/api/v1/namespaces/default/services', svc);
      if (created.status === 201 || i > 100) break;
      await new Promise((r) => setTimeout(r, 50)); // the webhook's cache may not know the pool yet
    }
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const logFile = join(dataDir, 'admitlb.log');
    let lines: Record<string, unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      lines = checkLines(readFileSync(logFile, 'utf8'));
      if (lines.some((l) => l.component === 'controller') && lines.some((l) => l.audit === true)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(lines.some((l) => l.component === 'webhook' && l.audit === true && l.name === 'web'), 'an audit line from the webhook');
    assert.ok(lines.some((l) => l.component === 'controller'), 'a line from the controller');
    await sandbox.close();
    checkLines(readFileSync(logFile, 'utf8'));
  });
});
