import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every setting superduper reads from the environment, and every default a
 * sidecar starts with, resolved here and nowhere else (docs/configuration.md
 * lists them). Each call reads the environment as it is then: cheap, and a
 * process (or test) that sets a variable sees it.
 */
export interface Configuration {
  /** The database commands work on when none is given: SUPERDUPER_URI, else DATABASE_URL. */
  uri: string | undefined;
  /** pino level for the root logger: SUPERDUPER_LOG_LEVEL (default "info"; commands "warn"). */
  logLevel: string | undefined;
  /** How logs are written: SUPERDUPER_LOG_FORMAT "pretty" (lines for people) or "json"; unset: pretty on a terminal, JSON otherwise. */
  logFormat: 'pretty' | 'json' | undefined;
  /** Where stored model folders are written, one per model version: SUPERDUPER_CACHE_DIR. */
  cacheDir: string;
  /** Models with a hub id may download (SUPERDUPER_ALLOW_REMOTE_MODELS=1). */
  allowRemoteModels: boolean;
  /** Image models read file paths a row names only inside this folder: SUPERDUPER_IMAGE_DIR. */
  imageDir: string | undefined;
  /** Image models fetch URLs a row names (SUPERDUPER_ALLOW_IMAGE_URLS=1). */
  allowImageUrls: boolean;
  /** Chunkers with source "document" read file paths a row names only inside this folder: SUPERDUPER_DOCUMENT_DIR. */
  documentDir: string | undefined;
  /** Chunkers with source "document" fetch URLs a row names (SUPERDUPER_ALLOW_DOCUMENT_URLS=1). */
  allowDocumentUrls: boolean;
  /** The most memory a training run's fit may take, in MB: SUPERDUPER_TRAINING_MEMORY_MB (default 2048). */
  trainingMemoryMb: number;
}

const flag = (value: string | undefined) => ['1', 'true', 'yes', 'on'].includes((value ?? '').trim().toLowerCase());
const text = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value);

function logFormat(value: string | undefined): 'pretty' | 'json' | undefined {
  const given = text(value)?.trim().toLowerCase();
  if (given === undefined) return undefined;
  if (given === 'pretty' || given === 'json') return given;
  throw new Error(`SUPERDUPER_LOG_FORMAT must be "pretty" or "json", not "${value}"`);
}

function megabytes(name: string, value: string | undefined, fallback: number): number {
  const given = text(value)?.trim();
  if (given === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(given)) throw new Error(`${name} must be a whole number of megabytes, not "${value}"`);
  return Number(given);
}

/** The configuration an environment gives. */
export function configurationFrom(env: NodeJS.ProcessEnv): Configuration {
  return {
    uri: text(env.SUPERDUPER_URI) ?? text(env.DATABASE_URL),
    logLevel: text(env.SUPERDUPER_LOG_LEVEL),
    logFormat: logFormat(env.SUPERDUPER_LOG_FORMAT),
    cacheDir: text(env.SUPERDUPER_CACHE_DIR) ?? join(tmpdir(), 'superduper-models'),
    allowRemoteModels: flag(env.SUPERDUPER_ALLOW_REMOTE_MODELS),
    imageDir: text(env.SUPERDUPER_IMAGE_DIR),
    allowImageUrls: flag(env.SUPERDUPER_ALLOW_IMAGE_URLS),
    documentDir: text(env.SUPERDUPER_DOCUMENT_DIR),
    allowDocumentUrls: flag(env.SUPERDUPER_ALLOW_DOCUMENT_URLS),
    trainingMemoryMb: megabytes('SUPERDUPER_TRAINING_MEMORY_MB', env.SUPERDUPER_TRAINING_MEMORY_MB, 2048),
  };
}

/** This process's configuration (from process.env). */
export function configuration(): Configuration {
  return configurationFrom(process.env);
}

/**
 * A sidecar's defaults (SidecarOptions), each with the reason for its value in
 * docs/configuration.md. The reconcile interval is the backend's (a server's
 * triggers wake sidecars; the embedded database's cannot).
 */
export const SIDECAR_DEFAULTS = {
  /** How often to tell the database this sidecar is alive. */
  heartbeatMs: 2000,
  /** After how long without a heartbeat another sidecar's claims are released. */
  deadAfterMs: 15_000,
  /** How long a graceful stop waits for the batch in flight. */
  stopTimeoutMs: 30_000,
  /** Batches in flight at once (claim, compute and write overlap). */
  concurrency: 2,
  /** A heartbeat not answered within this long means the database (or the network) stalled. */
  stallTimeoutMs: 10_000,
  /** The longest wait between attempts to reach the database during an outage. */
  reconnectMaxMs: 1000,
  /** A training run is another sidecar's to take over once this long passes without its lease extended. */
  trainingLeaseSeconds: 60,
} as const;
