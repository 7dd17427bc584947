// The emulated launch of the small-width kernels (EmuDev::launch), every shape.
#include "emu_device.hpp"
#include "small_net_body.cuh"

namespace gs::emu {

template <class T>
void run_small_networks(const kern::NetArgs<T>& a) {
    kern::dispatch_small_shape(a.small_shape, [&]<int NI, int N, int NO>() {
        for (uint64_t net = 0; net < a.nets; ++net) kern::small_network_body<T, NI, N, NO>(a, net);
    });
}

template void run_small_networks<float>(const kern::NetArgs<float>&);
template void run_small_networks<double>(const kern::NetArgs<double>&);

}  // namespace gs::emu
