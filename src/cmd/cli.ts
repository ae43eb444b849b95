// The admitlb command line: one binary, several roles.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, parseServerConfig, runWebhookCommand } from './webhook.ts';
import { parseControllerCommandConfig, runControllerCommand } from './controller.ts';
import { parseCertsArgs, runCertsCommand } from '../certs/command.ts';
import { parseInClusterCertsArgs, runInClusterCerts } from '../certs/in-cluster.ts';
import { runSandboxCommand } from './sandbox.ts';
import { parseSpeakerConfig, runSpeakerCommand } from './speaker.ts';
import { isPluginCommand, PLUGIN_COMMANDS, runPlugin } from './plugin.ts';
import { processIO } from '../kubectl/io.ts';

const USAGE = `usage: admitlb <command> [flags]

commands:
  webhook   run the admission webhook (HTTPS)
              --tls-cert-file F --tls-key-file F --signing-keys-dir D
              [--client-ca-file F | --client-token-file F]  only the API server may call admission
                                                             (its AdmissionConfiguration identity)
              [--host 0.0.0.0] [--port 9443] [--kubeconfig F] [--log-level info]
              [--load-balancer-class C] [--default-family IPv4|IPv6] [--external-ip-mode enforce|warn|off]
              [--max-unconfirmed-claims 16]
              [--controller on|off] [--lease-namespace admitlb-system] [--orphan-grace-seconds 60]
            runs the leader-elected controller beside the webhook unless --controller off
  controller
            run the controller alone (status, Events, claims, back-stop, pool changes), with
            /healthz, /readyz and /metrics on plain HTTP
              --signing-keys-dir D [--host 0.0.0.0] [--port 9444] [--kubeconfig F] [--log-level info]
              [--lease-namespace admitlb-system] [--orphan-grace-seconds 60] and the admission flags
  speaker   run the node speaker (one per node, hostNetwork): announces verified addresses by
            ARP/NDP (L2Advertisement) and BGP (BGPPeer, BGPAdvertisement), with /healthz, /readyz
            and /metrics on plain HTTP
              --node-name N (or NODE_NAME) --signing-keys-dir D [--kubeconfig F]
              [--namespace admitlb-system] [--host 0.0.0.0] [--port 7472] [--log-level info]
              [--heartbeat-keys-dir D (or ADMITLB_HEARTBEAT_KEYS_DIR)]
              [--heartbeat-address 0.0.0.0 (or ADMITLB_HEARTBEAT_ADDRESS)]
              [--heartbeat-port 7473 (or ADMITLB_HEARTBEAT_PORT)] [--heartbeat-interval-ms 100]
              [--heartbeat-missed 3] [--lease-duration-seconds 40|1.5] [--lease-renew-ms 10000|375]
              (the Lease defaults: with heartbeats | without)
  sandbox   a local cluster with nothing else installed (what \`npm start\` runs): the API server
            double with admitlb's CRDs, webhooks and a default pool; prints the kubeconfig to use
              [--data-dir .sandbox] [--listen 127.0.0.1:6443] [--webhook-port 0]
              [--control-plane sandbox|real]  real: etcd + kube-apiserver + kube-controller-manager
                                               (npm run cluster:build first; data in .sandbox-real)
  dev       run the webhook locally against the current kubeconfig, generating certs/ if needed
  certs     generate the webhook CA, serving certificate and signing key into certs/
            and wire them into webhook-manifests/ (see certs/README.md)
              --in-cluster [--kubeconfig F] [--namespace admitlb-system] [--api-server-auth ...]
              [--cert-manager] [--days N]: the same as Secrets and ConfigMaps in the cluster, and
              the webhook configurations' caBundle (the Helm chart's hook Job; idempotent)
${PLUGIN_COMMANDS.map((c) => `  ${c.name.padEnd(10)}${c.summary}`).join('\n')}
            (the kubectl plugin's commands: also \`kubectl admitlb <command>\`)
  help      show this text`;

/** Flags every long-running role takes. */
const PROCESS_FLAGS = {
  'signing-keys-dir': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  kubeconfig: { type: 'string' },
  'log-level': { type: 'string' },
} as const;

const ADMISSION_FLAGS = {
  'load-balancer-class': { type: 'string' },
  'default-family': { type: 'string' },
  'external-ip-mode': { type: 'string' },
  'max-unconfirmed-claims': { type: 'string' },
} as const;

const CONTROLLER_FLAGS = {
  controller: { type: 'string' },
  'lease-namespace': { type: 'string' },
  'orphan-grace-seconds': { type: 'string' },
} as const;

const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const numberFlag = (v: string | boolean | undefined) => (typeof v === 'string' ? Number(v) : undefined);

function processFlags(values: Record<string, string | boolean | undefined>) {
  return defined({
    signingKeysDir: values['signing-keys-dir'],
    host: values.host,
    port: numberFlag(values.port),
    kubeconfig: values.kubeconfig,
    logLevel: values['log-level'],
  });
}

function admissionFlags(values: Record<string, string | boolean | undefined>) {
  return defined({
    loadBalancerClass: values['load-balancer-class'],
    defaultFamily: values['default-family'],
    externalIPMode: values['external-ip-mode'],
    maxUnconfirmedClaims: numberFlag(values['max-unconfirmed-claims']),
  });
}

