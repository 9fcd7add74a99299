export const SIZE_LIMITS: { gzipFree: number; gzipPaid: number; raw: number };
export const PLACEHOLDER: RegExp;
export function placeholdersIn(config: {
  kv_namespaces?: { binding: string; id?: string }[];
  d1_databases?: { binding: string; database_id?: string }[];
  vars?: Record<string, unknown>;
}): string[];
export function missingSecrets(required: string[], listJson: unknown): string[];
export function formatBytes(n: number): string;
export function sizeReport(files: { name: string; raw: number; gzip: number }[]): {
  ok: boolean;
  warn: boolean;
  lines: string[];
};
export const PRODUCTION_REFUSED_SECRETS: readonly string[];
export function credentialProblems(
  env: string,
  config: { vars?: Record<string, unknown>; secrets?: { required?: string[] } },
  listJson?: unknown,
): { level: "fail" | "warn"; name: string; message: string }[];
