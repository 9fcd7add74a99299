export class UsageError extends Error {}
export function parseCli(
  argv: string[],
  spec?: { flags?: string[]; options?: string[] },
): { positionals: string[]; options: Record<string, string | boolean> };
export function parseDotenv(text: string): Record<string, string>;
export const LOCAL_URL: string;
export const ENVIRONMENTS: string[];
export function resolveTarget(
  opts: { env?: string; url?: string; key?: string },
  processEnv?: Record<string, string | undefined>,
  devVars?: Record<string, string>,
): { name: string; url: string; key: string };
