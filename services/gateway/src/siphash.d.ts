// Types for the `siphash` package (SipHash-2-4 by jedisct1), which ships none.
declare module 'siphash' {
  /** key: 4 little-endian 32-bit words (128 bits); returns the 64-bit tag as high/low words */
  export function hash(key: Uint32Array, message: Uint8Array | string): { h: number; l: number };
}
