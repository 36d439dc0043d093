/**
 * The dashboard end to end in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core): `lmdyn serve` on a fixture run folder, a greedy generation with stories260K
 * (MANIFEST.md's ids must appear token by token), the distribution of a sampled one, a refused
 * request shown as a readable message, every lens view with what it draws (vega's SVG marks are
 * counted), the trajectories behind a heatmap cell, and a 1,000-step generation with tiny-gpt2
 * during which the page keeps drawing frames. Every request must stay on the server's origin.
 * Screenshots go to $TMPDIR/lmdyn-dashboard-screenshots (replaced on each run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../src/server/server.js';
import { model, STORIES_GREEDY_64 } from '../helpers/paths.js';
import { makeRunFolder, STORIES } from '../report/fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const SCREENSHOTS = join(tmpdir(), 'lmdyn-dashboard-screenshots');

test(
  'dashboard in headless Chromium: live generation, every lens view, run folders, a 1,000-step trace',
  {
    skip: existsSync(CHROMIUM)
      ? false
      : `skipped: no Chromium at ${CHROMIUM} (Debian package chromium); the dashboard test needs it`,
    timeout: 180_000,
  },
  async (t) => {
    const { chromium } = await import('playwright-core');
    const root = mkdtempSync(join(tmpdir(), 'lmdyn-dash-runs-'));
    const profile = mkdtempSync(join(tmpdir(), 'lmdyn-dash-profile-'));
    rmSync(SCREENSHOTS, { recursive: true, force: true });
    mkdirSync(SCREENSHOTS, { recursive: true });
    const tiny = model('tiny-gpt2');
    await makeRunFolder(root);
    const server = await startServer({ port: 0, runs: root, models: [STORIES, tiny] });
    const origin = server.url.replace(/\/$/, '');
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1280, height: 1000 },
    });
    const external: string[] = [];
    const problems: string[] = [];
    await context.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith(origin + '/')) return route.continue();
      external.push(u);
      return route.abort();
    });
    try {
      const page = await context.newPage();
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        // failed requests the test makes on purpose (400) are logged by Chromium as console errors
        if (m.type() === 'error' && !/status of 400/.test(m.text()))
          problems.push(`console: ${m.text()}`);
      });
      const shot = async (name: string, fullPage = false) => {
        const path = join(SCREENSHOTS, `${name}.png`);
        await page.screenshot({ path, fullPage });
        t.diagnostic(`screenshot ${path}`);
      };
      await page.goto(server.url);
      await page.waitForFunction(
        () => (document.querySelector('#model') as HTMLSelectElement).options.length === 2,
      );

      // 1. greedy from BOS: MANIFEST's ids, token by token
      await page.fill('#prompt', '');
      await page.fill('#temperature', '0');
      await page.fill('#maxTokens', '60');
      await page.click('#generate');
      await page.waitForFunction(
        () => (window as unknown as { lmdynStats: { done: boolean } }).lmdynStats.done,
        null,
        { timeout: 60_000 },
      );
      const ids = await page.$$eval('#tokens span:not(.prompt)', (spans) =>
        spans.map((s) => Number((s as HTMLElement).dataset.id)),
      );
      assert.deepEqual(ids, STORIES_GREEDY_64.slice(0, 60));
      assert.match((await page.textContent('#gen-info')) ?? '', /^60 tokens, length/);
      for (const canvas of ['#traj2d', '#traj3d', '#strip']) {
        const inked = await page.$eval(canvas, (c) => {
          const el = c as HTMLCanvasElement;
          const data = el.getContext('2d')!.getImageData(0, 0, el.width, el.height).data;
          let n = 0;
          for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
          return n;
        });
        assert.ok(inked > 500, `${canvas} is drawn (${inked} pixels)`);
      }
      await shot('generate-greedy');

      // 2. sampled: the distribution of each step, most probable first, the drawn token marked
      await page.fill('#prompt', 'Once upon a time');
      await page.fill('#temperature', '1');
      await page.fill('#maxTokens', '100');
      await page.fill('#seed', '7');
      await page.click('#generate');
      await page.waitForFunction(
        () => (window as unknown as { lmdynStats: { done: boolean } }).lmdynStats.done,
        null,
        { timeout: 60_000 },
      );
      await page.click('#tokens span:not(.prompt) >> nth=4');
      // the page redraws on the next animation frame
      await page.waitForFunction(() =>
        /^step 4: drew /.test(document.querySelector('#dist-title')!.textContent ?? ''),
      );
      const bars = await page.$$eval('#dist .bar', (rows) =>
        rows.map((r) => ({
          p: Number(r.querySelector('.val')!.textContent),
          chosen: r.classList.contains('chosen'),
        })),
      );
      assert.equal(bars.length, 10);
      for (let i = 1; i < bars.length; i++)
        assert.ok(bars[i - 1].p >= bars[i].p, 'most probable first');
      assert.ok(bars.filter((b) => b.chosen).length <= 1);
      await shot('generate-sampled');

      // 3. a request the server refuses: its message, readable, on the page
      await page.fill('#maxTokens', '99999');
      await page.click('#generate');
      await page.waitForSelector('#error:not([hidden])');
      assert.match(
        (await page.textContent('#error-text')) ?? '',
        /"maxTokens" must be a whole number in \[1, 4096\], got 99999/,
      );
      await shot('error');
      await page.click('#error-close');
      await page.fill('#maxTokens', '100');

      // 4. coupling, computed now: heatmap cells (5 blocks, off-diagonal, trained + twin) and spectra
      await page.click('#tabs a[data-view=coupling]');
      await page.click('#view-coupling button.run');
      await page.waitForSelector('#view-coupling .live-out .plot[data-name=growth] svg', {
        timeout: 60_000,
      });
      assert.equal(
        await page
          .locator(
            '#view-coupling .live-out .plot[data-name=coupling_k10] g.mark-rect.role-mark path',
          )
          .count(),
        40,
      );
      assert.equal(
        await page
          .locator('#view-coupling .live-out .plot[data-name=spectra] g.mark-line.role-mark path')
          .count(),
        10,
      );
      assert.ok((await page.locator('#view-coupling .live-out .tag.exact').count()) > 0);
      await shot('coupling', true);

      // 5. DMET: a lens heatmap cell opens the trajectories of its configuration; so does a sweep's
      await page.click('#tabs a[data-view=dmet]');
      const dmet = page.locator('#view-dmet');
      await dmet
        .locator('.plot[data-name=heatmap_C_mean] g.mark-rect.role-mark path')
        .first()
        .waitFor();
      await dmet
        .locator('.plot[data-name=heatmap_C_mean] g.mark-rect.role-mark path')
        .nth(3)
        .click();
      await dmet.locator('.behind .plot[data-name=trajectory_pca] svg').waitFor();
      assert.match(
        (await dmet.locator('.behind h2').first().textContent()) ?? '',
        /\(sweep\/00\d_t[\d.]+_p[\d.]+_k0_r1\)/,
      );
      assert.ok(
        (await dmet
          .locator('.behind .plot[data-name=trajectory_pca] g.mark-symbol.role-mark path')
          .count()) > 10,
      );
      await dmet.locator('.list button', { hasText: 'sweep' }).click();
      await dmet
        .locator('.plot[data-name=sweep_entropy] g.mark-rect.role-mark path')
        .first()
        .waitFor();
      await dmet
        .locator('.plot[data-name=sweep_entropy] g.mark-rect.role-mark path')
        .first()
        .click({ position: { x: 4, y: 4 } }); // off the cell's label
      await dmet.locator('.behind .plot[data-name=per_step] svg').waitFor();
      await shot('dmet', true);

      // 6. simplex and gravity computed now by their libraries: the ternary plot, the potential
      await page.click('#tabs a[data-view=simplex]');
      await page.click('#view-simplex button.run');
      await page.waitForSelector('#view-simplex .live-out .plot[data-name=ternary] svg', {
        timeout: 60_000,
      });
      assert.ok(
        (await page
          .locator('#view-simplex .live-out .plot[data-name=ternary] g.mark-line.role-mark path')
          .count()) > 0,
      );
      await shot('simplex-live', true);
      await page.click('#tabs a[data-view=gravity]');
      await page.click('#view-gravity button.run');
      await page.waitForSelector('#view-gravity .live-out .plot[data-name=potential] svg', {
        timeout: 60_000,
      });
      assert.ok(
        (await page
          .locator('#view-gravity .live-out .plot[data-name=potential] g.mark-rect.role-mark path')
          .count()) >= 10,
        'a bar per top token',
      );
      // no two tick labels of an axis touch (the temperature panels' 0.2/0.4 and 1.8/2.0 did)
      const touching = await page.$$eval(
        '#view-gravity .live-out .plot svg g.role-axis-label',
        (axes) =>
          axes.flatMap((g) => {
            const boxes = Array.from(g.querySelectorAll('text'))
              .filter((t) => (t.textContent ?? '') !== '' && t.getAttribute('opacity') !== '0')
              .map((t) => ({ text: t.textContent, r: t.getBoundingClientRect() }));
            const out: string[] = [];
            for (let i = 0; i < boxes.length; i++)
              for (let j = i + 1; j < boxes.length; j++) {
                const a = boxes[i].r;
                const b = boxes[j].r;
                if (
                  a.left < b.right - 0.5 &&
                  b.left < a.right - 0.5 &&
                  a.top < b.bottom - 0.5 &&
                  b.top < a.bottom - 0.5
                )
                  out.push(`${boxes[i].text} / ${boxes[j].text}`);
              }
            return out;
          }),
      );
      assert.deepEqual(touching, [], 'gravity: axis labels overlap');
      assert.ok(
        (await page.locator('#view-gravity .live-out .plot[data-name=temperature] svg').count()) ===
          1,
        'the temperature panels are drawn',
      );
      await shot('gravity-live', true);

      // 7. every lens's results under --runs: their figures, their tagged metrics
      for (const [view, figure] of [
        ['persistence', 'persistence_diagrams'],
        ['simplex', 'ternary'],
        ['gravity', 'potential'],
        ['sde', 'drift'],
      ]) {
        await page.click(`#tabs a[data-view=${view}]`);
        const v = page.locator(`#view-${view} .lens-browser`);
        await v.locator(`.plot[data-name=${figure}] svg`).waitFor();
        assert.ok(
          (await v
            .locator(
              `.plot[data-name=${figure}] .mark-symbol path, .plot[data-name=${figure}] .mark-line path, .plot[data-name=${figure}] .mark-rect path`,
            )
            .count()) > 0,
          `${view}: ${figure} has marks`,
        );
        assert.ok((await v.locator('.tag').count()) > 0, `${view}: tagged metrics`);
        if (view === 'persistence')
          assert.equal(
            await v.locator('.plot[data-name=heatmap_C_mean]').count(),
            0,
            'only persistence figures',
          );
        await shot(view);
      }

      // 8. run folders: every result listed, a trace drawn
      await page.click('#tabs a[data-view=runs]');
      const runs = page.locator('#view-runs');
      await runs.locator('.list button').first().waitFor();
      const listing = (await (
        await fetch(`${origin}/api/runs`, { headers: { 'X-Lmdyn': '1' } })
      ).json()) as { results: unknown[] };
      assert.equal(listing.results.length, 12); // 7 results, the sweep's 4 configuration traces, a folder of figures
      assert.equal(await runs.locator('.list button').count(), 12);
      // grouped: the sweep's 4 configuration traces folded under it, the 4 stand-in lens reports
      // under their folder; the other results on their own
      assert.equal(await runs.locator('.list details.configs button').count(), 4);
      assert.match(
        (await runs.locator('.list details.configs > summary').textContent()) ?? '',
        /^4 configuration traces$/,
      );
      assert.deepEqual(await runs.locator('.list details.group > summary').allTextContents(), [
        'lenses/ (4 results)',
      ]);
      await runs.locator('.list button', { hasText: /^trace\s*trace$/ }).click();
      await runs.locator('.content .plot[data-name=trajectory_pca] svg').waitFor();
      await shot('runs');

      // 9. a 1,000-step generation (tiny-gpt2 holds 1,024 positions): frames keep coming
      await page.click('#tabs a[data-view=generate]');
      await page.selectOption('#model', tiny);
      await page.fill('#prompt', 'Hello');
      await page.fill('#maxTokens', '1000');
      await page.fill('#seed', '1');
      await page.click('#generate');
      await page.waitForFunction(
        () => (window as unknown as { lmdynStats: { done: boolean } }).lmdynStats.done,
        null,
        { timeout: 90_000 },
      );
      const stats = await page.evaluate(
        () =>
          (
            window as unknown as {
              lmdynStats: { frames: number; maxGapMs: number; maxFlushMs: number; events: number };
            }
          ).lmdynStats,
      );
      t.diagnostic(
        `1,000 steps: ${stats.events} events, ${stats.frames} frames, longest gap ${stats.maxGapMs.toFixed(0)} ms, longest redraw ${stats.maxFlushMs.toFixed(1)} ms`,
      );
      assert.equal(await page.locator('#tokens span:not(.prompt)').count(), 1000);
      // generous bounds: the machine is shared; a page that froze while streaming would miss them by far
      assert.ok(stats.frames > 20, `the page kept drawing (${stats.frames} frames)`);
      assert.ok(stats.maxFlushMs < 1000, `the longest redraw took ${stats.maxFlushMs} ms`);
      const t0 = Date.now();
      await page.click('#tokens span:not(.prompt) >> nth=900');
      await page.waitForFunction(() =>
        /^step 900:/.test(document.querySelector('#dist-title')!.textContent ?? ''),
      );
      assert.ok(Date.now() - t0 < 5000, `selecting a token took ${Date.now() - t0} ms`);
      // random weights: a nearly flat distribution over 50,257 tokens, each p near 2e-5, printed in
      // scientific notation (not "0.000"); partial UTF-8 tokens as their bytes, never a box
      const flat = await page.$$eval('#dist .bar', (rows) =>
        rows.map((r) => ({
          label: r.querySelector('.label')!.textContent ?? '',
          val: r.querySelector('.val')!.textContent ?? '',
        })),
      );
      assert.equal(flat.length, 10);
      for (const b of flat) {
        assert.notEqual(b.val, '0.000');
        assert.match(b.val, /^\d\.\de-\d+$/, `p printed as ${b.val}`);
        assert.ok(Number(b.val) > 0 && Number(b.val) < 1e-3);
        assert.ok(!b.label.includes('\uFFFD'), b.label);
      }
      const spans = await page.$$eval('#tokens span', (ss) => ss.map((x) => x.textContent ?? ''));
      assert.deepEqual(
        spans.filter((x) => x.includes('\uFFFD')),
        [],
        'no token shows U+FFFD',
      );
      t.diagnostic(
        `${spans.filter((x) => /<0x[0-9A-F]{2}>/.test(x)).length} tokens shown as bytes`,
      );
      await shot('generate-1000');

      assert.deepEqual(external, [], 'nothing was requested from another origin');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      await server.close();
      rmSync(root, { recursive: true, force: true });
      rmSync(profile, { recursive: true, force: true });
    }
  },
);
