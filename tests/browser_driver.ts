/**
 * Drives the demo page in headless Chromium for tests/browser_test.ts, in its own process
 * (playwright-core needs more permissions than the test suite grants):
 * `browser_driver.ts URL TEXT SCREENSHOT` opens URL, waits until the model is ready (or the page
 * shows an error), types TEXT, clicks, waits for the result, saves a screenshot and prints what the
 * page shows as JSON (`PageRun`).
 */

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** What the page showed. */
export interface PageRun {
  /** The status line. */
  status: string;
  /** Its thread count and SIMD kind, once the model is ready. */
  threads?: string;
  relaxedSimd?: boolean;
  /** The label, latency text, probabilities (full precision) and table rows, once classified. */
  label?: string;
  latency?: string;
  probabilities?: number[];
  rows?: string[];
  /** Uncaught errors of the page. */
  errors: string[];
}

if (import.meta.main) {
  const [url, text, screenshot] = Deno.args;
  const { chromium } = await import("npm:playwright-core@1.65.2");
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
    ],
  });
  try {
    const page = await browser.newPage();
    const run: PageRun = { status: "", errors: [] };
    page.on("pageerror", (e: Error) => run.errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector("#run:not([disabled]), #status.error", { timeout: 60_000 });
    if (!(await page.$("#status.error"))) {
      run.threads = (await page.getAttribute("#status", "data-threads")) ?? undefined;
      run.relaxedSimd = (await page.getAttribute("#status", "data-relaxed-simd")) === "true";
      await page.fill("#text", text);
      await page.click("#run");
      await page.waitForSelector("#result:not([hidden]), #status.error", { timeout: 60_000 });
      if (!(await page.$("#status.error"))) {
        run.label = (await page.textContent("#label")) ?? undefined;
        run.latency = (await page.textContent("#latency")) ?? undefined;
        run.probabilities = JSON.parse((await page.getAttribute("#result", "data-probabilities"))!);
        run.rows = await page.$$eval("#probabilities tr", (trs) => trs.map((tr) => tr.textContent ?? ""));
      }
    }
    run.status = (await page.textContent("#status")) ?? "";
    await page.screenshot({ path: screenshot });
    console.log(JSON.stringify(run));
  } finally {
    await browser.close();
  }
}
