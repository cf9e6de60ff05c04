import type { z } from 'zod';

/** One thing wrong with an input: where (a dotted path; empty when the input as a whole is unreadable) and what. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

/** The one formatting of zod issues: each path joined with dots under `prefix`; `root` names the value itself. */
export function problemsOf(error: z.ZodError, prefix = '', root = '(root)'): Problem[] {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || root,
    message: i.message,
  }));
}

/** `path: message; path: message` — for one-line places: a dead-letter header, a log line, an error message. */
export function describeProblems(problems: readonly Problem[]): string {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
}
