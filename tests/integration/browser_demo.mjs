// Drives the demo shop in headless Chromium (playwright-core): a search, then a refinement
// session over two turns, checking the page after each step; saves a screenshot. Prints TAP.
// usage: node browser_demo.mjs BASE_URL SCREENSHOT_PATH   (CHROMIUM = the browser binary)
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");
const [base, screenshot] = process.argv.slice(2);
let n = 0, failed = 0;
const ok = (cond, name) => {
  n++;
  if (!cond) failed++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${name}`);
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/");
  ok((await page.title()) === "Tailor demo shop", "the demo page loads");
  await page.waitForFunction(() => document.querySelectorAll("#category option").length > 1);
  ok(true, "categories come from /v1/info");

  await page.fill("#query", "a red summer dress");
  await page.click("#search-form button");
  await page.waitForSelector("#results .card img");
  const cards = await page.locator("#results .card").count();
  ok(cards > 0, `search shows ${cards} products`);
  // images are lazy: those in the first row are on screen and must load
  const loaded = await page
    .waitForFunction(() => [...document.querySelectorAll("#results .card img")].slice(0, 3)
      .every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 10000 })
    .then(() => true, () => false);
  ok(loaded, "product images load from /images/{id}");

  const firstId = await page.locator("#results .card").first().getAttribute("data-id");
  await page.locator("#results .card .more-like-this").first().click();
  await page.waitForFunction(() => /like “/.test(document.querySelector("#status").textContent));
  const ids = await page.locator("#results .card").evaluateAll((els) => els.map((e) => e.dataset.id));
  ok(!ids.includes(firstId), "more like this excludes the product itself");

  await page.locator("#results .card .refine").first().click();
  await page.waitForSelector("#refine:not([hidden]) #reference img");
  for (const [turn, text] of [[1, "the same but in blue"], [2, "shorter sleeves"]]) {
    await page.fill("#feedback", text);
    await page.click("#refine-form button");
    await page.waitForFunction((t) => document.querySelector("#status").textContent.includes(`after turn ${t}`), turn);
    const listed = await page.locator("#turns li").count();
    ok(listed === turn && (await page.locator("#results .card").count()) > 0, `refinement turn ${turn} shows results`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  ok(errors.length === 0, "no script errors" + (errors.length ? `: ${errors[0]}` : ""));
} catch (e) {
  ok(false, `browser run: ${e.message}`);
} finally {
  await browser.close();
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
