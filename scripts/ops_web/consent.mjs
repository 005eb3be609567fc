// The OAuth consent page (issue 12) in real headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core):
//
//   node scripts/ops_web/consent.mjs AUTHORIZE_URL CALLBACK_PREFIX PASSWORD ARTIFACT_DIR
//
// AUTHORIZE_URL is a full /authorize request of a client registered with the name
// <script>alert(1)</script> and the redirect URI CALLBACK_PREFIX (http://127.0.0.1:PORT/callback:
// this script listens there, as a native client would, and reads the URL the browser brings).
//
// Checks, each printed as `ok - ...` / `not ok - ...: why`:
//   - the page renders: heading, a password field, Approve and Deny; the stylesheet applies under
//     the page's CSP (its style by hash) and no CSP violation is reported;
//   - the client's name <script>alert(1)</script> is shown as text: no dialog, no script element;
//   - a wrong password is refused (401, the message, still the form);
//   - the right password leads the browser to the callback with code, state and iss;
// Screenshots go to ARTIFACT_DIR (their paths are printed). Exit 1 when anything failed.
import { harness, launch, watchedPage } from "./harness.mjs";
import http from "node:http";

const [authorizeUrl, callbackPrefix, password, artifacts] = process.argv.slice(2);
const XSS = "<script>alert(1)</script>";
const label = "consent page";
const { ok, notOk, check, shot, finish } = harness(label, artifacts);
const { context, close } = await launch("claudecron-chromium-consent-", { viewport: { width: 900, height: 800 } });
try {
  const { page, dialogs, cspViolations } = await watchedPage(context);
  let callbackUrl = "";
  const cb = new URL(callbackPrefix);
  const listener = http.createServer((req, res) => {
    // The callback itself, not what the browser asks the same origin for after it (its
    // /favicon.ico, which once came last and was taken for the callback).
    if (req.url.startsWith(cb.pathname)) callbackUrl = `${cb.origin}${req.url}`;
    res.writeHead(200, { "Content-Type": "text/plain" }).end("callback reached");
  });
  await new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(Number(cb.port), "127.0.0.1", resolve);
  });

  // 1. The page renders.
  const first = await page.goto(authorizeUrl);
  check("GET /authorize renders the consent page (200)", first?.status() === 200, first?.status());
  const heading = await page.textContent("h1");
  check("heading asks to connect", /Connect to claudecron/.test(heading ?? ""), heading);
  const controls = await page.evaluate(() => ({
    password: !!document.querySelector("input[type=password]#password"),
    approve: !!document.querySelector("button#approve"),
    deny: !!document.querySelector("button#deny"),
    csrf: (document.querySelector("input[name=csrf_token]")?.value ?? "").length,
  }));
  check("a password field, Approve, Deny and a CSRF token", controls.password && controls.approve && controls.deny && controls.csrf >= 32,
    JSON.stringify(controls));
  const maxWidth = await page.evaluate(() => getComputedStyle(document.body).maxWidth);
  check("the page's style applies under its CSP (style by hash)", maxWidth !== "none" && maxWidth !== "", maxWidth);
  await shot(page, "oauth-consent-01-page");

  // 2. The malicious client name is inert.
  const name = await page.textContent("#client-name");
  const scripts = await page.evaluate(() => document.scripts.length);
  check(`the client name ${XSS} is shown as text`, name === XSS, name);
  check("no script element on the page, no dialog", scripts === 0 && dialogs.length === 0,
    `scripts ${scripts}, dialogs ${JSON.stringify(dialogs)}`);

  // 3. A wrong password.
  await page.fill("#password", "not the owner password");
  const [wrong] = await Promise.all([page.waitForNavigation(), page.click("#approve")]);
  const error = await page.textContent("#error").catch(() => null);
  check("a wrong password is refused (401, the message, the form again)",
    wrong?.status() === 401 && /not right/.test(error ?? "") && (await page.$("#password")) !== null,
    `status ${wrong?.status()}, error ${error}`);
  await shot(page, "oauth-consent-02-wrong-password");

  // 4. The right password: to the callback with code, state and iss.
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${callbackPrefix}**`), page.click("#approve")]);
  const got = new URL(callbackUrl || page.url());
  check("the right password leads the browser to the callback with code, state and iss",
    /^ccac_[0-9a-f]{64}$/.test(got.searchParams.get("code") ?? "") && got.searchParams.get("state") === "chromium-state" &&
      (got.searchParams.get("iss") ?? "").startsWith("http://127.0.0.1:"),
    got.toString().replace(/code=[^&]+/, "code=(hidden)"));
  check("no CSP violation was reported", cspViolations.length === 0, cspViolations.join(" | "));
  check("no dialog opened at any point", dialogs.length === 0, JSON.stringify(dialogs));
  await shot(page, "oauth-consent-03-callback");
  listener.close();
} catch (e) {
  notOk("consent page run", e?.stack ?? e);
} finally {
  await close();
}
finish();
