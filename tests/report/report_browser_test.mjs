// Opens DIR/report.html in Debian's headless Chromium (through playwright-core) and checks it the way
// a user would see it:
//   - for every cost axis, the number of drawn points (.point) equals the store's row count, which
//     the caller counted with the sqlite3 tool;
//   - exactly the Pareto points of that axis (on_front_<axis> in DIR/points.csv) carry "pareto",
//     and the front line is drawn;
//   - hovering a point shows its recipe; dragging a rectangle leaves only the points inside it in
//     the table; reset brings every row back; a header click sorts, a second one reverses;
//   - nothing is fetched from the network and the page logs no error.
// Saves DIR/report.png. Usage: node report_browser_test.mjs DIR ROWS [CHROMIUM]
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const [dir, rowsText, executable = "/usr/bin/chromium"] = process.argv.slice(2);
if (!dir || !rowsText) {
  console.error("usage: node report_browser_test.mjs DIR ROWS [CHROMIUM]");
  process.exit(2);
}
const expectedRows = Number(rowsText);
const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
}

// RFC 4180, as points.csv is written: quoted fields, doubled quotes, CRLF records.
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false, started = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && !started) { quoted = started = true; }
    else if (c === ",") { row.push(field); field = ""; started = false; }
    else if (c === "\r" && text[i + 1] === "\n") { row.push(field); rows.push(row); row = []; field = ""; started = false; i++; }
    else { field += c; started = true; }
  }
  if (started || row.length) throw new Error("points.csv: last record lacks CRLF");
  const [header, ...body] = rows;
  return body.map(r => Object.fromEntries(header.map((h, k) => [h, r[k]])));
}

const csv = parseCsv(readFileSync(path.join(dir, "points.csv"), "utf8"));
check(csv.length === expectedRows, `points.csv has ${csv.length} rows, the store ${expectedRows}`);
const axes = Object.keys(csv[0] || {}).filter(k => k.startsWith("on_front_")).map(k => k.slice("on_front_".length));
check(axes.length === 3, `points.csv has on_front columns for ${axes.join(", ")}`);

