import { defineConfig } from 'tsup';

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
  },
  {
    // The training worker (src/training/fit-in-worker.ts) is a file of its own,
    // which every bundle (index.js, index.cjs, cli.js) loads from beside it.
    entry: { cli: 'src/cli/main.ts', 'training-worker': 'src/training/worker.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node20',
  },
]);
