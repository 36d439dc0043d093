#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

// `lmdyn … | head`: the reader went away; stop quietly as other command-line tools do.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
