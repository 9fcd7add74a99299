export interface SchemaRow {
  type: string;
  name: string;
  sql: string | null;
}
export interface SchemaDiff {
  missing: string[];
  extra: string[];
  different: { name: string; expected: string; actual: string }[];
}
export function isSchemaObject(name: string): boolean;
export function normalizeSql(sql: string | null | undefined): string;
export function diffSchemas(expected: SchemaRow[], actual: SchemaRow[]): SchemaDiff;
export function schemasEqual(d: SchemaDiff): boolean;
export function formatSchemaDiff(d: SchemaDiff, labels?: { expected: string; actual: string }): string;
export function migrationNumberingProblems(fileNames: string[]): string[];