function controllerFlags(values: Record<string, string | boolean | undefined>) {
  const enabled = values.controller;
  if (enabled !== undefined && enabled !== 'on' && enabled !== 'off') throw new ConfigError(`invalid configuration:\n  controller: expected on or off, got ${String(enabled)}`);
  return defined({
    enabled: enabled === undefined ? undefined : enabled === 'on',
    leaseNamespace: values['lease-namespace'],
    orphanGraceSeconds: numberFlag(values['orphan-grace-seconds']),
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // The kubectl plugin's subcommands, one registry for both entry points.
  if (isPluginCommand(command)) return runPlugin(argv, processIO, 'admitlb');
  switch (command) {
    case 'webhook': {
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: {
          'tls-cert-file': { type: 'string' },
          'tls-key-file': { type: 'string' },
          'client-ca-file': { type: 'string' },
          'client-token-file': { type: 'string' },
          ...PROCESS_FLAGS,
          ...ADMISSION_FLAGS,
          ...CONTROLLER_FLAGS,
        },
      });
      const config = parseServerConfig({
        tlsCertFile: values['tls-cert-file'],
        tlsKeyFile: values['tls-key-file'],
        clientCaFile: values['client-ca-file'],
        clientTokenFile: values['client-token-file'],
        ...processFlags(values),
        admission: admissionFlags(values),
        controller: controllerFlags(values),
      });
      await runWebhookCommand(config);
      return -1; // keeps running
    }
    case 'controller': {
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: { ...PROCESS_FLAGS, ...ADMISSION_FLAGS, ...CONTROLLER_FLAGS },
      });
      const config = parseControllerCommandConfig({
        ...processFlags(values),
        admission: admissionFlags(values),
        controller: controllerFlags(values),
      });
      await runControllerCommand(config);
      return -1;
    }
    case 'speaker': {
      const { values } = parseArgs({
        args: rest,
        strict: true,
        options: {
          'node-name': { type: 'string' },
          ...PROCESS_FLAGS,
          namespace: { type: 'string' },
          'lease-duration-seconds': { type: 'string' },
          'lease-renew-ms': { type: 'string' },
          'heartbeat-keys-dir': { type: 'string' },
          'heartbeat-address': { type: 'string' },
          'heartbeat-port': { type: 'string' },
          'heartbeat-interval-ms': { type: 'string' },
          'heartbeat-missed': { type: 'string' },
          'command-prefix': { type: 'string' },
        },
      });
      const config = parseSpeakerConfig(
        defined({
          nodeName: values['node-name'] ?? process.env.NODE_NAME,
          ...processFlags(values),
          namespace: values.namespace,
          leaseDurationSeconds: numberFlag(values['lease-duration-seconds']),
          leaseRenewMs: numberFlag(values['lease-renew-ms']),
          heartbeatKeysDir: values['heartbeat-keys-dir'] ?? (process.env.ADMITLB_HEARTBEAT_KEYS_DIR || undefined),
          heartbeatAddress: values['heartbeat-address'] ?? (process.env.ADMITLB_HEARTBEAT_ADDRESS || undefined),
          heartbeatPort: numberFlag(values['heartbeat-port'] ?? (process.env.ADMITLB_HEARTBEAT_PORT || undefined)),
          heartbeatIntervalMs: numberFlag(values['heartbeat-interval-ms']),
          heartbeatMissed: numberFlag(values['heartbeat-missed']),
          commandPrefix: values['command-prefix']?.split(' ').filter(Boolean),
        }),
      );
      await runSpeakerCommand(config);
      return -1;
    }
    case 'sandbox':
      return runSandboxCommand(rest);
    case 'dev': {
      // The local quick start: certificates and a signing key from certs/ (generated on first run).
      if (!existsSync('certs/tls.crt') || !existsSync('certs/signing/active')) {
        await runCertsCommand({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
      }
      const config = parseServerConfig({
        host: '127.0.0.1',
        tlsCertFile: 'certs/tls.crt',
        tlsKeyFile: 'certs/tls.key',
        signingKeysDir: 'certs/signing',
        kubeconfig: process.env.KUBECONFIG || undefined,
      });
      await runWebhookCommand(config);
      return -1;
    }
    case 'certs': {
      if (rest.includes('--in-cluster')) {
        const result = await runInClusterCerts({ ...parseInClusterCertsArgs(rest), log: (line) => console.error(line) });
        console.log(JSON.stringify(result));
        return 0;
      }
      const result = await runCertsCommand({ ...parseCertsArgs(rest), log: (line) => console.error(line) });
      console.log(`certificates in ${result.certsDir}; manifests wired in ${result.generatedDir}`);
      if (result.apiServerClient) {
        console.log(`next: configure kube-apiserver with ${result.apiServerClient.admissionConfigurationFile} (README, Security), then kubectl apply -k webhook-manifests/`);
      } else console.log('next: kubectl apply -k webhook-manifests/');
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command ? 0 : 2;
    default:
      console.error(`admitlb: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

