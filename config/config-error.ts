/** One environment variable that is set wrong, and why. */
export interface ConfigProblem {
  variable: string;
  message: string;
}

/** The configuration cannot be used: every bad variable, each with its reason. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`);
  }

  static of(variable: string, message: string): ConfigError {
    return new ConfigError([{ variable, message }]);
  }
}

/**
 * Runs a process's configuration step; on a ConfigError prints one line per bad variable to stderr, naming it
 * and saying why, and exits with code 2 (no stack trace: the operator's fix is in the environment, not the code).
 */
export function exitOnConfigError<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems)
      process.stderr.write(`config: ${problem.variable}: ${problem.message}\n`);
    process.exit(2);
  }
}
