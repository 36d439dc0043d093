/** Flag parsing shared by the commands: every bad value is one line naming the flag. */
import { LmdynError } from '../errors.js';

export function parseNumber(
  flag: string,
  min: number,
  max: number,
  options: { openMin?: boolean } = {},
) {
  const open = options.openMin === true;
  return (value: string): number => {
    const v = Number(value);
    if (value.trim() === '' || !Number.isFinite(v) || v < min || (open && v === min) || v > max) {
      throw new LmdynError(
        'bad_argument',
        `${flag} must be a number in ${open ? '(' : '['}${min}, ${max}], got '${value}'`,
      );
    }
    return v;
  };
}

export function parseInteger(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const v = Number(value);
    if (value.trim() === '' || !Number.isInteger(v) || v < min || v > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`;
      throw new LmdynError(
        'bad_argument',
        `${flag} must be a whole number ${range}, got '${value}'`,
      );
    }
    return v;
  };
}

/** A size in bytes: 4G, 512M, 1.5GB, 800k or a plain number of bytes (powers of 1000). */
export function parseBytes(flag: string) {
  const unit: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
  return (value: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)b?\s*$/i.exec(value);
    const v = m ? Number(m[1]) * unit[m[2].toLowerCase()] : NaN;
    if (!Number.isFinite(v) || v <= 0) {
      throw new LmdynError(
        'bad_argument',
        `${flag} must be a size such as 4G, 512M or 800k, got '${value}'`,
      );
    }
    return v;
  };
}
