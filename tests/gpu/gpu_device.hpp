// The device the GPU tests run on: GS_CUDA_DEVICE, default 0.
#pragma once
#include <cstdlib>

namespace gs::gputest {
inline int test_device() {
    const char* env = std::getenv("GS_CUDA_DEVICE");
    return env ? std::atoi(env) : 0;
}
}  // namespace gs::gputest
