/**
 * The fuzz corpus of issue 26, run as a user meets it: every case is one `lmdyn` process with a
 * time and a memory budget. Cases are made at test time, deterministically from FUZZ_SEED, out
 * of the repository's fixtures: truncations, bit flips, hostile header fields and huge counts in
 * each loader's input (llama2.c checkpoint and tokenizer, GGUF, safetensors + config.json of a
 * Hugging Face folder, PyTorch pytorch_model.bin, tokenizer.json), and hostile flag values on the
 * CLI. Each process runs `generate` (load, tokenize, forward, sample) or the CLI case under
 * `--max-old-space-size=1024` and reports, through a preloaded module, its peak RSS and the CPU
 * time it used (process.resourceUsage()) when it exits. The 10 s budget is CPU time: a spin
 * (a ReDoS, an endless loop) uses CPU, and on a shared CI machine (load 20 on 2 cores while this
 * was written) wall time says more about the neighbours than about lmdyn; a process still alive
 * after WALL_LIMIT_MS (blocked, not spinning) is killed and fails the case too.
 *
 * The reference is the contract of src/errors.ts and issue 26's "done when": a case either
 * succeeds (exit 0) or fails with exit 1 or 2 and exactly one line `error: …` on stderr; never a
 * stack trace, never exit 70 (an internal error), never a hang past 10 s, never a peak RSS over
 * 1 GB. The in-process fuzzers (test/io/gguf, safetensors, npy, llama2c) flip far more bytes
 * per second; this one checks the whole program, one process per case, within budgets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRng, type Rng } from '../../src/tensor/rng.js';
import { model } from '../helpers/paths.js';

const FUZZ_SEED = 26;
const CPU_LIMIT_MS = 10_000;
const WALL_LIMIT_MS = 60_000;
const MAX_RSS_BYTES = 1024 ** 3;
/** Processes at once (the machine's two cores). */
const PARALLEL = 2;
const BIN = resolve('bin', 'lmdyn.js');

const STORIES = model('stories260K', 'stories260K.bin');
const TOK512 = model('stories260K', 'tok512.bin');
const GGUF = model('stories260K-gguf', 'stories260K.gguf');
const HF = model('stories260K-hf-derived');
const NEOX_BIN = resolve('test/fixtures/arch/neox-parallel-bin');

interface Case {
  name: string;
  /** lmdyn's arguments; the case's files are written into `dir` first. */
  args: string[];
  files?: { name: string; bytes: Uint8Array | string }[];
  /** Files copied unchanged into the case folder (the rest of a model folder). */
  copies?: string[];
}

interface Outcome {
  name: string;
  status: number | null;
  signal: string | null;
  ms: number;
  cpuMs: number;
  rss: number;
  stdout: string;
  stderr: string;
}

