import { z } from 'zod';

/** A model name: the folder under MODEL_DIR and the `name` of its manifests. */
export const MODEL_NAME = /^[a-z0-9_-]+$/;
/** A model version: a positive integer, the version folder's name. */
export const MODEL_VERSION = /^[1-9][0-9]*$/;

export const ModelNameSchema = z
  .string()
  .regex(MODEL_NAME, 'model names are lowercase letters, digits, - and _');
export const ModelVersionSchema = z.string().regex(MODEL_VERSION, 'versions are positive integers');
