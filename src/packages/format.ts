/**
 * A package: one application, portable between databases and backends. A
 * folder or a zip holding superduper.json (this document) and the files its
 * models need, each at blobs/<its SHA-256>. Documented for people who write
 * packages by hand in docs/packaging.md. Nothing in a package is code: a
 * function model is named, and the applying process must provide it.
 */
export const PACKAGE_DOCUMENT = 'superduper.json';
export const PACKAGE_FORMAT = 'superduper-package';
/** The format this superduper writes, and the newest it reads. */
export const PACKAGE_FORMAT_VERSION = 1;

export interface PackageDocument {
  format: typeof PACKAGE_FORMAT;
  format_version: number;
  /** The application spec, or the template it was applied from ("variables" declared, placeholders in place). */
  application: Record<string, unknown>;
  /** The spec version of each component type where it was exported: each component is read as that version. */
  spec_versions: Record<string, number>;
  /** Every file: its path (blobs/<sha256>), SHA-256 and size in bytes. */
  files: Record<string, { sha256: string; bytes: number }>;
  /** Function models the package uses: their code is not in it; the applying process registers them. */
  functions: string[];
  exported_at: string;
}

/** What a package read may hold at most; past that it is refused before anything is read into memory. */
export interface PackageLimits {
  maxEntries: number;
  maxEntryBytes: number;
  maxTotalBytes: number;
}

export const DEFAULT_PACKAGE_LIMITS: PackageLimits = {
  maxEntries: 10_000,
  maxEntryBytes: 1024 ** 3,
  maxTotalBytes: 4 * 1024 ** 3,
};

/** A blob's path in a package. */
export const blobPath = (sha256: string) => `blobs/${sha256}`;
export const BLOB_PATH = /^blobs\/([0-9a-f]{64})$/;
