/**
 * Where large float buffers live. Weights, activations and the KV cache are allocated here so
 * that the WebAssembly kernels can address them; code elsewhere only sees Float32Arrays.
 */
export function allocF32(n: number): Float32Array {
  return new Float32Array(n);
}