const browser = await chromium.launch({ executablePath: executable, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const external = [], errors = [];
  page.on("request", r => { if (!/^(file|data|about|blob):/.test(r.url())) external.push(r.url()); });
  page.on("pageerror", e => errors.push(String(e)));
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(pathToFileURL(path.resolve(dir, "report.html")).href);
  await page.waitForSelector("body[data-ready='1']", { timeout: 10000 });

  const options = await page.$$eval("#axis option", os => os.map(o => o.value));
  check(JSON.stringify(options) === JSON.stringify(axes), `axis selector offers ${options.join(", ")}`);
  for (const axis of axes) {
    await page.selectOption("#axis", axis);
    const drawn = await page.locator("#plot .point").count();
    check(drawn === expectedRows, `${axis}: ${drawn} points drawn, ${expectedRows} rows in the store`);
    const marked = (await page.$$eval("#plot .point.pareto", es => es.map(e => e.getAttribute("data-id")))).sort();
    const expected = csv.filter(r => r[`on_front_${axis}`] === "1").map(r => r.id).sort();
    check(expected.length > 0 && JSON.stringify(marked) === JSON.stringify(expected),
      `${axis}: Pareto-marked points [${marked}] are the front of points.csv [${expected}]`);
    const distinctIds = new Set(await page.$$eval("#plot .point", es => es.map(e => e.getAttribute("data-id"))));
    check(distinctIds.size === expectedRows && csv.every(r => distinctIds.has(r.id)), `${axis}: every row's id is drawn once`);
    // A Pareto point is drawn differently from the rest (filled in its family's colour, bigger).
    const looks = await page.$$eval("#plot .point", es => es.map(e => ({ pareto: e.classList.contains("pareto"), fill: getComputedStyle(e).fill })));
    const greyFill = new Set(looks.filter(l => !l.pareto).map(l => l.fill));
    check(looks.filter(l => l.pareto).every(l => !greyFill.has(l.fill) || l.fill === "none"), `${axis}: Pareto points are coloured unlike the rest`);
    check(expected.length < 2 || await page.locator("#plot .front-line").count() === 1, `${axis}: the front line is drawn`);
    const tableRows = await page.locator("#points-table tbody tr").count();
    check(tableRows === expectedRows, `${axis}: the table lists ${tableRows} rows`);
    const starred = (await page.$$eval("#points-table tbody tr.pareto", rs => rs.map(r => r.dataset.id))).sort();
    check(JSON.stringify(starred) === JSON.stringify(expected), `${axis}: the table marks the same Pareto rows`);
  }

  // Hover shows the recipe.
  await page.selectOption("#axis", axes[0]);
  const firstFront = csv.find(r => r[`on_front_${axes[0]}`] === "1");
  await page.hover(`#plot .point[data-id="${firstFront.id}"]`);
  const tip = page.locator("#tooltip");
  await tip.waitFor({ state: "visible", timeout: 3000 });
  const tipText = await tip.innerText();
  check(tipText.includes(firstFront.recipe), `hover on point ${firstFront.id} shows its recipe`);
  check(tipText.includes(firstFront.weight_format) && tipText.includes(firstFront.technique), "hover shows the formats and the technique");
  await page.mouse.move(2, 2);

  // Rectangle selection: a drag over the left part of the points; the cut goes through the widest
  // gap between point centres so that no marker straddles it.
  const centres = await page.$$eval("#plot .point", es => es.map(e => {
    const b = e.getBoundingClientRect();
    return { id: e.getAttribute("data-id"), x: b.x + b.width / 2, y: b.y + b.height / 2 };
  }));
  const xs = [...new Set(centres.map(c => c.x))].sort((a, b) => a - b);
  let cut = null, gap = 0;
  for (let k = 1; k < xs.length; k++) if (xs[k] - xs[k - 1] > gap) { gap = xs[k] - xs[k - 1]; cut = (xs[k] + xs[k - 1]) / 2; }
  check(cut !== null && gap > 12, `points spread out enough to cut between them (widest gap ${gap.toFixed(1)} px)`);
  const top = Math.min(...centres.map(c => c.y)) - 15, bottom = Math.max(...centres.map(c => c.y)) + 15;
  const left = Math.min(...centres.map(c => c.x)) - 15;
  const inside = centres.filter(c => c.x < cut).map(c => c.id).sort();
  await page.mouse.move(left, top);
  await page.mouse.down();
  await page.mouse.move((left + cut) / 2, (top + bottom) / 2, { steps: 4 });
  await page.mouse.move(cut, bottom, { steps: 4 });
  await page.mouse.up();
  const shown = (await page.$$eval("#points-table tbody tr", rs => rs.map(r => r.dataset.id))).sort();
  check(inside.length > 0 && inside.length < expectedRows, `the rectangle holds ${inside.length} of ${expectedRows} points`);
  check(JSON.stringify(shown) === JSON.stringify(inside), `after the drag the table shows exactly those [${shown}]`);
  const dimmed = await page.locator("#plot .point.dim").count();
  check(dimmed === expectedRows - inside.length, `the ${dimmed} points outside are dimmed`);
  await page.click("#reset");
  check(await page.locator("#points-table tbody tr").count() === expectedRows, "reset shows every row again");

  // Sorting: top-1 ascending, then descending (missing values last either way).
  const top1s = async () => (await page.$$eval("#points-table tbody td[data-key='top1']", ts => ts.map(t => t.textContent)))
    .filter(t => t !== "n/a").map(Number);
  await page.click("#points-table th[data-key='top1']");
  const up = await top1s();
  check(up.length > 1 && up.every((v, k) => k === 0 || up[k - 1] <= v), `one click sorts top-1 up: ${up.join(" ")}`);
  await page.click("#points-table th[data-key='top1']");
  const down = await top1s();
  check(down.every((v, k) => k === 0 || down[k - 1] >= v) && down[0] > down[down.length - 1], `a second click sorts it down: ${down.join(" ")}`);

  const title = await page.locator("h1").innerText();
  check(title.startsWith("lowbit report: "), `title "${title}"`);
  check(external.length === 0, `no network requests${external.length ? ": " + external.join(", ") : ""}`);
  check(errors.length === 0, `no page errors${errors.length ? ": " + errors.join("; ") : ""}`);
  await page.screenshot({ path: path.join(dir, "report.png"), fullPage: true });
  console.log(`screenshot: ${path.join(dir, "report.png")}`);
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("report.html: all checks passed");
