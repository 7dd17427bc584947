#include "gradsweep/workers.hpp"

#include <algorithm>
#include <thread>

#include "gradsweep/backend.hpp"
#include "gradsweep/errors.hpp"

namespace gs {

namespace {

std::vector<int> all_cuda_devices() {
    std::vector<int> ids;
    for (int d = 0; d < 64; ++d)
        if (cuda_available(nullptr, d)) ids.push_back(d);
    return ids;
}

}  // namespace

Workers choose_workers(const CliOptions& o) {
    Workers w;
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    std::string device;
    bool use_cuda = o.backend == "cuda";
    // --device names a CUDA device: a run without it on the CPU would look like a
    // run on that device, so its absence is an error, not a fallback.
    if (o.device_given && o.backend == "cpu")
        throw UsageError("--device " + std::to_string(o.device) + " selects a CUDA device; it does not go with --backend cpu");
    if (o.device_given && !cuda_available(&device, o.device))
        throw UsageError("--device " + std::to_string(o.device) + ": " + device +
                         " (without --device, --backend auto runs on the CPU)");
    if (o.backend == "auto") {
        if (o.devices_given()) {
            const int probe = o.all_devices ? 0 : o.devices.front();
            if (!cuda_available(&device, probe)) throw UsageError("--devices needs CUDA devices: " + device + " (use --backend cpu)");
            use_cuda = true;
        } else {
            use_cuda = cuda_available(&device, o.device);
        }
    }
    if (use_cuda) {
        const std::vector<int> ids = !o.devices_given() ? std::vector<int>{o.device} : o.all_devices ? all_cuda_devices() : o.devices;
        if (ids.empty()) throw UsageError("--devices all: no usable CUDA device");
        std::string names;
        for (int d : ids) {
            if (!cuda_available(&device, d)) throw UsageError("--backend cuda: no usable CUDA device " + std::to_string(d) + " (" + device + ")");
            names += (names.empty() ? "" : ", ") + std::to_string(d) + " (" + device + ")";
            w.factories.push_back([d] { return make_cuda_backend(d); });
            w.labels.push_back("cuda:" + std::to_string(d));
        }
        w.cuda = true;
        w.units_per_call = 64;  // ~260k networks per launch with 4096-seed units
        if (ids.size() == 1 && o.backend == "auto") w.announcement = "backend auto -> cuda (" + device + ")";
        else w.announcement = "backend cuda on " + std::to_string(ids.size()) + " device" + (ids.size() > 1 ? "s: " : ": ") + names;
        return w;
    }
    // CPU: one instance, or (--devices 0,1,..) one per entry, sharing the cores.
    const size_t n = o.devices.empty() ? 1 : o.devices.size();
    const int per = o.threads > 0 ? o.threads : static_cast<int>(std::max<unsigned>(1, cores / n));
    for (size_t i = 0; i < n; ++i) {
        w.factories.push_back([t = n == 1 ? o.threads : per] { return make_cpu_backend(t); });
        w.labels.push_back("cpu#" + std::to_string(i));
    }
    w.cpu_threads = n == 1 ? (o.threads > 0 ? o.threads : static_cast<int>(cores)) : per * static_cast<int>(n);
    if (o.backend == "auto") w.announcement = "backend auto -> cpu, " + std::to_string(w.cpu_threads) + " threads (no CUDA device)";
    else if (n > 1) w.announcement = "backend cpu, " + std::to_string(n) + " workers x " + std::to_string(per) + " threads";
    return w;
}

namespace {

MemoryPlan plan_with(const Spec& spec, const CliOptions& o, const Workers& w, uint64_t units, bool cells_in_memory) {
    MemoryInputs in;
    in.block_seeds = o.seed_block;
    in.units = units;
    in.cpu_threads = w.cpu_threads;
    in.workers = static_cast<int>(w.factories.size());
    in.units_per_call = w.units_per_call;
    in.cuda = w.cuda;
    in.per_seed = o.per_seed;
    in.aggregates = in.outputs = o.shard.empty();  // a shard keeps its rows for the merge
    in.cells_in_memory = cells_in_memory;
    in.cells_on_device = cells_summarised_on_device(o, w);
    return estimate_memory(spec, in);
}

}  // namespace

MemoryPlan memory_plan_for(const Spec& spec, const CliOptions& o, const Workers& w, uint64_t units) {
    const bool summarised_here = o.shard.empty() && !o.per_seed;  // cells summarised as they complete
    if (summarised_here && !o.checkpoint_units) {
        const MemoryPlan m = plan_with(spec, o, w, units, true);
        try {
            check_memory(spec, m, o.max_memory, mem_available_bytes());
            return m;
        } catch (const InputError&) {
            // Too big with rows in memory: every cell in unit files, as checked next.
        }
    }
    return plan_with(spec, o, w, units, false);
}

bool cells_summarised_on_device(const CliOptions& o, const Workers& w) {
    return w.cuda && o.shard.empty() && !o.per_seed && !o.checkpoint_units;
}

}  // namespace gs
