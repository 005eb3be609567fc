// The status page in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
//
//   node scripts/ops_web/browser.mjs BASE_URL TOKEN XSS_RUN_ID ARTIFACT_DIR [LABEL]
//
// BASE_URL is the server (http://127.0.0.1:PORT) or the site in front of it
// (https://127.0.0.1:PORT/cron, whose self-signed certificate is accepted); LABEL names the run
// in the check lines.
//
// Checks, each printed as `ok - ...` / `not ok - ...: why`:
//   - /status without a login lands on the login form; the form logs in with the token;
//   - the cookie the browser keeps: HttpOnly, Secure, SameSite=Strict, not the token, not visible
//     to document.cookie (the page has no script anyway: this runs in an isolated world);
//   - the task list shows the task named <script>alert(1)</script> as text, no dialog opens,
//     no script element exists, the stylesheet applied under the CSP and no CSP violation is
//     reported;
//   - the run's page shows its output (also HTML-looking output) as text;
//   - at a phone's width (390 px) the page does not scroll sideways;
//   - a wrong token is refused with a message.
// Screenshots go to ARTIFACT_DIR (their paths are printed). Exit 1 when anything failed.
import { harness, launch, watchedPage } from "./harness.mjs";

const [base, token, xssRun, artifacts, label = "browser"] = process.argv.slice(2);
const XSS = "<script>alert(1)</script>";
const { ok, notOk, check, shot, finish } = harness(label, artifacts);
const { context, close } = await launch("claudecron-chromium-", {
  viewport: { width: 1100, height: 800 },
  ignoreHTTPSErrors: base.startsWith("https://127.0.0.1"),
});
try {
  const { page, dialogs, cspViolations } = await watchedPage(context);

  // 1. Not logged in: the login form.
  await page.goto(`${base}/status`);
  check("/status without a login shows the login form", page.url().endsWith("/status/login"), page.url());
  await shot(page, "01-login");

  // 2. A wrong token.
  await page.fill("#token", "this-is-not-the-token");
  await Promise.all([page.waitForLoadState("load"), page.click("button[type=submit]")]);
  const wrong = await page.textContent("body");
  check("a wrong token is refused with a message", /not valid/.test(wrong) && page.url().endsWith("/status/login"), wrong);
  check("no cookie after a wrong token", (await context.cookies()).length === 0, JSON.stringify(await context.cookies()));

  // 3. Log in.
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(/\/status$/), page.click("button[type=submit]")]);
  check("login lands on /status", page.url().endsWith("/status"), page.url());
  const cookies = await context.cookies();
  const c = cookies.find((x) => x.name === "claudecron_status");
  check("the login cookie is kept by the browser", !!c, JSON.stringify(cookies));
  if (c) {
    check("cookie is HttpOnly", c.httpOnly === true, JSON.stringify(c));
    check(`cookie is Secure (kept over ${new URL(base).protocol}//127.0.0.1)`, c.secure === true, JSON.stringify(c));
    check("cookie is SameSite=Strict", c.sameSite === "Strict", JSON.stringify(c));
    check("cookie value is not the token", c.value !== token && !c.value.includes(token), "it is the token");
  }
  const visible = await page.evaluate(() => document.cookie);
  check("document.cookie does not show the login cookie", !visible.includes("claudecron_status"), visible);

  // 4. The task list.
  const body = await page.textContent("body");
  check("the task list shows the <script> task name as text", body.includes(XSS), body.slice(0, 400));
  check("the task list shows the other tasks", body.includes("tick") && body.includes("fails"), body.slice(0, 400));
  check("the task list shows a paused task as paused", /paused/.test(body), body.slice(0, 400));
  check("the last runs table is there", /Last 50 runs/.test(body), body.slice(0, 400));
  const scripts = await page.evaluate(() => document.querySelectorAll("script").length);
  check("no script element on the page", scripts === 0, `${scripts} script elements`);
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check("the stylesheet applied under the CSP", bg === "rgb(250, 250, 250)", bg);
  await shot(page, "02-tasks");

  // 5. The <script> task's run.
  await Promise.all([page.waitForURL(new RegExp(`/status/run/${xssRun}$`)), page.click(`a[href$="status/run/${xssRun}"]`)]);
  const out = await page.textContent("#output");
  check("a run's page shows its output as text", out.includes("<img src=x onerror=alert(2)>") && out.includes("hello from the run"), out);
  const imgs = await page.evaluate(() => document.querySelectorAll("img").length);
  check("HTML in the output made no element", imgs === 0, `${imgs} img elements`);
  const title = await page.textContent("dd");
  check("the run page names the task as text", title.includes(XSS), title);
  await shot(page, "03-run");

  // 6. A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/status`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("at 390 px the page does not scroll sideways", overflow <= 1, `${overflow}px too wide`);
  await shot(page, "04-phone");

  // Give any stray script a moment it would need to open a dialog: none may have opened.
  await page.waitForTimeout(300);
  check("no dialog opened on any page", dialogs.length === 0, dialogs.join(", "));
  check("no CSP violation reported", cspViolations.length === 0, cspViolations.join(" | "));
} catch (e) {
  notOk("browser session", e.stack || e);
} finally {
  await close();
}
finish();
