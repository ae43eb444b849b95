// Timeouts and connection limits of every listener (webhook, health/metrics, the sandbox API). Node
// and fastify default to waiting 5 minutes for a request body, 2 minutes for a TLS handshake and to
// accepting any number of connections: a client that opens connections and never finishes a large
// body holds the buffered bytes until the process runs out of memory. Each limit below bounds that.
import type http from 'node:http';

export interface ListenerLimits {
  /** Time to receive the request headers. */
  headersTimeoutMs: number;
  /** Time to receive the whole request, headers and body (a response may take longer). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic at all is closed after this (0: never, for watches). */
  idleTimeoutMs: number;
  /** TLS listeners: time to finish the handshake. */
  handshakeTimeoutMs: number;
  /** Connections beyond this are closed as they arrive. */
  maxConnections: number;
  /** Largest request body accepted. */
  bodyLimit: number;
}

/**
 * How often Node checks requests against headersTimeout and requestTimeout (its default, 30 s, would
 * let a stalled body live up to 30 s past its timeout).
 */
export const CONNECTIONS_CHECK_INTERVAL_MS = 1000;

/**
 * The webhook. kube-apiserver sends an AdmissionReview at once and waits at most the webhook's
 * timeoutSeconds (5 s in the manifests, 30 s at most): a body still arriving after 10 s is not the
 * API server's. Connections: kube-apiserver opens one per concurrent call (HTTP/1.1); 256 leaves room
 * for bursts of parallel creates while bounding what slow bodies can hold. The body limit is the
 * object twice (kube-apiserver's 3 MiB request limit) plus the review around it.
 */
export const WEBHOOK_LIMITS: ListenerLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  handshakeTimeoutMs: 5_000,
  maxConnections: 256,
  bodyLimit: 3 * 1024 * 1024 * 2 + 64 * 1024,
};

/**
 * /healthz, /readyz and /metrics: GETs from the kubelet (3 s probe timeout) and Prometheus. No
 * request needs a body; a few connections are enough.
 */
export const HEALTH_LIMITS: ListenerLimits = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  keepAliveTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  handshakeTimeoutMs: 5_000,
  maxConnections: 64,
  bodyLimit: 1024,
};

/**
 * Total request-body bytes the webhook buffers at once across all connections. With maxConnections
 * alone, 256 connections of 6 MiB bodies could hold 1.5 GiB; the replica's memory limit is 384 MiB.
 * A body that would go over the budget is answered 503 (kube-apiserver retries, or fails the write
 * per failurePolicy) instead of being buffered.
 */
export const WEBHOOK_BODY_BUDGET_BYTES = 64 * 1024 * 1024;

/** Fastify's options for these limits (the rest is set on the server by applyLimits). */
export function fastifyLimitOptions(l: ListenerLimits) {
  return { requestTimeout: l.requestTimeoutMs, connectionTimeout: l.idleTimeoutMs, keepAliveTimeout: l.keepAliveTimeoutMs, bodyLimit: l.bodyLimit };
}

/** Sets the limits on a Node HTTP(S) server before it listens. */
export function applyLimits(server: http.Server, l: ListenerLimits): void {
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.setTimeout(l.idleTimeoutMs);
  server.maxConnections = l.maxConnections;
  // Read when the server starts listening (setupConnectionsTracking), so it can be set here.
  (server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = CONNECTIONS_CHECK_INTERVAL_MS;
}
