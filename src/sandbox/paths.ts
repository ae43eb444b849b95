import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (two levels above this file). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MANIFESTS_DIR = join(PROJECT_ROOT, 'webhook-manifests');
