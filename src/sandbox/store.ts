// In-memory object store with one global, monotonic resourceVersion (like etcd's revision), a bounded
// event history for watches (like the watch cache, storage/cacher/watch_cache.go) and a journal for
// durability. All checks and the commit run synchronously, so on Node's single thread a commit is atomic.
import type { Journal, JournalRecord } from './journal.ts';

// The double handles every kind as unstructured JSON (apimachinery's Unstructured); its handlers read
// the paths their Go counterparts read. `unknown` here would need a narrowing at each of ~400 reads.
// biome-ignore lint/suspicious/noExplicitAny: unstructured JSON, see above
export type KubeObject = Record<string, any>;

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  gr: string;
  ns: string;
  name: string;
  object: KubeObject;
  /** the previous state, for MODIFIED and DELETED */
  prev?: KubeObject;
}

export interface StoreWatcher {
  gr: string;
  ns?: string;
  onEvent(ev: StoreEvent): void;
}

export class PreconditionFailed extends Error {
  constructor(readonly kind: 'exists' | 'missing' | 'rv') {
    super(kind);
  }
}

export interface Precondition {
  /** the object must not exist (create) */
  mustNotExist?: boolean;
  /** the object must exist with exactly this resourceVersion */
  expectedRv?: string;
}

export function deepCopy<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

export class Store {
  private rv: number;
  /** rv of the oldest state watchers can resume from; older RVs get 410 */
  private historyFloor: number;
  private readonly objects: Map<string, Map<string, KubeObject>>;
  private readonly history: StoreEvent[] = [];
  private readonly watchers = new Set<StoreWatcher>();
  private readonly commitHooks: ((ev: StoreEvent) => void)[] = [];

  constructor(
    private readonly journal: Journal,
    initial: { lastRv: number; objects: Map<string, Map<string, KubeObject>> },
    private readonly historySize: number,
  ) {
    this.rv = initial.lastRv;
    this.historyFloor = initial.lastRv;
    this.objects = initial.objects;
  }

  currentRv(): number {
    return this.rv;
  }

  /** Oldest resourceVersion a watch may start from (watch_cache.go: "too old resource version"). */
  oldestWatchableRv(): number {
    return this.historyFloor;
  }

  get(gr: string, ns: string, name: string): KubeObject | undefined {
    const o = this.objects.get(gr)?.get(`${ns}/${name}`);
    return o ? deepCopy(o) : undefined;
  }

  /** Snapshot of a resource's objects, sorted by namespace/name like etcd's key order. */
  list(gr: string, ns?: string): KubeObject[] {
    const byKey = this.objects.get(gr);
    if (!byKey) return [];
    const out: [string, KubeObject][] = [];
    for (const [key, obj] of byKey) {
      if (ns !== undefined && ns !== '' && !key.startsWith(`${ns}/`)) continue;
      out.push([key, obj]);
    }
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out.map(([, o]) => deepCopy(o));
  }

  /** The stored objects of a resource, uncopied and unsorted: for read-only scans on hot paths. */
  *scan(gr: string): IterableIterator<Readonly<KubeObject>> {
    const byKey = this.objects.get(gr);
    if (byKey) yield* byKey.values();
  }

  /** Checks the precondition and writes (or deletes, obj=null) atomically; returns the stored copy. */
  commit(gr: string, ns: string, name: string, obj: KubeObject | null, pre: Precondition): KubeObject {
    let byKey = this.objects.get(gr);
    if (!byKey) this.objects.set(gr, (byKey = new Map()));
    const key = `${ns}/${name}`;
    const prev = byKey.get(key);
    if (pre.mustNotExist && prev) throw new PreconditionFailed('exists');
    if (!pre.mustNotExist && !prev) throw new PreconditionFailed('missing');
    if (pre.expectedRv !== undefined && prev && prev.metadata?.resourceVersion !== pre.expectedRv) throw new PreconditionFailed('rv');
    const rv = this.rv + 1;
    let stored: KubeObject;
    let type: EventType;
    if (obj) {
      stored = deepCopy(obj);
      stored.metadata = { ...(stored.metadata ?? {}), resourceVersion: String(rv) };
      type = prev ? 'MODIFIED' : 'ADDED';
    } else {
      // The DELETED event carries the last state with the deletion's resourceVersion (etcd3 watcher behaviour).
      stored = deepCopy(prev!);
      stored.metadata.resourceVersion = String(rv);
      type = 'DELETED';
    }
    const rec: JournalRecord = { rv, gr, ns, name, obj: obj ? stored : null };
    this.journal.append([rec]);
    this.rv = rv;
    if (obj) byKey.set(key, stored);
    else byKey.delete(key);
    const ev: StoreEvent = { rv, type, gr, ns, name, object: stored, ...(prev ? { prev } : {}) };
    this.history.push(ev);
    while (this.history.length > this.historySize) {
      const dropped = this.history.shift()!;
      this.historyFloor = dropped.rv;
    }
    for (const w of this.watchers) {
      if (w.gr === gr && (w.ns === undefined || w.ns === '' || w.ns === ns)) w.onEvent(ev);
    }
    for (const hook of this.commitHooks) hook(ev);
    return deepCopy(stored);
  }

  onCommit(hook: (ev: StoreEvent) => void): void {
    this.commitHooks.push(hook);
  }

  /**
   * Registers a watcher and returns the buffered events after `fromRv`, atomically (no event can fall
   * between the replay and the subscription). Throws `too old` when `fromRv` predates the history.
   */
  watch(w: StoreWatcher, fromRv: number): { replay: StoreEvent[]; cancel: () => void } {
    if (fromRv < this.historyFloor) throw new RangeError(`too old resource version: ${fromRv} (${this.historyFloor})`);
    const replay = this.history.filter((e) => e.rv > fromRv && e.gr === w.gr && (w.ns === undefined || w.ns === '' || w.ns === e.ns));
    this.watchers.add(w);
    return { replay, cancel: () => this.watchers.delete(w) };
  }

  close(): void {
    this.watchers.clear();
    this.journal.close();
  }
}
