/**
 * GET /api/runs's listing of --runs, made off the HTTP thread and kept for a few seconds. A scan
 * reads every result's JSON and checks its manifest (report/scan.ts): a 5,000-configuration
 * sweep takes seconds, so it runs in a worker thread while the server answers other requests,
 * one scan at a time (requests during a scan share it), and its listing is reused until the
 * runs folder itself changes (its mtime) or TTL_MS pass.
 */
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { LmdynError } from '../errors.js';

/** One result as the page lists it (report/scan.ts FoundResult without its JSON). */
export interface RunEntry {
  kind: string;
  rel: string;
  /** Figure names (NAME of NAME.vl.json). */
  plots: string[];
  refused?: string;
  inSweep?: string;
}

/** How long a listing is reused when the runs folder's own mtime has not changed. */
export const TTL_MS = 5000;

export class RunsListing {
  private cached: { at: number; mtimeMs: number; entries: RunEntry[] } | null = null;
  private pending: Promise<RunEntry[]> | null = null;
  private readonly workers = new Set<Worker>();

  constructor(
    private readonly root: string,
    private readonly ttlMs = TTL_MS,
  ) {}

  /** The listing: the cached one while fresh, else the scan under way or a new one. */
  list(): Promise<RunEntry[]> {
    const mtimeMs = statSync(this.root).mtimeMs;
    const c = this.cached;
    if (c && c.mtimeMs === mtimeMs && performance.now() - c.at < this.ttlMs)
      return Promise.resolve(c.entries);
    this.pending ??= this.scan()
      .then((entries) => {
        this.cached = { at: performance.now(), mtimeMs, entries };
        return entries;
      })
      .finally(() => (this.pending = null));
    return this.pending;
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }

  private scan(): Promise<RunEntry[]> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(new URL('./scan-worker.js', import.meta.url), {
        workerData: { root: this.root },
      });
      this.workers.add(worker);
      let answered = false;
      worker.once(
        'message',
        (msg: { entries: RunEntry[] } | { error: string; code: 'not_found' | null }) => {
          answered = true;
          if ('entries' in msg) resolve(msg.entries);
          else if (msg.code) reject(new LmdynError(msg.code, msg.error));
          else reject(new Error(msg.error));
        },
      );
      worker.once('error', (err) => reject(new Error(`the runs scan failed: ${err.message}`)));
      worker.once('exit', (code) => {
        this.workers.delete(worker);
        if (!answered) reject(new Error(`the runs scan stopped (exit code ${code})`));
      });
    });
  }
}
