// The command line boundary: parses arguments, runs one command, and turns
// every Error into a message and an exit code (SPEC §2). Nothing below this
// layer prints to stdout or decides exit codes.
#pragma once

namespace blindcast::cli {

// Runs blindcast with `argc`/`argv`; returns the process exit code.
int run(int argc, char** argv);

}  // namespace blindcast::cli
