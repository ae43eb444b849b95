// predicates/rules (k8s.io/apiserver/pkg/admission/plugin/webhook/predicates/rules): whether a rule of a
// webhook or of a policy's matchConstraints matches the request. Subresources are named `x/status`,
// `*/*` or `x/*`; `resourceNames` (policies only) restricts by object name; scope `Cluster` includes
// Namespace objects themselves.
import type { AdmissionAttributes } from './admission.ts';
import type { KubeObject } from './store.ts';

export function ruleMatches(rule: KubeObject, a: AdmissionAttributes): boolean {
  const ops: string[] = rule.operations ?? [];
  if (!ops.includes('*') && !ops.includes(a.operation)) return false;
  const groups: string[] = rule.apiGroups ?? [];
  if (!groups.includes('*') && !groups.includes(a.def.group)) return false;
  const versions: string[] = rule.apiVersions ?? [];
  if (!versions.includes('*') && !versions.includes(a.def.version)) return false;
  const resOk = ((rule.resources ?? []) as string[]).some((r) => {
    if (r === '*/*') return true;
    const [rr, rs] = r.split('/') as [string, string | undefined];
    if (rs === undefined) return a.subresource === '' && (rr === '*' || rr === a.def.resource);
    return (rr === '*' || rr === a.def.resource) && (rs === '*' || rs === a.subresource);
  });
  if (!resOk) return false;
  const names: string[] = rule.resourceNames ?? [];
  if (names.length && !names.includes(a.name)) return false;
  const isNamespaceResource = a.def.group === '' && a.def.resource === 'namespaces';
  switch (rule.scope ?? '*') {
    case 'Cluster':
      return a.namespace === '' || isNamespaceResource;
    case 'Namespaced':
      return !isNamespaceResource && a.namespace !== '';
    default:
      return true;
  }
}
