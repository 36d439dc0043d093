import { readFileSync } from 'node:fs';

/**
 * This process's peak resident set, MiB: VmHWM of /proc/self/status on Linux. (getrusage's
 * maxRSS would do elsewhere, but on Linux it carries over the parent's RSS at fork time across
 * exec, so a child of a large parent would report the parent's size.)
 */
export function peakRssMiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}
