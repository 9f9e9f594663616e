#!/usr/bin/env node
// The one `ward` binary. Built output lives in ../dist (the workspace builds on install).
import { main } from '../dist/index.js';

main(process.argv).catch((err) => {
  process.stderr.write(`ward: ${err?.message ?? err}\n`);
  process.exitCode = 1;
});
