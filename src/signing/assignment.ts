// Signed assignments: the webhook signs (namespace, name, addresses, pool) with an Ed25519 key so
// that the speaker and controller act only on decisions admitlb made. A user who can patch
// services/status or write annotations cannot forge one. Several keys may verify at once (rotation);
// the newest signs.
import { loadSigningKeys } from '../certs/generate.ts';
import { createPrivateKey, sign as signEd25519, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, importJWK, type CryptoKey, type JWK } from 'jose';

export interface Assignment {
  namespace: string;
  name: string;
  /** LoadBalancer addresses, canonical text, primary family first. */
  ips: string[];
  /** The pool the LoadBalancer addresses came from ('' when none). */
  pool: string;
  /** externalIPs admitlb granted (bound on the announcing node). */
  externalIPs: string[];
}

export interface SignedAssignment extends Assignment {
  kid: string;
  issuedAt: number;
  expiresAt?: number | undefined;
}

interface Payload {
  v: 1;
  ns: string;
  n: string;
  ips: string[];
  pool: string;
  eips: string[];
  iat: number;
  exp?: number;
}

export class VerificationError extends Error {
  constructor(readonly reason: 'malformed' | 'unknown-key' | 'bad-signature' | 'expired' | 'wrong-service', message: string) {
    super(message);
  }
}

export interface KeySet {
  /** The key that signs new assignments. */
  signingKid: string;
  sign(payload: Uint8Array): Promise<string>;
  verifyKey(kid: string): CryptoKey | undefined;
  kids(): string[];
}

interface LoadedKey {
  kid: string;
  privateKey?: KeyObject | undefined;
  publicKey: CryptoKey;
  mtimeMs: number;
}

const headers = new Map<string, string>();
const header = (kid: string) => {
  let h = headers.get(kid);
  if (!h) headers.set(kid, (h = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid })).toString('base64url')));
  return h;
};

/** Builds a key set from private (or public-only) Ed25519 JWKs; the first private key signs. */
export async function keySetFromJwks(jwks: { jwk: JWK; mtimeMs?: number }[], activeKid?: string): Promise<KeySet> {
  const loaded: LoadedKey[] = [];
  for (const { jwk, mtimeMs } of jwks) {
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || !jwk.kid) {
      throw new Error(`signing key ${jwk.kid ?? '(no kid)'}: expected an Ed25519 JWK with a kid`);
    }
    const { d, ...pub } = jwk;
    loaded.push({
      kid: jwk.kid,
      publicKey: (await importJWK({ ...pub, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey,
      privateKey: d ? createPrivateKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x!, d }, format: 'jwk' }) : undefined,
      mtimeMs: mtimeMs ?? 0,
    });
  }
  // Newest private key signs: a rotated-in key starts signing while the old one still verifies.
  const signer = (activeKid ? loaded.filter((k) => k.kid === activeKid && k.privateKey) : loaded.filter((k) => k.privateKey)).sort((a, b) => b.mtimeMs - a.mtimeMs || (a.kid < b.kid ? -1 : 1))[0];
  const byKid = new Map(loaded.map((k) => [k.kid, k]));
  return {
    signingKid: signer?.kid ?? '',
    async sign(payload) {
      if (!signer?.privateKey) throw new Error('no private signing key is loaded');
      // RFC 7515 compact serialization, signed synchronously with node:crypto: WebCrypto's async
      // Ed25519 sign costs a thread-pool round trip per admission (~4x the webhook's own work).
      // Verification stays with jose, which proves the two agree.
      const signingInput = `${header(signer.kid)}.${Buffer.from(payload).toString('base64url')}`;
      return `${signingInput}.${signEd25519(null, Buffer.from(signingInput), signer.privateKey).toString('base64url')}`;
    },
    verifyKey: (kid) => byKid.get(kid)?.publicKey,
    kids: () => [...byKid.keys()],
  };
}

/**
 * Loads the signing keys of a directory (certs/signing locally, the mounted Secret in a pod): every
 * `<kid>.jwk.json` verifies, the one named by the `active` file signs (certs/README.md).
 */
export async function loadKeySet(dir: string): Promise<KeySet> {
  const { activeKid, keys } = await loadSigningKeys(dir);
  return keySetFromJwks([...keys.values()].map((jwk) => ({ jwk })), activeKid);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function signAssignment(keys: KeySet, a: Assignment, opts: { now?: number; ttlSeconds?: number } = {}): Promise<string> {
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const payload: Payload = { v: 1, ns: a.namespace, n: a.name, ips: a.ips, pool: a.pool, eips: a.externalIPs, iat };
  if (opts.ttlSeconds) payload.exp = iat + opts.ttlSeconds;
  return keys.sign(encoder.encode(JSON.stringify(payload)));
}

/**
 * Verifies a signed assignment for the Service `namespace/name`. Throws VerificationError saying
 * why it is not trustworthy. Comparison of addresses against the Service is the caller's job.
 */
export async function verifyAssignment(
  keys: Pick<KeySet, 'verifyKey'>,
  token: string,
  service: { namespace: string; name: string },
  opts: { now?: number; maxAgeSeconds?: number } = {},
): Promise<SignedAssignment> {
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== 'EdDSA') throw new Error(`unexpected alg ${header.alg}`);
    kid = header.kid;
  } catch (err) {
    throw new VerificationError('malformed', `assignment is not a valid JWS: ${(err as Error).message}`);
  }
  const key = kid ? keys.verifyKey(kid) : undefined;
  if (!key) throw new VerificationError('unknown-key', `assignment is signed with unknown key ${kid ?? '(none)'}`);
  let payload: Payload;
  try {
    const result = await compactVerify(token, key, { algorithms: ['EdDSA'] });
    payload = JSON.parse(decoder.decode(result.payload)) as Payload;
  } catch (err) {
    throw new VerificationError('bad-signature', `assignment signature does not verify: ${(err as Error).message}`);
  }
  if (payload.v !== 1 || typeof payload.ns !== 'string' || typeof payload.n !== 'string' || !Array.isArray(payload.ips) || !Array.isArray(payload.eips)) {
    throw new VerificationError('malformed', 'assignment payload has an unexpected shape');
  }
  if (payload.ns !== service.namespace || payload.n !== service.name) {
    throw new VerificationError('wrong-service', `assignment was issued for ${payload.ns}/${payload.n}, not ${service.namespace}/${service.name}`);
  }
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  if (payload.exp !== undefined && now >= payload.exp) throw new VerificationError('expired', 'assignment has expired');
  if (opts.maxAgeSeconds !== undefined && now - payload.iat > opts.maxAgeSeconds) {
    throw new VerificationError('expired', `assignment is older than ${opts.maxAgeSeconds}s`);
  }
  return {
    namespace: payload.ns,
    name: payload.n,
    ips: payload.ips,
    pool: payload.pool,
    externalIPs: payload.eips,
    kid: kid!,
    issuedAt: payload.iat,
    expiresAt: payload.exp,
  };
}
