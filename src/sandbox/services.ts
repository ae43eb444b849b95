// Service REST semantics: defaulting (pkg/apis/core/v1/defaults.go SetDefaults_Service), validation
// (pkg/apis/core/validation/validation.go ValidateService, common subset), strategy
// (pkg/registry/core/service/strategy.go) and allocation (pkg/registry/core/service/storage/alloc.go).
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { familyName, formatIP, tryParseIP } from '../net/address.ts';
import { fieldErr, type FieldError } from './errors.ts';
import type { KubeObject } from './store.ts';

const serviceTypes = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const protocols = ['SCTP', 'TCP', 'UDP'];

function needsNodePorts(spec: KubeObject): boolean {
  return spec.type === 'NodePort' || (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
}

/** SetDefaults_Service (+ SetDefaults_ServicePort via targetPort defaulting, LoadBalancerIngress ipMode). */
export function defaultService(svc: KubeObject): void {
  svc.spec ??= {};
  const spec = svc.spec;
  spec.sessionAffinity ||= 'None';
  if (spec.sessionAffinity === 'ClientIP') {
    spec.sessionAffinityConfig ??= {};
    spec.sessionAffinityConfig.clientIP ??= {};
    spec.sessionAffinityConfig.clientIP.timeoutSeconds ??= 10800;
  }
  spec.type ||= 'ClusterIP';
  for (const p of (spec.ports ?? []) as KubeObject[]) {
    p.protocol ||= 'TCP';
    if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port;
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') spec.externalTrafficPolicy ||= 'Cluster';
  if (spec.type !== 'ExternalName') spec.internalTrafficPolicy ||= 'Cluster';
  if (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts === undefined) spec.allocateLoadBalancerNodePorts = true;
  for (const ing of (svc.status?.loadBalancer?.ingress ?? []) as KubeObject[]) {
    if (ing.ip && !ing.ipMode) ing.ipMode = 'VIP';
  }
}

const dns1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const ianaSvcName = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** ValidateService (common subset). */
export function validateService(svc: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = svc.spec ?? {};
  const name = svc.metadata?.name ?? '';
  if (name && (!dns1035.test(name) || name.length > 63)) {
    errs.push(fieldErr.invalid('metadata.name', name, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"));
  }
  if (!serviceTypes.includes(spec.type)) errs.push(fieldErr.notSupported('spec.type', spec.type, serviceTypes));
  const ports = (spec.ports ?? []) as KubeObject[];
  if (ports.length === 0 && spec.type !== 'ExternalName' && spec.clusterIP !== 'None') errs.push(fieldErr.required('spec.ports'));
  const seenNames = new Set<string>();
  const seenPortProto = new Set<string>();
  ports.forEach((p, i) => {
    const f = `spec.ports[${i}]`;
    if (ports.length > 1 && !p.name) errs.push(fieldErr.required(`${f}.name`));
    else if (p.name) {
      if (!ianaSvcName.test(p.name) || p.name.length > 15) errs.push(fieldErr.invalid(`${f}.name`, p.name, 'must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'));
      if (seenNames.has(p.name)) errs.push(fieldErr.duplicate(`${f}.name`, p.name));
      seenNames.add(p.name);
    }
    if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) errs.push(fieldErr.invalid(`${f}.port`, p.port ?? 0, 'must be between 1 and 65535, inclusive'));
    if (!protocols.includes(p.protocol)) errs.push(fieldErr.notSupported(`${f}.protocol`, p.protocol, protocols));
    const key = `${p.port}/${p.protocol}`;
    if (seenPortProto.has(key)) errs.push(fieldErr.duplicate(`spec.ports[${i}]`, `${p.port}/${p.protocol}`));
    seenPortProto.add(key);
    if (typeof p.targetPort === 'number' && (p.targetPort < 1 || p.targetPort > 65535)) errs.push(fieldErr.invalid(`${f}.targetPort`, p.targetPort, 'must be between 1 and 65535, inclusive'));
    if (p.nodePort !== undefined && p.nodePort !== 0) {
      if (spec.type === 'ClusterIP') errs.push(fieldErr.forbidden(`${f}.nodePort`, "may not be used when `type` is 'ClusterIP'"));
      else if (p.nodePort < 1 || p.nodePort > 65535) errs.push(fieldErr.invalid(`${f}.nodePort`, p.nodePort, 'must be between 1 and 65535, inclusive'));
    }
  });
  if (spec.type === 'ExternalName') {
    if (!spec.externalName) errs.push(fieldErr.required('spec.externalName'));
    if (spec.clusterIP && spec.clusterIP !== '') errs.push(fieldErr.forbidden('spec.clusterIP', 'may not be set for ExternalName services'));
  }
  for (const [i, ip] of ((spec.externalIPs ?? []) as string[]).entries()) {
    if (!isIP(ip)) errs.push(fieldErr.invalid(`spec.externalIPs[${i}]`, ip, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'));
  }
  if (spec.loadBalancerIP && spec.type !== 'LoadBalancer') {
    // not an error in kube (ignored), kept lenient like kube
  }
  if (spec.loadBalancerIP && !isIP(spec.loadBalancerIP)) errs.push(fieldErr.invalid('spec.loadBalancerIP', spec.loadBalancerIP, 'must be a valid IP address'));
  if (spec.loadBalancerClass !== undefined && spec.type !== 'LoadBalancer') errs.push(fieldErr.forbidden('spec.loadBalancerClass', 'may only be used when `type` is \'LoadBalancer\''));
  if (spec.allocateLoadBalancerNodePorts !== undefined && spec.type !== 'LoadBalancer') errs.push(fieldErr.forbidden('spec.allocateLoadBalancerNodePorts', 'may only be used when `type` is \'LoadBalancer\''));
  if (spec.externalTrafficPolicy && !['Cluster', 'Local'].includes(spec.externalTrafficPolicy)) errs.push(fieldErr.notSupported('spec.externalTrafficPolicy', spec.externalTrafficPolicy, ['Cluster', 'Local']));
  if (spec.externalTrafficPolicy && spec.type !== 'NodePort' && spec.type !== 'LoadBalancer' && !(spec.externalIPs?.length > 0)) {
    errs.push(fieldErr.invalid('spec.externalTrafficPolicy', spec.externalTrafficPolicy, 'may only be set for externally-accessible services'));
  }
  if (!['None', 'ClientIP'].includes(spec.sessionAffinity)) errs.push(fieldErr.notSupported('spec.sessionAffinity', spec.sessionAffinity, ['ClientIP', 'None']));
  if (spec.ipFamilyPolicy && !['SingleStack', 'PreferDualStack', 'RequireDualStack'].includes(spec.ipFamilyPolicy)) {
    errs.push(fieldErr.notSupported('spec.ipFamilyPolicy', spec.ipFamilyPolicy, ['PreferDualStack', 'RequireDualStack', 'SingleStack']));
  }
  for (const [i, fam] of ((spec.ipFamilies ?? []) as string[]).entries()) {
    if (fam !== 'IPv4' && fam !== 'IPv6') errs.push(fieldErr.notSupported(`spec.ipFamilies[${i}]`, fam, ['IPv4', 'IPv6']));
  }
  for (const [i, cidr] of ((spec.loadBalancerSourceRanges ?? []) as string[]).entries()) {
    const [ip, bits] = cidr.split('/');
    if (!ip || !isIP(ip) || bits === undefined || !/^\d+$/.test(bits)) errs.push(fieldErr.invalid(`spec.loadBalancerSourceRanges[${i}]`, cidr, 'must be a valid IP address or CIDR'));
  }
  return errs;
}

/**
 * ValidateServiceStatusUpdate → ValidateLoadBalancerStatus (1.29+, AllowServiceLBStatusOnNonLB off): an
 * ingress only on a LoadBalancer Service, ipMode only with an ip, and VIP or Proxy.
 */
export function validateServiceStatus(svc: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  const ingress = (svc.status?.loadBalancer?.ingress ?? []) as KubeObject[];
  if (svc.spec?.type !== 'LoadBalancer' && ingress.length) return [fieldErr.forbidden('status.loadBalancer.ingress', "may only be used when `spec.type` is 'LoadBalancer'")];
  for (const [i, ing] of ingress.entries()) {
    const f = `status.loadBalancer.ingress[${i}]`;
    if (ing.ip && !isIP(ing.ip)) errs.push(fieldErr.invalid(`${f}.ip`, ing.ip, 'must be a valid IP address'));
    if (ing.ip && !ing.ipMode) errs.push(fieldErr.required(`${f}.ipMode`, 'must be specified when `ip` is set'));
    else if (ing.ipMode && !ing.ip) errs.push(fieldErr.forbidden(`${f}.ipMode`, 'may not be specified when `ip` is not set'));
    else if (ing.ipMode && !['VIP', 'Proxy'].includes(ing.ipMode)) errs.push(fieldErr.notSupported(`${f}.ipMode`, ing.ipMode, ['Proxy', 'VIP']));
  }
  return errs;
}

/** ValidateServiceUpdate: clusterIP(s) are immutable unless the type changes to/from ExternalName. */
export function validateServiceUpdate(svc: KubeObject, old: KubeObject): FieldError[] {
  const errs = validateService(svc);
  const oldIPs = (old.spec?.clusterIPs ?? []) as string[];
  const newIPs = (svc.spec?.clusterIPs ?? []) as string[];
  if (old.spec?.type !== 'ExternalName' && svc.spec?.type !== 'ExternalName' && oldIPs.length > 0 && newIPs[0] !== oldIPs[0]) {
    errs.push(fieldErr.invalid('spec.clusterIPs[0]', newIPs, 'may not change once set'));
  }
  if (old.spec?.loadBalancerClass !== undefined && old.spec?.type === 'LoadBalancer' && svc.spec?.type === 'LoadBalancer' && svc.spec?.loadBalancerClass !== old.spec.loadBalancerClass) {
    errs.push(fieldErr.invalid('spec.loadBalancerClass', svc.spec?.loadBalancerClass ?? null, 'may not change once set'));
  }
  return errs;
}

// ---- allocation ----

export interface ServiceNetwork {
  /** primary family first, e.g. ["10.96.0.0/16", "fd00:10:96::/112"] */
  serviceCidrs: string[];
  nodePortRange: [number, number];
}

export const defaultServiceNetwork: ServiceNetwork = {
  serviceCidrs: ['10.96.0.0/16', 'fd00:10:96::/112'],
  nodePortRange: [30000, 32767],
};

// Arithmetic on addresses the validation above accepted (isIP, as kube-apiserver's parser), through
// admitlb's one parser and formatter.
const ipToBigInt = (ip: string): bigint => tryParseIP(ip)?.value ?? 0n;
const bigIntToIp = (n: bigint, v6: boolean): string => formatIP({ family: v6 ? 6 : 4, value: n });

export function familyOf(ip: string): 'IPv4' | 'IPv6' | undefined {
  const parsed = tryParseIP(ip);
  return parsed ? familyName(parsed.family) : undefined;
}

function cidrContains(cidr: string, ip: string): boolean {
  const [base, bitsS] = cidr.split('/');
  const v6 = base!.includes(':');
  if ((familyOf(ip) === 'IPv6') !== v6) return false;
  const width = v6 ? 128n : 32n;
  const bits = BigInt(Number(bitsS));
  const mask = ((1n << width) - 1n) ^ ((1n << (width - bits)) - 1n);
  return (ipToBigInt(base!) & mask) === (ipToBigInt(ip) & mask);
}

function normalizeIp(ip: string): string {
  return bigIntToIp(ipToBigInt(ip), familyOf(ip) === 'IPv6');
}

export interface AllocationState {
  usedIps: Set<string>;
  usedNodePorts: Set<string>;
}

/** Result of BeginCreate/BeginUpdate: the allocations to hold until the commit lands (or is abandoned). */
export interface Allocation {
  ips: string[];
  nodePorts: string[];
}

export class ServiceAllocator {
  /** in-flight allocations of requests between BeginCreate and commit */
  private readonly reserved: AllocationState = { usedIps: new Set(), usedNodePorts: new Set() };

  constructor(readonly network: ServiceNetwork, private readonly listServices: () => Iterable<Readonly<KubeObject>>) {}

  private usage(excludeUid?: string): AllocationState {
    const st: AllocationState = { usedIps: new Set(this.reserved.usedIps), usedNodePorts: new Set(this.reserved.usedNodePorts) };
    for (const s of this.listServices()) {
      if (excludeUid && s.metadata?.uid === excludeUid) continue;
      for (const ip of (s.spec?.clusterIPs ?? []) as string[]) if (ip !== 'None') st.usedIps.add(normalizeIp(ip));
      for (const p of (s.spec?.ports ?? []) as KubeObject[]) if (p.nodePort) st.usedNodePorts.add(`${p.protocol}/${p.nodePort}`);
      if (s.spec?.healthCheckNodePort) st.usedNodePorts.add(`TCP/${s.spec.healthCheckNodePort}`);
    }
    return st;
  }

  release(a: Allocation): void {
    for (const ip of a.ips) this.reserved.usedIps.delete(ip);
    for (const p of a.nodePorts) this.reserved.usedNodePorts.delete(p);
  }

  private cidrFor(family: string): string | undefined {
    return this.network.serviceCidrs.find((c) => (c.includes(':') ? 'IPv6' : 'IPv4') === family);
  }

  private randomIp(family: string, used: Set<string>): string {
    const cidr = this.cidrFor(family)!;
    const [base, bitsS] = cidr.split('/');
    const v6 = family === 'IPv6';
    const hostBits = (v6 ? 128 : 32) - Number(bitsS);
    const size = 1n << BigInt(hostBits);
    const start = ipToBigInt(base!);
    // kube reserves the network address (and broadcast for v4) and, for /28+ ranges, prefers the upper part
    // for dynamic allocation; uniform random over usable offsets is close enough here.
    const usable = size - 2n;
    for (let attempt = 0; attempt < 1000; attempt++) {
      const off = 1n + (BigInt(randomInt(0, 2 ** 31 - 1)) % usable);
      const ip = bigIntToIp(start + off, v6);
      if (!used.has(ip)) return ip;
    }
    throw new Error(`range is full`);
  }

  /**
   * Allocates clusterIPs, ipFamilies/ipFamilyPolicy, nodePorts and healthCheckNodePort (alloc.go
   * allocateCreate / allocateUpdate). Mutates svc; returns the reservation or a list of field errors.
   */
  allocate(svc: KubeObject, old: KubeObject | undefined): { allocation: Allocation; errors: FieldError[] } {
    const spec = svc.spec;
    const allocation: Allocation = { ips: [], nodePorts: [] };
    const errors: FieldError[] = [];
    const st = this.usage(old?.metadata?.uid);
    if (spec.type === 'ExternalName') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
      delete spec.ipFamilies;
      delete spec.ipFamilyPolicy;
    } else {
      // patchAllocatedValues: an update that omits allocated values keeps them (storage.go).
      if (old && old.spec?.type !== 'ExternalName') {
        if (!spec.clusterIP && old.spec?.clusterIP) spec.clusterIP = old.spec.clusterIP;
        if (!spec.clusterIPs?.length && old.spec?.clusterIPs) spec.clusterIPs = [...old.spec.clusterIPs];
        if (!spec.ipFamilies?.length && old.spec?.ipFamilies) spec.ipFamilies = [...old.spec.ipFamilies];
        if (!spec.ipFamilyPolicy && old.spec?.ipFamilyPolicy) spec.ipFamilyPolicy = old.spec.ipFamilyPolicy;
      }
      if (spec.clusterIP && !spec.clusterIPs?.length) spec.clusterIPs = [spec.clusterIP];
      if (spec.clusterIPs?.length && !spec.clusterIP) spec.clusterIP = spec.clusterIPs[0];
      if (spec.clusterIP && spec.clusterIPs?.[0] !== spec.clusterIP) {
        errors.push(fieldErr.invalid('spec.clusterIPs', spec.clusterIPs, 'first value must match `clusterIP`'));
        return { allocation, errors };
      }
      const headless = spec.clusterIP === 'None';
      const primaryFamily = (this.network.serviceCidrs[0] ?? '').includes(':') ? 'IPv6' : 'IPv4';
      if (!spec.ipFamilyPolicy) {
        spec.ipFamilyPolicy = headless && !spec.selector && this.network.serviceCidrs.length > 1 ? 'RequireDualStack' : (spec.ipFamilies?.length ?? 0) > 1 ? 'RequireDualStack' : 'SingleStack';
      }
      if (!spec.ipFamilies?.length) {
        const fromIps = ((spec.clusterIPs ?? []) as string[]).map(familyOf).filter((f): f is 'IPv4' | 'IPv6' => !!f);
        spec.ipFamilies = fromIps.length ? fromIps : [primaryFamily];
      }
      if (spec.ipFamilyPolicy !== 'SingleStack' && spec.ipFamilies.length < 2 && this.network.serviceCidrs.length > 1) {
        spec.ipFamilies.push(spec.ipFamilies[0] === 'IPv4' ? 'IPv6' : 'IPv4');
      }
      if (spec.ipFamilyPolicy === 'RequireDualStack' && this.network.serviceCidrs.length < 2) {
        errors.push(fieldErr.invalid('spec.ipFamilyPolicy', spec.ipFamilyPolicy, 'this cluster is not configured for dual-stack services'));
        return { allocation, errors };
      }
      for (const [i, fam] of (spec.ipFamilies as string[]).entries()) {
        if (!this.cidrFor(fam)) errors.push(fieldErr.invalid(`spec.ipFamilies[${i}]`, fam, 'not configured on this cluster'));
      }
      if (errors.length) return { allocation, errors };
      if (headless) {
        spec.clusterIPs = ['None'];
      } else {
        const ips = [...((spec.clusterIPs ?? []) as string[])];
        for (const [i, fam] of (spec.ipFamilies as string[]).entries()) {
          const wanted = ips[i];
          const alreadyMine = old?.spec?.clusterIPs?.includes(wanted);
          if (wanted) {
            if (familyOf(wanted) !== fam) {
              errors.push(fieldErr.invalid(`spec.clusterIPs[${i}]`, wanted, `expected an IPv${fam === 'IPv4' ? 4 : 6} value as indicated by \`ipFamilies[${i}]\``));
              continue;
            }
            if (alreadyMine) continue;
            const n = normalizeIp(wanted);
            if (!cidrContains(this.cidrFor(fam)!, wanted)) {
              errors.push(fieldErr.invalid(`spec.clusterIPs`, [wanted], `failed to allocate IP ${wanted}: the provided network does not match the current range`));
              continue;
            }
            if (st.usedIps.has(n)) {
              errors.push(fieldErr.invalid(`spec.clusterIPs`, [wanted], `failed to allocate IP ${wanted}: provided IP is already allocated`));
              continue;
            }
            st.usedIps.add(n);
            allocation.ips.push(n);
          } else {
            const ip = this.randomIp(fam, st.usedIps);
            st.usedIps.add(ip);
            allocation.ips.push(ip);
            ips[i] = ip;
          }
        }
        spec.clusterIPs = ips.slice(0, spec.ipFamilies.length);
        spec.clusterIP = spec.clusterIPs[0];
      }
    }
    // node ports
    const ports = (spec.ports ?? []) as KubeObject[];
    if (needsNodePorts(spec)) {
      const byPort = new Map<number, number>();
      for (const p of ports) {
        if (!p.nodePort && old) {
          // patchAllocatedValues: keep the old nodePort of the same-named (or only) port
          const oldPorts = (old.spec?.ports ?? []) as KubeObject[];
          const match = oldPorts.find((op) => op.name === p.name && op.nodePort) ?? (oldPorts.length === 1 && ports.length === 1 ? oldPorts[0] : undefined);
          if (match?.nodePort) p.nodePort = match.nodePort;
        }
      }
      const oldNodePorts = new Set(((old?.spec?.ports ?? []) as KubeObject[]).map((p) => `${p.protocol}/${p.nodePort}`));
      ports.forEach((p, i) => {
        if (p.nodePort) {
          const key = `${p.protocol}/${p.nodePort}`;
          if (oldNodePorts.has(key) || byPort.get(p.port) === p.nodePort) return;
          const [lo, hi] = this.network.nodePortRange;
          if (p.nodePort < lo || p.nodePort > hi) {
            errors.push(fieldErr.invalid(`spec.ports[${i}].nodePort`, p.nodePort, `provided port is not in the valid range. The range of valid ports is ${lo}-${hi}`));
            return;
          }
          if (st.usedNodePorts.has(key)) {
            errors.push(fieldErr.invalid(`spec.ports[${i}].nodePort`, p.nodePort, 'provided port is already allocated'));
            return;
          }
          st.usedNodePorts.add(key);
          allocation.nodePorts.push(key);
          byPort.set(p.port, p.nodePort);
          return;
        }
        // ports sharing a number (e.g. TCP and UDP 53) share one nodePort
        const shared = byPort.get(p.port);
        const np = shared ?? this.randomNodePort(p.protocol, st.usedNodePorts);
        p.nodePort = np;
        const key = `${p.protocol}/${np}`;
        st.usedNodePorts.add(key);
        allocation.nodePorts.push(key);
        byPort.set(p.port, np);
      });
    }
    // healthCheckNodePort for LoadBalancer + externalTrafficPolicy Local
    if (spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local') {
      if (!spec.healthCheckNodePort && old?.spec?.healthCheckNodePort) spec.healthCheckNodePort = old.spec.healthCheckNodePort;
      if (!spec.healthCheckNodePort) {
        const np = this.randomNodePort('TCP', st.usedNodePorts);
        spec.healthCheckNodePort = np;
        allocation.nodePorts.push(`TCP/${np}`);
      }
    } else {
      delete spec.healthCheckNodePort;
    }
    if (errors.length) return { allocation: { ips: [], nodePorts: [] }, errors };
    for (const ip of allocation.ips) this.reserved.usedIps.add(ip);
    for (const p of allocation.nodePorts) this.reserved.usedNodePorts.add(p);
    return { allocation, errors };
  }

  private randomNodePort(protocol: string, used: Set<string>): number {
    const [lo, hi] = this.network.nodePortRange;
    for (let attempt = 0; attempt < 10000; attempt++) {
      const np = randomInt(lo, hi + 1);
      if (!used.has(`${protocol}/${np}`)) return np;
    }
    throw new Error('node port range is full');
  }
}

/** strategy.go dropTypeDependentFields: fields that no longer apply after a type change are cleared. */
export function dropTypeDependentFields(svc: KubeObject, old: KubeObject): void {
  const spec = svc.spec;
  const oldSpec = old.spec ?? {};
  if (spec.type === oldSpec.type) return;
  if (spec.type !== 'LoadBalancer') {
    if (spec.allocateLoadBalancerNodePorts === oldSpec.allocateLoadBalancerNodePorts) delete spec.allocateLoadBalancerNodePorts;
    if (spec.loadBalancerClass === oldSpec.loadBalancerClass) delete spec.loadBalancerClass;
  }
  if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') {
    if (spec.externalTrafficPolicy === oldSpec.externalTrafficPolicy && !(spec.externalIPs?.length > 0)) delete spec.externalTrafficPolicy;
    for (const [i, p] of ((spec.ports ?? []) as KubeObject[]).entries()) {
      if (p.nodePort && p.nodePort === oldSpec.ports?.[i]?.nodePort) delete p.nodePort;
    }
  }
}
