// Shared by bin/admitlb.js and bin/kubectl-admitlb.js: which code a command runs.
//
// A development checkout (src/ beside this folder and tsx installed, a dev dependency) runs the
// TypeScript sources through tsx, so that what runs is always what is checked out, never a dist/
// left from an earlier build. Everywhere else (an installed package, whose `files` hold dist/ and no
// src/; a checkout installed without dev dependencies) runs the JavaScript that `npm run build`
// emitted into dist/. The image does not use this file: its ENTRYPOINT is dist/bin/admitlb.js.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

async function loadTsx() {
  try {
    return await import('tsx/esm/api');
  } catch (err) {
    if (err?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** Runs the entry point `name` (src/bin/<name>.ts or dist/bin/<name>.js). */
export async function launch(name) {
  const source = new URL(`../src/bin/${name}.ts`, import.meta.url);
  if (existsSync(source)) {
    const tsx = await loadTsx();
    if (tsx) {
      tsx.register();
      await import(source.href);
      return;
    }
  }
  const built = new URL(`../dist/bin/${name}.js`, import.meta.url);
  if (!existsSync(built)) {
    console.error(`${name}: ${fileURLToPath(built)} is missing: run \`npm run build\` (or \`npm install\` for the development dependencies)`);
    process.exit(1);
  }
  await import(built.href);
}
