// Errors of the model package that callers may want to tell apart.

/** A checkpoint file is missing, truncated, corrupt or does not match the config. */
export class CheckpointError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly tensor?: string,
  ) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** Training cannot go on (NaN loss, bad resume, run folder in use); the last good checkpoint is left as it was. */
export class TrainingError extends Error {
  override name = 'TrainingError';
}
