#!/usr/bin/env node
// The superduper command. Runs the built CLI (dist/), built by "npm install"
// (prepare) or "npm run build".
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv);
