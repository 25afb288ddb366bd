import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yauzl from 'yauzl';
import { SuperduperError } from '../errors.js';
import { BLOB_PATH, DEFAULT_PACKAGE_LIMITS, PACKAGE_DOCUMENT, PACKAGE_FORMAT, PACKAGE_FORMAT_VERSION, type PackageDocument, type PackageLimits } from './format.js';

export interface ReadPackage {
  document: PackageDocument;
  /** The files, by SHA-256, each checked against its name and the document. */
  blobs: Map<string, Uint8Array>;
}

/**
 * Reads a package (a folder, or a .zip) into memory, refusing before
 * anything is applied: an entry outside the package (an absolute path, "..",
 * a backslash), an entry that is neither the document nor a blob, an entry
 * or a package over the limits, a file whose SHA-256 is not its name or the
 * document's, a file the document lists that is missing, a document that is
 * not a package's or is from a newer format.
 */
export async function readPackage(path: string, limits: PackageLimits = DEFAULT_PACKAGE_LIMITS): Promise<ReadPackage> {
  const entries = (await stat(path)).isDirectory() ? await readFolder(path, limits) : await readZip(path, limits);
  const raw = entries.get(PACKAGE_DOCUMENT);
  if (!raw) throw refused(path, `it has no ${PACKAGE_DOCUMENT}`);
  let document: PackageDocument;
  try {
    document = JSON.parse(Buffer.from(raw).toString('utf8')) as PackageDocument;
  } catch (error) {
    throw refused(path, `its ${PACKAGE_DOCUMENT} is not JSON: ${(error as Error).message}`);
  }
  checkDocument(path, document);
  const blobs = new Map<string, Uint8Array>();
  for (const [file, listed] of Object.entries(document.files)) {
    const match = BLOB_PATH.exec(file);
    if (!match || match[1] !== listed.sha256) throw refused(path, `${PACKAGE_DOCUMENT} lists ${file}, which is not blobs/<its SHA-256>`);
    const bytes = entries.get(file);
    if (!bytes) throw refused(path, `${file} is listed in ${PACKAGE_DOCUMENT} but missing`);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== listed.sha256 || bytes.byteLength !== listed.bytes) {
      throw refused(path, `checksum mismatch: ${file} has SHA-256 ${actual} (${bytes.byteLength} bytes)`, 'The file was changed or damaged since it was exported: export the package again.');
    }
    blobs.set(listed.sha256, bytes);
  }
  return { document, blobs };
}

function checkDocument(path: string, document: PackageDocument): void {
  if (typeof document !== 'object' || document === null || document.format !== PACKAGE_FORMAT) {
    throw refused(path, `its ${PACKAGE_DOCUMENT} is not a superduper package (no "format": "${PACKAGE_FORMAT}")`);
  }
  if (!Number.isInteger(document.format_version) || document.format_version < 1) {
    throw refused(path, `"format_version" must be a whole number from 1, not ${JSON.stringify(document.format_version)}`);
  }
  if (document.format_version > PACKAGE_FORMAT_VERSION) {
    throw refused(path, `it is package format ${document.format_version}, newer than this superduper reads (up to ${PACKAGE_FORMAT_VERSION})`, 'Upgrade superduper where you apply it.');
  }
  const application = document.application as Record<string, unknown> | undefined;
  if (typeof application !== 'object' || application === null || application.type !== 'application') {
    throw refused(path, `"application" must be an application spec ({"type": "application", ...})`);
  }
  if (typeof document.files !== 'object' || document.files === null) throw refused(path, `"files" must be an object`);
  if (!Array.isArray(document.functions)) throw refused(path, `"functions" must be an array of function model names`);
  if (typeof document.spec_versions !== 'object' || document.spec_versions === null) throw refused(path, `"spec_versions" must be an object`);
}

/** An entry's name, if the package may hold it: its document, or a blob. */
function checkEntryName(path: string, name: string): void {
  if (name.startsWith('/') || name.includes('\\') || name.split('/').includes('..') || /^[A-Za-z]:/.test(name)) {
    throw refused(path, `entry ${JSON.stringify(name)} points outside the package`);
  }
  if (name !== PACKAGE_DOCUMENT && !BLOB_PATH.test(name)) throw refused(path, `unexpected entry ${JSON.stringify(name)} (a package holds ${PACKAGE_DOCUMENT} and blobs/<sha256>)`);
}

function checkSizes(path: string, name: string, bytes: number, total: number, count: number, limits: PackageLimits): void {
  if (count > limits.maxEntries) throw refused(path, `it has more than ${limits.maxEntries} entries`);
  if (bytes > limits.maxEntryBytes) throw refused(path, `entry ${name} is ${bytes} bytes, over the limit of ${limits.maxEntryBytes}`);
  if (total > limits.maxTotalBytes) throw refused(path, `its entries come to more than ${limits.maxTotalBytes} bytes`);
}

async function readFolder(path: string, limits: PackageLimits): Promise<Map<string, Uint8Array>> {
  const entries = new Map<string, Uint8Array>();
  const document = join(path, PACKAGE_DOCUMENT);
  let listed: string[] = [];
  try {
    listed = Object.keys((JSON.parse(await readFile(document, 'utf8')) as PackageDocument).files ?? {});
  } catch {
    // Said by readPackage, with the reason.
  }
  let total = 0;
  let count = 0;
  for (const name of [PACKAGE_DOCUMENT, ...listed]) {
    checkEntryName(path, name);
    const file = join(path, name);
    const size = await stat(file).then((s) => s.size, () => undefined);
    if (size === undefined) continue;
    total += size;
    checkSizes(path, name, size, total, ++count, limits);
    entries.set(name, new Uint8Array(await readFile(file)));
  }
  return entries;
}

async function readZip(path: string, limits: PackageLimits): Promise<Map<string, Uint8Array>> {
  // yauzl checks each entry's name itself (decodeStrings) and that its data
  // is as long as the directory says (validateEntrySizes); names are checked
  // here too, so that the message says which entry and why.
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true }, (error, opened) =>
      error ? reject(refused(path, `it is not a readable zip: ${error.message}`)) : resolve(opened),
    ),
  );
  const entries = new Map<string, Uint8Array>();
  let total = 0;
  let count = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', (error: Error) => reject(error instanceof SuperduperError ? error : refused(path, error.message)));
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        try {
          const name = (entry.fileName as unknown as Buffer).toString('utf8');
          if (name === 'blobs/') {
            zip.readEntry();
            return;
          }
          checkEntryName(path, name);
          total += entry.uncompressedSize;
          checkSizes(path, name, entry.uncompressedSize, total, ++count, limits);
          zip.openReadStream(entry, (error, stream) => {
            if (error) return reject(refused(path, `cannot read entry ${name}: ${error.message}`));
            const chunks: Buffer[] = [];
            stream.on('data', (chunk: Buffer) => chunks.push(chunk));
            stream.on('error', (streamError: Error) => reject(refused(path, `cannot read entry ${name}: ${streamError.message}`)));
            stream.on('end', () => {
              entries.set(name, new Uint8Array(Buffer.concat(chunks)));
              zip.readEntry();
            });
          });
        } catch (error) {
          reject(error);
        }
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return entries;
}

function refused(path: string, why: string, hint?: string): SuperduperError {
  return new SuperduperError(`package ${path}: ${why}; nothing was applied`, hint ? { hint } : {});
}
