/**
 * Fault injection for a CLI run under test, preloaded with `node --import <this file's URL>`:
 *
 *   LMDYN_FAULT_OPS=FILE   every file-system mutation (write, rename, remove, mkdir, create) of
 *                          every thread appends one byte to FILE, so FILE's size counts them
 *   LMDYN_KILL_AT_OP=N     with LMDYN_FAULT_OPS: the process kills itself with SIGKILL at its
 *                          N-th mutation, before it happens (a write is done half first, so a
 *                          half-written file is left, as a real kill -9 would leave it)
 *   LMDYN_ENOSPC_AT=B      every write fails with ENOSPC once B bytes have been written (the
 *                          write that crosses B is done in part), as on a full disk
 *
 * The patched functions are the ones lmdyn's writers call (synchronous fs); standard output and
 * error are left alone.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const opsFile = process.env.LMDYN_FAULT_OPS;
const killAt = Number(process.env.LMDYN_KILL_AT_OP ?? 0);
const enospcAt = process.env.LMDYN_ENOSPC_AT ? Number(process.env.LMDYN_ENOSPC_AT) : Infinity;

const original = {
  writeSync: fs.writeSync,
  writeFileSync: fs.writeFileSync,
  appendFileSync: fs.appendFileSync,
  renameSync: fs.renameSync,
  rmSync: fs.rmSync,
  rmdirSync: fs.rmdirSync,
  unlinkSync: fs.unlinkSync,
  mkdirSync: fs.mkdirSync,
  openSync: fs.openSync,
  fstatSync: fs.fstatSync,
};

let written = 0;
let opsFd = -1;
/** Set while a patched function runs: the calls Node makes inside it are not counted again. */
let busy = false;

/** Counts one mutation; true when this one is the kill point. */
function tick(): boolean {
  if (!opsFile) return false;
  if (opsFd < 0) opsFd = original.openSync(opsFile, 'a');
  original.writeSync(opsFd, 'x');
  return killAt > 0 && original.fstatSync(opsFd).size === killAt;
}

/** Runs `fn` as one counted operation (inner fs calls pass straight through). */
function guarded<T>(inner: () => T, outer: () => T): T {
  if (busy) return inner();
  busy = true;
  try {
    return outer();
  } finally {
    busy = false;
  }
}

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not stop the process');
}

function enospc(syscall: string): NodeJS.ErrnoException {
  const err = new Error(`ENOSPC: no space left on device, ${syscall}`) as NodeJS.ErrnoException;
  err.code = 'ENOSPC';
  err.errno = -28;
  err.syscall = syscall;
  return err;
}

/** Bytes a write may still put before the disk is "full". */
function room(n: number): number {
  return Math.max(0, Math.min(n, enospcAt - written));
}

type Bytes = NodeJS.ArrayBufferView;

function asBytes(data: string | Bytes): Uint8Array {
  return typeof data === 'string'
    ? Buffer.from(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function writeSync(fd: number, buffer: Bytes | string, ...rest: unknown[]): number {
  const raw = () => (original.writeSync as (...a: unknown[]) => number)(fd, buffer, ...rest);
  if (fd <= 2 || busy) return raw();
  return guarded(raw, () => countedWrite(fd, buffer, rest));
}

function countedWrite(fd: number, buffer: Bytes | string, rest: unknown[]): number {
  const bytes = asBytes(buffer);
  const offset = typeof buffer === 'string' ? 0 : Number(rest[0] ?? 0);
  const length =
    typeof buffer === 'string' ? bytes.length : Number(rest[1] ?? bytes.length - offset);
  const view = bytes.subarray(offset, offset + length);
  if (tick()) {
    original.writeSync(fd, view.subarray(0, view.length >> 1));
    die();
  }
  const n = room(view.length);
  if (n < view.length) {
    if (n > 0) original.writeSync(fd, view.subarray(0, n));
    written += n;
    throw enospc('write');
  }
  written += view.length;
  return original.writeSync(fd, view);
}

function writeFileSync(
  path: fs.PathOrFileDescriptor,
  data: string | Bytes,
  options?: unknown,
): void {
  const raw = () => (original.writeFileSync as (...a: unknown[]) => void)(path, data, options);
  if ((typeof path === 'number' && path <= 2) || busy) return raw();
  guarded(raw, () => countedWriteFile(path, data));
}

function countedWriteFile(path: fs.PathOrFileDescriptor, data: string | Bytes): void {
  const bytes = asBytes(data);
  if (tick()) {
    original.writeFileSync(path, bytes.subarray(0, bytes.length >> 1));
    die();
  }
  const n = room(bytes.length);
  if (n < bytes.length) {
    original.writeFileSync(path, bytes.subarray(0, n));
    written += n;
    throw enospc('write');
  }
  written += bytes.length;
  original.writeFileSync(path, bytes);
}

/** A mutation that is killed before it happens. */
function mutation<F extends (...args: never[]) => unknown>(fn: F): F {
  return ((...args: Parameters<F>) =>
    guarded(
      () => fn(...args),
      () => {
        if (tick()) die();
        return fn(...args);
      },
    )) as F;
}

function openSync(path: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode): number {
  const raw = () => original.openSync(path, flags, mode);
  const creates = typeof flags === 'string' && /[wa+x]/.test(flags);
  if (!creates) return raw();
  return guarded(raw, () => {
    if (tick()) die();
    return raw();
  });
}

Object.assign(fs, {
  writeSync,
  writeFileSync,
  renameSync: mutation(original.renameSync),
  rmSync: mutation(original.rmSync),
  rmdirSync: mutation(original.rmdirSync),
  unlinkSync: mutation(original.unlinkSync),
  mkdirSync: mutation(original.mkdirSync),
  openSync,
});
syncBuiltinESMExports();
