/** `lmdyn report DIR`: every trace, sweep and lens result under DIR in one HTML file. */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { LmdynError } from '../errors.js';
import { writeReport } from '../report/report.js';
import { printResult } from './common.js';

interface ReportFlags {
  out?: string;
  png?: boolean;
  quiet?: boolean;
  json?: boolean;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('draw every result under DIR (traces, sweeps, lens reports) into DIR/report.html')
    .argument('<DIR>', 'a run folder (searched recursively)')
    .option('-o, --out <FILE>', 'the HTML file (default DIR/report.html)')
    .option('--png', 'also write every figure as PNG (into report-png/ beside the HTML)')
    .option('-q, --quiet', 'print only the report’s path')
    .option('--json', 'print {path, sections, plots, pngs} as one JSON object')
    .action(async (dir: string, flags: ReportFlags) => {
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        throw new LmdynError('bad_argument', `${dir} is not a folder`);
      }
      const log = flags.quiet ? undefined : (line: string) => process.stderr.write(line + '\n');
      const written = await writeReport(dir, { out: flags.out, png: flags.png, log });
      if (!flags.quiet) {
        process.stderr.write(
          `${written.sections} results, ${written.plots} figures${written.pngs.length ? `, ${written.pngs.length} PNG files` : ''}\n`,
        );
      }
      printResult(flags.json, written, `report: ${written.path}`);
    });
}
