#include "gradsweep/device_scheduler.hpp"

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "gradsweep/stats.hpp"

namespace gs {

namespace {

struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    size_t next = 0;         // into todo
    int running = 0;         // workers not yet finished
    bool stop = false;       // an error happened: take no more units
    bool progressed = false; // a call finished since the last tick
    std::exception_ptr error;
};

// Next batch: consecutive todo entries of one cell with adjacent seed ranges,
// at most `cap` of them, or every unit of a cell offered whole (whole = true).
// [first, last) into todo; empty when done.
struct Batch {
    size_t first = 0, last = 0;
    bool whole = false;
};
Batch take(Shared& s, const std::vector<WorkUnit>& units, const std::vector<size_t>& todo, uint64_t cap, size_t workers,
           const std::vector<char>& whole_cells) {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stop || s.next >= todo.size()) return {};
    const size_t first = s.next;
    size_t last = first + 1;
    const int cell = units[todo[first]].cell;
    if (!whole_cells.empty() && whole_cells[cell]) {
        while (last < todo.size() && units[todo[last]].cell == cell) ++last;
        s.next = last;
        return {first, last, true};
    }
    // Near the end, smaller batches keep every device busy until the last unit.
    const size_t remaining = todo.size() - s.next;
    const size_t limit = std::max<size_t>(1, std::min<size_t>(cap, remaining / workers));
    while (last < todo.size() && last - first < limit) {
        const WorkUnit& a = units[todo[last - 1]];
        const WorkUnit& b = units[todo[last]];
        if (b.cell != a.cell || b.seed_offset != a.seed_offset + a.count) break;
        ++last;
    }
    s.next = last;
    return {first, last, false};
}

bool stopped(Shared& s) {
    std::lock_guard<std::mutex> lock(s.mu);
    return s.stop;
}

void fail(Shared& s) {
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.error) s.error = std::current_exception();
    s.stop = true;
}

}  // namespace

