/**
 * A worker thread that scans one runs folder (report/scan.ts) and posts the listing the page
 * shows (runs-listing.ts starts it): the HTTP thread never waits on the disk for a listing.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LmdynError } from '../errors.js';
import { scanResults } from '../report/scan.js';
import type { RunEntry } from './runs-listing.js';

const { root } = workerData as { root: string };
try {
  const entries: RunEntry[] = scanResults(root).map((f) => ({
    kind: f.kind,
    rel: f.rel,
    plots: f.plots.map((p) => p.slice(p.lastIndexOf('/') + 1, -'.vl.json'.length)),
    ...(f.refused !== undefined ? { refused: f.refused } : {}),
    ...(f.inSweep !== undefined ? { inSweep: f.inSweep } : {}),
  }));
  parentPort?.postMessage({ entries });
} catch (err) {
  parentPort?.postMessage({
    error: err instanceof Error ? err.message : String(err),
    code: err instanceof LmdynError && err.code === 'not_found' ? 'not_found' : null,
  });
}
