/**
 * The training benchmark's baseline (bench/training.ts), in a process of its
 * own as the sidecar's fit is (in a fresh worker thread): reads the first
 * `rows` rows of table points into memory, standardizes them as the trainer
 * does (with the intercept column ml-logistic-regression lacks), then times
 * the library's own fit alone and prints its seconds: the same work the
 * trainer gives it (src/training/fit.ts), its binary classifier once with the
 * rate divided by the rows, on a Matrix built the same way. (The library's
 * LogisticRegression.train on two classes trains two mirror-image binary
 * classifiers: twice this.)
 *   node bench/dist/library-fit-child.mjs <uri> <rows> <steps>
 */
import LogisticRegression from 'ml-logistic-regression';
import { Matrix } from 'ml-matrix';
import pg from 'pg';

const [uri, rowsText, stepsText] = process.argv.slice(2);
const FEATURES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const client = new pg.Client({ connectionString: uri });
await client.connect();
const read = await client.query<Record<string, number | boolean>>(`SELECT ${FEATURES.join(', ')}, label FROM points ORDER BY id LIMIT ${Number(rowsText)}`);
await client.end();
const x = read.rows.map((row) => FEATURES.map((f) => row[f] as number));
const y = read.rows.map((row) => (row.label ? 1 : 0));
const mean = FEATURES.map((_, j) => x.reduce((sum, r) => sum + r[j]!, 0) / x.length);
const std = FEATURES.map((_, j) => Math.sqrt(x.reduce((sum, r) => sum + (r[j]! - mean[j]!) ** 2, 0) / x.length) || 1);
const standardized = x.map((r) => [...r.map((v, j) => (v - mean[j]!) / std[j]!), 1]);
const matrix = new Matrix(standardized);
const labels = Matrix.columnVector(y);
const options = { numSteps: Number(stepsText), learningRate: 0.5 / x.length };
const binary = LogisticRegression.load({ name: 'LogisticRegression', numberClasses: 1, classifiers: [options] }).classifiers[0]!;
const started = performance.now();
binary.train(matrix, labels);
process.stdout.write(`${(performance.now() - started) / 1000}\n`);
