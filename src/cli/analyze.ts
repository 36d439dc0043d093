/**
 * `lmdyn analyze <lens>`: one subcommand per paper (papers.md), each in its own file as
 * `register(analyze: Command)`.
 */
import type { Command } from 'commander';

export type LensRegistrar = (analyze: Command) => void;

export function registerAnalyze(program: Command, lenses: readonly LensRegistrar[]): void {
  const analyze = program
    .command('analyze')
    .description('apply a lens (coupling, dmet, sde, simplex, gravity) to a model, trace or sweep');
  for (const register of lenses) register(analyze);
}