test(`fuzz corpus (seed ${FUZZ_SEED}): loaders and CLI, one process per case, 10 s and 1 GB each, one-line errors`, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'lmdyn-fuzz-'));
  try {
    const preload = join(root, 'max-rss.mjs');
    writeFileSync(
      preload,
      "import { writeFileSync } from 'node:fs';\n" +
        "process.on('exit', () => {\n" +
        '  const u = process.resourceUsage();\n' +
        '  const cpuMs = (u.userCPUTime + u.systemCPUTime) / 1000;\n' +
        '  writeFileSync(process.env.LMDYN_FUZZ_USAGE, JSON.stringify({ rss: u.maxRSS * 1024, cpuMs }));\n' +
        '});\n',
    );
    const rng = createRng(FUZZ_SEED);
    const cases = [
      ...llama2cCases(rng),
      ...llama2cTokenizerCases(rng),
      ...ggufCases(rng),
      ...safetensorsCases(rng),
      ...torchCases(rng),
      ...tokenizerJsonCases(rng),
      ...cliCases(rng),
    ];
    const outcomes = await runAll(cases, root, preload);
    const problems: string[] = [];
    for (const o of outcomes) {
      const why = judge(o);
      if (why) problems.push(`${o.name}: ${why}`);
    }
    const worst = (key: 'cpuMs' | 'rss') => outcomes.reduce((a, o) => (o[key] > a[key] ? o : a));
    const refused = outcomes.filter((o) => o.status !== 0).length;
    t.diagnostic(
      `${outcomes.length} cases: ${refused} refused in one line, ${outcomes.length - refused} ran; most CPU ${worst('cpuMs').name} ${worst('cpuMs').cpuMs.toFixed(0)} ms; largest peak RSS ${worst('rss').name} ${(worst('rss').rss / 2 ** 20).toFixed(0)} MiB`,
    );
    for (const o of [...outcomes].sort((a, b) => b.cpuMs - a.cpuMs).slice(0, 5))
      t.diagnostic(
        `${o.cpuMs.toFixed(0)} ms CPU (${o.ms.toFixed(0)} ms wall), ${(o.rss / 2 ** 20).toFixed(0)} MiB: ${o.name}`,
      );
    assert.deepEqual(problems, []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** Why an outcome breaks the contract, or null. */
function judge(o: Outcome): string | null {
  if (o.signal !== null)
    return `killed by ${o.signal} after ${o.ms.toFixed(0)} ms (a hang or a crash)`;
  if (o.status === 70) return `internal error (exit 70): ${o.stderr.trim()}`;
  if (/^\s+at .+:\d+:\d+\)?$/m.test(o.stderr + o.stdout)) return `stack trace: ${o.stderr}`;
  if (o.status !== 0) {
    if (o.status !== 1 && o.status !== 2) return `exit ${o.status}: ${o.stderr}`;
    if (!/^error: [^\n]+\n$/.test(o.stderr)) return `not one line: ${JSON.stringify(o.stderr)}`;
  }
  if (o.rss === 0) return 'no usage report (the process did not exit normally)';
  if (o.cpuMs > CPU_LIMIT_MS) return `${o.cpuMs.toFixed(0)} ms of CPU time (a hang)`;
  if (o.rss > MAX_RSS_BYTES) return `peak RSS ${(o.rss / 2 ** 20).toFixed(0)} MiB`;
  return null;
}

async function runAll(cases: Case[], root: string, preload: string): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < cases.length) {
      const i = next++;
      out[i] = await runCase(cases[i], join(root, `case-${String(i).padStart(3, '0')}`), preload);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, lane));
  return out;
}

function runCase(c: Case, dir: string, preload: string): Promise<Outcome> {
  mkdirSync(dir, { recursive: true });
  for (const f of c.copies ?? []) copyFileSync(f, join(dir, basename(f)));
  for (const f of c.files ?? []) writeFileSync(join(dir, f.name), f.bytes);
  const usageFile = join(dir, '.usage.json');
  const args = c.args.map((a) => a.replaceAll('$DIR', dir));
  return new Promise((resolveOutcome) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      ['--max-old-space-size=1024', '--import', pathToFileURL(preload).href, BIN, ...args],
      { env: { ...process.env, LMDYN_FUZZ_USAGE: usageFile }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout = (stdout + b.toString()).slice(-4000)));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), WALL_LIMIT_MS);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      let usage = { rss: 0, cpuMs: 0 };
      try {
        usage = JSON.parse(readFileSync(usageFile, 'utf8')) as typeof usage;
      } catch {
        // no report: judged below
      }
      const ms = performance.now() - t0;
      resolveOutcome({ name: c.name, status, signal, ms, ...usage, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------- mutations

const int = (rng: Rng, n: number): number => Math.floor(rng.next() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)];

function truncate(rng: Rng, bytes: Uint8Array): { what: string; bytes: Uint8Array } {
  // half the cuts in the first 4 KiB (headers), half anywhere
  const len = rng.next() < 0.5 ? int(rng, Math.min(4096, bytes.length)) : int(rng, bytes.length);
  return { what: `truncated to ${len}`, bytes: bytes.slice(0, len) };
}

function flipBits(rng: Rng, bytes: Uint8Array, n: number, within = bytes.length) {
  const out = bytes.slice();
  const at: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = int(rng, Math.min(within, out.length));
    out[p] ^= 1 << int(rng, 8);
    at.push(p);
  }
  return {
    what: `${n} bits flipped at ${at.slice(0, 3).join(',')}${n > 3 ? ',…' : ''}`,
    bytes: out,
  };
}

function setU32(bytes: Uint8Array, at: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(at, v >>> 0, true);
  return out;
}

function setU64(bytes: Uint8Array, at: number, v: bigint): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setBigUint64(at, v, true);
  return out;
}

const HOSTILE_I32 = [0, -1, 0x7fffffff, 1_000_000_000, 65_536, -2_147_483_648];
const HOSTILE_U64 = [2n ** 64n - 1n, 2n ** 62n, 2n ** 32n, 1_000_000_000n, 0n];

