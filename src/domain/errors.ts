import { type LoadFailure, ModelLoadError } from './models/load-error.js';
import type { Problem } from './problems.js';

/** One error code as a caller meets it: the HTTP status it comes with, and when it happens. */
export interface ErrorEntry {
  readonly status: number;
  readonly description: string;
}

/** What is wrong with the request itself, found before any use case runs. */
const REQUEST_ERRORS = {
  invalid_request: {
    status: 400,
    description: 'A schema violation; `problems` lists each field path and message',
  },
  invalid_header: { status: 400, description: 'A header has an invalid value' },
  invalid_json: { status: 400, description: 'The body is not valid JSON' },
  empty_body: { status: 400, description: 'Content-Type is application/json but the body is empty' },
  invalid_content_length: { status: 400, description: 'The body does not match its Content-Length' },
  bad_url: { status: 400, description: 'The URL cannot be decoded' },
  bad_request: {
    status: 400,
    description: 'Any other request the HTTP framework refuses (answered with its own 4xx status)',
  },
  unauthorized: { status: 401, description: 'No `Authorization: Bearer <token>` header' },
  forbidden: { status: 403, description: 'The bearer token is not the one of this API (admin or events)' },
  not_found: { status: 404, description: 'No route for this method and path' },
  body_too_large: { status: 413, description: 'The body is over the size limit' },
  uri_too_long: { status: 414, description: 'A path parameter is over the length limit' },
  unsupported_media_type: { status: 415, description: 'The content type is not application/json' },
} as const satisfies Record<string, ErrorEntry>;

/** What the use cases refuse or fail at. */
const STATE_ERRORS = {
  conflict: {
    status: 409,
    description:
      'Conflicts with what is already there: a transaction id scored before with other content, a model version that already plays another role, or a concurrent change of the serving state',
  },
  invalid_argument: { status: 400, description: 'A model lifecycle argument is out of range' },
  no_active: { status: 409, description: 'The model has no active version' },
  no_previous: { status: 409, description: 'The model has no previous version to roll back to' },
  not_loaded: { status: 404, description: 'The model version is not loaded' },
  gate_rejected: {
    status: 409,
    description:
      'The version was rejected by its evaluation gate (model card); it is kept for inspection and serves (activate, canary) only with `override=true` and a `reason`, which is audited',
  },
  card_missing: {
    status: 409,
    description:
      'The version has no model card and REQUIRE_MODEL_CARD is on; it serves (activate, canary) only with `override=true` and a `reason`, which is audited',
  },
  store_unavailable: { status: 503, description: 'The feature store is unavailable; retry later' },
  control_plane_unavailable: {
    status: 503,
    description: 'The shared serving state cannot be read or written; nothing changed, retry later',
  },
  internal: { status: 500, description: 'An unexpected failure (logged; never a stack trace)' },
} as const satisfies Record<string, ErrorEntry>;

/** A model version that cannot be loaded: `model_<ModelLoadError code>`, 404 when it is not there, else 422. */
const MODEL_ERRORS = {
  model_invalid_reference: { status: 422, description: 'The model name or version is not valid' },
  model_not_found: { status: 404, description: 'The model version is not on disk' },
  model_manifest_invalid: { status: 422, description: 'The manifest is not valid JSON or breaks its schema' },
  model_unknown_feature_set: { status: 422, description: 'The manifest names an unknown feature set' },
  model_unknown_feature: { status: 422, description: 'A model input is not in its feature set' },
  model_missing_file: { status: 422, description: 'A model file named in the manifest cannot be read' },
  model_checksum_mismatch: { status: 422, description: 'A model file does not match its checksum' },
  model_onnx_load_failed: { status: 422, description: 'The ONNX runtime cannot load a model file' },
  model_io_mismatch: { status: 422, description: 'A model’s inputs or outputs differ from the manifest' },
  model_golden_mismatch: { status: 422, description: 'The model does not reproduce its golden scores' },
  model_warmup_failed: { status: 422, description: 'The model failed its warm-up or direction probe' },
} as const satisfies Record<`model_${LoadFailure}`, ErrorEntry>;

/**
 * Every error code the service answers with, its HTTP status and its meaning. The body is always
 * `{ error: { code, message, problems? } }` (`problems` for `invalid_request` only); the HTTP error handler
 * answers from this table and the OpenAPI document lists it.
 */
export const ERRORS: Readonly<
  Record<keyof typeof REQUEST_ERRORS | keyof typeof STATE_ERRORS | keyof typeof MODEL_ERRORS, ErrorEntry>
> = { ...REQUEST_ERRORS, ...STATE_ERRORS, ...MODEL_ERRORS };

export type ErrorCode = keyof typeof ERRORS;

/** Every code a model version's load can fail with (one per ModelLoadError code). */
export const MODEL_LOAD_ERRORS = Object.keys(MODEL_ERRORS) as readonly ErrorCode[];

/** The one error routes and use cases throw for an answer the caller should see; its status comes from the catalogue. */
export class ServiceError extends Error {
  override name = 'ServiceError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly problems?: readonly Problem[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get status(): number {
    return ERRORS[this.code].status;
  }
}

/** The service error a thrown value is answered with; undefined for an unexpected one (answered as `internal`). */
export function serviceErrorOf(err: unknown): ServiceError | undefined {
  if (err instanceof ServiceError) return err;
  if (err instanceof ModelLoadError)
    return new ServiceError(`model_${err.code}`, err.message, undefined, { cause: err });
  return undefined;
}
