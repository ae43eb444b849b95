// Serving certificate hot reload for the webhook's HTTPS server.
//
// Kubernetes updates a Secret volume by writing a new timestamped directory and atomically swapping the
// `..data` symlink; the visible files (tls.crt -> ..data/tls.crt) never change in place, so watching
// the files themselves misses updates. We watch the directories instead, and poll as a fallback
// (inotify can be unavailable, and a watched directory can be replaced). A changed pair is validated
// before use: a half-written update (new key, old cert) or an expired certificate is logged and the
// current pair keeps serving. tls.Server#setSecureContext swaps the context for new handshakes only;
// established connections finish on the old one, so no restart and no dropped requests.
import type { Logger } from '../log.ts';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { type FSWatcher, readFileSync, realpathSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

/** The subset of a pino / fastify logger this module uses. */

export interface TlsReloaderOptions {
  certFile: string;
  keyFile: string;
  /** Trust anchors for client certificates; only used if the server requests client certificates. */
  caFile?: string;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** Fallback polling interval (default 10 s); 0 disables polling. */
  pollIntervalMs?: number;
  /** Collapses the burst of events of one Secret update (default 100 ms). */
  debounceMs?: number;
  /** After a rejected pair, look again this soon (default 1 s): the update may still be in progress. */
  retryMs?: number;
  /** Tolerated clock skew for a certificate's notBefore (default 5 min). */
  notBeforeSkewMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** What fastify's `https` option and tls.Server#setSecureContext take. */
export interface TlsContextOptions extends SecureContextOptions {
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
  minVersion: 'TLSv1.2';
}

export interface TlsReloadInfo {
  subject: string;
  serialNumber: string;
  fingerprint256: string;
  notBefore: Date;
  notAfter: Date;
  /** notAfter of the pair that was replaced, if any. */
  previousNotAfter?: Date;
}

/** Anything with setSecureContext: https.Server, tls.Server, fastify's `app.server` when https is on. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

export interface TlsReloader {
  /** The current pair as options; pass to `Fastify({ https: reloader.secureContextOptions })`. */
  readonly secureContextOptions: TlsContextOptions;
  /** True once a valid pair has been loaded (gate /readyz on it). */
  readonly loaded: boolean;
  /** Expiry of the serving certificate in use. */
  readonly notAfter: Date | undefined;
  /** Why the most recent load attempt failed; cleared by a successful load. */
  readonly lastError: Error | undefined;
  /** Starts pushing new pairs to server (and pushes the current one now). */
  attach(server: SecureContextTarget): void;
  /** Called after a new pair is in use. Returns an unsubscribe function. */
  onReload(listener: (info: TlsReloadInfo) => void): () => void;
  /** Called when a changed pair is rejected (the previous pair stays in use). */
  onError(listener: (error: Error) => void): () => void;
  /** Re-reads the files now; true when a new pair was applied. */
  checkNow(): boolean;
  /** Stops watching and polling. */
  close(): void;
}

interface LoadedPair {
  fingerprint: string;
  options: TlsContextOptions;
  info: TlsReloadInfo;
}

class TlsPairError extends Error {
  override name = 'TlsPairError';
}

export function createTlsReloader(options: TlsReloaderOptions): TlsReloader {
  const { certFile, keyFile, caFile, logger } = options;
  const pollIntervalMs = options.pollIntervalMs ?? 10_000;
  const debounceMs = options.debounceMs ?? 100;
  const retryMs = options.retryMs ?? 1_000;
  const skewMs = options.notBeforeSkewMs ?? 5 * 60_000;
  const now = options.now ?? Date.now;
  const files = [certFile, keyFile, ...(caFile ? [caFile] : [])];

  let current: LoadedPair | undefined;
  let lastError: Error | undefined;
  let rejectedKey: string | undefined;
  let closed = false;
  const servers = new Set<SecureContextTarget>();
  const reloadListeners = new Set<(info: TlsReloadInfo) => void>();
  const errorListeners = new Set<(error: Error) => void>();
  const watchers = new Map<string, FSWatcher>();
  let debounceTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;

  function read(): { cert: Buffer; key: Buffer; ca: Buffer | undefined; fingerprint: string } {
    const cert = readFileSync(certFile);
    const key = readFileSync(keyFile);
    const ca = caFile ? readFileSync(caFile) : undefined;
    const hash = createHash('sha256');
    for (const part of [cert, key, ca ?? Buffer.alloc(0)]) hash.update(String(part.length)).update(':').update(part);
    return { cert, key, ca, fingerprint: hash.digest('hex') };
  }

  function validate(cert: Buffer, key: Buffer, ca: Buffer | undefined): { options: TlsContextOptions; leaf: X509Certificate } {
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(cert); // the first certificate of the chain
    } catch (err) {
      throw new TlsPairError(`${certFile}: not a PEM certificate (${(err as Error).message})`);
    }
    let privateKey;
    try {
      privateKey = createPrivateKey(key);
    } catch (err) {
      throw new TlsPairError(`${keyFile}: not a PEM private key (${(err as Error).message})`);
    }
    if (!leaf.checkPrivateKey(privateKey)) throw new TlsPairError(`${keyFile} does not match the certificate in ${certFile}`);
    const t = now();
    if (Date.parse(leaf.validTo) <= t) throw new TlsPairError(`certificate in ${certFile} expired at ${new Date(leaf.validTo).toISOString()}`);
    if (Date.parse(leaf.validFrom) > t + skewMs) throw new TlsPairError(`certificate in ${certFile} is not valid before ${new Date(leaf.validFrom).toISOString()}`);
    const opts: TlsContextOptions = { cert, key, minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) };
    try {
      createSecureContext(opts); // whatever OpenSSL would refuse, refuse here rather than in setSecureContext
    } catch (err) {
      throw new TlsPairError(`cannot build a TLS context: ${(err as Error).message}`);
    }
    return { options: opts, leaf };
  }

  /** key identifies the broken state (content hash or read error) so each one is reported once. */
  function fail(error: Error, key: string): void {
    lastError = error;
    if (key === rejectedKey) return; // already reported (and retried); wait for a change
    rejectedKey = key;
    const keeping = current ? { keepingNotAfter: current.info.notAfter.toISOString() } : {};
    logger.error({ err: error, certFile, keyFile, ...keeping }, current ? 'new TLS pair rejected, keeping the current one' : 'cannot load the TLS pair');
    for (const l of errorListeners) safeCall(() => l(error));
    // An update in progress (key written, cert not yet) settles within moments: look again once, soon.
    if (!closed && !retryTimer && retryMs > 0) {
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        checkNow();
      }, retryMs);
      retryTimer.unref();
    }
  }

  function safeCall(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      logger.warn({ err }, 'TLS reload listener threw');
    }
  }

  function checkNow(): boolean {
    if (closed) return false;
    let contents;
    try {
      contents = read();
    } catch (err) {
      fail(err as Error, `read:${(err as Error).message}`);
      return false;
    }
    if (contents.fingerprint === current?.fingerprint) {
      // Back to (or still at) the pair in use: any earlier failure (e.g. a read during a swap) is over.
      lastError = undefined;
      rejectedKey = undefined;
      return false;
    }
    if (contents.fingerprint === rejectedKey) return false; // already reported; wait for a change
    let validated;
    try {
      validated = validate(contents.cert, contents.key, contents.ca);
    } catch (err) {
      fail(err as Error, contents.fingerprint);
      return false;
    }
    const { leaf } = validated;
    const info: TlsReloadInfo = {
      subject: leaf.subject,
      serialNumber: leaf.serialNumber,
      fingerprint256: leaf.fingerprint256,
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      ...(current ? { previousNotAfter: current.info.notAfter } : {}),
    };
    for (const server of servers) {
      try {
        server.setSecureContext(validated.options);
      } catch (err) {
        fail(new TlsPairError(`setSecureContext failed: ${(err as Error).message}`), contents.fingerprint);
        return false;
      }
    }
    const first = current === undefined;
    current = { fingerprint: contents.fingerprint, options: validated.options, info };
    lastError = undefined;
    rejectedKey = undefined;
    logger.info(
      { certFile, serialNumber: info.serialNumber, notAfter: info.notAfter.toISOString(), fingerprint256: info.fingerprint256 },
      first ? 'TLS pair loaded' : 'TLS pair reloaded',
    );
    if (!first) for (const l of reloadListeners) safeCall(() => l(info));
    return true;
  }

  function schedule(): void {
    if (closed) return;
    if (debounceTimer) clearTimeout(debounceTimer);
    debounceTimer = setTimeout(() => {
      debounceTimer = undefined;
      checkNow();
    }, debounceMs);
    debounceTimer.unref();
  }

  function watchDirs(): Set<string> {
    const dirs = new Set<string>();
    for (const f of files) {
      dirs.add(dirname(f));
      try {
        dirs.add(dirname(realpathSync(f))); // a symlink into another directory (e.g. ..data/) changes there
      } catch {
        // missing for now; the directory watch or the poll will notice it appearing
      }
    }
    return dirs;
  }

  function ensureWatchers(): void {
    if (closed) return;
    for (const dir of watchDirs()) {
      if (watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => schedule());
        w.on('error', (err) => {
          logger.warn({ err, dir }, 'TLS directory watch failed; polling continues');
          w.close();
          watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch (err) {
        logger.warn({ err, dir }, 'cannot watch TLS directory; relying on polling');
      }
    }
  }

  checkNow();
  ensureWatchers();
  if (pollIntervalMs > 0) {
    pollTimer = setInterval(() => {
      ensureWatchers();
      checkNow();
    }, pollIntervalMs);
    pollTimer.unref();
  }

  return {
    get secureContextOptions(): TlsContextOptions {
      return current ? { ...current.options } : { minVersion: 'TLSv1.2' };
    },
    get loaded() {
      return current !== undefined;
    },
    get notAfter() {
      return current?.info.notAfter;
    },
    get lastError() {
      return lastError;
    },
    attach(server) {
      servers.add(server);
      if (current) server.setSecureContext(current.options);
    },
    onReload(listener) {
      reloadListeners.add(listener);
      return () => reloadListeners.delete(listener);
    },
    onError(listener) {
      errorListeners.add(listener);
      return () => errorListeners.delete(listener);
    },
    checkNow,
    close() {
      closed = true;
      for (const w of watchers.values()) w.close();
      watchers.clear();
      for (const t of [debounceTimer, retryTimer, pollTimer]) if (t) clearTimeout(t);
      debounceTimer = retryTimer = pollTimer = undefined;
      servers.clear();
      reloadListeners.clear();
      errorListeners.clear();
    },
  };
}
