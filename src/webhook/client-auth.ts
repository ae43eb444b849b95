// Who may post AdmissionReviews. The webhook acts on what it is sent (it claims addresses and signs
// assignments), and its Service is reachable by every pod, so only the API server may call the
// admission endpoints. kube-apiserver identifies itself to webhooks through the kubeconfig named in
// its AdmissionConfiguration: a client certificate (verified against --client-ca-file) or a bearer
// token (compared with --client-token-file). Health and metrics stay open for probes and scrapers.
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';

export interface ClientAuthConfig {
  /** CA bundle that signs the API server's webhook client certificate */
  clientCaFile?: string | undefined;
  /** file holding the bearer token the API server presents */
  clientTokenFile?: string | undefined;
}

export type ClientAuthResult = { ok: true; via: 'certificate' | 'token' | 'unauthenticated' } | { ok: false; reason: string };

export interface ClientAuthenticator {
  /** whether any credential is required (false: every caller is accepted; a warning is logged at start) */
  readonly required: boolean;
  check(socket: unknown, authorization: string | undefined): ClientAuthResult;
}

export function createClientAuthenticator(config: ClientAuthConfig): ClientAuthenticator {
  // Read once: a rotated token means a restart, as a rotated CA does for the TLS context.
  const token = config.clientTokenFile ? Buffer.from(readFileSync(config.clientTokenFile, 'utf8').trim()) : undefined;
  if (token && token.length === 0) throw new Error(`${config.clientTokenFile} is empty`);
  const required = !!config.clientCaFile || !!token;
  return {
    required,
    check(socket, authorization) {
      if (!required) return { ok: true, via: 'unauthenticated' };
      const tls = socket as Partial<TLSSocket>;
      if (config.clientCaFile && tls.authorized === true) return { ok: true, via: 'certificate' };
      if (token && authorization?.startsWith('Bearer ')) {
        const given = Buffer.from(authorization.slice('Bearer '.length).trim());
        if (given.length === token.length && timingSafeEqual(given, token)) return { ok: true, via: 'token' };
        return { ok: false, reason: 'the bearer token is not the API server\'s' };
      }
      if (config.clientCaFile && tls.getPeerCertificate && Object.keys(tls.getPeerCertificate() ?? {}).length > 0) {
        return { ok: false, reason: `the client certificate is not signed by the client CA (${String(tls.authorizationError ?? 'unverified')})` };
      }
      return { ok: false, reason: `no ${[config.clientCaFile ? 'client certificate' : '', token ? 'bearer token' : ''].filter(Boolean).join(' or ')}` };
    },
  };
}
