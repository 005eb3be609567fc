// Preload for the conformance suite (node --import=THIS): adds `Authorization: Bearer $TOKEN` to
// every HTTP request that goes to one origin, because @modelcontextprotocol/conformance 0.1.16 (and
// 0.2.0-alpha.12) have no way to send a header: their server scenarios build
// `new StreamableHTTPClientTransport(new URL(url))` without requestInit, call `fetch(url, {headers:
// {...fixed...}})`, `undici.request(url, {headers: {...fixed...}})` (dns-rebinding-protection), and
// node:http `request({hostname, port, path, headers})` (alpha.12's http-header-validation).
// Nothing else is changed: other origins, other headers, bodies and the suite's logic are untouched.
//
// Environment:
//   CONFORMANCE_BEARER          the token (never printed)
//   CONFORMANCE_TARGET_ORIGIN   e.g. http://127.0.0.1:3010 (only this origin gets the header)
//   CONFORMANCE_NODE_MODULES    the node_modules folder the suite runs from (to load its undici)
import http from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";

const token = process.env.CONFORMANCE_BEARER;
const target = process.env.CONFORMANCE_TARGET_ORIGIN;
const nodeModules = process.env.CONFORMANCE_NODE_MODULES;

function originOf(u) {
  try {
    return new URL(String(u)).origin;
  } catch {
    return "";
  }
}

function hasAuthorization(h) {
  if (!h) return false;
  if (Array.isArray(h)) {
    if (h.length && Array.isArray(h[0])) return h.some((p) => String(p[0]).toLowerCase() === "authorization");
    for (let i = 0; i < h.length; i += 2) if (String(h[i]).toLowerCase() === "authorization") return true;
    return false;
  }
  if (typeof h.has === "function") return h.has("authorization");
  return Object.keys(h).some((k) => k.toLowerCase() === "authorization");
}

function withAuthorization(h, value) {
  if (hasAuthorization(h)) return h;
  if (!h) return { authorization: value };
  if (Array.isArray(h)) {
    if (h.length && Array.isArray(h[0])) return [...h, ["authorization", value]];
    return [...h, "authorization", value];
  }
  if (typeof h.entries === "function" && typeof h.has === "function") {
    const copy = new Headers(h);
    copy.set("authorization", value);
    return copy;
  }
  return { ...h, authorization: value };
}

if (token && target) {
  const value = `Bearer ${token}`;

  // 1) global fetch: the TS SDK client transport and the suite's raw fetch() calls.
  const realFetch = globalThis.fetch;
  globalThis.fetch = (input, init = {}) => {
    const url = typeof input === "string" || input instanceof URL ? input : input.url;
    if (originOf(url) !== target) return realFetch(input, init);
    const base = init.headers ?? (input instanceof Request ? input.headers : undefined);
    const headers = new Headers(base);
    if (!headers.has("authorization")) headers.set("authorization", value);
    return realFetch(input, { ...init, headers });
  };

  // 2) undici.request(): goes through undici's global dispatcher; wrap it with an interceptor.
  if (nodeModules) {
    const require = createRequire(join(nodeModules, "noop.js"));
    const { Agent, setGlobalDispatcher } = require("undici");
    setGlobalDispatcher(
      new Agent().compose((dispatch) => (opts, handler) => {
        if (originOf(opts.origin) === target) {
          opts = { ...opts, headers: withAuthorization(opts.headers, value) };
        }
        return dispatch(opts, handler);
      }),
    );
  }

  // 3) node:http request({hostname, port, ...}) with an options object (raw header probes).
  const realRequest = http.request;
  http.request = function (options, ...rest) {
    if (options && typeof options === "object" && !(options instanceof URL) && options.hostname) {
      const origin = originOf(`${options.protocol ?? "http:"}//${options.hostname}:${options.port ?? 80}`);
      if (origin === target) options = { ...options, headers: withAuthorization(options.headers, value) };
    }
    return realRequest.call(this, options, ...rest);
  };
}
