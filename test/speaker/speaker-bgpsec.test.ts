// The speaker end to end with a BGPPeer that uses a TCP MD5 password from a Secret
// (spec.passwordSecretRef) and BFD (spec.bfd), against BIRD 2 in a router namespace: the real
// `admitlb speaker` process (test/speaker/lab.ts), the sandbox API server with the CRDs and the
// validating webhook, kubectl. Needs root, kubectl, BIRD and koffi; skipped with a reason when
// missing, except under CI=true.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { missingRequirements } from '../bgp/lab/sys.ts';
import { BirdPeer } from '../bgp/lab/peers.ts';
import { objectBody } from '../../src/sandbox/api-client.ts';
import { pool } from '../e2e/cluster-helpers.ts';
import { nativeUnavailable } from '../../src/bgp/native.ts';
import { SpeakerLab, labNamespaces, sleep, waitFor, type LabNode } from './lab.ts';

const missing = missingRequirements(['kubectl', 'bird', 'birdc', 'ss']);
const noKoffi = nativeUnavailable();
if (noKoffi) missing.push(noKoffi);
const inCI = process.env.CI === 'true';
const skip = missing.length > 0 && !inCI ? `speaker MD5/BFD lab unavailable (needs ${missing.join(', ')}); set CI=true to make this a failure` : false;
if (skip) console.log(`# skipping speaker MD5/BFD e2e: ${skip}`);

const PASSWORD = 'lab-md5-key';
const BFD_MS = 100;
const BFD_MULT = 3;

