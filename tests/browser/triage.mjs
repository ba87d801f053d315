// Drives Debian's Chromium (headless) through the triage page of a running daemon and prints
// what it saw as one JSON object; tests/browser.rs starts the daemon and judges the result.
//
//   node triage.mjs BASE_URL SCREENSHOT_DIR GROUP_SOURCE HOSTILE_UUID HOSTILE_GROUP
//
// GROUP_SOURCE picks the group row to click (its Source column); HOSTILE_* are a flow and a
// group whose names carry markup.
import { chromium } from "playwright-core";

const [base, shots, groupSource, hostileUuid, hostileGroup] = process.argv.slice(2);
const executablePath = process.env.HUBBLE_NOISE_CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const out = { dialogs: [], violations: 0 };

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  page.on("dialog", async (d) => {
    out.dialogs.push(d.message());
    await d.dismiss();
  });

  // The groups.
  const index = await page.goto(base + "/");
  out.csp = index.headers()["content-security-policy"] || "";
  out.groups = await page.$$eval("table.groups tbody tr", (rows) =>
    rows.map((r) => ({
      flows: Number(r.cells[1].innerText),
      source: r.cells[3].innerText,
      destination: r.cells[4].innerText,
      href: r.cells[1].querySelector("a").getAttribute("href"),
    })),
  );
  await page.screenshot({ path: `${shots}/groups.png`, fullPage: true });

  // Inline script is refused by the page's policy.
  await page.evaluate(() => {
    window.__violations = 0;
    document.addEventListener("securitypolicyviolation", () => (window.__violations += 1));
  });
  out.inlineRan = await page.evaluate(async () => {
    const s = document.createElement("script");
    s.textContent = "window.__inline = 1";
    document.body.appendChild(s);
    await new Promise((r) => setTimeout(r, 100));
    return window.__inline === 1;
  });
  out.violations = await page.evaluate(() => window.__violations);

  // A click opens the group: its draft rule, copied by the button, then filled in.
  const row = page.locator("table.groups tbody tr", { hasText: groupSource }).first();
  await Promise.all([page.waitForURL(/\/groups\//), row.locator("td.num a").click()]);
  out.groupUrl = page.url();
  out.draftPlaceholder = await page.inputValue("textarea#draft");
  await page.click("button.copy");
  // The copy is asynchronous: wait for the button to say it is done.
  await page
    .waitForFunction(() => document.querySelector("button.copy").textContent === "Copied", null, {
      timeout: 5000,
    })
    .catch(() => {});
  out.copyLabel = await page.innerText("button.copy");
  out.clipboard = await page.evaluate(() => navigator.clipboard.readText());
  await page.fill("input[name=owner]", "team-shop");
  await page.fill("input[name=comment]", "Blocked on purpose: OPS-42");
  await Promise.all([page.waitForURL(/owner=team-shop/), page.click("form.fill button")]);
  out.draft = await page.inputValue("textarea#draft");
  await page.screenshot({ path: `${shots}/group.png`, fullPage: true });

  // A click opens a flow: its decision path.
  await Promise.all([
    page.waitForURL(/\/flows\//),
    page.locator("table.flows tbody tr a.uuid").first().click(),
  ]);
  out.flowUrl = page.url();
  out.explain = await page.innerText("pre.explain");
  await page.screenshot({ path: `${shots}/flow.png`, fullPage: true });

  // Names with markup are text.
  await page.goto(`${base}/flows/${hostileUuid}`);
  out.hostileFlowText = await page.innerText("dl.facts");
  await page.goto(`${base}/groups/${hostileGroup}`);
  out.hostileGroupText = await page.innerText("main");
  await page.goto(`${base}/`);
  out.hostileIndexText = await page.innerText("table.groups");
  out.xss = await page.evaluate(() => window.__xss ?? null);

  // A phone, and JavaScript off: the page still works (the copy button stays hidden).
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    javaScriptEnabled: false,
  });
  const p2 = await phone.newPage();
  await p2.goto(base + "/");
  out.noJsRows = await p2.locator("table.groups tbody tr").count();
  await p2.screenshot({ path: `${shots}/groups-phone.png`, fullPage: true });
  await p2.goto(out.groupUrl);
  out.noJsCopyVisible = await p2.locator("button.copy").isVisible();
  out.noJsDraft = await p2.inputValue("textarea#draft");
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
