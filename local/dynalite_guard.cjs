// Loaded into dynalite's node process (NODE_OPTIONS=--require, see local/backends.py).
//
// dynalite 4.0.0 rethrows every request's 'error' event (index.js: `req.on('error', function (err)
// { throw err })`), so one client that goes away in the middle of sending a request (a worker the
// runtime kills at its Timeout, a test that kills one) ends the whole database, and every function
// of the stack then fails to reach DynamoDB (architect/dynalite issue 183, open). DynamoDB never
// stops for a client's dropped connection: that error, and only that one, is logged and dropped.
"use strict";

process.on("uncaughtException", (error) => {
  if (error && error.code === "ECONNRESET") {
    console.error(`dynalite: a client went away in the middle of its request (${error.message})`);
    return;
  }
  console.error(error && error.stack ? error.stack : error);
  process.exit(1);
});
