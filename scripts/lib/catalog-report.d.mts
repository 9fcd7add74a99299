export function formatApplyResult(result: unknown, where: { file: string; target: string }): string;
export function formatDiff(diff: unknown, where: { file: string; target: string }): string;
export function destructiveRefusal(diff: unknown): string | null;
