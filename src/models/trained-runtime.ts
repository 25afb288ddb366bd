import { decodeArtifact, predictor } from '../training/artifact.js';
import type { LoadedModel, ModelRecord, ModelRuntime, RuntimeContext } from './types.js';

/**
 * Serves the models trainers fit (src/training/): the model's artifact is its
 * deployed run's JSON (parameters, feature layout, standardization), so a
 * prediction is a few multiplications in plain TypeScript, with no ML library
 * loaded. A trainer's model exists before its first run is deployed; until
 * then it has no artifact, and loading it says where to look.
 */
export class TrainedRuntime implements ModelRuntime {
  readonly name = 'trained';

  async load(model: ModelRecord, context: RuntimeContext): Promise<LoadedModel> {
    if (model.artifact === null) {
      throw new Error(`model "${model.name}" has no trained version deployed yet; see superduper.training_runs`);
    }
    const bytes = await context.fetchArtifact(model.artifact);
    const predict = named(model, () => predictor(decodeArtifact(bytes)));
    return { predict: async (inputs) => named(model, () => predict(inputs)) };
  }
}

/** The work's result, or its error with the model's name in front (the artifact and the predictor do not know it). */
function named<T>(model: ModelRecord, work: () => T): T {
  try {
    return work();
  } catch (error) {
    throw new Error(`model "${model.name}": ${(error as Error).message}`, { cause: error });
  }
}
