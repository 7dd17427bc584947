// One summation order for a column's sums (n, mean, std, geomean), shared by the
// host summariser (src/aggregate/stats.cpp) and the device one
// (kernels/summary_body.cuh, device_summary.cu), so that both give the same bits
// for the same values in seed order, and a cell's summary does not depend on
// where it was computed.
//
// The order, fixed by the number of finite values alone:
//  - the finite values, in seed order (the non-finite ones left out, so that the
//    sums of a column with exploding seeds are exactly those of its finite
//    seeds alone), in blocks of kSumBlock consecutive ones (the last block may
//    be short);
//  - within a block, kSumLanes lanes: lane j accumulates, in order, the values
//    at positions j, j + 32, j + 64, ... of the block (a warp's lanes on the
//    device; eight AVX2 or four AVX-512 registers on the host);
//  - a block's lanes combine in a halving tree: for s = 16, 8, 4, 2, 1,
//    lane[j] += lane[j + s] for j < s (lane_tree);
//  - the blocks' partials combine pairwise, level by level: p[i] = p[2i] +
//    p[2i + 1], an odd last one carried up unchanged (pairwise_tree).
// The lane terms below still give a non-finite value +0 (which changes no
// partial: partials start at +0 and a sum is -0 only when both terms are).
//
// Every step is one IEEE double operation rounded to nearest, and every
// multiply-add is an explicit fma: no product feeds an addition, so whether a
// compiler contracts a * b + c into an fma (g++ does by default on the host,
// nvcc on the device) cannot change a bit.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "gradsweep/hd.hpp"
#include "gradsweep/stats.hpp"  // Summary

namespace gs {

inline constexpr int kSumLanes = 32;
inline constexpr uint64_t kSumBlock = 4096;  // a multiple of kSumLanes

GS_HD uint64_t hd_bits(double x) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}
GS_HD double hd_from_bits(uint64_t b) {
    double x;
    std::memcpy(&x, &b, sizeof x);
    return x;
}

// The natural logarithm of a positive finite double (subnormals included),
// within 1 ulp of glibc's std::log and equal to it on 96 % of inputs
// (tests/test_column_sums.cpp): the geomean's terms, the same on host and
// device, where std::log is two different libraries. Branch-free, so the host's
// lane loops vectorise.
//   x = m 2^e with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact),
//   log(1 + f) = 2 atanh(s), s = f / (2 + f), = 2s + s R(s^2) with
//   R(z) = 2z/3 + 2z^2/5 + ... (|s| <= 0.1716: 12 terms leave < 2^-60 of f),
//   and 2s = f - s f, so log(1 + f) = f - s (f - R): f is exact and the rounded
//   part is ~f^2/2, so the result rounds once, near f's last bit.
//   log x = e ln2_hi + (f - (s (f - R) - e ln2_lo)), e ln2_hi exact (ln2_hi has
//   21 trailing zero bits, |e| < 1100).
GS_HD double hd_log(double x) {
    constexpr double kLn2Hi = 0x1.62e42fee00000p-1, kLn2Lo = 0x1.a39ef35793c76p-33;
    constexpr double kSqrt2 = 0x1.6a09e667f3bcdp+0;
    // Both sides of each choice computed, then selected: no branch, so loops of
    // it vectorise (g++ if-converts the multiplies only with -fno-trapping-math,
    // which CMake sets on stats.cpp; the bits are the same either way).
    const bool sub = x < 0x1p-1022;  // subnormal: scaled up by 2^54, exactly
    const double up = x * 0x1p54;
    const double xs = sub ? up : x;
    const uint64_t b = hd_bits(xs);
    int e = static_cast<int>(b >> 52) - 1023 - (sub ? 54 : 0);
    double m = hd_from_bits((b & 0x000fffffffffffffull) | 0x3ff0000000000000ull);  // [1, 2)
    const bool high = m > kSqrt2;
    const double half = m * 0.5;  // exact
    m = high ? half : m;
    e += high ? 1 : 0;
    const double f = m - 1.0;  // exact (Sterbenz)
    const double s = f / (2.0 + f);
    const double z = s * s;
    double p = 2.0 / 25;
    p = std::fma(z, p, 2.0 / 23);
    p = std::fma(z, p, 2.0 / 21);
    p = std::fma(z, p, 2.0 / 19);
    p = std::fma(z, p, 2.0 / 17);
    p = std::fma(z, p, 2.0 / 15);
    p = std::fma(z, p, 2.0 / 13);
    p = std::fma(z, p, 2.0 / 11);
    p = std::fma(z, p, 2.0 / 9);
    p = std::fma(z, p, 2.0 / 7);
    p = std::fma(z, p, 2.0 / 5);
    p = std::fma(z, p, 2.0 / 3);
    const double q = std::fma(-z, p, f);  // f - R
    const double t = s * q;
    const double de = static_cast<double>(e);
    const double u = std::fma(-de, kLn2Lo, t);
    const double v = f - u;
    return std::fma(de, kLn2Hi, v);
}