std::vector<WorkerInfo> run_on_devices(const Spec& spec, const std::vector<WorkUnit>& units, const std::vector<size_t>& todo,
                                       const std::vector<BackendFactory>& workers, const UnitSink& sink,
                                       const std::function<void()>& tick, const SchedulerOptions& options) {
    if (workers.empty()) throw std::invalid_argument("run_on_devices: no workers");
    Shared s;
    std::vector<WorkerInfo> info(workers.size());
    const uint64_t cap = std::max<uint64_t>(1, options.max_units_per_call);
    auto work = [&](size_t w) {
        // Two row buffers per worker: a helper thread hands a finished call's rows
        // to the sink (which writes checkpoint files) while the backend computes
        // the next call into the other buffer.
        struct Handoff {
            std::mutex mu;
            std::condition_variable cv;
            bool full = false, done = false;
            size_t first = 0, last = 0;
            int stride = 0, buf = 0;
        } h;
        std::vector<double> rows[2];
        auto sink_calls = [&] {
            bool broken = false;  // after this worker's sink failed, later rows are dropped (as before: it stopped)
            for (;;) {
                size_t first, last;
                int stride, b;
                {
                    std::unique_lock<std::mutex> lock(h.mu);
                    h.cv.wait(lock, [&] { return h.full || h.done; });
                    if (!h.full) return;
                    first = h.first, last = h.last, stride = h.stride, b = h.buf;
                }
                if (!broken) {
                    try {
                        uint64_t at = 0;
                        for (size_t k = first; k < last; ++k) {
                            sink(todo[k], rows[b].data() + at * stride);
                            at += units[todo[k]].count;
                        }
                        // Under the lock: the worker thread counts whole cells into info[w] too.
                        std::lock_guard<std::mutex> lock(s.mu);
                        info[w].units += last - first;
                        info[w].networks += at;
                        s.progressed = true;
                        s.cv.notify_all();
                    } catch (...) {
                        broken = true;
                        fail(s);
                    }
                }
                {
                    std::lock_guard<std::mutex> lock(h.mu);
                    h.full = false;
                }
                h.cv.notify_all();
            }
        };
        std::thread sinker;
        try {
            std::unique_ptr<Backend> backend = workers[w]();
            info[w].backend = backend->name();
            info[w].device = backend->device_name();
            info[w].threads = backend->threads();
            sinker = std::thread(sink_calls);
            int b = 0;
            // Units [first, last) of todo (one cell, adjacent seeds) as one backend call.
            auto run_call = [&](size_t first, size_t last) {
                const WorkUnit& u0 = units[todo[first]];
                const int stride = row_stride(spec.cells[u0.cell].depth());
                uint64_t count = 0;
                for (size_t k = first; k < last; ++k) count += units[todo[k]].count;
                // rows[b] is free: the helper took the rows of the call before last
                // out of it before accepting the last call's.
                rows[b].assign(count * stride, std::nan(""));  // poisoned: an unwritten value shows
                backend->run(spec, spec.cells[u0.cell], u0.seed_offset, count, rows[b].data());
                std::unique_lock<std::mutex> lock(h.mu);
                h.cv.wait(lock, [&] { return !h.full; });
                h.first = first, h.last = last, h.stride = stride, h.buf = b;
                h.full = true;
                h.cv.notify_all();
                b ^= 1;
            };
            // A whole cell summarised by the backend: only its summary comes back.
            auto summarize_whole = [&](size_t first, size_t last) {
                const int cell = units[todo[first]].cell;
                uint64_t seeds = 0;
                for (size_t k = first; k < last; ++k) seeds += units[todo[k]].count;
                if (seeds != spec.seed_count || !options.cell_sink)
                    throw std::logic_error("run_on_devices: cell " + std::to_string(cell) + " offered whole without all its units or a cell sink");
                CellResult r;
                if (!backend->summarize_cell(spec, spec.cells[cell], spec.seed_count, r)) return false;
                options.cell_sink(cell, r);
                std::lock_guard<std::mutex> lock(s.mu);  // the sinker thread counts into info[w] too
                info[w].units += last - first;
                info[w].networks += spec.seed_count;
                s.progressed = true;
                s.cv.notify_all();
                return true;
            };
            for (;;) {
                const Batch t = take(s, units, todo, cap, workers.size(), options.whole_cells);
                if (t.first == t.last) break;
                if (t.whole && summarize_whole(t.first, t.last)) continue;
                for (size_t first = t.first; first < t.last && !stopped(s); first += cap)
                    run_call(first, std::min<size_t>(t.last, first + cap));
            }
        } catch (...) {
            fail(s);
        }
        if (sinker.joinable()) {
            {
                std::unique_lock<std::mutex> lock(h.mu);
                h.cv.wait(lock, [&] { return !h.full; });
                h.done = true;
            }
            h.cv.notify_all();
            sinker.join();
        }
        std::lock_guard<std::mutex> lock(s.mu);
        --s.running;
        s.cv.notify_all();
    };
    s.running = static_cast<int>(workers.size());
    std::vector<std::thread> threads;
    threads.reserve(workers.size());
    for (size_t w = 0; w < workers.size(); ++w) threads.emplace_back(work, w);
    const auto period = std::chrono::duration<double>(options.tick_seconds > 0 ? options.tick_seconds : 0.2);
    try {
        std::unique_lock<std::mutex> lock(s.mu);
        while (s.running > 0) {
            s.cv.wait_for(lock, period, [&] { return s.running == 0 || s.progressed; });
            s.progressed = false;
            if (tick) {
                lock.unlock();
                tick();
                lock.lock();
            }
        }
    } catch (...) {
        fail(s);
    }
    for (auto& t : threads) t.join();
    if (s.error) std::rethrow_exception(s.error);
    return info;
}

}  // namespace gs
