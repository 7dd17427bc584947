// Entry point of the GPU tests: without a usable CUDA device there is nothing to
// test, so say so and exit 77, which ctest reports as skipped (SKIP_RETURN_CODE).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gradsweep/backend.hpp"

int main(int argc, char** argv) {
    const char* env = std::getenv("GS_CUDA_DEVICE");
    const int device = env ? std::atoi(env) : 0;
    std::string name;
    if (!gs::cuda_available(&name, device)) {
        std::printf("SKIPPED: no CUDA device (%s)\n", name.c_str());
        return 77;
    }
    std::printf("GPU tests on device %d: %s\n", device, name.c_str());
    return Catch::Session().run(argc, argv);
}
