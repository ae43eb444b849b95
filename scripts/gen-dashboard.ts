// Writes webhook-manifests/monitoring/dashboard.json and its ConfigMap from src/monitoring/dashboard.ts.
import { writeFileSync } from 'node:fs';
import { renderDashboardConfigMap, renderDashboardJson } from '../src/monitoring/dashboard.ts';

for (const [file, text] of [['dashboard.json', renderDashboardJson()], ['dashboard-configmap.yaml', renderDashboardConfigMap()]] as const) {
  const path = new URL(`../webhook-manifests/monitoring/${file}`, import.meta.url);
  writeFileSync(path, text);
  console.log(`wrote ${path.pathname}`);
}
