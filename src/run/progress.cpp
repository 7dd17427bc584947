#include "gradsweep/progress.hpp"

#include <cmath>
#include <cstdlib>

namespace gs {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    char buf[48];
    const auto t = static_cast<unsigned long long>(std::llround(s));
    if (t < 60) std::snprintf(buf, sizeof buf, "%llu s", t);
    else if (t < 3600) std::snprintf(buf, sizeof buf, "%llu:%02llu", t / 60, t % 60);
    else if (t < 86400 * 2) std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", t / 3600, t / 60 % 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%llu d %llu h", t / 86400, t / 3600 % 24);
    return buf;
}

std::string format_rate(double r) {
    char buf[32];
    if (!std::isfinite(r) || r < 0) return "?";
    if (r < 1e3) std::snprintf(buf, sizeof buf, "%.0f", r);
    else if (r < 1e6) std::snprintf(buf, sizeof buf, "%.3gk", r / 1e3);
    else if (r < 1e9) std::snprintf(buf, sizeof buf, "%.3gM", r / 1e6);
    else std::snprintf(buf, sizeof buf, "%.3gG", r / 1e9);
    return buf;
}

double Progress::default_interval() {
    if (const char* v = std::getenv("GRADSWEEP_PROGRESS_SECONDS")) {
        char* end = nullptr;
        const double x = std::strtod(v, &end);
        if (end != v && x > 0 && std::isfinite(x)) return x;
    }
    return 5.0;
}

Progress::Progress(std::FILE* out, bool enabled, bool terminal, double interval_seconds, uint64_t total_cells, uint64_t total_units,
                   uint64_t total_networks, uint64_t cells_before, uint64_t units_before, uint64_t networks_before)
    : out_(out), enabled_(enabled), terminal_(terminal), interval_(interval_seconds), total_cells_(total_cells),
      total_units_(total_units), total_networks_(total_networks), networks_before_(networks_before), cells_(cells_before),
      units_(units_before), networks_(networks_before), start_(std::chrono::steady_clock::now()), last_print_(start_) {}

std::string Progress::line(uint64_t cells, uint64_t units, uint64_t networks, double elapsed) const {
    // Rate and ETA from this session's work only: resumed units cost nothing now.
    const double fresh = static_cast<double>(networks - std::min(networks, networks_before_));
    const double rate = elapsed > 0 ? fresh / elapsed : 0;
    const double left = static_cast<double>(total_networks_ - std::min(total_networks_, networks));
    const std::string eta = rate > 0 ? format_duration(left / rate) : "?";
    char buf[256];
    if (terminal_) {
        const int width = 24;
        const double frac = total_units_ ? static_cast<double>(units) / static_cast<double>(total_units_) : 1.0;
        const int filled = static_cast<int>(frac * width);
        std::string bar(static_cast<size_t>(filled), '#');
        bar.append(static_cast<size_t>(width - filled), '-');
        std::snprintf(buf, sizeof buf, "[%s] %llu/%llu cells  %s networks/s  ETA %s", bar.c_str(),
                      static_cast<unsigned long long>(cells), static_cast<unsigned long long>(total_cells_),
                      format_rate(rate).c_str(), eta.c_str());
    } else {
        std::snprintf(buf, sizeof buf,
                      "gradsweep: %llu/%llu cells, %llu/%llu units, %llu/%llu networks, %s networks/s, ETA %s",
                      static_cast<unsigned long long>(cells), static_cast<unsigned long long>(total_cells_),
                      static_cast<unsigned long long>(units), static_cast<unsigned long long>(total_units_),
                      static_cast<unsigned long long>(networks), static_cast<unsigned long long>(total_networks_),
                      format_rate(rate).c_str(), eta.c_str());
    }
    return buf;
}

void Progress::update(uint64_t cells, uint64_t units, uint64_t networks) {
    cells_ = cells;
    units_ = units;
    networks_ = networks;
    print(false);
}

void Progress::print(bool force) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_print_).count();
    if (!force && since < (terminal_ ? 0.2 : interval_)) return;
    last_print_ = now;
    const std::string text = line(cells_, units_, networks_, std::chrono::duration<double>(now - start_).count());
    if (terminal_) {
        std::fprintf(out_, "\r%s\033[K", text.c_str());
        bar_open_ = true;
    } else {
        std::fprintf(out_, "%s\n", text.c_str());
    }
    std::fflush(out_);
    printed_ = true;
}

void Progress::finish() {
    if (!enabled_) return;
    if (terminal_) {
        print(true);
        std::fputc('\n', out_);
        bar_open_ = false;
    } else if (printed_) {
        print(true);  // the last state, so a log ends with the totals
    }
    std::fflush(out_);
}

void Progress::clear() {
    if (enabled_ && terminal_ && bar_open_) {
        std::fputs("\r\033[K", out_);
        std::fflush(out_);
        bar_open_ = false;
    }
}

}  // namespace gs
