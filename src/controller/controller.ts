// The controller: makes the cluster reflect the webhook's decisions and repairs what admission alone
// cannot. Level-triggered: events only mark Services (or everything) dirty; a pass recomputes what
// should be from the caches and writes the difference. Passes run only on the elected leader, after
// the caches have synced, and process Services in a canonical order so that the same cluster state
// always converges to the same result.
import type { Logger } from '../log.ts';
import type { IPClaim } from '../config/schemas.ts';
import type { AdmissionConfig } from '../config/webhook-config.ts';
import { admitService, buildClaim, type AdmissionDeps } from '../admission/admit-service.ts';
import type { AdmissionRequest } from '../admission/review.ts';
import { ipFromClaimName } from '../allocation/addresses.ts';
import type { LiveAllocationState } from '../kube/allocation-state.ts';
import type { CacheEvent, ClusterCache } from '../kube/cluster.ts';
import type { Service } from '../kube/types.ts';
import { ANN_ALLOCATION } from '../config/annotations.ts';
import { verifyAssignment, type KeySet, type SignedAssignment } from '../signing/assignment.ts';
import { VerifiedMemo } from '../signing/memo.ts';
import type { ControllerApi, LoadBalancerIngress } from '../kube/controller-types.ts';
import type { ControllerMetrics } from './metrics.ts';
import { assignmentProblem, canonicalOrder, currentIngress, desiredIngress, isOurLoadBalancer, keyOf, overQuota, planClaims, type ClaimAction, type PlanContext, type ServiceView } from './plan.ts';
import { computePoolStatus, sameConditions, sameStatus } from './pool-status.ts';

export interface ControllerOptions {
  cache: ClusterCache & { listServices(): readonly Service[] };
  api: ControllerApi;
  state: LiveAllocationState;
  keys: KeySet;
  config: AdmissionConfig;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** How long a claim holder that never became a Service is kept (Kubernetes' repair loop: 60 s). */
  orphanGraceMs?: number;
  /** How long a holder whose Service stopped naming its address waits (a lagging cache looks alike). */
  settleMs?: number;
  /** Writes in flight at once within a pass (Service patches, status, Events). */
  parallelWrites?: number;
  /** A full pass this often, whatever the events say. */
  resyncMs?: number;
  /** Events within this window are handled in one pass. */
  debounceMs?: number;
  /**
   * At most one IPPool status write per pool in this window while only its counts change (default
   * 1000 ms; 0 writes every change). Condition changes (Valid, Exhausted) are written at once. Without
   * it every allocation costs a pool status write: a sixth of the API writes of a LoadBalancer create.
   */
  poolStatusIntervalMs?: number;
  now?: () => number;
}

interface PendingMemo {
  resourceVersion: string | undefined;
  epoch: number;
  reason: string;
}

export class Controller {
  private readonly services = new Map<string, ServiceView>();
  private readonly verified = new VerifiedMemo<ServiceView['assignment']>();
  private readonly dirty = new Set<string>();
  private allDirty = true;
  private poolsDirty = true;
  private readonly orphanSince = new Map<string, number>();
  /** Services seen deleted (uid → when), kept for the grace: their holders are released at once. */
  private readonly deletedUids = new Map<string, number>();
  /** Services that could not get an address, retried when addresses or pools change (epoch). */
  private readonly pending = new Map<string, PendingMemo>();
  private epoch = 0;
  private passEpoch = -1;
  /** The ingress this controller last wrote per Service: tells a forged status from an old one. */
  private readonly lastWritten = new Map<string, string>();
  private readonly claimHolders = new Map<string, number>();
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;
  private readonly graceMs: number;
  private readonly debounceMs: number;
  private readonly poolStatusIntervalMs: number;
  private readonly poolStatusWrittenAt = new Map<string, number>();
  private poolStatusTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly ctx: PlanContext;
  private readonly deps: AdmissionDeps;
  /** Resolves when a pass finds nothing to do (tests and the convergence benchmark wait on it). */
  private idleWaiters: (() => void)[] = [];
  passes = 0;

