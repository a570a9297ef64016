// Run Azurite's blob service for batchimage (batchimage/sandbox/azurite.py starts it).
//
//   node azurite_runner.js <azurite-blob options>     (env BATCHIMAGE_AZURITE_BLOB_MAIN:
//                                                       path of azurite/dist/src/blob/main.js)
//
// It starts the blob server as Azurite's own main.js does, then speaks a line protocol with
// its owner on stdin/stdout (Azurite's console output goes to stderr):
//   out  "batchimage-azurite ready live" | "... ready restart"   listening; whether accounts
//                                                                 can change without a restart
//   in   {"seq": n, "accounts": "name:key1:key2;..."}            the accounts to serve now
//   out  "batchimage-azurite accounts <n>"                       served from the next request
// The owner holds the only writer of stdin, so EOF on stdin means the owner stopped it or
// died (even by SIGKILL): the server closes and the process exits. A changed parent pid
// (the owner died while a forked child kept stdin open) does the same.

"use strict";

const Module = require("module");
const path = require("path");
const readline = require("readline");

const main = process.env.BATCHIMAGE_AZURITE_BLOB_MAIN;
const blobDir = path.dirname(main);
stubTelemetry();
const { BlobServerFactory } = require(path.join(blobDir, "BlobServerFactory"));
const Logger = require(path.join(blobDir, "..", "common", "Logger"));

const PREFIX = "batchimage-azurite";
const CLOSE_GRACE_MS = 2000;
const PARENT_POLL_MS = 500;

console.log = console.error; // stdout is the owner's channel
process.stdout.on("error", () => shutdown(0)); // the owner closed its end

let server;
let closing = false;

// With --disableTelemetry Azurite never uses the `applicationinsights` package, yet its
// Telemetry module requires it on load, and with it the OpenTelemetry stack: most of
// Azurite's start-up (measured: 2.5 s of the 2.8 s of CPU that loading the blob server
// takes). An empty stand-in in the module cache takes its place.
function stubTelemetry() {
  if (!process.argv.includes("--disableTelemetry")) {
    return;
  }
  let resolved;
  try {
    resolved = require.resolve("applicationinsights", { paths: [blobDir] });
  } catch (err) {
    return; // a later Azurite without it
  }
  const standIn = new Module(resolved, null);
  standIn.filename = resolved;
  standIn.loaded = true;
  standIn.exports = {};
  require.cache[resolved] = standIn;
}

function say(line) {
  if (!closing) {
    process.stdout.write(`${PREFIX} ${line}\n`);
  }
}

async function shutdown(code) {
  if (closing) {
    return;
  }
  closing = true;
  setTimeout(() => process.exit(code), CLOSE_GRACE_MS).unref();
  try {
    if (server !== undefined && server.getStatus() === "Running") {
      await server.close();
    }
  } catch (err) {
    console.error(`closing Azurite failed: ${err.message}`);
  }
  process.exit(code);
}

function setAccounts(store, message) {
  process.env.AZURITE_ACCOUNTS = message.accounts;
  if (store !== undefined) {
    store.refresh();
  }
  say(`accounts ${message.seq}`);
}

async function run() {
  server = await new BlobServerFactory().createServer();
  Logger.configLogger(server.config.enableDebugLog, server.config.debugLogFilePath);
  const store = server.accountDataStore;
  const live = store !== undefined && typeof store.refresh === "function";
  const lines = readline.createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line.trim()) {
      setAccounts(live ? store : undefined, JSON.parse(line));
    }
  });
  lines.on("close", () => shutdown(0));
  process.once("SIGTERM", () => shutdown(0)).once("SIGINT", () => shutdown(0));
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      shutdown(0);
    }
  }, PARENT_POLL_MS).unref();
  await server.start();
  console.error(`Azurite Blob service listens on ${server.getHttpServerAddress()}`);
  say(`ready ${live ? "live" : "restart"}`);
}

run().catch((err) => {
  console.error(`Exit due to unhandled error: ${err.message}`);
  process.exit(1);
});
