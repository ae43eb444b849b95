// Leader election on a coordination.k8s.io/v1 Lease, after client-go's tools/leaderelection:
// - acquire: create the Lease (409: someone else did, read it next round), or take it over by replace
//   with the read resourceVersion (409: lost the race) once it is free (empty holderIdentity, i.e.
//   released) or expired;
// - expiry is judged on the local monotonic clock: a record is expired when it has not changed for its
//   leaseDurationSeconds since *we* first observed it. The remote renewTime is never compared with our
//   clock, so clock skew between nodes does not matter (client-go's observedTime);
// - renew: every retryPeriod; if no renew succeeded for renewDeadline (counted from the moment the last
//   successful renew was sent, which is no later than the moment any other candidate can observe it),
//   leadership is lost: onStoppedLeading runs and isLeader() is false. Since renewDeadline <
//   leaseDuration, the old leader has stopped before any standby can take over;
// - stop(): if leading, onStoppedLeading, then release (holderIdentity "", leaseDurationSeconds 1, like
//   client-go's ReleaseOnCancel) so that a standby takes over at its next retry.
// Unlike client-go's Run, which returns after losing the lease, the elector goes back to candidate mode
// after stepping down and calls onStartedLeading again when it wins again; callers must handle both
// callbacks repeatedly (they alternate strictly, starting with onStartedLeading).
//
// Times in the Lease are MicroTime: RFC 3339 with exactly six fractional digits, as kube-apiserver's
// decoder requires. client-node 1.4's ObjectSerializer passes MicroTime fields through untouched (it has
// no type entry for V1MicroTime), so a plain Date would serialize with three digits and be a 400 on a real
// API server; V1MicroTime (a Date whose toISOString pads to six digits) serializes correctly. Read back,
// those fields are plain strings.
import type { Logger } from '../log.ts';
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';

export interface LeaderElectorOptions {
  kc: KubeConfig;
  /** Lease namespace and name (the controller uses `admitlb-controller`) */
  namespace: string;
  name: string;
  /** unique per process (pod name plus a random suffix) */
  identity: string;
  /** how long a standby waits, after the record last changed, before it takes over (default 15 s); stored rounded up to whole seconds */
  leaseDurationSeconds?: number;
  /** how long the leader keeps trying to renew before it steps down (default 10 s); must be < leaseDuration */
  renewDeadlineSeconds?: number;
  /** interval between attempts (default 2 s); fractional values are fine */
  retryPeriodSeconds?: number;
  /** a candidate waits retryPeriod·(1 + jitter·random) between attempts (default 1.2, client-go's JitterFactor) */
  retryJitter?: number;
  /** release the lease on stop() (default true, client-go's ReleaseOnCancel) */
  releaseOnStop?: boolean;
  logger: Pick<Logger, 'info' | 'warn' | 'error'> & Partial<Pick<Logger, 'debug'>>;
  onStartedLeading(): void | Promise<void>;
  /** the caller must stop acting as leader at once */
  onStoppedLeading(): void | Promise<void>;
  /** the observed holder changed (also called with our own identity) */
  onNewLeader?(identity: string): void;
  /** monotonic clock in ms (default performance.now); tests may inject one */
  now?: () => number;
}

interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: string | Date | undefined;
  renewTime?: string | Date | undefined;
  leaseTransitions: number;
}

const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
};

const errorText = (err: unknown): string => {
  const status = statusOf(err);
  if (status !== undefined) {
    const body = (err as { body?: unknown }).body;
    try {
      const msg = (typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string }))?.message;
      if (msg) return `HTTP ${status}: ${msg}`;
    } catch {
      /* not a Status */
    }
    return `HTTP ${status}`;
  }
  return err instanceof Error ? err.message : String(err);
};

class Timeout extends Error {}