  constructor(private readonly opts: ControllerOptions) {
    this.graceMs = opts.orphanGraceMs ?? 60_000;
    this.debounceMs = opts.debounceMs ?? 20;
    this.poolStatusIntervalMs = opts.poolStatusIntervalMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.ctx = { state: opts.state, config: opts.config, namespaceLabels: (ns) => opts.cache.namespace(ns)?.metadata.labels };
    this.deps = { state: opts.state, store: opts.api.claims, keys: opts.keys, config: opts.config, namespaceLabels: this.ctx.namespaceLabels, deterministic: true };
  }

  start(): void {
    for (const s of this.opts.cache.listServices()) this.upsertService(s);
    for (const c of this.opts.cache.listClaims()) this.claimHolders.set(c.metadata.name ?? '', c.spec?.holders?.length ?? 0);
    this.unsubscribe = this.opts.cache.onEvent((e) => this.onEvent(e));
    const resync = this.opts.resyncMs ?? 30_000;
    this.resyncTimer = setInterval(() => {
      this.allDirty = true;
      this.poolsDirty = true;
      this.schedule();
    }, resync);
    this.resyncTimer.unref();
    this.schedule();
  }

  /** Leader election turns passes on and off; a new leader starts from a full pass. */
  setLeading(leading: boolean): void {
    this.leading = leading;
    this.opts.metrics?.leader.set(leading ? 1 : 0);
    if (leading) {
      this.allDirty = true;
      this.poolsDirty = true;
      this.schedule();
    }
  }

  isLeading(): boolean {
    return this.leading;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.poolStatusTimer) clearTimeout(this.poolStatusTimer);
    await this.running;
  }

