export class AdminApiError extends Error {
  status: number;
  problem: any;
}
export function describeProblem(status: number, problem: any, method: string, path: string): string;
export function retryAfterMs(header: string | null | undefined, now?: number, fallback?: number): number;
export function createAdminClient(
  target: { url: string; key: string },
  opts?: {
    fetch?: typeof fetch;
    sleep?: (ms: number) => Promise<void>;
    maxRetries?: number;
    maxWaitMs?: number;
    onRetry?: (ms: number, status: number) => void;
  },
): { request: (method: string, path: string, body?: unknown) => Promise<any>; target: { url: string; key: string } };
