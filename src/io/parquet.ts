/**
 * Parquet tables for per-token and per-run rows (pandas, polars and DuckDB read them directly).
 * Writing goes through hyparquet-writer into memory, then a temporary file renamed into place.
 */
import { readFileSync } from 'node:fs';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { parquetReadObjects } from 'hyparquet';
import { writeFileAtomic } from './atomic.js';

export type ParquetColumn =
  | { name: string; type: 'INT32'; data: ArrayLike<number> }
  | { name: string; type: 'DOUBLE' | 'FLOAT'; data: ArrayLike<number> }
  | { name: string; type: 'STRING'; data: readonly string[] };

export function writeParquet(
  path: string,
  columns: readonly ParquetColumn[],
  metadata: Record<string, string> = {},
): void {
  const buf = parquetWriteBuffer({
    columnData: columns.map((c) => ({
      name: c.name,
      type: c.type,
      data:
        c.type === 'STRING' ? [...c.data] : Array.from(c.data, (v) => (Number.isNaN(v) ? null : v)),
    })),
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    createdBy: 'lmdyn',
  });
  writeFileAtomic(path, new Uint8Array(buf));
}

/** Reads every row as an object (for tests and for the report; large tables should stream). */
export async function readParquet(path: string): Promise<Record<string, unknown>[]> {
  const bytes = readFileSync(path);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return parquetReadObjects({ file });
}
