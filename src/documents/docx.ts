/**
 * A DOCX document's text through mammoth's raw text: each paragraph (a
 * heading, a list item, a table cell) followed by a blank line, which is what
 * the recursive splitter cuts at. Headings lose their level: mammoth's raw
 * text keeps none.
 */
export async function docxText(bytes: Uint8Array): Promise<string> {
  // Imported here: a sidecar without document chunkers should not load it.
  const { default: mammoth } = await import('mammoth');
  const { value } = await mammoth.extractRawText({ buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) });
  return value;
}
