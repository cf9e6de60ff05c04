export type LoadFailure =
  | 'invalid_reference'
  | 'not_found'
  | 'manifest_invalid'
  | 'unknown_feature_set'
  | 'unknown_feature'
  | 'missing_file'
  | 'checksum_mismatch'
  | 'onnx_load_failed'
  | 'io_mismatch'
  | 'golden_mismatch'
  | 'warmup_failed';

/** Why a model version was refused; `reason` is the bare sentence for admin responses and the registry listing. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';

  constructor(
    readonly code: LoadFailure,
    readonly reason: string,
    readonly model: string,
    readonly version: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot load ${model}@${version}: ${reason}`, options);
  }
}