const gen = (m: string, ...extra: string[]) => [
  'generate',
  '-m',
  m,
  '-n',
  '2',
  '--temperature',
  '0',
  '-i',
  'Once upon',
  ...extra,
];

const bytesOf = (path: string) => new Uint8Array(readFileSync(path));

// ---------------------------------------------------------------- loaders

/** llama2.c checkpoint: 7 int32 header fields (dim … seq_len), then the weights. */
function llama2cCases(rng: Rng): Case[] {
  const good = bytesOf(STORIES);
  const fields = [
    'dim',
    'hidden_dim',
    'n_layers',
    'n_heads',
    'n_kv_heads',
    'vocab_size',
    'seq_len',
  ];
  const cases: Case[] = [];
  for (let i = 0; i < 4; i++) {
    const field = int(rng, 7);
    const v = pick(rng, HOSTILE_I32);
    cases.push(model2c(`llama2c header ${fields[field]} = ${v}`, setU32(good, field * 4, v)));
  }
  for (let i = 0; i < 3; i++) {
    const m = truncate(rng, good);
    cases.push(model2c(`llama2c ${m.what}`, m.bytes));
  }
  for (let i = 0; i < 3; i++) {
    const m = flipBits(rng, good, 1 + int(rng, 16), i === 0 ? 28 : good.length);
    cases.push(model2c(`llama2c ${m.what}`, m.bytes));
  }
  return cases;

  function model2c(name: string, bytes: Uint8Array): Case {
    return {
      name,
      args: gen('$DIR/model.bin'),
      files: [{ name: 'model.bin', bytes }],
      copies: [TOK512],
    };
  }
}

/** llama2.c tokenizer: int32 max_token_length, then per token float32 score, int32 length, bytes. */
function llama2cTokenizerCases(rng: Rng): Case[] {
  const good = bytesOf(TOK512);
  const cases: Case[] = [];
  const tok = (name: string, bytes: Uint8Array): Case => ({
    name,
    args: gen(STORIES, '--tokenizer', '$DIR/tok512.bin'),
    files: [{ name: 'tok512.bin', bytes }],
  });
  for (const [at, field] of [
    [0, 'max_token_length'],
    [8, 'first token length'],
  ] as const) {
    const v = pick(rng, HOSTILE_I32);
    cases.push(tok(`llama2c tokenizer ${field} = ${v}`, setU32(good, at, v)));
  }
  for (let i = 0; i < 2; i++) {
    const m = truncate(rng, good);
    cases.push(tok(`llama2c tokenizer ${m.what}`, m.bytes));
  }
  for (let i = 0; i < 2; i++) {
    const m = flipBits(rng, good, 1 + int(rng, 8));
    cases.push(tok(`llama2c tokenizer ${m.what}`, m.bytes));
  }
  return cases;
}

/** GGUF: magic, version, u64 tensor count (8), u64 metadata count (16), first key's u64 length (24). */
function ggufCases(rng: Rng): Case[] {
  const good = bytesOf(GGUF);
  const cases: Case[] = [];
  const g = (name: string, bytes: Uint8Array): Case => ({
    name,
    args: gen('$DIR/model.gguf'),
    files: [{ name: 'model.gguf', bytes }],
  });
  for (const [at, field] of [
    [8, 'tensor count'],
    [16, 'metadata count'],
    [24, 'first key length'],
  ] as const) {
    const v = pick(rng, HOSTILE_U64);
    cases.push(g(`gguf ${field} = ${v}`, setU64(good, at, v)));
  }
  cases.push(g('gguf version = 0xffffffff', setU32(good, 4, 0xffffffff)));
  for (let i = 0; i < 3; i++) {
    const m = truncate(rng, good);
    cases.push(g(`gguf ${m.what}`, m.bytes));
  }
  for (let i = 0; i < 3; i++) {
    // the metadata and tensor infos sit in the first ~20 KB of this file
    const m = flipBits(rng, good, 1 + int(rng, 8), 20_000);
    cases.push(g(`gguf ${m.what}`, m.bytes));
  }
  return cases;
}

