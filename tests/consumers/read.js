// Prints, as JSON, the variables a Node dotenv reader takes from a file (tests/test_formats.py).
//   node read.js parseEnv FILE          Node's own parser (util.parseEnv, as --env-file uses)
//   node read.js dotenv FILE            npm dotenv's parse()
//   node --env-file=FILE read.js env NAME...   what --env-file put in process.env
"use strict";
const fs = require("fs");
const path = require("path");
const util = require("util");

const [reader, ...rest] = process.argv.slice(2);
let result;
if (reader === "parseEnv") {
  if (typeof util.parseEnv !== "function") {
    console.error(`node ${process.version} has no util.parseEnv (needs 20.12 or later)`);
    process.exit(2);
  }
  result = util.parseEnv(fs.readFileSync(rest[0], "utf8"));
} else if (reader === "dotenv") {
  const dotenv = require(path.join(__dirname, "node_modules", "dotenv"));
  result = dotenv.parse(fs.readFileSync(rest[0]));
} else if (reader === "env") {
  result = Object.fromEntries(rest.filter((n) => n in process.env).map((n) => [n, process.env[n]]));
} else {
  console.error(`unknown reader ${reader}`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(result));
