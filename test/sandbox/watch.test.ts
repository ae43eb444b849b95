// Watch semantics: resume from a resourceVersion, selectors, bookmarks, timeoutSeconds, 410 Expired once a
// version left the bounded history, client-node's informer relisting after 410, and kubectl wait.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig, makeInformer, type V1Service } from '@kubernetes/client-node';
import { removeDir, startSandbox, type Sandbox } from './helpers.ts';

let sb: Sandbox;
const historySize = 20;

before(async () => {
  sb = await startSandbox('watch', { watchHistorySize: historySize, bookmarkIntervalMs: 100, minRequestTimeoutSeconds: 1 });
});
after(async () => {
  await sb.close();
  removeDir(sb.dataDir);
});

interface WatchEvent {
  type: string;
  object: any;
}

/** Opens a raw watch and collects events until the server closes it or `stop` is called. */
function openWatch(path: string): { events: WatchEvent[]; ended: Promise<void>; stop(): void; waitFor(pred: (e: WatchEvent[]) => boolean, ms?: number): Promise<void> } {
  const events: WatchEvent[] = [];
  const u = new URL(path, sb.api.url);
  let buf = '';
  let req: ReturnType<typeof https.request>;
  const ended = new Promise<void>((resolve) => {
    req = https.request({ hostname: u.hostname, port: u.port, path: u.pathname + u.search, ca: sb.api.caPem, headers: { Authorization: `Bearer ${sb.api.token}` } }, (res) => {
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) events.push(JSON.parse(line) as WatchEvent);
        }
      });
      res.on('end', () => resolve());
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
  return {
    events,
    ended,
    stop: () => req.destroy(),
    async waitFor(pred, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!pred(events)) {
        if (Date.now() > deadline) throw new Error(`timed out; events: ${JSON.stringify(events.map((e) => [e.type, e.object?.metadata?.name]))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

const cm = (name: string, labels: Record<string, string> = {}) => ({ metadata: { name, labels } });

describe('watch', () => {
  it('resumes from a resourceVersion: only later changes, in order, with the right types', async () => {
    const first = await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm('w1'));
    const rv = first.json().metadata.resourceVersion;
    const w = openWatch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}&timeoutSeconds=10`);
    await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm('w2'));
    await sb.request('PATCH', '/api/v1/namespaces/default/configmaps/w2', { data: { a: 'b' } }, { 'Content-Type': 'application/merge-patch+json' });
    await sb.request('DELETE', '/api/v1/namespaces/default/configmaps/w2');
    await w.waitFor((e) => e.length >= 3);
    w.stop();
    assert.deepEqual(w.events.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'w2'], ['MODIFIED', 'w2'], ['DELETED', 'w2']]);
    const rvs = w.events.map((e) => Number(e.object.metadata.resourceVersion));
    assert.ok(rvs.every((v, i) => i === 0 || v > rvs[i - 1]!), `resourceVersions increase: ${rvs.join(', ')}`);
    assert.ok(rvs[0]! > Number(rv), `the first event (${rvs[0]}) comes after the watch's resourceVersion ${rv}`);
    assert.equal(w.events[0]!.object.kind, 'ConfigMap');
  });

  it('without a resourceVersion it starts with ADDED for the current state; field selectors filter', async () => {
    const w = openWatch('/api/v1/namespaces/default/configmaps?watch=1&fieldSelector=metadata.name%3Dw1&timeoutSeconds=10');
    await w.waitFor((e) => e.length >= 1);
    await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm('other'));
    await sb.request('PATCH', '/api/v1/namespaces/default/configmaps/w1', { data: { x: '1' } }, { 'Content-Type': 'application/merge-patch+json' });
    await w.waitFor((e) => e.length >= 2);
    w.stop();
    assert.deepEqual(w.events.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'w1'], ['MODIFIED', 'w1']]);
  });

  it('an object leaving a label selector is DELETED for that watcher', async () => {
    await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm('lbl', { team: 'a' }));
    const w = openWatch('/api/v1/namespaces/default/configmaps?watch=true&labelSelector=team%3Da&timeoutSeconds=10');
    await w.waitFor((e) => e.length >= 1);
    await sb.request('PATCH', '/api/v1/namespaces/default/configmaps/lbl', { metadata: { labels: { team: 'b' } } }, { 'Content-Type': 'application/merge-patch+json' });
    await w.waitFor((e) => e.length >= 2);
    w.stop();
    assert.deepEqual(w.events.map((e) => e.type), ['ADDED', 'DELETED']);
  });

  it('sends BOOKMARK events only with allowWatchBookmarks, and ends at timeoutSeconds', async () => {
    const rv = (await sb.request('GET', '/api/v1/namespaces/default/configmaps')).json().metadata.resourceVersion;
    const started = Date.now();
    const w = openWatch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true&timeoutSeconds=1`);
    await w.ended;
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 3000, `closed after ${elapsed} ms`);
    const bookmarks = w.events.filter((e) => e.type === 'BOOKMARK');
    assert.ok(bookmarks.length >= 2);
    assert.deepEqual(Object.keys(bookmarks[0]!.object.metadata), ['resourceVersion']);
    const plain = openWatch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${rv}&timeoutSeconds=1`);
    await plain.ended;
    assert.equal(plain.events.filter((e) => e.type === 'BOOKMARK').length, 0);
  });

  it('sendInitialEvents streams the current state, ends it with an annotated BOOKMARK, then follows changes', async () => {
    await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm('stream-1', { stream: 'yes' }));
    const path = '/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&labelSelector=stream&timeoutSeconds=10';
    const w = openWatch(path);
    const end = (e: WatchEvent) => e.type === 'BOOKMARK' && e.object.metadata.annotations?.['k8s.io/initial-events-end'] === 'true';
    await w.waitFor((es) => es.some(end));
    await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm('stream-2', { stream: 'yes' }));
    await w.waitFor((es) => es.some((e) => e.object.metadata.name === 'stream-2'));
    w.stop();
    const seen = w.events.filter((e) => e.type !== 'BOOKMARK' || end(e)).map((e) => [e.type, e.object.metadata.name ?? 'initial-events-end']);
    assert.deepEqual(seen, [['ADDED', 'stream-1'], ['BOOKMARK', 'initial-events-end'], ['ADDED', 'stream-2']]);
    const bookmark = w.events.find(end)!;
    assert.equal(bookmark.object.kind, 'ConfigMap');
    assert.ok(Number(bookmark.object.metadata.resourceVersion) < Number(w.events.find((e) => e.object.metadata.name === 'stream-2')!.object.metadata.resourceVersion));
    // sendInitialEvents=false from "now": no initial state.
    const quiet = openWatch('/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&labelSelector=stream&timeoutSeconds=1');
    await quiet.ended;
    assert.deepEqual(quiet.events, []);
  });

  it('streaming-list options are validated as kube-apiserver does (422 ListOptions)', async () => {
    const noMatch = await sb.request('GET', '/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true');
    assert.equal(noMatch.status, 422);
    assert.equal(noMatch.json().message, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan');
    const matchAlone = await sb.request('GET', '/api/v1/namespaces/default/configmaps?watch=true&resourceVersionMatch=NotOlderThan');
    assert.equal(matchAlone.json().message, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided');
    const onList = await sb.request('GET', '/api/v1/namespaces/default/configmaps?sendInitialEvents=true');
    assert.equal(onList.status, 422);
    assert.equal(onList.json().message, 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list');
  });

  it('a resourceVersion older than the history gets an ERROR event with 410 Expired', async () => {
    const old = (await sb.request('GET', '/api/v1/namespaces/default/configmaps')).json().metadata.resourceVersion;
    for (let i = 0; i < historySize + 2; i++) await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm(`churn-${i}`));
    const w = openWatch(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${old}`);
    await w.ended;
    assert.equal(w.events.length, 1);
    const ev = w.events[0]!;
    assert.equal(ev.type, 'ERROR');
    assert.equal(ev.object.kind, 'Status');
    assert.equal(ev.object.code, 410);
    assert.equal(ev.object.reason, 'Expired');
    assert.match(ev.object.message, new RegExp(`^too old resource version: ${old} \\(\\d+\\)$`));
  });

  it('client-node makeInformer relists after 410 and sees every object', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(sb.api.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    await sb.kubectl(['create', 'ns', 'inf']);
    let lists = 0;
    const informer = makeInformer<V1Service>(kc, '/api/v1/namespaces/inf/services', () => {
      lists++;
      return core.listNamespacedService({ namespace: 'inf' });
    });
    const seen = new Set<string>();
    informer.on('add', (o) => seen.add(o.metadata!.name!));
    informer.on('error', () => {});
    await informer.start();
    try {
      await core.createNamespacedService({ namespace: 'inf', body: { metadata: { name: 'a' }, spec: { ports: [{ port: 80 }] } } });
      // The informer's watch ends after [1 s, 2 s) (minRequestTimeoutSeconds); meanwhile push its
      // resourceVersion out of the history so its re-watch gets 410 and must relist.
      for (let i = 0; i < historySize + 5; i++) await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm(`gap-${i}`));
      await core.createNamespacedService({ namespace: 'inf', body: { metadata: { name: 'b' }, spec: { ports: [{ port: 80 }] } } });
      for (let i = 0; i < historySize + 5; i++) await sb.request('POST', '/api/v1/namespaces/default/configmaps', cm(`gap2-${i}`));
      const deadline = Date.now() + 8000;
      while (lists < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.ok(lists >= 2, 'the informer relisted (it only relists after a 410)');
      while (!seen.has('b') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual([...seen].sort(), ['a', 'b']);
      assert.deepEqual(informer.list('inf').map((s) => s.metadata!.name).sort(), ['a', 'b']);
    } finally {
      await informer.stop();
    }
  });

  it('kubectl wait --for=jsonpath sees a later /status update', async () => {
    await sb.kubectl(['create', 'service', 'loadbalancer', 'lb', '--tcp=80:80']);
    const waiting = sb.kubectl(['wait', '--for=jsonpath={.status.loadBalancer.ingress[0].ip}=192.0.2.10', 'svc/lb', '--timeout=15s']);
    await new Promise((r) => setTimeout(r, 400));
    const p = await sb.kubectl(['patch', 'svc', 'lb', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}']);
    assert.equal(p.code, 0, p.stderr);
    const w = await waiting;
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout.trim(), 'service/lb condition met');
    const t = await sb.kubectl(['get', 'svc', 'lb']);
    assert.match(t.stdout, /lb\s+LoadBalancer\s+\S+\s+192\.0\.2\.10\s+80:\d+\/TCP/);
    const svc = JSON.parse((await sb.kubectl(['get', 'svc', 'lb', '-o', 'json'])).stdout);
    assert.equal(svc.status.loadBalancer.ingress[0].ipMode, 'VIP');
  });

  it('kubectl get svc -w prints Table rows for later changes', async () => {
    const child = spawn('kubectl', ['--kubeconfig', sb.api.kubeconfigPath, 'get', 'svc', '-w'], { env: { ...process.env, KUBECACHEDIR: sb.cacheDir } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      const deadline = Date.now() + 8000;
      while (!/kubernetes\s+ClusterIP/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await sb.kubectl(['create', 'service', 'nodeport', 'watched', '--tcp=80:80']);
      while (!/watched\s+NodePort/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE/);
      assert.match(out, /watched\s+NodePort\s+10\.96\.\d+\.\d+\s+<none>\s+80:\d+\/TCP/);
    } finally {
      child.kill();
    }
  });
});