/** A MicroTime for the wire: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number = Date.now()): V1MicroTime {
  return new V1MicroTime(ms);
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly jitter: number;
  private readonly now: () => number;
  private readonly log: LeaderElectorOptions['logger'];

  /** bumped by stop()/crash(): work of an older run is ignored */
  private gen = 0;
  private running = false;
  private leading = false;
  /** monotonic time at which the last successful acquire/renew was sent */
  private lastRenewSentAt = -Infinity;
  private observed: LeaseRecord | undefined;
  private observedKey = '';
  /** monotonic time at which the observed record was first seen */
  private observedAt = 0;
  private reportedLeader = '';
  private deadlineTimer: NodeJS.Timeout | undefined;
  private sleepTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private lastError = '';
  private loopDone: Promise<void> = Promise.resolve();

  constructor(private readonly opts: LeaderElectorOptions) {
    const ld = opts.leaseDurationSeconds ?? 15;
    const rd = opts.renewDeadlineSeconds ?? 10;
    const rp = opts.retryPeriodSeconds ?? 2;
    this.jitter = opts.retryJitter ?? 1.2;
    if (!(ld > 0 && rd > 0 && rp > 0)) throw new Error('leaseDuration, renewDeadline and retryPeriod must be positive');
    if (!(ld > rd)) throw new Error(`leaseDuration (${ld} s) must be greater than renewDeadline (${rd} s)`);
    if (!(rd > 1.2 * rp)) throw new Error(`renewDeadline (${rd} s) must be greater than 1.2 × retryPeriod (${rp} s)`);
    if (!opts.identity) throw new Error('identity must not be empty');
    this.leaseDurationSeconds = Math.ceil(ld);
    this.renewDeadlineMs = rd * 1000;
    this.retryPeriodMs = rp * 1000;
    this.now = opts.now ?? (() => performance.now());
    this.log = opts.logger;
    this.api = opts.kc.makeApiClient(CoordinationV1Api);
  }

  /** True while this process holds the lease and has renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.leading && this.now() - this.lastRenewSentAt < this.renewDeadlineMs;
  }

  /** The holder of the last observed record ('' if none or released). */
  leader(): string {
    return this.observed?.holderIdentity ?? '';
  }

  get identity(): string {
    return this.opts.identity;
  }

  /** Starts campaigning. Resolves after the first attempt (won or not); never rejects. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const gen = ++this.gen;
    let first!: () => void;
    const firstAttempt = new Promise<void>((r) => (first = r));
    this.loopDone = this.loop(gen, first);
    await firstAttempt;
  }

  /** Stops campaigning; if leading, calls onStoppedLeading and releases the lease (unless releaseOnStop is false). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.gen++;
    this.clearTimers();
    // Stop acting first; an in-flight renew (its answer is now ignored) may still be running.
    const wasLeading = this.leading;
    if (wasLeading) this.stepDown('stopping');
    await this.loopDone;
    if (wasLeading && this.opts.releaseOnStop !== false) await this.release();
  }

  /** Test hook: as if the process died: every timer stops, nothing is released and no callback runs. */
  crash(): void {
    this.running = false;
    this.gen++;
    this.clearTimers();
    this.leading = false;
  }

  private clearTimers(): void {
    clearTimeout(this.deadlineTimer);
    clearTimeout(this.sleepTimer);
    this.deadlineTimer = this.sleepTimer = undefined;
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = () => {
        this.wake = undefined;
        clearTimeout(this.sleepTimer);
        this.sleepTimer = undefined;
        resolve();
      };
      this.sleepTimer = setTimeout(() => this.wake?.(), ms);
    });
  }

  private async loop(gen: number, firstDone: () => void): Promise<void> {
    while (this.gen === gen) {
      const sentAt = this.now();
      let ok = false;
      try {
        // A leader may wait for an answer only until its deadline; a candidate for one renew deadline.
        const budget = this.leading ? Math.max(1, this.lastRenewSentAt + this.renewDeadlineMs - sentAt) : this.renewDeadlineMs;
        ok = await withTimeout(this.tryAcquireOrRenew(gen), budget);
        if (ok && this.lastError) {
          this.log.info({ lease: this.leaseName(), identity: this.opts.identity }, 'lease API reachable again');
          this.lastError = '';
        }
      } catch (err) {
        const text = err instanceof Timeout ? `no answer within ${Math.round((this.now() - sentAt) / 100) / 10} s` : errorText(err);
        if (this.gen === gen && text !== this.lastError) {
          this.log.warn({ lease: this.leaseName(), identity: this.opts.identity, leading: this.leading, err: text }, this.leading ? 'failed to renew the lease' : 'failed to acquire the lease');
        }
        this.lastError = text;
      }
      if (this.gen !== gen) break;
      // A success that arrives after the deadline is too late to count (we already stepped down).
      if (ok && this.now() - sentAt < this.renewDeadlineMs) {
        this.lastRenewSentAt = sentAt;
        this.armDeadline(gen);
        if (!this.leading) {
          this.leading = true;
          this.log.info({ lease: this.leaseName(), identity: this.opts.identity }, 'acquired the lease: leading');
          this.callback('onStartedLeading', this.opts.onStartedLeading);
        }
      }
      firstDone();
      const wait = this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + this.jitter * Math.random());
      await this.sleep(wait);
    }
    firstDone();
  }

  private armDeadline(gen: number): void {
    clearTimeout(this.deadlineTimer);
    const at = this.lastRenewSentAt + this.renewDeadlineMs;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      if (this.gen !== gen || !this.leading) return;
      if (this.now() < at) return this.armDeadline(gen);
      this.log.error({ lease: this.leaseName(), identity: this.opts.identity, renewDeadlineMs: this.renewDeadlineMs, err: this.lastError || undefined }, 'could not renew the lease within the renew deadline: stepping down');
      this.stepDown('renew deadline exceeded');
    }, Math.max(0, at - this.now()));
  }

  private stepDown(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.log.info({ lease: this.leaseName(), identity: this.opts.identity, reason }, 'stopped leading');
    this.callback('onStoppedLeading', this.opts.onStoppedLeading);
  }

  private callback(name: string, fn: () => void | Promise<void>): void {
    try {
      const r = fn();
      if (r && typeof (r as Promise<void>).catch === 'function') (r as Promise<void>).catch((err) => this.log.error({ err: String(err) }, `${name} failed`));
    } catch (err) {
      this.log.error({ err: String(err) }, `${name} failed`);
    }
  }

  private leaseName(): string {
    return `${this.opts.namespace}/${this.opts.name}`;
  }

  /** Records what we saw; the observation time moves only when the record changes. */
  private observe(lease: V1Lease): void {
    const rec = recordOf(lease);
    const key = JSON.stringify([rec.holderIdentity, rec.leaseDurationSeconds, String(rec.acquireTime ?? ''), String(rec.renewTime ?? ''), rec.leaseTransitions]);
    if (key !== this.observedKey) {
      this.observedKey = key;
      this.observed = rec;
      this.observedAt = this.now();
    }
    if (rec.holderIdentity && rec.holderIdentity !== this.reportedLeader) {
      this.reportedLeader = rec.holderIdentity;
      this.log.info({ lease: this.leaseName(), leader: rec.holderIdentity }, 'new leader observed');
      if (this.opts.onNewLeader) {
        const cb = this.opts.onNewLeader;
        this.callback('onNewLeader', () => cb(rec.holderIdentity));
      }
    }
  }

  private async tryAcquireOrRenew(gen: number): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      if (this.gen !== gen) return false;
      const t = microTime();
      try {
        const created = await this.api.createNamespacedLease({
          namespace,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: this.leaseDurationSeconds, acquireTime: t, renewTime: t, leaseTransitions: 0 } },
        });
        this.observe(created);
        return this.gen === gen;
      } catch (err2) {
        if (statusOf(err2) === 409) return false;
        throw err2;
      }
    }
    this.observe(lease);
    if (this.gen !== gen) return false;
    const old = this.observed!;
    const mine = old.holderIdentity === identity;
    if (old.holderIdentity && !mine && this.now() < this.observedAt + old.leaseDurationSeconds * 1000) return false;
    const t = microTime();
    const spec: V1LeaseSpec = {
      ...lease.spec,
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      renewTime: t,
      acquireTime: mine && old.acquireTime ? (old.acquireTime as V1MicroTime) : t,
      leaseTransitions: mine ? old.leaseTransitions : old.leaseTransitions + 1,
    };
    try {
      const updated = await this.api.replaceNamespacedLease({ name, namespace, body: { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', spec } });
      this.observe(updated);
      return this.gen === gen;
    } catch (err) {
      if (statusOf(err) === 409) return false;
      throw err;
    }
  }

  /** Gives the lease up so that a standby takes over at its next retry (client-go's release()). */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    try {
      const lease = await withTimeout(this.api.readNamespacedLease({ name, namespace }), this.renewDeadlineMs);
      if (lease.spec?.holderIdentity !== identity) return;
      const t = microTime();
      await withTimeout(
        this.api.replaceNamespacedLease({
          name,
          namespace,
          body: { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: t, renewTime: t, leaseTransitions: lease.spec?.leaseTransitions ?? 0 } },
        }),
        this.renewDeadlineMs,
      );
      this.log.info({ lease: this.leaseName(), identity }, 'released the lease');
    } catch (err) {
      this.log.warn({ lease: this.leaseName(), identity, err: err instanceof Timeout ? 'timeout' : errorText(err) }, 'could not release the lease (a standby takes over once it expires)');
    }
  }
}

function recordOf(lease: V1Lease): LeaseRecord {
  const s = lease.spec ?? {};
  return {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: s.acquireTime as string | Date | undefined,
    renewTime: s.renewTime as string | Date | undefined,
    leaseTransitions: s.leaseTransitions ?? 0,
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout('timeout')), ms);
  });
  p.catch(() => {}); // a late rejection after the timeout is not unhandled
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
