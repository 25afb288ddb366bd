// Runs the CLI from source (the same main() that bin/superduper.js runs from dist/).
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv);
