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
