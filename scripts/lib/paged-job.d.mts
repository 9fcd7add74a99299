export interface JobState {
  kind: string;
  target: string;
  cursor: string | null;
  done: boolean;
  total: number | null;
  pages: number;
  processed: number;
  changed: number;
  rewritten: number;
  byKind: Record<string, number>;
  examples: { customerId: string; kind: string; kvVersion: number | null; freshVersion: number; fields: string[] }[];
  /** The first page's comparison of the shared catalog with D1 (kind null: in step). */
  catalog?: { kind: string | null; kvRev: number | null; freshRev: number };
  [extra: string]: unknown;
}
export function newJobState(kind: string, target: string, extra?: Record<string, unknown>): JobState;
export function runPagedJob(o: {
  request: (method: string, path: string, body: unknown) => Promise<any>;
  path: string;
  body: Record<string, unknown>;
  state: JobState;
  save?: (state: JobState) => Promise<void> | void;
  onPage?: (state: JobState, page: any) => void;
  maxRps?: number;
  maxExamples?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}): Promise<JobState>;
export function renderProgress(state: JobState, width?: number): string;
export function catalogDrifted(state: JobState): boolean;
export function formatJobSummary(state: JobState): string;
