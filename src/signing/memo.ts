// What a verified assignment token said, remembered per Service: a JWS is verified once, not on every
// pass (thousands of Services after a restart). An entry is used only for the very same token and
// never after the token's own expiry, so a memo cannot extend what a signature granted.
import type { SignedAssignment } from './assignment.ts';

export interface MemoEntry<V> {
  token: string;
  value: V;
  /** exp of the token (seconds since the epoch), when it has one */
  expiresAt?: number | undefined;
}

export class VerifiedMemo<V> {
  private readonly entries = new Map<string, MemoEntry<V>>();

  /** `now` in milliseconds since the epoch (injectable for tests). */
  constructor(private readonly now: () => number = Date.now) {}

  /** The remembered value when `token` is the one verified for `key` and has not expired since. */
  lookup(key: string, token: string): { value: V } | undefined {
    const e = this.entries.get(key);
    if (!e || e.token !== token) return undefined;
    if (e.expiresAt !== undefined && this.now() / 1000 >= e.expiresAt) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: e.value };
  }

  remember(key: string, token: string, value: V, signed?: Pick<SignedAssignment, 'expiresAt'>): void {
    this.entries.set(key, { token, value, expiresAt: signed?.expiresAt });
  }

  forget(key: string): void {
    this.entries.delete(key);
  }

  /** Drops every entry whose key is not in `keys` (Services that are gone). */
  retain(keys: ReadonlySet<string>): void {
    for (const k of this.entries.keys()) if (!keys.has(k)) this.entries.delete(k);
  }

  /** The token remembered for `key` (whatever its expiry), to tell a changed token from an unchanged one. */
  tokenOf(key: string): string | undefined {
    return this.entries.get(key)?.token;
  }

  get size(): number {
    return this.entries.size;
  }
}
