// The device growth fits (kernels/device_growth.cu) emulated on the host: the
// same kernel bodies (growth_body.cuh) over the same index spaces, the
// compaction of the used seeds, the block partials (term_block_partial) and
// their pairwise tree, finished by fit_growth_with, as DeviceGrowthSums runs them.
#pragma once
#include <algorithm>
#include <vector>

#include "growth_body.cuh"
#include "summary_body.cuh"

namespace gs::emu {

class EmuGrowthSums final : public GrowthSumSource {
public:
    explicit EmuGrowthSums(const kern::GrowthColumns& c) : c_(c) {}
    uint64_t mark_used() override {
        idx_.clear();
        for (uint64_t s = 0; s < c_.count; ++s)  // used_kernel, then DeviceSelect::Flagged of the seed numbers
            if (kern::growth_used_body(c_, s)) idx_.push_back(s);
        return idx_.size();
    }
    int max_exponent(int k) override {
        int E = kNoExponent;
        for (uint64_t j = 0; j < idx_.size(); ++j) {  // exponent_kernel's atomicMax
            const int e = kern::growth_exponent_body(c_, idx_.data(), k, j);
            if (e != kNoExponent) E = std::max(E, e);
        }
        return E;
    }
    double scaled_sum(int k, int E) override {
        vals_.assign(idx_.size(), 0.0);
        for (uint64_t j = 0; j < idx_.size(); ++j) vals_[j] = kern::growth_term_body(c_, idx_.data(), k, E, j);
        return sum(SumTerm::value, 0.0);
    }
    double seed_value_sum(const int* E, const double* r) override {
        values(E, r);
        return sum(SumTerm::value, 0.0);
    }
    double seed_square_dev_sum(const int* E, const double* r, double mean) override {
        values(E, r);
        return sum(SumTerm::square_dev, mean);
    }

private:
    void values(const int* E, const double* r) {
        vals_.assign(idx_.size(), 0.0);
        for (uint64_t j = 0; j < idx_.size(); ++j) vals_[j] = kern::growth_value_body(c_, idx_.data(), E, r, j);
    }
    double sum(SumTerm t, double a) {
        std::vector<double> partial(sum_blocks(vals_.size()));
        for (uint64_t b = 0; b < partial.size(); ++b) partial[b] = kern::term_block_partial(vals_.data(), vals_.size(), b, t, a, 0.0);
        return pairwise_tree(partial.data(), partial.size());
    }
    kern::GrowthColumns c_;
    std::vector<uint64_t> idx_;
    std::vector<double> vals_;
};

// Both fits of a cell from its columns (column-major, as the device's transpose
// leaves them), as kern::fit_growth_on_device computes them.
inline void emulate_growth(const double* cols, uint64_t count, int depth, GrowthRate& growth, GrowthRate& delta_growth) {
    int64_t first = 0, last = -1;
    growth_layers(depth, first, last);
    kern::GrowthColumns c;
    c.cols = cols;
    c.count = count;
    c.first = static_cast<int>(first);
    c.layers = static_cast<int>(std::max<int64_t>(0, last - first + 1));
    c.ratio = false;
    EmuGrowthSums g(c);
    growth = fit_growth_with(depth, g);
    c.ratio = true;
    EmuGrowthSums d(c);
    delta_growth = fit_growth_with(depth, d);
}

}  // namespace gs::emu
