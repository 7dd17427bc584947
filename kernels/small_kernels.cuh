// Launches of the small-width kernels (small_kernels.cu), one per compiled shape
// of kSmallShapes. Kept in their own translation unit: ptxas takes minutes over
// the unrolled shapes, and cuda_backend.cu then rebuilds without them.
#pragma once
#include <cuda_runtime.h>

#include "net_layout.cuh"

namespace gs::kern {

// Runs a.nets networks of shape kSmallShapes[a.small_shape], a thread each, in
// `blocks` blocks of kThreadsPerBlockSoa threads, on `stream` (the chunk loop's
// compute stream: a launch on the legacy default stream would wait for the row
// copies on the other stream, which the loop overlaps with it). Asynchronous,
// like a launch.
template <class T>
void launch_small_network_kernel(const NetArgs<T>& a, unsigned blocks, cudaStream_t stream);

}  // namespace gs::kern
