#!/usr/bin/env node
// Placeholder until the WebAssembly kernels land: nothing to assemble yet.
