// Writes webhook-manifests/crds.yaml from the zod schemas (the single source of truth).
import { writeFileSync } from 'node:fs';
import { renderCrdsYaml } from '../src/config/crds.ts';

const path = new URL('../webhook-manifests/crds.yaml', import.meta.url);
writeFileSync(path, renderCrdsYaml());
console.log(`wrote ${path.pathname}`);