/** A Hugging Face folder: model.safetensors (u64 header length, JSON header, data) + config.json. */
function safetensorsCases(rng: Rng): Case[] {
  const good = bytesOf(join(HF, 'model.safetensors'));
  const config = JSON.parse(readFileSync(join(HF, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const headerLen = Number(new DataView(good.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(good.subarray(8, 8 + headerLen));
  const data = good.subarray(8 + headerLen);
  const cases: Case[] = [];
  const hf = (name: string, st: Uint8Array, cfg: unknown = config): Case => ({
    name,
    args: gen('$DIR'),
    files: [
      { name: 'model.safetensors', bytes: st },
      { name: 'config.json', bytes: JSON.stringify(cfg) },
    ],
    copies: [TOK512],
  });
  const withHeader = (text: string): Uint8Array => {
    const h = new TextEncoder().encode(text);
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    return out;
  };
  cases.push(hf(`safetensors header length = ${2n ** 63n}`, setU64(good, 0, 2n ** 63n)));
  const edits: [string, (h: string) => string][] = [
    ['a shape of 99999999999 rows', (h) => h.replace(/"shape":\[\d+/, '"shape":[99999999999')],
    [
      'a data offset of 2^53',
      (h) => h.replace(/"data_offsets":\[(\d+),\d+\]/, '"data_offsets":[$1,9007199254740992]'),
    ],
    ['a dtype Q9', (h) => h.replace(/"dtype":"F32"/, '"dtype":"Q9"')],
    ['a negative shape', (h) => h.replace(/"shape":\[\d+/, '"shape":[-64')],
  ];
  for (const [what, edit] of edits)
    cases.push(hf(`safetensors header: ${what}`, withHeader(edit(header))));
  const m = truncate(rng, good);
  cases.push(hf(`safetensors ${m.what}`, m.bytes));
  const f = flipBits(rng, good, 1 + int(rng, 8), 8 + headerLen);
  cases.push(hf(`safetensors header ${f.what}`, f.bytes));
  const counts = [
    'hidden_size',
    'intermediate_size',
    'num_hidden_layers',
    'num_attention_heads',
    'num_key_value_heads',
    'vocab_size',
    'max_position_embeddings',
  ];
  for (let i = 0; i < 3; i++) {
    const key = pick(rng, counts);
    const v = pick(rng, [0, -1, 1e9, 1e15, 3.5, '64', null] as const);
    cases.push(hf(`config.json ${key} = ${JSON.stringify(v)}`, good, { ...config, [key]: v }));
  }
  return cases;
}

/** A GPT-NeoX folder whose weights are a PyTorch zip (pytorch_model.bin). */
function torchCases(rng: Rng): Case[] {
  const good = bytesOf(join(NEOX_BIN, 'pytorch_model.bin'));
  const rest = ['config.json', 'tokenizer.json', 'tokenizer_config.json'].map((f) =>
    join(NEOX_BIN, f),
  );
  const cases: Case[] = [];
  const pt = (name: string, bytes: Uint8Array): Case => ({
    name,
    args: gen('$DIR'),
    files: [{ name: 'pytorch_model.bin', bytes }],
    copies: rest,
  });
  for (let i = 0; i < 2; i++) {
    const m = truncate(rng, good);
    cases.push(pt(`pytorch_model.bin ${m.what}`, m.bytes));
  }
  // the pickle sits near the start, the zip's central directory at the end
  const m = flipBits(rng, good, 1 + int(rng, 8), 2048);
  cases.push(pt(`pytorch_model.bin pickle ${m.what}`, m.bytes));
  const tail = good.slice();
  for (let i = 0; i < 4; i++) tail[good.length - 1 - int(rng, 200)] ^= 1 << int(rng, 8);
  cases.push(pt('pytorch_model.bin central directory: 4 bits flipped in the last 200 bytes', tail));
  const count = good.slice();
  // the end-of-central-directory record's entry counts (offsets 8 and 10 from its signature)
  const eocd = lastIndexOf(good, [0x50, 0x4b, 0x05, 0x06]);
  if (eocd >= 0) {
    new DataView(count.buffer).setUint16(eocd + 8, 0xffff, true);
    new DataView(count.buffer).setUint16(eocd + 10, 0xffff, true);
    cases.push(pt('pytorch_model.bin zip entry count = 65535', count));
  }
  return cases;
}

/** tokenizer.json of the GPT-NeoX fixture, edited where the tokenizer library is fragile. */
function tokenizerJsonCases(rng: Rng): Case[] {
  const text = readFileSync(join(NEOX_BIN, 'tokenizer.json'), 'utf8');
  const json = JSON.parse(text) as {
    added_tokens: { id: number }[];
    pre_tokenizer: unknown;
    model: { vocab: Record<string, unknown>; merges: unknown[]; type: string };
  };
  const rest = ['config.json', 'pytorch_model.bin', 'tokenizer_config.json'].map((f) =>
    join(NEOX_BIN, f),
  );
  const tj = (name: string, bytes: string | Uint8Array): Case => ({
    name,
    args: gen('$DIR'),
    files: [{ name: 'tokenizer.json', bytes }],
    copies: rest,
  });
  const edited = (edit: (j: typeof json) => void): string => {
    const j = structuredClone(json);
    edit(j);
    return JSON.stringify(j);
  };
  const someToken = (j: typeof json) => pick(rng, Object.keys(j.model.vocab));
  const cases: Case[] = [
    tj(
      'tokenizer.json a vocab id of 10^9',
      edited((j) => (j.model.vocab[someToken(j)] = 1e9)),
    ),
    tj(
      'tokenizer.json a negative vocab id',
      edited((j) => (j.model.vocab[someToken(j)] = -5)),
    ),
    tj(
      'tokenizer.json a vocab id that is text',
      edited((j) => (j.model.vocab[someToken(j)] = 'x')),
    ),
    tj(
      'tokenizer.json an added token id of 2^40',
      edited((j) => (j.added_tokens[0].id = 2 ** 40)),
    ),
    tj(
      'tokenizer.json merges of numbers',
      edited((j) => (j.model.merges = [1, 2, 3])),
    ),
    tj(
      'tokenizer.json a Split pre-tokenizer (a+)+$ (ReDoS)',
      edited(
        (j) =>
          (j.pre_tokenizer = {
            type: 'Split',
            pattern: { Regex: '(a+)+$' },
            behavior: 'Isolated',
            invert: false,
          }),
      ),
    ),
    tj(
      'tokenizer.json model type Unigram without its fields',
      edited((j) => (j.model.type = 'Unigram')),
    ),
  ];
  const m = truncate(rng, new TextEncoder().encode(text));
  cases.push(tj(`tokenizer.json ${m.what}`, m.bytes));
  return cases;
}

// ---------------------------------------------------------------- CLI

/** Hostile flag values on the commands a new user runs first (each drawn from its list). */
function cliCases(rng: Rng): Case[] {
  const table: [string, string[], string[]][] = [
    [
      'generate -n',
      ['generate', '-m', STORIES, '-i', 'Once', '-n'],
      ['-1', '1e12', 'abc', '99999999999999999999'],
    ],
    [
      'generate --temperature',
      ['generate', '-m', STORIES, '-n', '2', '-i', 'Once', '--temperature'],
      ['nan', '-1', '1e309', ''],
    ],
    [
      'generate --top-k',
      ['generate', '-m', STORIES, '-n', '2', '-i', 'Once', '--top-k'],
      ['1e12', '-3', '0.5'],
    ],
    [
      'generate --seed',
      ['generate', '-m', STORIES, '-n', '2', '-i', 'Once', '--seed'],
      ['-1', '1.5', '18446744073709551616'],
    ],
    [
      'trace --samples',
      ['trace', '-m', STORIES, '-n', '4', '-o', '$DIR/t', '--samples'],
      ['1e9', '0', '20000'],
    ],
    [
      'trace --logits',
      ['trace', '-m', STORIES, '-n', '4', '-o', '$DIR/t', '--logits'],
      ['topk:99999999999', 'topk:-1', 'topk:', 'full:3'],
    ],
    [
      'trace --hooks',
      ['trace', '-m', STORIES, '-n', '4', '-o', '$DIR/t', '--hooks'],
      ['blocks.99999.hook_resid_post', '[', '**'],
    ],
    [
      'sweep --temperature',
      ['sweep', '-m', STORIES, '-n', '2', '-o', '$DIR/s', '--temperature'],
      [Array.from({ length: 2000 }, (_, i) => String(i / 1000)).join(','), '1,,2', 'nan'],
    ],
    [
      'generate -i (a 100 kB prompt)',
      ['generate', '-m', STORIES, '-n', '2', '-i'],
      ['Once upon a time '.repeat(6_000)],
    ],
    ['info -m', ['info', '-m'], ['/dev/null', '$DIR', '$DIR/missing.gguf']],
  ];
  return table.map(([name, args, values]) => {
    const v = pick(rng, values);
    return {
      name: `${name} ${v.length > 40 ? `${v.slice(0, 20)}… (${v.length} chars)` : JSON.stringify(v)}`,
      args: [...args, v],
    };
  });
}

function lastIndexOf(bytes: Uint8Array, sig: number[]): number {
  for (let i = bytes.length - sig.length; i >= 0; i--)
    if (sig.every((b, k) => bytes[i + k] === b)) return i;
  return -1;
}
