/**
 * Where large float buffers live. Weights, activations and the KV cache are allocated here so
 * that the WebAssembly kernels can address them; code elsewhere only sees Float32Arrays.
 *
 * The arena is one shared WebAssembly.Memory (wasm32, up to 65536 pages = 4 GiB). It is shared
 * so that growing it never detaches the Float32Arrays already handed out (a shared buffer only
 * grows in place) and so that kernel worker threads can later address the same bytes. Where
 * SharedArrayBuffer is unavailable (a browser page without cross-origin isolation) or the arena
 * is full, allocF32 returns a plain Float32Array and matmul runs its JS loop on it.
 *
 * Allocation is first-fit over a free list of 64-byte-aligned blocks (one cache line, so no two
 * buffers share a line and SIMD loads of a buffer's start are aligned). freeF32 returns a block;
 * blocks are zeroed when reused, so every allocF32 result starts at zero like `new Float32Array`.
 */

/** Alignment of every block in the arena, bytes. */
const ALIGN = 64;
const PAGE = 65536;
const MAX_PAGES = 65536;
/**
 * Bytes at the start of the arena that allocF32 never hands out: a page for the kernels' own
 * control words (the thread handshake) and small scratch.
 */
export const RESERVED_BYTES = PAGE;

interface Block {
  offset: number; // bytes
  bytes: number;
}

interface Arena {
  memory: WebAssembly.Memory;
  /** Free blocks, sorted by offset, never adjacent (coalesced). */
  free: Block[];
  /** Size in bytes of every live block, by offset. */
  live: Map<number, number>;
  /** The bump pointer: no block starts at or above it. */
  top: number;
  /** Bytes at or above this offset have never been handed out and are still zero. */
  clean: number;
}

const arena: Arena | null = createArena();
/**
 * Buffer objects of the arena: memory.buffer returns a new SharedArrayBuffer object after every
 * grow (same bytes, longer), and views keep the one they were made on. A WeakSet so that old
 * buffer objects can be collected once no view holds them.
 */
const arenaBuffers = new WeakSet<ArrayBufferLike>(arena ? [arena.memory.buffer] : []);

/** A zero-filled Float32Array of n values, in the wasm arena when there is one. */
export function allocF32(n: number): Float32Array {
  const b = allocBlock(n * 4);
  return b ? new Float32Array(b.buffer, b.offset, n) : new Float32Array(n);
}

/** A zero-filled Int8Array of n values (quantized weights), in the wasm arena when there is one. */
export function allocI8(n: number): Int8Array {
  const b = allocBlock(n);
  return b ? new Int8Array(b.buffer, b.offset, n) : new Int8Array(n);
}

/** A zero-filled Uint16Array of n values (16-bit float weights), in the wasm arena when there is one. */
export function allocU16(n: number): Uint16Array {
  const b = allocBlock(n * 2);
  return b ? new Uint16Array(b.buffer, b.offset, n) : new Uint16Array(n);
}

/**
 * allocF32 for buffers whose owner has no moment to free them (a KV cache handed to callers):
 * the block returns to the arena once the returned array object is garbage-collected. Keep the
 * array itself while any view of its bytes (a subarray) is in use.
 */
export function allocF32Collected(n: number): Float32Array {
  const arr = allocF32(n);
  if (collector && inArena(arr)) collector.register(arr, arr.byteOffset, arr);
  return arr;
}

/**
 * Returns an allocF32 buffer's block to the arena. The caller promises that neither `arr` nor
 * any view of its bytes is used afterwards. Plain (non-arena) arrays are ignored.
 */
export function freeF32(arr: Float32Array): void {
  collector?.unregister(arr);
  freeBlock(arr);
}

/** Whether `arr` starts a live arena block (so freeF32/freeI8 may return it). */
export function isArenaBlock(arr: ArrayBufferView): boolean {
  return !!arena && inArena(arr) && arena.live.has(arr.byteOffset);
}

/** freeF32 for allocI8 buffers. */
export function freeI8(arr: Int8Array): void {
  freeBlock(arr);
}

/** freeF32 for allocU16 buffers. */
export function freeU16(arr: Uint16Array): void {
  freeBlock(arr);
}

