/**
 * Rows of the training query become one matrix of numbers, as they stream in:
 * the features of each row are written into a single Float64Array (rows ×
 * width, row-major), grown by doubling, so that a million rows cost 8 bytes a
 * number and no object per row, and the array can be handed to the fit's
 * worker thread without a copy. The same per-value encoding serves the
 * predictor (artifact.ts), so a model sees at prediction what it saw in training.
 */
import { TrainingError } from './errors.js';
import { checkSpec, type Algorithm, type FeatureLayout, type TrainingSpec } from './types.js';

/** A class label as the target column held it. */
export type ClassValue = string | number | boolean;

export interface EncodedData {
  /** rows × width numbers, row-major; exactly rows * width long. */
  x: Float64Array;
  rows: number;
  width: number;
  /** Regression: the target; classification: each row's index into `classes`. */
  y?: Float64Array;
  /** Classification: the distinct target values, sorted (numbers numerically, the others by text). */
  classes?: ClassValue[];
}

/** How many numbers a feature becomes. */
export function featureWidth(feature: FeatureLayout): number {
  switch (feature.kind) {
    case 'number':
    case 'boolean':
      return 1;
    case 'category':
      return feature.categories.length;
    case 'vector':
      return feature.dim;
  }
}

/** How many numbers a row's features become. */
export function layoutWidth(features: readonly FeatureLayout[]): number {
  return features.reduce((sum, feature) => sum + featureWidth(feature), 0);
}

/**
 * Writes one feature value into `out` at `offset` (featureWidth(feature)
 * numbers). Returns what is wrong with the value ("is NULL", ...), or
 * undefined when it was written: the caller knows the words around it (the
 * trainer and row number in training, the input's position in prediction).
 */
export function encodeFeature(feature: FeatureLayout, value: unknown, out: Float64Array, offset: number): string | undefined {
  if (value === null || value === undefined) return 'is NULL';
  switch (feature.kind) {
    case 'number': {
      const number = toNumber(value);
      if (number === undefined) return `is ${describe(value)}, not a number`;
      if (!Number.isFinite(number)) return `is ${describe(value)}, not a finite number`;
      out[offset] = number;
      return undefined;
    }
    case 'boolean': {
      const flag = toBoolean(value);
      if (flag === undefined) return `is ${describe(value)}, not a boolean`;
      out[offset] = flag ? 1 : 0;
      return undefined;
    }
    case 'category': {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return `is ${describe(value)}, not text`;
      // indexOf over the list: categories are few (tens), and a Map per
      // feature would need a cache keyed by the layout object.
      const index = feature.categories.indexOf(String(value));
      out.fill(0, offset, offset + feature.categories.length);
      if (index >= 0) out[offset + index] = 1;
      return undefined;
    }
    case 'vector':
      return writeVector(value, feature.dim, out, offset);
  }
}

/** The advice that follows a bad feature value, by the feature's kind. */
function featureAdvice(feature: FeatureLayout): string {
  switch (feature.kind) {
    case 'number':
      return `cast it in the query (${quoteIdent(feature.name)}::float8) or make the feature a category`;
    case 'boolean':
      return `cast it in the query (${quoteIdent(feature.name)}::boolean)`;
    case 'category':
      return `cast it to text in the query (${quoteIdent(feature.name)}::text)`;
    case 'vector':
      return `give every row a vector of ${feature.dim} numbers, or filter the others out`;
  }
}

/**
 * Encodes the rows of a training query as they arrive. push() each row (an
 * object of column name to value, as node-postgres gives it), then finish().
 * Errors name the trainer, the column and the row, and say what to change.
 */
export class RowEncoder {
  readonly width: number;
  readonly #spec: TrainingSpec;
  readonly #classification: boolean;
  #capacity: number;
  #x: Float64Array;
  #y: Float64Array;
  #rows = 0;
  #finished = false;
  /** Classification: each distinct target value and the provisional index it got when first seen. */
  readonly #classIndex = new Map<ClassValue, number>();
  readonly #classValues: ClassValue[] = [];

  /** `expectedRows`, when the caller knows the count, sizes the arrays once (no growing, no final copy). */
  constructor(spec: TrainingSpec, options: { expectedRows?: number } = {}) {
    checkSpec(spec);
    this.#spec = spec;
    this.#classification = spec.task === 'classification';
    this.width = layoutWidth(spec.features);
    this.#capacity = Math.max(1, Math.floor(options.expectedRows ?? 1024));
    this.#x = new Float64Array(this.#capacity * this.width);
    this.#y = new Float64Array(spec.target === undefined ? 0 : this.#capacity);
  }

  /** Rows pushed so far. */
  get rows(): number {
    return this.#rows;
  }

