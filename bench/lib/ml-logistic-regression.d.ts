// ml-logistic-regression ships no types: what bench/training-libraries.ts and bench/lib/library-fit-child.ts use of it.
declare module 'ml-logistic-regression' {
  import type { Matrix } from 'ml-matrix';
  export default class LogisticRegression {
    constructor(options?: { numSteps?: number; learningRate?: number });
    train(x: Matrix, y: Matrix): void;
    predict(x: Matrix): number[];
    /** Rebuilds a model from its toJSON(); classifiers without weights are untrained binary classifiers. */
    static load(json: { name: 'LogisticRegression'; numberClasses: number; classifiers: Array<{ numSteps: number; learningRate: number }> }): LogisticRegression;
    classifiers: Array<{ train(x: Matrix, y: Matrix): void; weights: Matrix }>;
  }
}
