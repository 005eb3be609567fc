// What browser.mjs and consent.mjs share: TAP-style checks labelled with the suite's name,
// screenshots into the artifact directory, and headless Chromium (Debian's /usr/bin/chromium
// through playwright-core) on a fresh profile of its own. Copied beside them into the interop
// cache's playwright/ folder, where playwright-core resolves.
import { chromium } from "playwright-core";
import path from "node:path";
import fs from "node:fs";
import os from "node:os";

export function harness(label, artifacts) {
  let failed = 0;
  const shots = [];
  const ok = (name) => console.log(`ok - ${label}: ${name}`);
  const notOk = (name, why) => {
    failed++;
    console.log(`not ok - ${label}: ${name}: ${String(why).replace(/\n/g, " ")}`);
  };
  const check = (name, cond, why) => (cond ? ok(name) : notOk(name, why));
  const shot = async (page, name) => {
    const file = path.join(artifacts, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
  };
  // Screenshots listed, exit 1 when anything failed.
  const finish = () => {
    for (const s of shots) console.log(`# screenshot: ${s}`);
    process.exit(failed ? 1 : 0);
  };
  fs.mkdirSync(artifacts, { recursive: true });
  return { ok, notOk, check, shot, finish };
}

// Chromium on a fresh profile (--user-data-dir) of our own: a persistent context is how
// playwright takes one. `close()` ends it and removes the profile.
export async function launch(profilePrefix, options) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), profilePrefix));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    timeout: 120_000,
    ...options,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

// The context's page, with every dialog (dismissed) and every CSP violation the console reports
// recorded, for the checks that none happened.
export async function watchedPage(context) {
  context.setDefaultTimeout(60_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const dialogs = [];
  const cspViolations = [];
  page.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  page.on("console", (m) => {
    if (/Content.Security.Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
  });
  return { page, dialogs, cspViolations };
}
