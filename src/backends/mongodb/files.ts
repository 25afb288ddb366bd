import { createHash } from 'node:crypto';
import { GridFSBucket } from 'mongodb';
import { SuperduperError } from '../../errors.js';
import type { MongoContext } from './context.js';
import { FILES_BUCKET } from './names.js';

/**
 * Model files in GridFS (superduper.files.files and .chunks), their _id the
 * SHA-256 of the bytes: any sidecar loads the same model, a file already
 * stored is not sent again, and files past the 16 MB document limit fit.
 */
export function modelFiles(context: MongoContext) {
  const bucket = new GridFSBucket(context.db, { bucketName: FILES_BUCKET });
  return {
    async put(bytes: Uint8Array): Promise<string> {
      if (bytes.length === 0) throw new SuperduperError('superduper: an artifact cannot be empty');
      const sha = createHash('sha256').update(bytes).digest('hex');
      if (await this.has(sha)) return sha;
      await new Promise<void>((resolve, reject) => {
        const upload = bucket.openUploadStreamWithId(sha as never, sha);
        upload.once('error', reject);
        upload.once('finish', () => resolve());
        upload.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      }).catch((error: unknown) => {
        // Another process stored the same file meanwhile.
        if ((error as { code?: number }).code !== 11000) throw error;
      });
      return sha;
    },

    async has(sha: string): Promise<boolean> {
      return (await bucket.find({ _id: sha as never }).limit(1).toArray()).length > 0;
    },

    async get(sha: string): Promise<Uint8Array> {
      if (!(await this.has(sha))) throw new SuperduperError(`artifact ${sha} is not stored in this database`);
      const chunks: Buffer[] = [];
      for await (const chunk of bucket.openDownloadStream(sha as never)) chunks.push(chunk as Buffer);
      const bytes = Buffer.concat(chunks);
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
  };
}
