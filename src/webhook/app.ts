// The webhook's fastify app, built without listening (tests use app.inject()). Routes: Service
// mutation and its commit (validation phase), IPPool validation, services/status validation, speaker
// configuration validation, health, readiness and metrics.
// Every admission decision is written as one audit log line with stable keys.
import { ERRORS } from '../errors.ts';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Logger } from 'pino';
import { z, type ZodError } from 'zod';
import { admitService, MalformedReviewError, type AdmissionDeps, type AuditFields, type PoolFill } from '../admission/admit-service.ts';
import { commitService } from '../admission/commit-service.ts';
import { denial, parseAdmissionReview, reviewResponse, type AdmissionOutcome, type AdmissionRequest } from '../admission/review.ts';
import { validatePool } from '../admission/validate-pool.ts';
import { validateServiceStatus } from '../admission/validate-service-status.ts';
import { SPEAKER_CONFIG_RESOURCES, validateSpeakerConfig, type StoredBgpAdvertisement, type StoredBgpPeer } from '../admission/validate-speaker-config.ts';
import type { ClientAuthenticator } from './client-auth.ts';
import { applyLimits, fastifyLimitOptions, WEBHOOK_BODY_BUDGET_BYTES, WEBHOOK_LIMITS, type ListenerLimits } from './limits.ts';
import type { WebhookMetrics } from './metrics.ts';

/** kube-apiserver limits request bodies to 3 MiB; an AdmissionReview carries the object twice. */
export const BODY_LIMIT = WEBHOOK_LIMITS.bodyLimit;

export interface ReadinessCheck {
  ready(): { ok: boolean; reasons: string[] };
}

/**
 * What /validate/speaker-config reads besides the pools (deps.state.pools). Each defaults to "none":
 * without listBgpPeers every spec.peers reference is unknown, without poolLabels ipPoolSelectors
 * are not evaluated (see validate-speaker-config.ts).
 */
export interface SpeakerConfigDeps {
  /** Every BGPPeer (parsed or as stored: only metadata.name is read). */
  listBgpPeers?(): readonly StoredBgpPeer[];
  /** Every BGPAdvertisement (parsed or as stored: the pool/peer selection and localPref are read). */
  listBgpAdvertisements?(): readonly StoredBgpAdvertisement[];
  /** Labels of an IPPool by name (for ipPoolSelectors), like AdmissionDeps.namespaceLabels. */
  poolLabels?(name: string): Record<string, string> | undefined;
}

export interface WebhookAppOptions {
  deps: AdmissionDeps & SpeakerConfigDeps;
  logger: Logger;
  metrics: WebhookMetrics;
  readiness: ReadinessCheck;
  https?: FastifyServerOptions extends { https?: infer H } ? H : unknown;
  /** who may call the admission endpoints (default: anyone; see client-auth.ts) */
  clientAuth?: ClientAuthenticator;
  /** Timeouts and connection limits (default WEBHOOK_LIMITS; tests shorten them). */
  limits?: Partial<ListenerLimits>;
  /** Request-body bytes buffered at once over all connections (default WEBHOOK_BODY_BUDGET_BYTES). */
  bodyBudgetBytes?: number;
}


const SPEAKER_RESOURCES = Object.keys(SPEAKER_CONFIG_RESOURCES);

/** The object metadata every endpoint reads (names, labels, annotations), typed as the API sends it. */
const stringMap = z.record(z.string(), z.string()).nullable().optional();
const objectMetaSchema = z
  .object({ name: z.string().optional(), generateName: z.string().optional(), namespace: z.string().optional(), labels: stringMap, annotations: stringMap })
  .loose();

const zodSummary = (e: ZodError) => e.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');

