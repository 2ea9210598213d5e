/** Public surface of chunker/: import from here rather than from the individual modules. */
export { createChunker, RESTIC_RABIN, DEFAULT_FASTCDC } from './chunker.js';
export type { Chunker, ChunkerParams, FileSplitter, ChunkerDeps } from './chunker.js';
export { splitChunks, splitBuffer } from './stream.js';
export type { SplitChunksOptions } from './stream.js';
export {
  POLYNOMIAL_DEGREE,
  deg,
  mod,
  mulMod,
  gcd,
  isIrreducible,
  randomPolynomial,
  formatPolynomial,
  parsePolynomial,
} from './polynomial.js';
