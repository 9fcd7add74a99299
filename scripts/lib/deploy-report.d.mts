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
