export { connect, Superduper, type ApplyResult, type Component, type ConnectOptions, type FailureRow, type ListenerStatus, type PlanResult, type SidecarRow, type WaitResult } from './client.js';
export type { Backend, Capabilities } from './backends/backend.js';
export { install, type InstallResult } from './install.js';
export { application, type ApplicationComponent, type ApplicationOptions, type TemplateVariable } from './components/application.js';
export { listener, type ListenerComponent, type ListenerOptions, type ListenerSettings } from './components/listener.js';
export { chunkerModel, onnxModel, type ChunkerModelOptions, type ModelComponent, type OnnxModelOptions, type StoredModel } from './components/model.js';
export { functionModel, type FunctionModel, type PredictFunction } from './models/function-runtime.js';
export type { LoadedModel, ModelRecord, ModelRuntime, OutputSpec, RuntimeContext } from './models/types.js';
export type { SqlDriver, Queryable, QueryResult } from './backends/postgres/sql-driver.js';
export { connectPostgres, type PostgresOptions } from './backends/postgres/driver.js';
export { Sidecar, type SidecarOptions, type SidecarState, type SidecarStatus } from './sidecar/sidecar.js';
export { SidecarMetrics, type BatchObserver, type MetricsSources } from './sidecar/metrics.js';
/** @deprecated The same as Sidecar (its name before 0.2). */
export { Sidecar as Worker, type SidecarOptions as WorkerOptions } from './sidecar/sidecar.js';
export { SuperduperError } from './errors.js';
export { createLogger, type Logger } from './logger.js';
export { TableQuery } from './backends/postgres/search.js';
export type { DeployOptions, DeployResult, SearchHit, SearchOptions, TrainingRunRow } from './backends/types.js';
export type { RagAnswer, RagContextOptions, RagOptions, RagResult, RagSource } from './rag/types.js';
export { createKysely, superduperDialect } from './backends/postgres/kysely.js';
export { vectorIndex, type VectorIndexComponent, type VectorIndexOptions } from './components/vector-index.js';
export { schedule, type ScheduleOptions } from './components/schedule.js';
export { trainer, type TrainerFeature, type TrainerOptions } from './components/trainer.js';
export {
  anthropicMessages,
  cohereEmbed,
  cohereRerank,
  openaiChat,
  openaiEmbeddings,
  type ApiModelOptions,
  type CohereEmbedOptions,
  type EmbeddingOptions,
  type OpenAiEmbeddingOptions,
  type PromptOptions,
} from './components/api-model.js';
export { transformersModel, type TransformersModelOptions } from './components/transformers-model.js';
export { TransformersRuntime } from './models/transformers-runtime.js';
