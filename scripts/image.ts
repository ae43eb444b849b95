// npm run image: builds the admitlb image from the Dockerfile with docker, podman or buildah (the
// first that works here: a docker client without a reachable engine does not count), tagged with the
// reference the manifests use, and optionally pushes it and records another reference there.
//
// The one place the image reference lives is the `images:` entry of webhook-manifests/kustomization.yaml
// for the placeholder ghcr.io/admitlb/admitlb (newName + newTag, or newName + digest); the manifests
// and the Helm chart take it from there.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isMap, isSeq, parseDocument, YAMLMap } from 'yaml';

export const PROJECT_ROOT = resolve(import.meta.dirname, '..');
/** The image name the manifests carry; kustomization.yaml's `images:` entry says what it stands for. */
export const PLACEHOLDER = 'ghcr.io/admitlb/admitlb';
export const TOOLS = ['docker', 'podman', 'buildah'] as const;
export type Tool = (typeof TOOLS)[number];

export interface ImageReference {
  repository: string;
  tag?: string;
  digest?: string;
}

// [host[:port]/]path, lower-case path components (the distribution spec's grammar, slightly relaxed on
// the host); a tag of up to 128 word characters, dots and dashes; a sha256 digest.
const REPOSITORY = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function parseReference(text: string): ImageReference | Error {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return new Error(`${text}: the digest must be sha256:<64 hex digits>`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return new Error(`${text}: invalid tag "${tag}"`);
  }
  if (!REPOSITORY.test(rest)) return new Error(`${text}: invalid repository "${rest}" (lower-case path, e.g. registry.example.com/team/admitlb)`);
  if (tag !== undefined && digest !== undefined) return new Error(`${text}: give a tag or a digest, not both`);
  return { repository: rest, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

export function formatReference(r: ImageReference): string {
  return r.digest ? `${r.repository}@${r.digest}` : r.tag ? `${r.repository}:${r.tag}` : r.repository;
}

interface ImagesEntry {
  name?: unknown;
  newName?: unknown;
  newTag?: unknown;
  digest?: unknown;
}

/** The reference the `images:` entry for the placeholder names. */
export function readManifestImage(kustomizationPath: string): ImageReference | Error {
  const k = parseDocument(readFileSync(kustomizationPath, 'utf8')).toJS() as { images?: ImagesEntry[] } | null;
  const entry = k?.images?.find((i) => i.name === PLACEHOLDER);
  if (!entry) return new Error(`${kustomizationPath}: no images: entry with name ${PLACEHOLDER}`);
  const repository = typeof entry.newName === 'string' ? entry.newName : PLACEHOLDER;
  if (typeof entry.digest === 'string') return parseReference(`${repository}@${entry.digest}`);
  if (entry.newTag !== undefined) return parseReference(`${repository}:${String(entry.newTag)}`);
  return new Error(`${kustomizationPath}: the images: entry for ${PLACEHOLDER} has neither newTag nor digest`);
}

/** Points the placeholder's `images:` entry at ref, keeping the file's comments. */
export function writeManifestImage(kustomizationPath: string, ref: ImageReference): void {
  const doc = parseDocument(readFileSync(kustomizationPath, 'utf8'));
  let images = doc.get('images');
  if (!isSeq(images)) {
    images = doc.createNode([]);
    doc.set('images', images);
  }
  if (!isSeq(images)) throw new Error('unreachable: images is a sequence');
  let entry = images.items.find((i) => isMap(i) && i.get('name') === PLACEHOLDER);
  if (!isMap(entry)) {
    entry = new YAMLMap();
    (entry as YAMLMap).set('name', PLACEHOLDER);
    images.add(entry);
  }
  const map = entry as YAMLMap;
  map.set('newName', ref.repository);
  if (ref.digest) {
    map.delete('newTag');
    map.set('digest', ref.digest);
  } else {
    map.delete('digest');
    map.set('newTag', ref.tag);
  }
  writeFileSync(kustomizationPath, doc.toString());
}

/** How each tool proves it can build here: the docker client alone cannot. */
const PROBES: Record<Tool, string[]> = {
  docker: ['info', '--format', '{{.ServerVersion}}'],
  podman: ['info', '--format', '{{.Host.Arch}}'],
  buildah: ['version'],
};

export type ToolChoice = { tool: Tool; skipped: string[] } | { tool: undefined; skipped: string[] };

/** The first of candidates whose probe succeeds; skipped says why each one before it was passed over. */
export function findTool(candidates: readonly Tool[], env: NodeJS.ProcessEnv = process.env): ToolChoice {
  const skipped: string[] = [];
  for (const tool of candidates) {
    const r = spawnSync(tool, PROBES[tool], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    if (r.error) {
      skipped.push(`${tool}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not on the PATH' : r.error.message}`);
      continue;
    }
    if (r.status !== 0) {
      const why = (r.stderr || r.stdout).trim().split('\n')[0] || `exit ${r.status ?? r.signal}`;
      skipped.push(`${tool}: \`${tool} ${PROBES[tool].join(' ')}\` failed (${why})`);
      continue;
    }
    return { tool, skipped };
  }
  return { tool: undefined, skipped };
}

export interface BuildOptions {
  /** the Dockerfile's NODE_IMAGE (its digest-pinned default otherwise) */
  base?: string | undefined;
  platform?: string | undefined;
  push: boolean;
  context?: string;
}

/** The command lines that build (and push) ref with tool. docker, podman and buildah take the same build flags. */
export function buildCommands(tool: Tool, ref: string, opts: BuildOptions): string[][] {
  const context = opts.context ?? PROJECT_ROOT;
  const build = [tool, 'build', '-f', join(context, 'Dockerfile'), '-t', ref];
  if (opts.base) build.push('--build-arg', `NODE_IMAGE=${opts.base}`);
  if (opts.platform) build.push('--platform', opts.platform);
  build.push(context);
  return opts.push ? [build, [tool, 'push', ref]] : [build];
}

export function shellQuote(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

const USAGE = `usage: npm run image -- [--push] [--image REPO[:TAG]] [--base NODE_IMAGE] [--set-manifests]
                        [--tool docker|podman|buildah] [--platform P] [--dry-run] [--manifests-dir D]

Builds the admitlb image from the Dockerfile with docker, podman or buildah (the first that works),
tagged with the images: entry of webhook-manifests/kustomization.yaml unless --image says otherwise.
  --push            push it after the build
  --image REF       build REF instead (REPO alone takes package.json's version as the tag);
                    REPO@sha256:... builds nothing and is only valid with --set-manifests
  --set-manifests   after a successful build (and push), write REF into kustomization.yaml's images:
  --base IMAGE      the Node base image (default: the digest-pinned NODE_IMAGE in the Dockerfile)
  --tool T          use this tool only
  --platform P      e.g. linux/arm64
  --dry-run         print the commands (and the manifest change) instead of running them
  --manifests-dir D the kustomization to read and write (default: webhook-manifests/)`;

export function main(argv: string[], env: NodeJS.ProcessEnv = process.env): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        push: { type: 'boolean', default: false },
        image: { type: 'string' },
        base: { type: 'string' },
        'set-manifests': { type: 'boolean', default: false },
        tool: { type: 'string' },
        platform: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'manifests-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`image: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const kustomization = join(resolve(values['manifests-dir'] ?? join(PROJECT_ROOT, 'webhook-manifests')), 'kustomization.yaml');
  const version = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const parsed = values.image !== undefined ? parseReference(values.image) : readManifestImage(kustomization);
  if (parsed instanceof Error) {
    console.error(`image: ${parsed.message}`);
    return 2;
  }
  const ref: ImageReference = parsed.tag || parsed.digest ? parsed : { ...parsed, tag: version };
  const name = formatReference(ref);
  const dryRun = values['dry-run'];
  const setManifests = () => {
    if (dryRun) console.log(`# would set the images: entry of ${kustomization} to ${name}`);
    else {
      writeManifestImage(kustomization, ref);
      console.log(`image: ${kustomization} now names ${name}`);
    }
  };

  if (ref.digest) {
    // A digest names an image that exists already (what a push printed): record it, build nothing.
    if (!values['set-manifests']) {
      console.error(`image: cannot build ${name}: a digest names an existing image; use --set-manifests to record it, or --image REPO:TAG to build`);
      return 2;
    }
    setManifests();
    return 0;
  }

  let candidates: readonly Tool[] = TOOLS;
  if (values.tool !== undefined) {
    if (!(TOOLS as readonly string[]).includes(values.tool)) {
      console.error(`image: --tool must be one of ${TOOLS.join(', ')}`);
      return 2;
    }
    candidates = [values.tool as Tool];
  }
  const choice = findTool(candidates, env);
  for (const s of choice.skipped) console.error(`# skipped ${s}`);
  if (!choice.tool) {
    console.error(`image: no usable build tool (${candidates.join(', ')}): install one, or start the docker engine`);
    return 1;
  }
  const commands = buildCommands(choice.tool, name, { base: values.base, platform: values.platform, push: values.push });
  for (const cmd of commands) {
    console.log(`${dryRun ? '' : '+ '}${shellQuote(cmd)}`);
    if (dryRun) continue;
    const r = spawnSync(cmd[0]!, cmd.slice(1), { env, stdio: 'inherit' });
    if (r.error || r.status !== 0) {
      console.error(`image: \`${cmd.slice(0, 2).join(' ')}\` failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
      return 1;
    }
  }
  if (values['set-manifests']) setManifests();
  else if (!dryRun && values.image !== undefined) {
    const current = readManifestImage(kustomization);
    if (current instanceof Error || formatReference(current) !== name) console.log(`image: the manifests do not name ${name}; --set-manifests records it there`);
  }
  return 0;
}

if (import.meta.filename === process.argv[1]) process.exitCode = main(process.argv.slice(2));