export function buildWebhookApp(opts: WebhookAppOptions): FastifyInstance {
  const { deps, logger, metrics, readiness } = opts;
  const limits: ListenerLimits = { ...WEBHOOK_LIMITS, ...opts.limits };
  const app = Fastify({
    loggerInstance: logger,
    // Per-request access logs would double the log volume; each decision has its own audit line.
    logController: new LogController({ disableRequestLogging: true }),
    ...fastifyLimitOptions(limits),
    ...(opts.https ? { https: { ...(opts.https as object), handshakeTimeout: limits.handshakeTimeoutMs } as never } : {}),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  applyLimits(app.server, limits);
  budgetJsonBodies(app, opts.bodyBudgetBytes ?? WEBHOOK_BODY_BUDGET_BYTES, limits.bodyLimit);

  // Admission endpoints answer the API server only, before the body is even read.
  const clientAuth = opts.clientAuth;
  if (clientAuth?.required) {
    app.addHook('onRequest', async (req, reply) => {
      if (!req.url.startsWith('/mutate/') && !req.url.startsWith('/validate/')) return;
      const r = clientAuth.check(req.raw.socket, req.headers.authorization);
      if (r.ok) return;
      logger.warn({ url: req.url.split('?')[0], remoteAddress: req.ip, reason: r.reason }, 'admission request refused: not the API server');
      await reply.status(ERRORS.UNAUTHENTICATED.status).send({ error: ERRORS.UNAUTHENTICATED.code, message: `admission endpoints answer the API server only: ${r.reason}` });
    });
  }

  // Client mistakes get a 400-class answer with a stable code; only our own bugs are 500s.
  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    // 503: the body budget is spent (a retry may pass); other 4xx are the client's; the rest is ours.
    const status = err.statusCode && ((err.statusCode >= 400 && err.statusCode < 500) || err.statusCode === 503) ? err.statusCode : 500;
    let code: string = err.code ?? 'ADMITLB_INTERNAL';
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') code = ERRORS.UNSUPPORTED_MEDIA.code;
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') code = ERRORS.BODY_TOO_LARGE.code;
    else if (status === 400) code = ERRORS.MALFORMED_JSON.code;
    if (status === 500) logger.error({ err }, 'unexpected error');
    void reply.status(status).send({ error: code, message: status === 500 ? 'internal error' : err.message });
  });

  function parseReview(body: unknown, resources: string | readonly string[]): AdmissionRequest | { error: string; code: string } {
    const parsed = parseAdmissionReview(body);
    if (!parsed.success) return { code: ERRORS.MALFORMED_REVIEW.code, error: `not an admission.k8s.io/v1 AdmissionReview: ${zodSummary(parsed.error)}` };
    const req = parsed.data.request;
    const admits = typeof resources === 'string' ? [resources] : resources;
    if (!admits.includes(req.resource.resource)) {
      const list = admits.length > 1 ? `${admits.slice(0, -1).join(', ')} or ${admits.at(-1)}` : admits[0];
      return { code: ERRORS.WRONG_RESOURCE.code, error: `this endpoint admits ${list}, not ${req.resource.resource}` };
    }
    return req;
  }

  /**
   * What every endpoint needs of the objects, as the API server always sends them: on CREATE and
   * UPDATE an object with object metadata, on UPDATE and DELETE an old object that is one (or none).
   * A review that breaks this did not come from an API server: 400, never a guess or a crash.
   */
  function objectProblem(req: AdmissionRequest): string | undefined {
    const check = (field: 'object' | 'oldObject', required: boolean): string | undefined => {
      const o = req[field];
      if (o === undefined || o === null) return required ? `request.${field}: required for ${req.operation}, got ${o === null ? 'null' : 'nothing'}` : undefined;
      const meta = objectMetaSchema.safeParse(o.metadata);
      if (!meta.success) {
        const issue = meta.error.issues[0]!;
        return `request.${field}.${['metadata', ...issue.path].join('.')}: ${issue.message}`;
      }
      return undefined;
    };
    const writes = req.operation === 'CREATE' || req.operation === 'UPDATE';
    return check('object', writes) ?? (req.operation === 'CREATE' ? undefined : check('oldObject', false));
  }

  function audit(webhook: string, req: AdmissionRequest, a: AuditFields, started: bigint) {
    const latencyMs = Number(process.hrtime.bigint() - started) / 1e6;
    metrics.admissionSeconds.observe({ webhook, operation: req.operation }, latencyMs / 1000);
    metrics.decisions.inc({ webhook, operation: req.operation, decision: a.decision });
    logger.info(
      {
        audit: true,
        webhook,
        uid: req.uid,
        operation: req.operation,
        namespace: a.namespace ?? req.namespace ?? '',
        name: a.name ?? req.name ?? '',
        user: req.userInfo?.username,
        groups: req.userInfo?.groups,
        dryRun: req.dryRun ?? false,
        decision: a.decision,
        addresses: a.addresses,
        pool: a.pool,
        reason: a.reason,
        latencyMs: Math.round(latencyMs * 1000) / 1000,
      },
      'admission decision',
    );
  }

  /** A Service admission endpoint: parse, decide, audit; our own bugs are a 500 denial, never a crash. */
  function serviceEndpoint(path: string, webhook: string, decide: (req: AdmissionRequest) => Promise<AdmissionOutcome & { audit: AuditFields; nearlyFull?: PoolFill[] }>) {
    app.post(path, async (request, reply) => {
      const started = process.hrtime.bigint();
      const req = parseReview(request.body, 'services');
      if ('error' in req) return reply.status(400).send({ error: req.code, message: req.error });
      const problem = objectProblem(req);
      if (problem) return reply.status(400).send({ error: ERRORS.MALFORMED_REVIEW.code, message: problem });
      let outcome: AdmissionOutcome;
      let auditFields: AuditFields;
      try {
        const result = await decide(req);
        outcome = result;
        auditFields = result.audit;
        for (const fill of result.nearlyFull ?? []) logger.warn(fill, `IPPool "${fill.pool}" is ${fill.percent}% used`);
      } catch (err) {
        if (err instanceof MalformedReviewError) return reply.status(400).send({ error: ERRORS.MALFORMED_REVIEW.code, message: err.message });
        logger.error({ err, uid: req.uid }, 'admission failed');
        outcome = denial(ERRORS.INTERNAL, `admitlb could not decide: ${(err as Error).message}`);
        auditFields = { decision: 'error', reason: `internal error: ${(err as Error).message}` };
      }
      audit(webhook, req, auditFields, started);
      return reviewResponse(req.uid, outcome);
    });
  }

  serviceEndpoint('/mutate/services', 'services.admitlb.io', (req) => admitService(deps, req));
  // The second phase of a Service admission: commits the claims of a Service that passed validation.
  serviceEndpoint('/validate/services', 'claims.services.admitlb.io', (req) =>
    commitService(deps, req, (err, who) => logger.warn({ ...who, err: String(err) }, 'could not commit the claim (the controller adopts it)')),
  );

  app.post('/validate/ippools', async (request, reply) => {
    const started = process.hrtime.bigint();
    const req = parseReview(request.body, 'ippools');
    if ('error' in req) return reply.status(400).send({ error: req.code, message: req.error });
    const problem = objectProblem(req);
    if (problem) return reply.status(400).send({ error: ERRORS.MALFORMED_REVIEW.code, message: problem });
    const outcome = validatePool({ pools: deps.state.pools, claims: deps.state.claims }, req);
    audit('ippools.admitlb.io', req, { decision: outcome.allowed ? 'allowed' : 'denied', reason: outcome.status?.message, name: req.name }, started);
    return reviewResponse(req.uid, outcome);
  });

  app.post('/validate/services-status', async (request, reply) => {
    const started = process.hrtime.bigint();
    const req = parseReview(request.body, 'services');
    if ('error' in req) return reply.status(400).send({ error: req.code, message: req.error });
    if (req.subResource !== 'status') return reply.status(400).send({ error: ERRORS.WRONG_RESOURCE.code, message: `this endpoint admits services/status, not services${req.subResource ? `/${req.subResource}` : ''}` });
    const problem = objectProblem(req);
    if (problem) return reply.status(400).send({ error: ERRORS.MALFORMED_REVIEW.code, message: problem });
    const outcome = validateServiceStatus(deps.state.pools, req);
    audit('services-status.admitlb.io', req, { decision: outcome.allowed ? 'allowed' : 'denied', reason: outcome.status?.message }, started);
    return reviewResponse(req.uid, outcome);
  });

  app.post('/validate/speaker-config', async (request, reply) => {
    const started = process.hrtime.bigint();
    const req = parseReview(request.body, SPEAKER_RESOURCES);
    if ('error' in req) return reply.status(400).send({ error: req.code, message: req.error });
    const problem = objectProblem(req);
    if (problem) return reply.status(400).send({ error: ERRORS.MALFORMED_REVIEW.code, message: problem });
    const kind = SPEAKER_CONFIG_RESOURCES[req.resource.resource]!;
    const name = req.name || String((req.object?.metadata as { name?: unknown } | undefined)?.name ?? '');
    let outcome: AdmissionOutcome;
    let auditFields: AuditFields;
    if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') {
      outcome = { allowed: true };
      auditFields = { decision: 'skipped', reason: `operation ${req.operation}`, name };
    } else {
      try {
        const problems = validateSpeakerConfig(kind, req.object, {
          pools: deps.state.pools,
          peers: deps.listBgpPeers?.() ?? [],
          advertisements: deps.listBgpAdvertisements?.() ?? [],
          ...(deps.poolLabels ? { poolLabels: (pool: string) => deps.poolLabels!(pool) } : {}),
        });
        outcome = problems.length
          ? denial(ERRORS.INVALID, `${kind} "${name}" is invalid: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`)
          : { allowed: true };
        auditFields = { decision: outcome.allowed ? 'allowed' : 'denied', reason: outcome.status?.message, name };
      } catch (err) {
        logger.error({ err, uid: req.uid }, 'admission failed');
        outcome = denial(ERRORS.INTERNAL, `admitlb could not decide: ${(err as Error).message}`);
        auditFields = { decision: 'error', reason: `internal error: ${(err as Error).message}`, name };
      }
    }
    audit('speaker-config.admitlb.io', req, auditFields, started);
    return reviewResponse(req.uid, outcome);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const r = readiness.ready();
    return reply.status(r.ok ? 200 : 503).send({ status: r.ok ? 'ready' : 'not ready', reasons: r.reasons });
  });
  app.get('/metrics', async (_request, reply) => {
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return app;
}

/**
 * The JSON body parser, with a budget for the bytes buffered at once over all connections: a body
 * that would take more than what is left is refused (503) before it is read, and what a body holds
 * is given back when it is parsed or its connection ends. Parsing itself is fastify's (same errors,
 * same protection against __proto__ keys).
 */
function budgetJsonBodies(app: FastifyInstance, budgetBytes: number, bodyLimit: number): void {
  let inUse = 0;
  const busy = () => Object.assign(new Error('too many request bodies are being received; retry'), { statusCode: ERRORS.BUSY.status, code: ERRORS.BUSY.code });
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (request, payload, done) => {
    const declared = Number(request.headers['content-length'] ?? NaN);
    if (declared > bodyLimit) return done(Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }), undefined);
    let held = 0;
    let finished = false;
    const chunks: Buffer[] = [];
    const release = () => {
      inUse -= held;
      held = 0;
    };
    const fail = (err: Error & { statusCode?: number; code?: string }) => {
      if (finished) return;
      finished = true;
      release();
      chunks.length = 0;
      payload.removeAllListeners('data');
      payload.resume();
      done(err, undefined);
    };
    // A declared length is reserved whole, up front: a slow body cannot sneak under the budget.
    const reserve = (n: number) => {
      if (inUse + n > budgetBytes) return false;
      inUse += n;
      held += n;
      return true;
    };
    if (Number.isFinite(declared) && declared > 0 && !reserve(declared)) {
      return fail(busy());
    }
    let received = 0;
    payload.on('data', (chunk: Buffer) => {
      if (finished) return;
      received += chunk.length;
      if (received > bodyLimit) return fail(Object.assign(new Error('Request body is too large'), { statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' }));
      if (received > held && !reserve(received - held)) return fail(busy());
      chunks.push(chunk);
    });
    payload.on('error', (err: Error) => fail(Object.assign(err, { statusCode: 400 })));
    payload.on('close', () => {
      if (!finished) fail(Object.assign(new Error('the request body was not finished'), { statusCode: 400, code: 'ADMITLB_ABORTED' }));
    });
    payload.on('end', () => {
      if (finished) return;
      finished = true;
      const body = Buffer.concat(chunks, received);
      chunks.length = 0;
      release();
      parse(request, body.toString('utf8'), done);
    });
  });
}
