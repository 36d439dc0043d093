/** Writes go to a temporary file that is renamed into place: a crash never leaves half a file. */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { LmdynError } from '../errors.js';

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw ioError(err, path);
  }
}

/**
 * A file-system error as one line naming the file or folder (Node's ENOSPC names neither, and
 * a read-only folder reports ENOENT from mkdir); anything else is passed through unchanged.
 */
export function ioError(err: unknown, path: string): unknown {
  if (err instanceof LmdynError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const why: Record<string, string> = {
    ENOSPC: 'no space left on the device',
    EDQUOT: 'disk quota exceeded',
    EROFS: 'the file system is read-only',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOTDIR: 'a file is in the way of a folder',
    EISDIR: 'a folder is in the way of a file',
    ENOENT: 'its folder does not exist or cannot be created',
    EFBIG: 'the file is too large for the file system',
    EMFILE: 'too many open files',
  };
  if (typeof code === 'string' && why[code]) {
    return new LmdynError('io', `cannot write ${path}: ${why[code]} (${code})`);
  }
  return err;
}
