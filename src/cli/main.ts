export async function main(_argv: string[]): Promise<number> {
  console.error('lmdyn: the CLI is being built');
  return 1;
}
