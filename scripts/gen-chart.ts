// Writes the generated part of charts/admitlb/ from the kustomize base, so that the chart and
// `kubectl apply -k webhook-manifests/` install the same objects from one source. See
// charts/admitlb/README.md ("One source") for what is generated, what is written by hand and what
// differs on purpose. `npm run gen:chart`; test/certs/helm-chart.test.ts fails when the output is stale.
import { writeChart } from './chart-source.ts';

const { chartDir, files } = writeChart();
console.log(`wrote ${files.length} files into ${chartDir}`);
