"use strict";
// Run by bench/bench_queue_peers.py from .local/bench-peers/node (where graphile-worker is installed):
//   node graphile_drain.cjs URL ITEMS CONCURRENCY
// Migrates graphile-worker's schema, adds ITEMS no-op jobs in one addJobs call and analyzes the jobs table
// (not timed), then times a worker pool with CONCURRENCY slots from its start until the jobs table is empty.
// Prints one JSON line.

const { EventEmitter } = require("node:events");
const { performance } = require("node:perf_hooks");
const { Logger, makeWorkerUtils, run } = require("graphile-worker");

const [connectionString, itemsArg, concurrencyArg] = process.argv.slice(2);
const items = Number(itemsArg);
const concurrency = Number(concurrencyArg);

// Only warnings and errors: the default logger writes a line per job.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`graphile-worker ${level}: ${message}`);
  }
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function remaining(utils) {
  return utils.withPgClient(async (client) => {
    const { rows } = await client.query("select count(*)::int as n from graphile_worker.jobs");
    return rows[0].n;
  });
}

async function main() {
  const utils = await makeWorkerUtils({ connectionString, logger });
  try {
    await utils.migrate();
    await utils.addJobs(Array.from({ length: items }, (_, n) => ({ identifier: "noop", payload: { n } })));
    // Planner statistics, as autovacuum gives a live table (the same for every queue in the bench).
    await utils.withPgClient((client) => client.query("analyze graphile_worker._private_jobs"));

    let succeeded = 0;
    let failed = 0;
    let allSeen;
    const seen = new Promise((resolve) => {
      allSeen = resolve;
    });
    const events = new EventEmitter();
    events.on("job:complete", ({ error }) => {
      if (error) failed += 1;
      else succeeded += 1;
      if (succeeded + failed === items) allSeen();
    });

    const start = performance.now();
    const runner = await run({
      connectionString,
      concurrency,
      noHandleSignals: true,
      logger,
      events,
      taskList: { noop: async () => {} },
    });
    await seen;
    // job:complete fires as the completion is sent: the drain ends when the table is empty.
    while ((await remaining(utils)) > 0) await sleep(2);
    const seconds = (performance.now() - start) / 1000;
    await runner.stop();
    console.log(JSON.stringify({ seconds, done: succeeded, failed }));
  } finally {
    await utils.release();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
