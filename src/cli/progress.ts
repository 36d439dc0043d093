import { duration } from '../report/format.js';
/**
 * Progress of a long command on stderr: a bar with rate and ETA redrawn in place on a terminal,
 * or (asked for with --progress when stderr is a pipe or file) a line at the start, every 2 s and
 * at the end. Silent otherwise, so scripts reading stderr see only what they saw before.
 */

export interface Progress {
  /** `done` of `total` units are finished. */
  update(done: number, total: number): void;
  /** Ends the bar's line (a terminal) and prints the elapsed time. */
  finish(): void;
}

export interface ProgressOptions {
  /** What runs ("trace", "distill"), first on the line. */
  label: string;
  /** What is counted ("steps", "samples"). */
  unit: string;
  /** Print even when stderr is not a terminal (--progress). */
  force?: boolean;
  stream?: NodeJS.WriteStream;
  /** Clock in ms (tests). */
  now?: () => number;
}

const LINE_EVERY_MS = 2000;
const REDRAW_EVERY_MS = 100;

export function progress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  const now = o.now ?? Date.now;
  const tty = !!stream.isTTY;
  if (!tty && !o.force) return { update: () => {}, finish: () => {} };
  const start = now();
  let last = -Infinity;
  let lastDone = 0;
  let lastTotal = 0;
  let drawn = false;
  return {
    update(done, total) {
      lastDone = done;
      lastTotal = total;
      const t = now();
      const every = tty ? REDRAW_EVERY_MS : LINE_EVERY_MS;
      if (drawn && ((t - last < every && done < total) || (!tty && done >= total))) return;
      last = t;
      drawn = true;
      const elapsed = (t - start) / 1000;
      const eta = done > 0 ? duration((elapsed / done) * (total - done)) : '?';
      const rate =
        elapsed > 0 ? `${(done / elapsed).toFixed(done / elapsed < 10 ? 1 : 0)} ${o.unit}/s` : '';
      const text = `${o.label}: ${done}/${total} ${o.unit}  ${rate}  ETA ${eta}`;
      if (tty) {
        const width = 24;
        const filled = Math.round((width * done) / Math.max(1, total));
        stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}   `);
      } else stream.write(text + '\n');
    },
    finish() {
      const elapsed = duration((now() - start) / 1000);
      const text = `${o.label}: ${lastDone}/${lastTotal} ${o.unit} in ${elapsed}`;
      stream.write(tty ? `\r${text}${' '.repeat(40)}\n` : text + '\n');
    },
  };
}
