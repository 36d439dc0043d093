/**
 * `lmdyn worker --queue redis://HOST:PORT[/DB]`: runs queued units (sweep configurations, models
 * of a coupling study) until stopped with Ctrl-C or SIGTERM, which lets the running units finish.
 */
import type { Command } from 'commander';
import { connectQueue } from '../queue/connection.js';
import { startQueueWorker } from '../queue/worker.js';
import { parseBytes, parseInteger, parseNumber } from './args.js';
import { availableCores } from './common.js';
import { defaultMaxMemory } from './trace.js';

interface WorkerFlags {
  queue: string;
  threads?: number;
  stallSeconds: number;
  maxMemory?: number;
  yes?: boolean;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'run queued sweep configurations and coupling models (BullMQ on Redis); the output folders must be on storage every worker sees',
    )
    .requiredOption('--queue <URL>', 'the Redis server: redis://HOST[:PORT][/DB]')
    .option(
      '--threads <N>',
      'units run at once, one thread each (default: one per core)',
      parseInteger('--threads', 1, 64),
    )
    .option(
      '--stall-seconds <S>',
      'a job whose worker stops answering for this long goes to another worker',
      parseNumber('--stall-seconds', 0.1, 86400),
      30,
    )
    .option(
      '--max-memory <SIZE>',
      'refuse (fail) a sweep configuration estimated to need more memory per thread (default: half of this machine’s, shared by the threads)',
      parseBytes('--max-memory'),
    )
    .option('--yes', 'run whatever the memory estimate says')
    .action(async (flags: WorkerFlags) => {
      const conn = await connectQueue(flags.queue);
      const log = (line: string) => process.stderr.write(line + '\n');
      const threads = flags.threads ?? (await availableCores());
      const worker = await startQueueWorker(conn, {
        threads,
        maxMemory: flags.yes ? undefined : (flags.maxMemory ?? defaultMaxMemory() / threads),
        stallMs: Math.round(flags.stallSeconds * 1000),
        log,
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log(`worker: ${signal}, finishing the running jobs (again to quit at once)`);
          process.once(signal, () => process.exit(130));
          worker.close().then(resolve, resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      log('worker: stopped');
    });
}
