/**
 * Measures the advance width of printable ASCII in DejaVu Sans (Debian's sans-serif, the font
 * the report's SVG text falls back to) with headless Chromium's canvas, regular and bold, in
 * thousandths of an em, and prints the table src/report/text-width.ts holds.
 * Run: node scripts/measure-text-widths.mjs  (needs playwright-core and /usr/bin/chromium)
 */
import { chromium } from 'playwright-core';

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const page = await browser.newPage();
const widths = await page.evaluate(() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const measure = (weight) => {
    ctx.font = `${weight} 1000px 'DejaVu Sans'`;
    const out = [];
    for (let c = 32; c < 127; c++)
      out.push(Math.round(ctx.measureText(String.fromCharCode(c)).width));
    return out;
  };
  return { regular: measure('normal'), bold: measure('bold') };
});
await browser.close();
console.log(`const REGULAR = [${widths.regular.join(', ')}];`);
console.log(`const BOLD = [${widths.bold.join(', ')}];`);
