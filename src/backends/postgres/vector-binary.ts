import { endianness } from 'node:os';

/**
 * Encodes an array of pgvector vectors in PostgreSQL's binary array format, so a
 * batch of embeddings reaches the server without printing and parsing every float
 * as text (the text form costs several times more CPU on both sides).
 *
 * Layout (array_recv): ndim, flags, element type OID, then per dimension its
 * length and lower bound, then each element as a length-prefixed vector_recv
 * payload: int16 dim, int16 unused, dim float4, all big-endian.
 *
 * Every field is 4-byte aligned, so the whole message is written as native
 * 32-bit words (floats straight from Float32Arrays) and turned big-endian with
 * one Buffer.swap32() at the end.
 */
export function encodeVectorArray(vectors: readonly ArrayLike<number>[], vectorOid: number): Buffer {
  let words = 5;
  for (const vector of vectors) words += 2 + vector.length;
  const memory = new ArrayBuffer(words * 4);
  const ints = new Uint32Array(memory);
  const floats = new Float32Array(memory);
  ints[0] = 1; // one dimension
  ints[1] = 0; // no NULLs
  ints[2] = vectorOid;
  ints[3] = vectors.length;
  ints[4] = 1; // lower bound
  let word = 5;
  for (const vector of vectors) {
    ints[word++] = 4 + 4 * vector.length; // element length in bytes
    ints[word++] = (vector.length << 16) >>> 0; // int16 dim, int16 unused
    floats.set(vector, word);
    word += vector.length;
  }
  const buffer = Buffer.from(memory);
  return littleEndian ? buffer.swap32() : buffer;
}

const littleEndian = endianness() === 'LE';
