//go:build tools

// Package tools pins external-dns (the rfc2136 provider is used against BIND 9 in
// test/e2e/external-dns.test.ts); built by `npm run tools:build`.
package tools

import _ "sigs.k8s.io/external-dns"
