// Drives Debian's Chromium, headless, for tests/glass.rs: one page, steered
// by JSON commands on stdin, one JSON answer per line on stdout.
//
//   {"op":"open","url":U}                      -> the page's URL after load
//   {"op":"wait_count","selector":S,"min":N}   -> count, once >= N (waits)
//   {"op":"wait_text","selector":S,"text":T}   -> text of the first match containing T (waits)
//   {"op":"texts","selector":S}                -> [textContent of each match]
//   {"op":"attrs","selector":S,"name":A}       -> [attribute A of each match]
//   {"op":"fill","selector":S,"text":T}        -> null
//   {"op":"click","selector":S}                -> null
//   {"op":"eval","expr":E}                     -> the value of E in the page
//   {"op":"screenshot","path":P}               -> P (a full-page PNG)
//   {"op":"pixels","path":P,"colors":[[r,g,b],...]} -> pixels of P near each colour
//   {"op":"intercept","path":P,"body":B}       -> null; the page's GETs of path P get B
//   {"op":"intercept","path":P,"bytes":N}      -> null; ... get a JSON array of N bytes
//   {"op":"problems"}                          -> page errors, CSP violations, failed requests
//
// Answers are {"ok":true,"value":...} or {"ok":false,"error":...}; the
// first line is {"ok":true,"value":{"browser":VERSION}} once Chromium is up.
// Waits give up after ABGP_GLASS_WAIT_MS (default 30000). The script exits
// when stdin closes, and after ABGP_GLASS_MAX_MS (default 180000) whatever
// happens. Chromium resolves no host name but loopback ones
// (--host-resolver-rules) and its background services are off, so it
// sends nothing off this machine.
//
// Environment: ABGP_CHROMIUM (default /usr/bin/chromium) and
// ABGP_PLAYWRIGHT_DIR (default .tools/browser, where
// scripts/install-test-deps.sh puts playwright-core).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const pwDir = process.env.ABGP_PLAYWRIGHT_DIR || path.join(repo, '.tools', 'browser');
const chromiumPath = process.env.ABGP_CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = Number(process.env.ABGP_GLASS_WAIT_MS || 30000);
const MAX_MS = Number(process.env.ABGP_GLASS_MAX_MS || 180000);

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

let browser = null;
const watchdog = setTimeout(async () => {
  say({ ok: false, error: `driver stopped after ${MAX_MS} ms` });
  if (browser) await browser.close().catch(() => {});
  process.exit(3);
}, MAX_MS);

let chromium;
try {
  const require = createRequire(path.join(pwDir, 'package.json'));
  ({ chromium } = require('playwright-core'));
} catch (e) {
  say({ ok: false, error: `playwright-core not found in ${pwDir} (run scripts/install-test-deps.sh): ${e.message}` });
  process.exit(2);
}

try {
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // playwright gives every launch a fresh temporary profile (user data dir).
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-domain-reliability',
      '--no-pings',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]',
    ],
  });
} catch (e) {
  say({ ok: false, error: `Chromium (${chromiumPath}) did not start: ${e.message}` });
  process.exit(2);
}

const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
const page = await context.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
});
page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure() ? r.failure().errorText : ''}`));

async function waitFor(check, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const intercepted = new Map();

const ops = {
  async open({ url }) {
    await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
    return page.url();
  },
  wait_count({ selector, min }) {
    return waitFor(async () => {
      const n = await page.locator(selector).count();
      return n >= min ? n : undefined;
    }, `${min} of ${selector}`);
  },
  wait_text({ selector, text }) {
    return waitFor(async () => {
      const all = await page.locator(selector).allTextContents();
      return all.find((t) => t.includes(text));
    }, `${selector} containing ${JSON.stringify(text)}`);
  },
  texts({ selector }) {
    return page.locator(selector).allTextContents();
  },
  attrs({ selector, name }) {
    return page.locator(selector).evaluateAll((els, n) => els.map((e) => e.getAttribute(n)), name);
  },
  async fill({ selector, text }) {
    await page.locator(selector).fill(text, { timeout: WAIT_MS });
    return null;
  },
  async click({ selector }) {
    await page.locator(selector).first().click({ timeout: WAIT_MS });
    return null;
  },
  eval({ expr }) {
    return page.evaluate(expr);
  },
  async screenshot({ path: file }) {
    await page.screenshot({ path: file, fullPage: true, timeout: WAIT_MS });
    return file;
  },
  // Decodes the PNG in a blank page of its own (the glass's CSP allows no
  // data: images) and counts the pixels within `tolerance` of each colour.
  async pixels({ path: file, colors, tolerance = 24 }) {
    const b64 = readFileSync(file).toString('base64');
    const blank = await context.newPage();
    try {
      return await blank.evaluate(
        async ({ b64, colors, tolerance }) => {
          const img = new Image();
          img.src = 'data:image/png;base64,' + b64;
          await img.decode();
          const canvas = document.createElement('canvas');
          canvas.width = img.naturalWidth;
          canvas.height = img.naturalHeight;
          const g = canvas.getContext('2d');
          g.drawImage(img, 0, 0);
          const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
          const counts = colors.map(() => 0);
          for (let i = 0; i < d.length; i += 4) {
            colors.forEach(([r, gr, b], k) => {
              if (Math.abs(d[i] - r) <= tolerance && Math.abs(d[i + 1] - gr) <= tolerance && Math.abs(d[i + 2] - b) <= tolerance) counts[k] += 1;
            });
          }
          return counts;
        },
        { b64, colors, tolerance },
      );
    } finally {
      await blank.close();
    }
  },
  // Answers the page's requests for one path with a given body, for the
  // tests of what the page does with a big or hostile answer.
  async intercept({ path: wanted, body, bytes }) {
    let text = body;
    if (text === undefined) {
      const n = Math.max(2, Number(bytes));
      text = '[' + '0,'.repeat(Math.floor((n - 2) / 2)) + '0]';
    }
    if (intercepted.has(wanted)) await page.unroute(intercepted.get(wanted));
    const matcher = (url) => url.pathname === wanted;
    intercepted.set(wanted, matcher);
    await page.route(matcher, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: text }));
    return null;
  },
  problems() {
    return problems;
  },
};

say({ ok: true, value: { browser: browser.version() } });

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    say({ ok: false, error: `not JSON: ${e.message}` });
    continue;
  }
  const op = ops[cmd.op];
  if (!op) {
    say({ ok: false, error: `unknown op ${cmd.op}` });
    continue;
  }
  try {
    say({ ok: true, value: (await op(cmd)) ?? null });
  } catch (e) {
    say({ ok: false, error: String((e && e.message) || e) });
  }
}
clearTimeout(watchdog);
await browser.close();