describe('admitlb speaker: BGPPeer passwordSecretRef and BFD against BIRD', { skip, concurrency: 1, timeout: 180_000 }, () => {
  let lab: SpeakerLab | undefined;
  let bird: BirdPeer;
  let node: LabNode;
  let rtr: LabNode;
  let vip = '';

  const peer = (holdTime: number) => ({
    apiVersion: 'admitlb.io/v1alpha1',
    kind: 'BGPPeer',
    metadata: { name: 'router' },
    spec: { peerAddress: rtr.ipv4, peerASN: 64512, myASN: 64513, holdTime, passwordSecretRef: { name: 'router-md5' }, bfd: { minRxMs: BFD_MS, minTxMs: BFD_MS, multiplier: BFD_MULT } },
  });
  const secret = (password: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'router-md5', namespace: 'admitlb-system' }, type: 'Opaque', stringData: { password } });

  before(async () => {
    lab = await SpeakerLab.create({ nodes: ['node-a'], extra: ['router'] });
    node = lab.node('node-a');
    rtr = lab.node('router');
    bird = new BirdPeer({ node: rtr, asn: 64512, neighbor: { address: node.ipv4, asn: 64513, passive: true, holdTime: 9 }, password: PASSWORD, bfd: { intervalMs: BFD_MS, multiplier: BFD_MULT } });
    lab.onDestroy(() => bird.destroy());
    await bird.start();
    await lab.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'admitlb-system' } });
    await lab.apply(pool('lab', { addresses: ['192.0.2.200-192.0.2.209'] }));
    await lab.cluster.waitForPool('lab');
    // The wrong password first.
    await lab.apply(secret('not-the-key'), peer(9), { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab'] } });
    await lab.startSpeaker('node-a');
  });

  after(async () => {
    await lab?.destroy();
    assert.deepEqual(await labNamespaces(), [], 'lab namespaces left behind');
  });

  it('the validating webhook refuses a plaintext password and a Secret outside admitlb-system', async () => {
    const r1 = await lab!.cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ ...peer(9), metadata: { name: 'plain' }, spec: { ...peer(9).spec, passwordSecretRef: undefined, password: 'hunter2' } }));
    assert.notEqual(r1.code, 0);
    assert.match(r1.stderr, /spec\.password: a plaintext TCP MD5 password is not accepted/);
    assert.doesNotMatch(r1.stderr, /hunter2/);
    const r2 = await lab!.cluster.kubectl(['apply', '-f', '-'], JSON.stringify({ ...peer(9), metadata: { name: 'elsewhere' }, spec: { ...peer(9).spec, passwordSecretRef: { name: 'x', namespace: 'default' } } }));
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /passwordSecretRef\.namespace: must be admitlb-system/);
  });

  it('a wrong password: no session, and a Warning Event on the Service says TCP MD5', async (t) => {
    await lab!.kubectlOk(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    await lab!.apply(lab!.endpointSlice('web', ['node-a']));
    vip = await waitFor('web assigned', async () => (await lab!.kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}'])).trim());
    const event = await waitFor(
      'announceFailed naming TCP MD5',
      async () => {
        const r = await lab!.cluster.request('GET', '/api/v1/namespaces/default/events');
        const items = objectBody(r).items as { reason: string; type: string; message: string; involvedObject: { name: string } }[];
        return items.find((e) => e.involvedObject.name === 'web' && e.reason === 'announceFailed' && /TCP MD5/.test(e.message));
      },
      { timeoutMs: 40_000, intervalMs: 500 },
    );
    assert.equal(event.type, 'Warning');
    assert.match(event.message, /BGP session to 192\.0\.2\.\d+ \(BGPPeer router\) not established: connect .* timed out \(TCP MD5/);
    assert.doesNotMatch(event.message, /not-the-key/, 'the password is never shown');
    assert.equal(await bird.established(), false);
    const m = await lab!.metrics('node-a');
    assert.match(m, /admitlb_speaker_bgp_session_up\{peer="router"\} 0/);
    // Routed to a peer whose session is down is not announced (the unannounced-address alert reads this).
    assert.doesNotMatch(m, new RegExp(`admitlb_speaker_address_announced\\{address="${vip.replace(/\./g, '\\.')}"`));
    t.diagnostic(event.message);
  });

  it('the right password (Secret fixed, BGPPeer changed): Established, the route at BIRD, BFD Up in metrics', async () => {
    await lab!.apply(secret(PASSWORD), peer(10));
    await waitFor('route in BIRD', () => bird.route(`${vip}/32`), { timeoutMs: 30_000, intervalMs: 100 });
    const m = await waitFor('BFD Up in metrics', async () => {
      const text = await lab!.metrics('node-a');
      return /admitlb_speaker_bfd_session_up\{peer="router"\} 1/.test(text) ? text : null;
    });
    assert.match(m, /admitlb_speaker_bgp_session_up\{peer="router"\} 1/, lab!.logs(40));
    assert.match(m, /admitlb_speaker_bfd_session_state\{peer="router",state="Up"\} 1/);
    assert.match(m, /admitlb_speaker_bfd_session_state\{peer="router",state="Down"\} 0/);
    assert.match(m, new RegExp(`admitlb_speaker_address_announced\\{address="${vip.replace(/\./g, '\\.')}",protocol="bgp"\\} 1`));
    assert.match(await bird.birdc('show bfd sessions'), new RegExp(`${node.ipv4.replace(/\./g, '\\.')}\\s+\\S+\\s+Up`));
  });

  it('password rotation: router and Secret changed together, the session comes back with the new key', async (t) => {
    const prefix = `${vip}/32`;
    const t0 = performance.now();
    await bird.setPassword('rotated-key');
    // The BGPPeer changes too, so the speaker reads the Secret at once instead of within 30 s.
    await lab!.apply(secret('rotated-key'), peer(11));
    await waitFor('BIRD Established again', () => bird.established(), { timeoutMs: 30_000, intervalMs: 100 });
    await waitFor('route back in BIRD', () => bird.has(prefix), { timeoutMs: 30_000, intervalMs: 100 });
    t.diagnostic(`session back ${(performance.now() - t0).toFixed(0)} ms after the rotation`);
    await waitFor('BFD Up again', async () => /admitlb_speaker_bfd_session_up\{peer="router"\} 1/.test(await lab!.metrics('node-a')), { timeoutMs: 30_000 });
  });

  it(`the speaker hung (no packets, no FIN): BIRD withdraws the route within ${BFD_MS * BFD_MULT} ms`, async (t) => {
    const prefix = `${vip}/32`;
    await sleep(500);
    const speaker = lab!.speakers.get('node-a')!;
    const t0 = performance.now();
    speaker.child.kill('SIGSTOP');
    try {
      let ms = -1;
      let queryMs = 0;
      for (let i = 0; i < 5000 && ms < 0; i++) {
        const at = performance.now();
        if (!(await bird.has(prefix))) {
          ms = at - t0;
          queryMs = performance.now() - at;
        } else if (at - t0 > 10_000) break;
      }
      assert.ok(ms >= 0, 'the route was withdrawn');
      t.diagnostic(`withdrawn ${ms.toFixed(0)} ms after the speaker stopped (BFD ${BFD_MS} ms × ${BFD_MULT}; hold time 10 s)`);
      assert.ok(ms <= BFD_MS * BFD_MULT + queryMs, `withdrawn after ${ms.toFixed(0)} ms`);
    } finally {
      speaker.child.kill('SIGCONT');
    }
    await waitFor('route back in BIRD', () => bird.has(prefix), { timeoutMs: 30_000, intervalMs: 100 });
  });
});