// Order-preserving integer key of a double: for non-NaN x < y, key(x) < key(y),
// and -0.0 < +0.0, a total order. Order statistics are the k-th smallest keys on
// the host (radix select) and the device (a sort of the keys) alike, so where
// both zeros occur they still pick the same one.
GS_HD uint64_t order_key(double x) {
    const uint64_t b = hd_bits(x);
    return b ^ (static_cast<uint64_t>(static_cast<int64_t>(b) >> 63) | 0x8000000000000000ull);
}
GS_HD double from_order_key(uint64_t k) { return hd_from_bits((k >> 63) ? (k ^ 0x8000000000000000ull) : ~k); }

GS_HD bool hd_finite(double x) { return (hd_bits(x) & 0x7ff0000000000000ull) != 0x7ff0000000000000ull; }

// The lane terms. sum: the value. log: its log when positive. ss: its squared
// deviation from the mean. The scaled forms (rescaled moments, when a sum
// leaves double's range) multiply by a power of two c first, exactly.
GS_HD double add_value(double acc, double x) { return acc + (hd_finite(x) ? x : 0.0); }
GS_HD double add_log(double acc, double x) {
    // The log of every value taken (of 1 where it is not wanted): no branch, so the lanes vectorise.
    const bool wanted = hd_finite(x) & (x > 0);
    const double l = hd_log(wanted ? x : 1.0);
    return acc + (wanted ? l : 0.0);
}
GS_HD double add_square_dev(double acc, double x, double mean) {
    const double d = hd_finite(x) ? x - mean : 0.0;
    return std::fma(d, d, acc);
}
GS_HD double add_scaled_value(double acc, double x, double c) { return std::fma(hd_finite(x) ? x : 0.0, c, acc); }
GS_HD double add_scaled_square_dev(double acc, double x, double c, double mc) {
    const double d = hd_finite(x) ? std::fma(x, c, -mc) : 0.0;
    return std::fma(d, d, acc);
}

// A block's kSumLanes lane accumulators, combined in place; the result is lane[0].
GS_HD double lane_tree(double* lane) {
    for (int s = kSumLanes / 2; s > 0; s >>= 1)
        for (int j = 0; j < s; ++j) lane[j] = lane[j] + lane[j + s];
    return lane[0];
}

// The blocks' partials p[0 .. m), combined in place (p is overwritten); 0 when m == 0.
GS_HD double pairwise_tree(double* p, uint64_t m) {
    if (m == 0) return 0.0;
    while (m > 1) {
        const uint64_t half = m / 2;
        for (uint64_t i = 0; i < half; ++i) p[i] = p[2 * i] + p[2 * i + 1];
        if (m % 2) p[half] = p[m - 1];
        m = half + m % 2;
    }
    return p[0];
}

inline constexpr uint64_t sum_blocks(uint64_t n) { return (n + kSumBlock - 1) / kSumBlock; }

// The lane terms by name, for code that picks one at run time (the device's
// partial-sum kernel); a and b are the term's parameters (mean; c, c mean).
enum class SumTerm : int { value, log, square_dev, scaled_value, scaled_square_dev };
GS_HD double add_term(SumTerm t, double acc, double x, double a, double b) {
    switch (t) {
        case SumTerm::value: return add_value(acc, x);
        case SumTerm::log: return add_log(acc, x);
        case SumTerm::square_dev: return add_square_dev(acc, x, a);
        case SumTerm::scaled_value: return add_scaled_value(acc, x, a);
        case SumTerm::scaled_square_dev: return add_scaled_square_dev(acc, x, a, b);
    }
    return acc;
}