/** The shared memory behind the arena, or null where there is none (plain Float32Arrays). */
export function wasmMemory(): WebAssembly.Memory | null {
  return arena ? arena.memory : null;
}

/** Whether `arr` is a view of the arena (the wasm kernels can address it by its byteOffset). */
export function inArena(arr: ArrayBufferView): boolean {
  return arenaBuffers.has(arr.buffer);
}

/** Bytes handed out and not freed (for the bench's memory report). */
export function arenaBytesInUse(): number {
  if (!arena) return 0;
  let sum = 0;
  for (const b of arena.live.values()) sum += b;
  return sum;
}

/** A new zeroed block of at least `bytes` in the arena, or null: use plain memory. */
function allocBlock(bytes: number): { buffer: ArrayBufferLike; offset: number } | null {
  if (!arena || bytes === 0) return null;
  const size = roundUp(bytes, ALIGN);
  const offset = takeFree(arena, size) ?? takeTop(arena, size);
  if (offset === null) return null;
  arena.live.set(offset, size);
  return { buffer: arena.memory.buffer, offset };
}

function freeBlock(arr: ArrayBufferView): void {
  if (!arena || !inArena(arr)) return;
  if (!freeAt(arr.byteOffset)) throw new Error('free: not the start of a live arena block');
}

function freeAt(offset: number): boolean {
  if (!arena) return false;
  const bytes = arena.live.get(offset);
  if (bytes === undefined) return false;
  arena.live.delete(offset);
  release(arena, { offset, bytes });
  return true;
}

/** Frees allocF32Collected blocks whose arrays were collected (null without FinalizationRegistry). */
const collector =
  typeof FinalizationRegistry === 'undefined'
    ? null
    : new FinalizationRegistry<number>((offset) => void freeAt(offset));

function createArena(): Arena | null {
  if (typeof WebAssembly === 'undefined' || typeof SharedArrayBuffer === 'undefined') return null;
  try {
    const memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
    return { memory, free: [], live: new Map(), top: RESERVED_BYTES, clean: RESERVED_BYTES };
  } catch {
    return null; // shared wasm memory not allowed here
  }
}

function takeFree(a: Arena, bytes: number): number | null {
  for (let i = 0; i < a.free.length; i++) {
    const b = a.free[i];
    if (b.bytes < bytes) continue;
    if (b.bytes === bytes) a.free.splice(i, 1);
    else a.free[i] = { offset: b.offset + bytes, bytes: b.bytes - bytes };
    new Uint8Array(a.memory.buffer, b.offset, bytes).fill(0);
    return b.offset;
  }
  return null;
}

function takeTop(a: Arena, bytes: number): number | null {
  const end = a.top + bytes;
  const have = a.memory.buffer.byteLength;
  if (end > have) {
    const needPages = Math.ceil((end - have) / PAGE);
    const havePages = have / PAGE;
    // Grow by at least an eighth of the arena so loading a model's many tensors grows rarely;
    // untouched pages cost address space, not resident memory.
    const pages = Math.min(Math.max(needPages, havePages >> 3), MAX_PAGES - havePages);
    if (pages < needPages) return null;
    try {
      a.memory.grow(pages);
    } catch {
      return null;
    }
    arenaBuffers.add(a.memory.buffer);
  }
  const offset = a.top;
  if (offset < a.clean)
    new Uint8Array(a.memory.buffer, offset, Math.min(end, a.clean) - offset).fill(0);
  a.top = end;
  a.clean = Math.max(a.clean, end);
  return offset;
}

/** Inserts a block into the free list, merging it with free neighbours and with the top. */
function release(a: Arena, block: Block): void {
  const free = a.free;
  let i = 0;
  while (i < free.length && free[i].offset < block.offset) i++;
  let { offset, bytes } = block;
  if (i > 0 && free[i - 1].offset + free[i - 1].bytes === offset) {
    offset = free[i - 1].offset;
    bytes += free[i - 1].bytes;
    free.splice(--i, 1);
  }
  if (i < free.length && offset + bytes === free[i].offset) {
    bytes += free[i].bytes;
    free.splice(i, 1);
  }
  if (offset + bytes === a.top)
    a.top = offset; // the top block returns to the bump pointer
  else free.splice(i, 0, { offset, bytes });
}

function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}
