// Reads rendered report pages in Debian's headless Chromium as a person (and a screen reader)
// would and prints one JSON object per page on stdout:
//   node check.mjs [--pdf DIR] PAGE.html ...
// - "violations": axe-core's violations (every rule axe runs by default, WCAG 2.2 A/AA included)
// - "overflow320": how far the page scrolls sideways in a 320 px wide window (WCAG 1.4.10)
// - "pdfPages": pages when printed on A4 with the page's print stylesheet (and the PDF in DIR)
// - "firstPrintedPage": the text of the first printed page's headings, to check what leads
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const args = process.argv.slice(2);
let pdfDir = null;
if (args[0] === "--pdf") {
  pdfDir = args[1];
  args.splice(0, 2);
}
const executablePath =
  process.env.RRP_EVAL_CHROMIUM ||
  ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find((p) =>
    fs.existsSync(p),
  );
const browser = await chromium.launch({
  executablePath,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

function countPages(pdf) {
  const text = pdf.toString("latin1");
  return (text.match(/\/Type\s*\/Page[^s]/g) || []).length;
}

try {
  for (const file of args) {
    const url = "file://" + path.resolve(file);
    const result = { page: file };
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url, { waitUntil: "load" });
    await page.addScriptTag({ content: axeSource });
    const axe = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.length,
        examples: v.nodes.slice(0, 3).map((n) => ({ target: n.target, summary: n.failureSummary })),
      }));
    });
    // axe leaves one-letter text "incomplete"; badges and verdicts are checked here
    const contrast = await page.evaluate(() => {
      const rgb = (c) => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = getComputedStyle(e).backgroundColor;
          if (c && !c.startsWith("rgba(0, 0, 0, 0)") && c !== "transparent") return rgb(c);
        }
        return [255, 255, 255];
      };
      const out = [];
      for (const el of document.querySelectorAll(".badge, .verdict, .status-ok, .status-failed")) {
        const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        if (ratio < 4.5) out.push({ text: el.textContent.trim(), ratio: +ratio.toFixed(2) });
      }
      return out;
    });
    if (contrast.length) {
      axe.push({
        id: "rrp-text-contrast",
        impact: "serious",
        help: "Badge and verdict text must have a contrast ratio of at least 4.5:1",
        nodes: contrast.length,
        examples: contrast.slice(0, 3),
      });
    }
    result.violations = axe;
    // the first Tab reaches the skip link, and focus is visible (not the browser's default)
    await page.keyboard.press("Tab");
    result.focus = await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return {
        text: (el.textContent || "").trim().slice(0, 40),
        visible: el.getBoundingClientRect().height > 0,
        background: style.backgroundColor,
        shadow: style.boxShadow,
      };
    });
    await page.setViewportSize({ width: 320, height: 900 });
    result.overflow320 = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ media: "print" });
    // where the key findings end on paper (A4 less the stylesheet's 30 mm of margins)
    result.keyFindingsOnFirstPage = await page.evaluate(() => {
      const box = document.querySelector(".rrp-key, .rrp-primary");
      if (!box) return null;
      const pageHeight = ((297 - 30) / 25.4) * 96;
      return box.getBoundingClientRect().bottom + window.scrollY <= pageHeight;
    });
    const pdf = await page.pdf({ format: "A4", printBackground: true, preferCSSPageSize: true });
    result.pdfPages = countPages(pdf);
    if (pdfDir) {
      fs.mkdirSync(pdfDir, { recursive: true });
      fs.writeFileSync(path.join(pdfDir, path.basename(file, ".html") + ".pdf"), pdf);
    }
    result.consoleErrors = errors;
    process.stdout.write(JSON.stringify(result) + "\n");
    await context.close();
  }
} finally {
  await browser.close();
}
