/**
 * Bytes as text: UTF-8 unless a byte-order mark says UTF-16 or a charset is
 * declared (an HTTP content-type, an HTML meta tag). Bytes that are not valid
 * in that encoding are an error, never replaced silently: a chunk of U+FFFD is
 * no use to anyone, and a binary file read as text would be chunked as noise.
 */
export function decodeText(bytes: Uint8Array, charset?: string): string {
  let encoding = (charset ?? 'utf-8').toLowerCase();
  if (bytes[0] === 0xff && bytes[1] === 0xfe) encoding = 'utf-16le';
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) encoding = 'utf-16be';
  if (!encoding.startsWith('utf-16') && bytes.includes(0)) {
    throw new Error(`it holds a NUL byte at offset ${bytes.indexOf(0)}, so it is binary data, not text`);
  }
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(encoding, { fatal: true });
  } catch {
    throw new Error(`its charset "${charset}" is not one this sidecar knows`);
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    if (decoder.encoding !== 'utf-8') throw new Error(`it is not valid ${decoder.encoding} text`);
    const at = invalidUtf8At(bytes);
    throw new Error(`it is not valid UTF-8 text (byte 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')} at offset ${at})`);
  }
  // PostgreSQL's text cannot hold NUL (a UTF-16 file may); the decoder has already dropped a byte-order mark.
  return text.replaceAll('\0', '');
}

/** The offset of the first byte that does not begin a well-formed UTF-8 sequence (-1: none). */
export function invalidUtf8At(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const form = sequenceOf(bytes[i]!);
    if (!form) return i;
    const [length, secondMin, secondMax] = form;
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      const [lo, hi] = k === 1 ? [secondMin, secondMax] : [0x80, 0xbf];
      if (next === undefined || next < lo || next > hi) return i;
    }
    i += length;
  }
  return -1;
}

/** A lead byte's sequence length and the range of the byte after it (RFC 3629's table). */
function sequenceOf(byte: number): [length: number, secondMin: number, secondMax: number] | undefined {
  if (byte < 0x80) return [1, 0, 0];
  if (byte >= 0xc2 && byte <= 0xdf) return [2, 0x80, 0xbf];
  if (byte === 0xe0) return [3, 0xa0, 0xbf]; // no overlong forms
  if (byte === 0xed) return [3, 0x80, 0x9f]; // no surrogates
  if (byte >= 0xe1 && byte <= 0xef) return [3, 0x80, 0xbf];
  if (byte === 0xf0) return [4, 0x90, 0xbf]; // no overlong forms
  if (byte >= 0xf1 && byte <= 0xf3) return [4, 0x80, 0xbf];
  if (byte === 0xf4) return [4, 0x80, 0x8f]; // nothing past U+10FFFF
  return undefined;
}

/** Line ends as "\n": the splitters' paragraph separator is "\n\n", and spans count in the text as extracted. */
export function normaliseNewlines(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}
