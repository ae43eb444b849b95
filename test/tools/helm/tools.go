//go:build tools

// Test tool only: Helm, to lint, render and install charts/admitlb in the tests.
// Built by `npm run tools:build` (scripts/tools-build.ts) into .cache/tools/.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