  /** Resolves once a pass completes with nothing left to do. */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.schedule();
    });
  }

  private onEvent(e: CacheEvent): void {
    switch (e.kind) {
      case 'service': {
        const key = keyOf(e.service.metadata.namespace ?? '', e.service.metadata.name ?? '');
        if (e.type === 'delete') {
          if (e.service.metadata.uid) this.deletedUids.set(e.service.metadata.uid, this.now());
          this.services.delete(key);
          this.verified.forget(key);
          this.pending.delete(key);
          this.lastWritten.delete(key);
        } else this.upsertService(e.service);
        this.dirty.add(key);
        break;
      }
      case 'claim': {
        const name = e.claim.metadata.name ?? '';
        const before = this.claimHolders.get(name) ?? 0;
        const after = e.type === 'delete' ? 0 : (e.claim.spec?.holders?.length ?? 0);
        if (e.type === 'delete') this.claimHolders.delete(name);
        else this.claimHolders.set(name, after);
        if (after < before) this.epoch++; // an address (or a share of one) was freed
        for (const h of e.claim.spec?.holders ?? []) this.dirty.add(keyOf(h.namespace, h.name));
        this.poolsDirty = true;
        break;
      }
      case 'pool':
        this.epoch++;
        this.allDirty = true;
        this.poolsDirty = true;
        break;
      case 'namespace':
        this.epoch++;
        for (const view of this.services.values()) if (view.namespace === e.namespace.metadata.name) this.dirty.add(view.key);
        break;
    }
    this.schedule();
  }

  private upsertService(service: Service): void {
    const namespace = service.metadata.namespace ?? '';
    const name = service.metadata.name ?? '';
    const key = keyOf(namespace, name);
    const token = service.metadata.annotations?.[ANN_ALLOCATION] ?? '';
    const previous = this.verified.lookup(key, token);
    this.services.set(key, { key, namespace, name, service, assignment: previous?.value });
    if (!previous) this.verified.forget(key);
  }

  private schedule(delay = this.debounceMs): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pass()
        .catch((err) => this.opts.logger.error({ err: String((err as Error)?.stack ?? err) }, 'controller pass failed'))
        .finally(() => {
          this.running = undefined;
          if (this.again) {
            this.again = false;
            this.schedule();
          }
        });
    }, delay);
  }

  /** Verifies every changed assignment (cached by token: a JWS is verified once). */
  private async verifyChanged(): Promise<void> {
    const changed: { view: ServiceView; token: string }[] = [];
    for (const view of this.services.values()) {
      const token = view.service.metadata.annotations?.[ANN_ALLOCATION] ?? '';
      if (!this.verified.lookup(view.key, token)) changed.push({ view, token });
    }
    // WebCrypto verifies on the thread pool: batches keep it busy after a restart (thousands at once).
    for (let i = 0; i < changed.length; i += 64) {
      await Promise.all(
        changed.slice(i, i + 64).map(async ({ view, token }) => {
          let assignment: SignedAssignment | undefined;
          if (token) {
            try {
              assignment = await verifyAssignment(this.opts.keys, token, view);
            } catch (err) {
              // The Service is then converged like one without an assignment; say why once per token.
              this.opts.logger.warn({ namespace: view.namespace, name: view.name, reason: (err as Error).message }, 'assignment does not verify');
              assignment = undefined;
            }
          }
          this.verified.remember(view.key, token, assignment, assignment);
          view.assignment = assignment;
          // An event during the await may have replaced the view (same token, assignment unset):
          // the memo now matches its token, so it would never be verified again.
          const current = this.services.get(view.key);
          if (current && current !== view && (current.service.metadata.annotations?.[ANN_ALLOCATION] ?? '') === token) current.assignment = assignment;
        }),
      );
    }
  }

  private async pass(): Promise<void> {
    if (!this.leading || !this.opts.cache.synced()) return;
    const started = process.hrtime.bigint();
    this.passes++;
    await this.verifyChanged();
    if (this.epoch !== this.passEpoch) {
      // Addresses were freed or pools changed: Services waiting for an address try again.
      this.passEpoch = this.epoch;
      for (const k of this.pending.keys()) this.dirty.add(k);
    }
    const candidates = this.allDirty ? [...this.services.keys()] : [...this.dirty].filter((k) => this.services.has(k));
    this.allDirty = false;
    this.dirty.clear();
    // A Service added or changed while signatures were being verified is not verified yet: it
    // would look unsigned and be reassigned. It stays dirty for the next pass instead.
    const keys: string[] = [];
    for (const k of candidates) {
      const view = this.services.get(k)!;
      if (this.verified.lookup(k, view.service.metadata.annotations?.[ANN_ALLOCATION] ?? '')) keys.push(k);
      else this.dirty.add(k);
    }
    this.opts.metrics?.queueDepth.set(keys.length);
    let writes = 0;

    // 1. Claims: adopt holders whose Service exists, release what no Service holds.
    for (const [uid, at] of this.deletedUids) if (this.now() - at > this.graceMs) this.deletedUids.delete(uid);
    const claimPlan = planClaims(this.opts.state.claims.all(), this.services, this.orphanSince, this.now(), this.graceMs, this.opts.settleMs ?? 5_000, new Set(this.deletedUids.keys()));
    for (const action of claimPlan.actions) {
      if (this.stopped || !this.leading) return;
      writes += (await this.applyClaimAction(action)) ? 1 : 0;
    }

    // 2. Which assignments do not stand (back-stop, reassignment, clean-up).
    const views = keys.map((k) => this.services.get(k)!).sort(canonicalOrder);
    const problems = new Map<string, string | undefined>();
    const quota = overQuota(this.opts.state, this.services);
    const toConverge: { view: ServiceView; problem: string; reallocate: boolean; adopt: boolean }[] = [];
    for (const view of views) {
      const quotaPool = quota.get(view.key);
      const problem = assignmentProblem(this.ctx, view) ?? (quotaPool ? `over the per-namespace quota of IPPool "${quotaPool}"` : undefined);
      problems.set(view.key, problem);
      if (problem === undefined) {
        this.pending.delete(view.key);
        continue;
      }
      const memo = this.pending.get(view.key);
      if (memo && memo.resourceVersion === view.service.metadata.resourceVersion && memo.epoch === this.epoch) continue;
      toConverge.push({ view, problem, reallocate: !!quotaPool, adopt: !quotaPool && this.adoptsStatus(view) });
    }

    // 3. Adoption: Services admitlb has not assigned keep the addresses their status already shows
    // (taking over from MetalLB). All of them are decided before any new assignment, so that none of
    // those takes an address another Service shows (and would be renumbered from).
    // 4. Then every other assignment, oldest Service first.
    // Decisions are made in canonical order: each converge decides (and reserves its addresses)
    // synchronously when started; the writes that follow run in parallel, drained after each phase.
    for (const adoptPhase of [true, false]) {
      // Services that show one address (MetalLB's shared ones) join its claim one after the other:
      // a join decided while the first holder's claim is still being written would fail, and the
      // Service would lose its status for a pass.
      const joining = new Set<string>();
      for (const { view, problem, reallocate, adopt } of toConverge) {
        if (this.stopped || !this.leading) return;
        if (adopt !== adoptPhase) continue;
        if (adopt) {
          const shown = currentIngress(view.service);
          if (shown.some((ip) => joining.has(ip))) {
            await this.drain();
            joining.clear();
          }
          for (const ip of shown) joining.add(ip);
        }
        await this.background(() => this.converge(view, problem, reallocate, adopt, (ok) => (writes += ok ? 1 : 0)));
      }
      await this.drain();
    }

    // 5. Status: the signed assignment, nothing else.
    for (const view of views) {
      if (this.stopped || !this.leading) return;
      const problem = problems.get(view.key);
      const want = desiredIngress(this.ctx, view, problem, this.pending.has(view.key));
      if (want === undefined) continue;
      const have = currentIngress(view.service);
      if (want.join() === have.join()) {
        this.lastWritten.set(view.key, want.join());
        continue;
      }
      await this.background(async () => {
        writes += (await this.writeStatus(view, want, have)) ? 1 : 0;
      });
    }
    await this.drain();

    // 6. Pool status.
    if (this.poolsDirty) {
      this.poolsDirty = false;
      writes += await this.writePoolStatuses();
    }

    this.opts.metrics?.reconcileSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (claimPlan.nextDeadline !== undefined && !this.stopped) {
      const wait = Math.max(this.debounceMs, claimPlan.nextDeadline - this.now());
      setTimeout(() => this.schedule(), wait).unref();
    }
    this.resolveIdle(writes === 0 && this.dirty.size === 0 && !this.allDirty);
  }

  private resolveIdle(idle: boolean) {
    if (!idle) {
      if (this.idleWaiters.length) this.again = true;
      return;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async applyClaimAction(action: ClaimAction): Promise<boolean> {
    const { claims } = this.opts.api;
    const log = this.opts.logger;
    const current = await claims.get(action.claim);
    if (!current) return false;
    const holders = current.spec.holders ?? [];
    const idx = holders.findIndex((h) => h.namespace === action.namespace && h.name === action.name);
    if (idx < 0) return false;
    const target = { namespace: action.namespace, name: action.name };
    if (action.kind === 'adopt') {
      const next = holders.map((h, i) => (i === idx ? { ...h, uid: action.uid } : h));
      const updated = this.rebuilt(current, next);
      const result = await claims.update(updated);
      if (result.ok) {
        this.opts.state.applyClaim(result.claim);
        log.debug({ claim: action.claim, ...target, decision: 'adopted' }, 'claim adopted');
      }
      return result.ok;
    }
    const rest = holders.filter((_, i) => i !== idx);
    let ok: boolean;
    if (rest.length === 0) {
      ok = await claims.delete(action.claim, current.metadata.resourceVersion);
      if (ok) this.opts.state.forgetClaim(action.claim);
    } else {
      const result = await claims.update(this.rebuilt(current, rest));
      ok = result.ok;
      if (result.ok) this.opts.state.applyClaim(result.claim);
    }
    if (ok) {
      this.opts.metrics?.claimsCollected.inc();
      log.info({ claim: action.claim, address: action.address, ...target, decision: 'released', reason: action.why }, 'address released');
      const view = this.services.get(keyOf(action.namespace, action.name));
      if (view) await this.event(view, 'Normal', 'IPReleased', `Released ${action.address}: ${action.why}`);
      this.epoch++;
    }
    return ok;
  }

  private rebuilt(current: IPClaim, holders: IPClaim['spec']['holders']): IPClaim {
    const claim = buildClaim(current.metadata.name!, ipFromClaimName(current.metadata.name!), current.spec.pool, current.spec.sharingKey, holders);
    claim.metadata = { ...current.metadata, labels: { ...current.metadata.labels, ...claim.metadata.labels } };
    return claim;
  }

  /**
   * Whether the Service's status addresses may be adopted: it has no assignment, is admitlb's, shows
   * addresses, and this controller has not itself written a different status for it (then the status
   * was changed after the takeover, and is put back instead).
   */
  private adoptsStatus(view: ServiceView): boolean {
    if (view.assignment || !isOurLoadBalancer(view.service, this.opts.config)) return false;
    const have = currentIngress(view.service);
    const ours = this.lastWritten.get(view.key);
    return have.length > 0 && (ours === undefined || ours === have.join());
  }

  /** Runs the webhook's own decision for the Service as an update, then writes its outcome. */
  private async converge(view: ServiceView, problem: string, reallocate: boolean, adoptStatus: boolean, wrote: (ok: boolean) => void): Promise<void> {
    const { service } = view;
    const log = this.opts.logger;
    const request = {
      uid: `controller-${view.key}`,
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      operation: 'UPDATE',
      namespace: view.namespace,
      name: view.name,
      object: service as unknown as Record<string, unknown>,
      oldObject: service as unknown as Record<string, unknown>,
      dryRun: false,
    } satisfies AdmissionRequest;
    let outcome;
    try {
      const token = service.metadata.annotations?.[ANN_ALLOCATION];
      outcome = await admitService(this.deps, request, { current: view.assignment && token ? { assignment: view.assignment, token } : null, reallocate, adoptStatus });
    } catch (err) {
      log.warn({ namespace: view.namespace, name: view.name, err: String(err) }, 'could not converge Service; will retry');
      this.schedule(1000);
      return;
    }
    const memo = (reason: string) => this.pending.set(view.key, { resourceVersion: service.metadata.resourceVersion, epoch: this.epoch, reason });
    if (!outcome.allowed) {
      const message = outcome.status?.message ?? 'denied';
      if (outcome.status?.code === 503) {
        this.schedule(1000);
        return;
      }
      const already = this.pending.get(view.key)?.reason === message;
      memo(message);
      if (!already) await this.event(view, 'Warning', 'AllocationFailed', message);
      log.info({ namespace: view.namespace, name: view.name, operation: 'converge', decision: 'denied', reason: message, problem }, 'cannot allocate');
      return;
    }
    const pending = outcome.pending;
    const already = !!pending && this.pending.get(view.key)?.reason === pending;
    if (pending) memo(pending);
    else this.pending.delete(view.key);
    const ops = outcome.patch ?? [];
      if (ops.length > 0) {
        const result = await this.opts.api.patchService(view.namespace, view.name, [{ op: 'test', path: '/metadata/resourceVersion', value: service.metadata.resourceVersion }, ...ops]);
        if (!result.ok) {
          if (result.reason === 'Denied') {
            memo(result.message);
            await this.event(view, 'Warning', 'AllocationFailed', result.message);
          } else this.pending.delete(view.key);
          log.info({ namespace: view.namespace, name: view.name, operation: 'converge', decision: 'retry', reason: result.message }, 'Service write failed');
          wrote(false);
          return;
        }
      }
      wrote(ops.length > 0);
      await this.reportAdoption(view, outcome.adoption, ops.length > 0 || (!!pending && !already));
      if (pending) {
        if (!already) await this.event(view, 'Warning', 'AllocationFailed', `No address assigned: ${pending}`);
        log.info({ namespace: view.namespace, name: view.name, operation: 'converge', decision: 'pending', reason: pending, problem }, 'Service left without an address');
      } else {
        log.info({ namespace: view.namespace, name: view.name, operation: 'converge', decision: 'allowed', addresses: outcome.audit.addresses, pool: outcome.audit.pool, problem }, 'assignment converged');
      }
  }

  /** Says which status addresses were kept at takeover and why others were not (once: when written). */
  private async reportAdoption(view: ServiceView, adoption: { kept: string[]; refused: { address: string; why: string }[] } | undefined, written: boolean): Promise<void> {
    if (!adoption || !written) return;
    const log = this.opts.logger;
    if (adoption.kept.length > 0) {
      log.info({ namespace: view.namespace, name: view.name, operation: 'converge', decision: 'adopted', addresses: adoption.kept }, 'status addresses adopted');
      await this.event(view, 'Normal', 'IPAdopted', `Kept ${adoption.kept.join(', ')} from status.loadBalancer.ingress`);
    }
    if (adoption.refused.length > 0) {
      const why = adoption.refused.map((r) => `${r.address}: ${r.why}`).join('; ');
      log.warn({ namespace: view.namespace, name: view.name, operation: 'converge', decision: 'not adopted', refused: adoption.refused }, 'status addresses not adopted');
      await this.event(view, 'Warning', 'StatusNotAdopted', `status.loadBalancer.ingress not kept (${why}); admitlb assigns the Service as any other`);
    }
  }

  private readonly inflight = new Set<Promise<void>>();

  /** Runs a write with at most `parallelWrites` in flight; errors are logged, never thrown. */
  private async background(fn: () => Promise<unknown>): Promise<void> {
    const limit = this.opts.parallelWrites ?? 16;
    while (this.inflight.size >= limit) await Promise.race(this.inflight);
    const p: Promise<void> = fn()
      .then(() => undefined)
      .catch((err) => this.opts.logger.warn({ err: String(err) }, 'controller write failed'))
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
  }

  private async writeStatus(view: ServiceView, want: string[], have: string[]): Promise<boolean> {
    const ingress: LoadBalancerIngress[] = want.map((ip) => ({ ip, ipMode: 'VIP' }));
    const result = await this.opts.api.writeServiceStatus(view.namespace, view.name, ingress);
    if (!result.ok) return false;
    this.opts.metrics?.statusWrites.inc();
    const ours = this.lastWritten.get(view.key);
    this.lastWritten.set(view.key, want.join());
    const forged = have.length > 0 && ours !== undefined && ours !== have.join();
    const pool = view.assignment?.pool;
    if (forged) {
      await this.event(view, 'Warning', 'StatusRestored', `status.loadBalancer.ingress said ${have.join(', ')}, which admitlb did not assign; restored to ${want.length ? want.join(', ') : 'none'}`);
    } else if (want.length > 0) {
      await this.event(view, 'Normal', 'IPAllocated', `Assigned ${want.join(', ')}${pool ? ` from IPPool "${pool}"` : ''}`);
    } else {
      await this.event(view, 'Normal', 'IPReleased', `Removed ${have.join(', ')} from the Service's status`);
    }
    this.opts.logger.info({ namespace: view.namespace, name: view.name, operation: 'status', decision: forged ? 'restored' : 'written', addresses: want }, 'status written');
    return true;
  }

  private async writePoolStatuses(): Promise<number> {
    const { state, cache } = this.opts;
    const nowMs = this.now();
    const now = new Date(nowMs).toISOString().replace(/\.\d+Z$/, 'Z');
    const models = new Map(state.pools.map((p) => [p.name, p]));
    let writes = 0;
    let retryInMs: number | undefined;
    for (const pool of cache.listPools()) {
      const name = pool.metadata.name ?? '';
      const status = computePoolStatus(pool, models.get(name), state.invalidPools.get(name), state.claims, now);
      if (sameStatus(pool.status, status)) continue;
      const since = nowMs - (this.poolStatusWrittenAt.get(name) ?? -Infinity);
      if (since < this.poolStatusIntervalMs && sameConditions(pool.status, status)) {
        retryInMs = Math.min(retryInMs ?? Infinity, this.poolStatusIntervalMs - since);
        continue;
      }
      const result = await this.opts.api.writePoolStatus(name, status);
      if (result.ok) {
        writes++;
        this.poolStatusWrittenAt.set(name, nowMs);
      }
    }
    if (retryInMs !== undefined && !this.poolStatusTimer) {
      // Counts that changed within the window are written when it ends, in a pass of their own.
      this.poolStatusTimer = setTimeout(() => {
        this.poolStatusTimer = undefined;
        this.poolsDirty = true;
        this.schedule();
      }, retryInMs);
      this.poolStatusTimer.unref();
    }
    return writes;
  }

  private async event(view: ServiceView, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    try {
      await this.opts.api.recordEvent({ namespace: view.namespace, name: view.name, uid: view.service.metadata.uid, resourceVersion: view.service.metadata.resourceVersion }, type, reason, message);
    } catch (err) {
      this.opts.logger.warn({ namespace: view.namespace, name: view.name, reason, err: String(err) }, 'could not record event');
    }
  }
}