  push(row: Readonly<Record<string, unknown>>): void {
    if (this.#finished) throw new Error('RowEncoder: push() after finish()');
    if (this.#rows === this.#capacity) this.#grow();
    const rowNumber = this.#rows + 1;
    let offset = this.#rows * this.width;
    for (const feature of this.#spec.features) {
      const problem = encodeFeature(feature, row[feature.name], this.#x, offset);
      if (problem !== undefined) throw this.#valueError(`feature "${feature.name}"`, feature.name, problem, rowNumber, featureAdvice(feature));
      offset += featureWidth(feature);
    }
    if (this.#spec.target !== undefined) this.#y[this.#rows] = this.#encodeTarget(row[this.#spec.target], rowNumber);
    this.#rows++;
  }

  finish(): EncodedData {
    if (this.#finished) throw new Error('RowEncoder: finish() twice');
    this.#finished = true;
    const { trainer } = this.#spec;
    if (this.#rows === 0) {
      throw new TrainingError(trainer, 'the training query returned no rows; check its source table and "filter", then train again');
    }
    const used = this.#rows * this.width;
    // A copy of exactly the rows, so the array handed to the worker carries no
    // unused capacity; the oversized one is dropped with the encoder.
    const x = this.#x.length === used ? this.#x : this.#x.slice(0, used);
    const y = this.#y.length === this.#rows ? this.#y : this.#y.slice(0, this.#rows);
    this.#x = new Float64Array(0);
    this.#y = new Float64Array(0);
    const data: EncodedData = { x, rows: this.#rows, width: this.width };
    if (this.#spec.target === undefined) return data;
    if (!this.#classification) return { ...data, y };

    const target = this.#spec.target;
    if (this.#classValues.length < 2) {
      throw new TrainingError(trainer, `target "${target}" has one class only (value ${describe(this.#classValues[0])}); a classifier needs two or more: widen the training query or check the target column`);
    }
    const classes = [...this.#classValues].sort(compareClasses);
    // Provisional (first-seen) index -> index in the sorted classes.
    const sortedIndex = this.#classValues.map((value) => classes.indexOf(value));
    for (let i = 0; i < y.length; i++) y[i] = sortedIndex[y[i]!]!;
    return { ...data, y, classes };
  }

  #encodeTarget(value: unknown, rowNumber: number): number {
    const target = this.#spec.target!;
    if (value === null || value === undefined) {
      throw this.#valueError(`target "${target}"`, target, 'is NULL', rowNumber, '');
    }
    if (!this.#classification) {
      const number = toNumber(value);
      if (number === undefined || !Number.isFinite(number)) {
        throw this.#valueError(`target "${target}"`, target, `is ${describe(value)}, not a finite number`, rowNumber, `a regression predicts numbers: cast the column (${quoteIdent(target)}::float8) or choose a numeric target`);
      }
      return number;
    }
    let label: ClassValue;
    if (typeof value === 'string' || typeof value === 'boolean') label = value;
    else if (typeof value === 'number' && Number.isFinite(value)) label = value;
    else if (typeof value === 'bigint') label = Number(value);
    else {
      throw this.#valueError(`target "${target}"`, target, `is ${describe(value)}, not text, a finite number or a boolean`, rowNumber, `cast it in the query (${quoteIdent(target)}::text)`);
    }
    let index = this.#classIndex.get(label);
    if (index === undefined) {
      index = this.#classValues.length;
      this.#classIndex.set(label, index);
      this.#classValues.push(label);
    }
    return index;
  }

  #valueError(what: string, column: string, problem: string, rowNumber: number, advice: string): TrainingError {
    if (problem === 'is NULL') {
      const filter = JSON.stringify(`${quoteIdent(column)} IS NOT NULL`);
      return new TrainingError(this.#spec.trainer, `${what} is NULL in row ${rowNumber} of the training query; filter such rows out ("filter": ${filter}) or fill them (COALESCE in the query)`);
    }
    return new TrainingError(this.#spec.trainer, `${what} ${problem} in row ${rowNumber} of the training query; ${advice}`);
  }

  #grow(): void {
    this.#capacity *= 2;
    const x = new Float64Array(this.#capacity * this.width);
    x.set(this.#x);
    this.#x = x;
    if (this.#y.length > 0) {
      const y = new Float64Array(this.#capacity);
      y.set(this.#y);
      this.#y = y;
    }
  }
}

/**
 * Bytes a fit of `rows` × `width` encoded numbers needs at its peak, roughly,
 * for the memory check before the rows are read; without an algorithm, the
 * most any of them needs. Measured as the growth of peak RSS of fitInWorker
 * (the whole process: the worker thread's heap and the typed arrays outside
 * it, which the worker's heap limit does not bound, so the check counts them).
 *
 * Linear regression and k-means (ml.js): over 200,000 rows at widths 8 and
 * 64, with {"folds": 2} (the final fit, on every row, is the peak), the
 * worker's heap limited to 1.15 × the least limit that fits (found by
 * bisection) so V8 does not grow its heap past need. ml-matrix keeps each
 * matrix row as its own Float64Array, ~150 bytes of objects besides its
 * numbers, and the libraries make several such copies: 13 MB of numbers
 * (200,000 × 8) took 330 MB for linear regression; 1,000,000 × 8, 1.55 GB,
 * about half of it heap (0.8 KB a row for linear, 0.5 KB + 9 bytes a number
 * for k-means).
 *
 * The two classifiers (TensorFlow.js, network.ts), at the default limit of
 * 2048 MB: tfjs and its worker cost ~70-80 MB before the first row (1,000
 * rows), and the batches' discarded tensors wait for V8's collector, ~80-130
 * MB more after 50 epochs (after 2: ~75 MB less; after 200: no more than
 * after 50): a base of 160 MB. Past it, per row, the encoded float64s, their
 * standardized float32 copy and the metrics' arrays. Growths: 210 MB (200,000
 * × 8, folds 2, 50 epochs), 352 MB (200,000 × 64, 50 epochs), 455 MB
 * (1,000,000 × 8, folds 2, 50 epochs; 320 MB with the defaults: holdout 0.2,
 * 20 epochs) and 986 MB (1,000,000 × 64, folds 2, 20 epochs); logistic
 * regression and the 16-unit network within 10 % of each other. The
 * constants below are above every one of them (by 13-42 %).
 */
export function estimateBytes(rows: number, width: number, algorithm?: Algorithm): number {
  const algorithms = algorithm === undefined ? (Object.keys(BYTES) as Algorithm[]) : [algorithm];
  return Math.max(...algorithms.map((a) => Math.ceil(BYTES[a].base + rows * (BYTES[a].fixed + BYTES[a].perNumber * width))));
}

/** A fixed part, and per row a fixed part and a part per encoded number (from the measurements above, rounded up). */
const TFJS_BYTES = { base: 160 * 2 ** 20, fixed: 280, perNumber: 16 };
const BYTES: Readonly<Record<Algorithm, { base: number; fixed: number; perNumber: number }>> = {
  linear_regression: { base: 0, fixed: 1410, perNumber: 33 },
  logistic_regression: TFJS_BYTES,
  neural_network: TFJS_BYTES,
  kmeans: { base: 0, fixed: 780, perNumber: 27 },
};

/** Classes in a stable order: by type (booleans, numbers, text), numbers numerically, text by code unit. */
export function compareClasses(a: ClassValue, b: ClassValue): number {
  const rank = (value: ClassValue) => (typeof value === 'boolean' ? 0 : typeof value === 'number' ? 1 : 2);
  if (rank(a) !== rank(b)) return rank(a) - rank(b);
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const [x, y] = [String(a), String(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A number from what node-postgres gives: numbers, numeric and bigint columns as strings, JS bigints. */
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string' && value.trim() !== '') {
    const number = Number(value);
    return Number.isNaN(number) && value.trim() !== 'NaN' ? undefined : number;
  }
  return undefined;
}

function toBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  // Text forms PostgreSQL prints, for drivers that do not parse booleans.
  if (value === 't' || value === 'true') return true;
  if (value === 'f' || value === 'false') return false;
  return undefined;
}

/** A pgvector value ("[1,2,3]" as text, or numbers) into `dim` numbers at offset. */
function writeVector(value: unknown, dim: number, out: Float64Array, offset: number): string | undefined {
  let numbers: ArrayLike<unknown>;
  if (typeof value === 'string') {
    const text = value.trim();
    if (!text.startsWith('[') || !text.endsWith(']')) return `is ${describe(value)}, not a vector like "[1,2,3]"`;
    const inner = text.slice(1, -1);
    numbers = inner.trim() === '' ? [] : inner.split(',').map((part) => (part.trim() === '' ? NaN : Number(part)));
  } else if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    numbers = value as ArrayLike<unknown>;
  } else {
    return `is ${describe(value)}, not a vector`;
  }
  if (numbers.length !== dim) return `has ${numbers.length} numbers, but the feature's "dim" is ${dim}`;
  for (let i = 0; i < dim; i++) {
    const number = numbers[i];
    if (typeof number !== 'number' || !Number.isFinite(number)) return `has ${describe(number)} at position ${i + 1}, not a finite number`;
    out[offset + i] = number;
  }
  return undefined;
}

/** A value for an error message: JSON where it can, cut short. */
export function describe(value: unknown): string {
  let text: string;
  try {
    // Numbers as JavaScript prints them: JSON would print NaN and Infinity as null.
    text = typeof value === 'bigint' || typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A column name as SQL needs it in a filter (quoted unless plain lower-case). */
function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}
