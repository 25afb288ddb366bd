import { createWriteStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import yazl from 'yazl';
import { SuperduperError } from '../errors.js';
import { blobPath, PACKAGE_DOCUMENT, type PackageDocument } from './format.js';

/** Writes a package: a .zip when the target's name ends so, else a new (or empty) folder. */
export async function writePackage(target: string, document: PackageDocument, blobs: ReadonlyMap<string, Uint8Array>): Promise<void> {
  const json = `${JSON.stringify(document, null, 2)}\n`;
  if (target.toLowerCase().endsWith('.zip')) {
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from(json), PACKAGE_DOCUMENT);
    for (const [sha256, bytes] of blobs) zip.addBuffer(Buffer.from(bytes), blobPath(sha256));
    zip.end();
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(target, { flags: 'wx' });
      out.on('error', (error) =>
        reject(new SuperduperError(`cannot write ${target}: ${error.message}`, { hint: 'Name a file that does not exist yet.' })),
      );
      out.on('close', () => resolve());
      zip.outputStream.pipe(out);
    });
    return;
  }
  await mkdir(join(target, 'blobs'), { recursive: true });
  const present = (await readdir(target)).filter((name) => name !== 'blobs');
  if (present.length > 0 || (await readdir(join(target, 'blobs'))).length > 0) {
    throw new SuperduperError(`cannot export into ${target}: the folder is not empty`, { hint: 'Name a new folder, or a file ending in .zip.' });
  }
  for (const [sha256, bytes] of blobs) await writeFile(join(target, blobPath(sha256)), bytes);
  await writeFile(join(target, PACKAGE_DOCUMENT), json);
}
