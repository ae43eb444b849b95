// How kube-apiserver presents its identity to admitlb's webhook: an AdmissionConfiguration
// (`--admission-control-config-file`) whose two webhook plugins read one kubeconfig, and that
// kubeconfig's users, matched by webhook host, carrying the client certificate. One place for both
// `admitlb certs` (files for the operator's control plane) and the real-control-plane harness.
import { stringify } from 'yaml';
import { SERVICE_NAME, SERVICE_NAMESPACE } from './generate.ts';

/**
 * The kubeconfig user names kube-apiserver looks up for admitlb's in-cluster webhook: the Service's
 * DNS name, with and without the port (kube-apiserver tries `host:port`, then `host`, then `*`).
 */
export const IN_CLUSTER_WEBHOOK_USERS: readonly string[] = [`${SERVICE_NAME}.${SERVICE_NAMESPACE}.svc`, `${SERVICE_NAME}.${SERVICE_NAMESPACE}.svc:443`];

export type ClientCredential =
  | { certFile: string; keyFile: string }
  | { certPem: string; keyPem: string };

/** The kubeconfig the AdmissionConfiguration names: one user per webhook host, all with `credential`. */
export function webhookClientKubeconfig(users: readonly string[], credential: ClientCredential): string {
  const user =
    'certFile' in credential
      ? { 'client-certificate': credential.certFile, 'client-key': credential.keyFile }
      : { 'client-certificate-data': Buffer.from(credential.certPem).toString('base64'), 'client-key-data': Buffer.from(credential.keyPem).toString('base64') };
  return stringify({ apiVersion: 'v1', kind: 'Config', users: users.map((name) => ({ name, user })) });
}

/** The AdmissionConfiguration: both webhook admission plugins read `kubeconfigPath`. */
export function admissionConfiguration(kubeconfigPath: string): string {
  const plugin = (name: string) => ({
    name,
    configuration: { apiVersion: 'apiserver.config.k8s.io/v1', kind: 'WebhookAdmissionConfiguration', kubeConfigFile: kubeconfigPath },
  });
  return stringify({ apiVersion: 'apiserver.config.k8s.io/v1', kind: 'AdmissionConfiguration', plugins: [plugin('ValidatingAdmissionWebhook'), plugin('MutatingAdmissionWebhook')] });
}
