// blindcast command line: everything lives in blindcast_core; this only calls it.
#include "cli/app.hpp"

int main(int argc, char** argv) { return blindcast::cli::run(argc, argv); }