// A block's partial of one lane term, as one thread computes it: lanes in order,
// then lane_tree. term(acc, x) is one of the add_* above.
template <class Term>
GS_HD double block_partial(const double* v, uint64_t n, uint64_t block, Term term) {
    double lane[kSumLanes];
    for (int j = 0; j < kSumLanes; ++j) lane[j] = 0.0;
    const uint64_t begin = block * kSumBlock, end = begin + kSumBlock < n ? begin + kSumBlock : n;
    for (uint64_t i = begin; i < end; ++i) lane[(i - begin) % kSumLanes] = term(lane[(i - begin) % kSumLanes], v[i]);
    return lane_tree(lane);
}

// The sums a summary is finished from (finish_moments in stats.cpp).
struct ColumnSums {
    uint64_t n = 0, n_pos = 0, n_zero = 0;  // finite values; of them positive, zero
    double sum = 0, log_sum = 0;
};

// A column's mean, std and geomean, and its counts, from the counts of its
// `size` values and sum_of(term, a, b): the sum of a lane term over its finite
// values in the shared order (the host's vectorised lanes, or the device's
// block partials and trees). One definition for both, on the host (std::exp
// and std::sqrt: the device hands its sums over).
template <class SumOf>
void moments_from_sums(const ColumnSums& cs, uint64_t size, SumOf sum_of, Summary& s);

// Mean and sample std (ddof = 1; NaN for one value) from the sums.
GS_HD double mean_of(double sum, uint64_t n) { return sum / static_cast<double>(n); }
GS_HD double std_of(double ss, uint64_t n) {
    return n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : __builtin_nan("");
}
// Every value finite but the sum, a deviation or its square is not (float64
// networks reach 1e300): mean and std again over values scaled by powers of two,
// exactly (add_scaled_*): the mean's by c = 2^-(ilogb(n) + 2) (n c < 1/2), the
// deviations' by 2^-600 (each below 2^424, its square far from overflow).
GS_HD bool needs_rescaled_moments(double mean, double std, uint64_t n) {
    return !hd_finite(mean) || (n > 1 && !hd_finite(std));
}
GS_HD double mean_scale(uint64_t n) { return std::ldexp(1.0, -(std::ilogb(static_cast<double>(n)) + 2)); }
inline constexpr double kDeviationScale = 0x1p-600;

// numpy's default ("linear") quantile p of n sorted values: order statistics lo
// and lo + 1 (lo at the top end), weighted by frac. The product p (n - 1) is
// written out in fma so that no compiler contracts it differently.
struct QuantileAt {
    uint64_t lo = 0;
    double frac = 0;
};
GS_HD QuantileAt quantile_at(double p, uint64_t n) {
    const double n1 = static_cast<double>(n - 1);
    const double lo = std::floor(p * n1);
    return {static_cast<uint64_t>(lo), std::fma(p, n1, -lo)};
}
GS_HD double interpolate(double a, double b, double frac) { return std::fma(b - a, frac, a); }

template <class SumOf>
void moments_from_sums(const ColumnSums& cs, uint64_t size, SumOf sum_of, Summary& s) {
    const double nan = __builtin_nan("");
    const uint64_t n = cs.n;
    s.n = n;
    s.n_zero = cs.n_zero;
    s.n_nonfinite = size - n;
    if (n == 0) {
        s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        return;
    }
    s.mean = mean_of(cs.sum, n);
    s.std = std_of(sum_of(SumTerm::square_dev, s.mean, 0.0), n);
    if (needs_rescaled_moments(s.mean, s.std, n)) {
        if (!hd_finite(s.mean)) {
            const double c = mean_scale(n);
            s.mean = sum_of(SumTerm::scaled_value, c, 0.0) / static_cast<double>(n) / c;
        }
        const double c = kDeviationScale, mc = s.mean * c;
        s.std = std_of(sum_of(SumTerm::scaled_square_dev, c, mc), n) / c;
    }
    s.geomean = cs.n_pos ? std::exp(cs.log_sum / static_cast<double>(cs.n_pos)) : nan;
}

}  // namespace gs
