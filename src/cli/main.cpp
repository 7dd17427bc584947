#include "gradsweep/cli.hpp"

int main(int argc, char** argv) { return gs::cli_main(argc, argv); }
