/** The same transaction id was scored before with different content: the caller reused an id. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}
