// What a Service asks of admitlb, read from its annotations and spec: requested addresses, a named
// pool, a sharing key, families, ports and backend. Input errors come back as denials naming the
// field; deprecated forms come back as warnings.
import {
  DEPRECATED_PREFIX,
  IPS_ANNOTATIONS,
  POOL_ANNOTATIONS,
  SHARING_ANNOTATIONS,
} from '../config/annotations.ts';
import type { ServicePortRef } from '../config/schemas.ts';
import type { AdmissionConfig } from '../config/webhook-config.ts';
import { familyFromName, parseIP, AddressError, type IP } from '../allocation/addresses.ts';
import type { AllocationRequest, Denial, FamilyPolicy } from '../allocation/allocator.ts';
import type { Service } from '../kube/types.ts';

/** What the allocator needs from the Service, plus what only admission handles. */
export interface ServiceIntent extends Pick<AllocationRequest, 'families' | 'policy' | 'requested' | 'pool' | 'sharingKey' | 'ports' | 'backend'> {
  isLoadBalancer: boolean;
  externalIPs: { text: string; field: string }[];
  warnings: string[];
}

export const annotationField = (key: string) => `metadata.annotations[${key}]`;

function pickAnnotation(
  annotations: Record<string, string>,
  keys: readonly string[],
  warnings: string[],
): { key: string; value: string } | Denial | undefined {
  const present = keys.filter((k) => annotations[k] !== undefined && annotations[k]!.trim() !== '');
  if (present.length === 0) return undefined;
  const values = new Set(present.map((k) => annotations[k]!.trim()));
  if (values.size > 1) {
    return {
      field: annotationField(present[0]!),
      message: `conflicts with ${present.slice(1).map(annotationField).join(', ')}: set one of them`,
      error: 'BAD_REQUEST',
    };
  }
  for (const k of present) {
    if (k.startsWith(DEPRECATED_PREFIX)) warnings.push(`annotation ${k} is deprecated; use ${keys[0]}`);
  }
  return { key: present[0]!, value: annotations[present[0]!]!.trim() };
}

const isDenial = (v: unknown): v is Denial => typeof v === 'object' && v !== null && 'error' in v;

/** Canonical selector text: Services sharing an address under ETP Local need the same backend. */
export function backendOf(service: Service): string {
  if (service.spec?.externalTrafficPolicy !== 'Local') return '';
  const selector = service.spec.selector ?? {};
  return `local:${JSON.stringify(Object.keys(selector).sort().map((k) => [k, selector[k]]))}`;
}

export function readIntent(service: Service, config: AdmissionConfig): ServiceIntent | Denial {
  const spec = service.spec ?? {};
  const annotations = service.metadata.annotations ?? {};
  const warnings: string[] = [];
  const cls = spec.loadBalancerClass;
  const isLoadBalancer = spec.type === 'LoadBalancer' && (cls === undefined || cls === null || cls === config.loadBalancerClass);

  const poolAnn = pickAnnotation(annotations, POOL_ANNOTATIONS, warnings);
  if (isDenial(poolAnn)) return poolAnn;
  const ipsAnn = pickAnnotation(annotations, IPS_ANNOTATIONS, warnings);
  if (isDenial(ipsAnn)) return ipsAnn;
  const sharingAnn = pickAnnotation(annotations, SHARING_ANNOTATIONS, warnings);
  if (isDenial(sharingAnn)) return sharingAnn;

  let requested: ServiceIntent['requested'];
  if (isLoadBalancer) {
    let texts: string[] = [];
    let field = '';
    if (ipsAnn) {
      texts = ipsAnn.value.split(',').map((s) => s.trim()).filter(Boolean);
      field = annotationField(ipsAnn.key);
    }
    if (spec.loadBalancerIP) {
      warnings.push('spec.loadBalancerIP is deprecated; use the admitlb.io/ips annotation');
      if (!ipsAnn) {
        texts = [spec.loadBalancerIP];
        field = 'spec.loadBalancerIP';
      }
    }
    if (texts.length > 0) {
      const ips: IP[] = [];
      for (const t of texts) {
        try {
          ips.push(parseIP(t));
        } catch (err) {
          return { field, message: err instanceof AddressError ? err.message : String(err), error: 'BAD_REQUEST' };
        }
      }
      if (ipsAnn && spec.loadBalancerIP) {
        const lb = safeParse(spec.loadBalancerIP);
        if (!lb || !ips.some((ip) => ip.family === lb.family && ip.value === lb.value)) {
          return { field: 'spec.loadBalancerIP', message: `conflicts with ${field}`, error: 'BAD_REQUEST' };
        }
      }
      if (ips.length > 2) return { field, message: 'at most one address per family (two in all) may be requested', error: 'BAD_REQUEST' };
      requested = { ips, field };
    }
  }

  const families = (spec.ipFamilies?.length ? spec.ipFamilies : [config.defaultFamily]).map(familyFromName);
  const policy: FamilyPolicy = spec.ipFamilyPolicy ?? (families.length > 1 ? 'RequireDualStack' : 'SingleStack');

  const ports: ServicePortRef[] = (spec.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.port }));
  // The API server would reject these after admission; checked here, before anything is claimed,
  // with kube-apiserver's own wording (a claim listing such a port is refused by the IPClaim schema).
  const badPort = ports.findIndex((p) => !Number.isInteger(p.port) || p.port < 1 || p.port > 65535);
  if (badPort >= 0) {
    return { field: `spec.ports[${badPort}].port`, message: `Invalid value: ${ports[badPort]!.port}: must be between 1 and 65535, inclusive`, error: 'INVALID' };
  }
  const externalIPs = (spec.externalIPs ?? []).map((text, i) => ({ text, field: `spec.externalIPs[${i}]` }));
  if (externalIPs.length > 0) {
    warnings.push('spec.externalIPs is deprecated upstream (KEP-5707); prefer a LoadBalancer Service');
  }

  return {
    isLoadBalancer,
    families,
    policy,
    requested,
    pool: poolAnn ? { name: poolAnn.value, field: annotationField(poolAnn.key) } : undefined,
    sharingKey: sharingAnn?.value,
    ports,
    backend: backendOf(service),
    externalIPs,
    warnings,
  };
}

function safeParse(text: string): IP | undefined {
  try {
    return parseIP(text);
  } catch {
    return undefined;
  }
}
