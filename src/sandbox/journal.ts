// Durable storage for the double: an append-only JSON-lines journal, fsynced per commit, replayed
// and compacted on start. Dependency-free on purpose (no native addon to build on CI machines).
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface JournalRecord {
  /** resourceVersion assigned by this commit */
  rv: number;
  /** storage key: "<group>/<resource>" */
  gr?: string;
  ns?: string;
  name?: string;
  /** stored object, or null for a deletion */
  obj?: Record<string, unknown> | null;
}

export interface ReplayedState {
  lastRv: number;
  /** gr → "ns/name" → object */
  objects: Map<string, Map<string, Record<string, unknown>>>;
}

export class Journal {
  private fd: number;

  private constructor(readonly path: string, fd: number) {
    this.fd = fd;
  }

  /** Replays `<dataDir>/journal.jsonl`, rewrites it compacted (live objects + an RV marker), opens it for append. */
  static open(dataDir: string): { journal: Journal; state: ReplayedState } {
    const path = join(dataDir, 'journal.jsonl');
    const state: ReplayedState = { lastRv: 0, objects: new Map() };
    if (existsSync(path)) {
      const lines = readFileSync(path, 'utf8').split('\n');
      for (const [i, line] of lines.entries()) {
        if (!line.trim()) continue;
        let rec: JournalRecord;
        try {
          rec = JSON.parse(line) as JournalRecord;
        } catch (err) {
          // A torn final line (crash mid-append, before fsync returned) is dropped; anything else is corruption.
          if (i >= lines.length - 2) break;
          throw new Error(`journal ${path}: line ${i + 1} is not JSON: ${(err as Error).message}`);
        }
        state.lastRv = Math.max(state.lastRv, rec.rv);
        if (rec.gr === undefined || rec.name === undefined) continue;
        let byKey = state.objects.get(rec.gr);
        if (!byKey) state.objects.set(rec.gr, (byKey = new Map()));
        const key = `${rec.ns ?? ''}/${rec.name}`;
        if (rec.obj) byKey.set(key, rec.obj);
        else byKey.delete(key);
      }
    }
    // Compact: write the live set to a temp file, fsync, rename over the journal.
    const tmp = `${path}.compact`;
    const tfd = openSync(tmp, 'w');
    writeSync(tfd, `${JSON.stringify({ rv: state.lastRv })}\n`);
    for (const [gr, byKey] of state.objects) {
      for (const [key, obj] of byKey) {
        const slash = key.indexOf('/');
        const rec: JournalRecord = { rv: state.lastRv, gr, ns: key.slice(0, slash), name: key.slice(slash + 1), obj };
        writeSync(tfd, `${JSON.stringify(rec)}\n`);
      }
    }
    fsyncSync(tfd);
    closeSync(tfd);
    renameSync(tmp, path);
    const fd = openSync(path, 'a');
    return { journal: new Journal(path, fd), state };
  }

  /** Appends records as one write and fsyncs before returning: a commit is acknowledged only once durable. */
  append(records: JournalRecord[]): void {
    if (records.length === 0) return;
    writeSync(this.fd, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
    fsyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}
