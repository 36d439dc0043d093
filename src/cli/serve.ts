/** `lmdyn serve`: the dashboard (a static page and a small HTTP API, loopback by default). */
import type { Command } from 'commander';
import { DEFAULT_MAX_QUEUED } from '../server/engine.js';
import { startServer } from '../server/server.js';
import { parseInteger } from './args.js';

interface ServeFlags {
  port: number;
  host: string;
  runs: string;
  model: string[];
  token?: string;
  maxQueued: number;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'dashboard: generate and watch the trajectory live, open each lens, browse run folders',
    )
    .option('--port <N>', 'port (0 = any free port)', parseInteger('--port', 0, 65535), 7860)
    .option(
      '--host <H>',
      'address to listen on (loopback by default; anything else exposes the models and runs)',
      '127.0.0.1',
    )
    .option('--runs <DIR>', 'run folders the page may browse', 'runs')
    .option(
      '--token <T>',
      'access token a non-loopback --host requires (default: a random one, printed in the URL)',
    )
    .option(
      '--max-queued <N>',
      'generations and lens runs that may wait for the engine; one more is answered 503 (busy)',
      parseInteger('--max-queued', 0, 1000),
      DEFAULT_MAX_QUEUED,
    )
    .option(
      '-m, --model <M>',
      'a model the page may open (repeatable; a path, hf:owner/name or a bare hub id; default: every model in ./models and the shipped model)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .action(async (flags: ServeFlags) => {
      const server = await startServer({
        port: flags.port,
        host: flags.host,
        runs: flags.runs,
        models: flags.model,
        token: flags.token,
        maxQueued: flags.maxQueued,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (server.token !== null) {
        process.stderr.write(
          `warning: listening on ${flags.host}, beyond this machine: whoever can reach it and has the token in the URL below can run the models and read ${server.runs}\n`,
        );
      }
      process.stderr.write(
        `models: ${server.models.map((m) => m.label).join(', ') || 'none (pass --model)'}\nruns: ${server.runs}\n`,
      );
      process.stdout.write(`dashboard: ${server.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void server.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
