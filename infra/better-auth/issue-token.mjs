#!/usr/bin/env node
// Issue real Better Auth JWTs (jwt() plugin) for the Python API's test suite.
//
// Creates an in-memory Better Auth instance, signs up N users with
// email/password via auth.api, obtains each user's JWT through the plugin's
// own issuance path (GET /token with the session cookie, or the
// `set-auth-jwt` header of GET /get-session), fetches the JWKS exactly as
// served at <basePath>/jwks, and prints ONE JSON object on stdout.
//
// Usage:
//   node issue-token.mjs [--alg EdDSA|ES256|ES512|RS256|PS256] [--count N]
//                        [--base-url URL] [--via token|session]
//                        [--expires-in SECONDS] [--issuer ISS] [--audience AUD]
//
// Output (count omitted or 1):
//   {"user_id","email","token","jwks","issuer","audience","alg","kid","better_auth_version"}
// Output (--count N, N >= 1 explicitly given):
//   {"users":[{"user_id","email","token"},...],"jwks","issuer","audience","alg","kid","better_auth_version"}
//
// Everything except the final JSON goes to stderr.

import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

// Keep stdout clean: anything (ours or a library's) that logs via console
// goes to stderr. Our single JSON result is written with process.stdout.write.
for (const m of ["log", "info", "warn", "debug", "trace"]) {
  console[m] = (...args) => console.error(...args);
}
// Better Auth is imported dynamically so the console redirect above is in
// place before any of its module code runs (static imports are hoisted).
const { betterAuth } = await import("better-auth");
const { memoryAdapter } = await import("better-auth/adapters/memory");
const { jwt } = await import("better-auth/plugins/jwt");

const SUPPORTED_ALGS = ["EdDSA", "ES256", "ES512", "RS256", "PS256"];

function fail(msg) {
  process.stderr.write(`issue-token: ${msg}\n`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      alg: { type: "string", default: "EdDSA" },
      count: { type: "string" },
      "base-url": { type: "string" },
      via: { type: "string", default: "token" },
      "expires-in": { type: "string" },
      issuer: { type: "string" },
      audience: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }));
} catch (e) {
  fail(e.message);
}

if (args.help) {
  process.stderr.write(
    "usage: node issue-token.mjs [--alg EdDSA|ES256|ES512|RS256|PS256] [--count N]\n" +
      "       [--base-url URL] [--via token|session] [--expires-in SECONDS]\n" +
      "       [--issuer ISS] [--audience AUD]\n",
  );
  process.exit(0);
}

const alg = args.alg;
if (!SUPPORTED_ALGS.includes(alg)) fail(`unsupported --alg ${alg}; one of ${SUPPORTED_ALGS.join(", ")}`);
if (!["token", "session"].includes(args.via)) fail(`--via must be 'token' or 'session'`);
const multi = args.count !== undefined;
const count = multi ? Number(args.count) : 1;
if (!Number.isInteger(count) || count < 1 || count > 1000) fail(`--count must be an integer in 1..1000`);
let expirationTime;
if (args["expires-in"] !== undefined) {
  const s = Number(args["expires-in"]);
  if (!Number.isFinite(s)) fail(`--expires-in must be a number of seconds (may be negative)`);
  // A Date is taken as an absolute exp; negative values yield already-expired tokens.
  expirationTime = new Date(Date.now() + s * 1000);
}

const baseURL = args["base-url"] ?? process.env.BETTER_AUTH_URL ?? "http://localhost:3999";
const secret =
  process.env.BETTER_AUTH_SECRET ?? "todo-api-test-secret-not-for-production-0123456789";

let betterAuthVersion = null;
try {
  // better-auth's exports map hides package.json, so read it by path.
  const pkgUrl = new URL("./node_modules/better-auth/package.json", import.meta.url);
  betterAuthVersion = JSON.parse(readFileSync(pkgUrl, "utf8")).version;
} catch {
  /* leave null */
}

const auth = betterAuth({
  baseURL,
  secret,
  // The memory adapter requires every model's table to exist up front.
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  logger: {
    level: "warn",
    log: (level, message, ...rest) =>
      process.stderr.write(`[better-auth ${level}] ${message}${rest.length ? " " + JSON.stringify(rest) : ""}\n`),
  },
  plugins: [
    jwt({
      jwks: { keyPairConfig: { alg } },
      jwt: {
        ...(args.issuer !== undefined ? { issuer: args.issuer } : {}),
        ...(args.audience !== undefined ? { audience: args.audience } : {}),
        ...(expirationTime !== undefined ? { expirationTime } : {}),
      },
    }),
  ],
});

const basePath = "/api/auth"; // Better Auth default basePath

function cookieHeaderFrom(headers) {
  // Turn Set-Cookie response headers into a Cookie request header.
  const setCookies =
    typeof headers.getSetCookie === "function" ? headers.getSetCookie() : [headers.get("set-cookie")].filter(Boolean);
  return setCookies.map((c) => c.split(";")[0].trim()).join("; ");
}

async function issueFor(i) {
  const email = `user${i}-${randomBytes(4).toString("hex")}@example.com`;
  const password = `pw-${randomBytes(12).toString("hex")}`;
  const { headers: signUpHeaders, response } = await auth.api.signUpEmail({
    body: { email, password, name: `Test User ${i}` },
    returnHeaders: true,
  });
  const userId = response.user.id;
  const cookie = cookieHeaderFrom(signUpHeaders);
  if (!cookie) throw new Error("sign-up returned no session cookie");
  const reqHeaders = new Headers({ cookie });

  let token;
  if (args.via === "token") {
    // GET /api/auth/token — the plugin's JWT endpoint.
    ({ token } = await auth.api.getToken({ headers: reqHeaders }));
  } else {
    // GET /api/auth/get-session — the plugin's after-hook sets `set-auth-jwt`.
    const { headers } = await auth.api.getSession({ headers: reqHeaders, returnHeaders: true });
    token = headers.get("set-auth-jwt");
  }
  if (!token) throw new Error(`no JWT obtained via ${args.via}`);
  return { user_id: userId, email, token };
}

async function main() {
  const users = [];
  for (let i = 1; i <= count; i++) users.push(await issueFor(i));

  // JWKS exactly as served over HTTP at GET <baseURL>/api/auth/jwks.
  const res = await auth.handler(new Request(`${baseURL.replace(/\/$/, "")}${basePath}/jwks`));
  if (res.status !== 200) throw new Error(`GET ${basePath}/jwks -> ${res.status}: ${await res.text()}`);
  const jwks = await res.json();

  const header = JSON.parse(Buffer.from(users[0].token.split(".")[0], "base64url").toString("utf8"));
  const payload = JSON.parse(Buffer.from(users[0].token.split(".")[1], "base64url").toString("utf8"));

  const common = {
    jwks,
    jwks_url: `${baseURL.replace(/\/$/, "")}${basePath}/jwks`,
    issuer: payload.iss,
    audience: payload.aud,
    alg: header.alg,
    kid: header.kid,
    better_auth_version: betterAuthVersion,
  };
  const out = multi ? { users, ...common } : { ...users[0], ...common };
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(`issue-token: ${e?.stack ?? e}\n`);
  process.exit(1);
});
