#include "gradsweep/stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>

#include "gradsweep/column_sums.hpp"

namespace gs {

namespace {

// order_key (column_sums.hpp): finite keys lie strictly between the keys of -inf and +inf.
inline double from_key(uint64_t k) { return from_order_key(k); }
constexpr uint64_t kNegZeroKey = 0x7fffffffffffffffull;

constexpr int kDigitBits = 16;
constexpr size_t kBuckets = size_t{1} << kDigitBits;
constexpr size_t kSortBelow = 2048;  // selection by sorting below this many elements

void select_keys(uint64_t* k, size_t n, uint64_t lo, uint64_t hi, const size_t* ranks, size_t nr, uint64_t* out);

// Where the wanted ranks (ascending) fall in a histogram hist[first..]: each
// rank's bucket and the number of elements below that bucket, and the distinct
// buckets needed, ascending.
struct RankBuckets {
    std::vector<size_t> bucket_of, base_of, needed;
};
RankBuckets locate_ranks(const uint64_t* hist, size_t first, const size_t* ranks, size_t nr) {
    RankBuckets rb{std::vector<size_t>(nr), std::vector<size_t>(nr), {}};
    size_t b = first, below = 0;
    for (size_t r = 0; r < nr; ++r) {
        while (below + hist[b] <= ranks[r]) below += hist[b++];
        rb.bucket_of[r] = b;
        rb.base_of[r] = below;
        if (rb.needed.empty() || rb.needed.back() != b) rb.needed.push_back(b);
    }
    return rb;
}

// Where the needed buckets' keys go: one array, bucket after bucket. slot maps a
// bucket to 1 + its index in needed (0: not needed, the sink), start[1 + j] is
// where bucket needed[j]'s keys begin.
struct Gather {
    std::vector<unsigned char> slot;
    std::vector<uint64_t> keys;
    std::vector<uint64_t*> start;
};
Gather prepare_gather(const RankBuckets& rb, const uint64_t* hist, size_t n_buckets) {
    Gather g;
    g.slot.assign(n_buckets, 0);
    size_t total = 0;
    for (size_t j = 0; j < rb.needed.size(); ++j) {
        g.slot[rb.needed[j]] = static_cast<unsigned char>(j + 1);
        total += hist[rb.needed[j]];
    }
    g.keys.resize(total);
    g.start.resize(rb.needed.size() + 1);
    for (size_t j = 0, at = 0; j < rb.needed.size(); ++j) {
        g.start[j + 1] = g.keys.data() + at;
        at += hist[rb.needed[j]];
    }
    return g;
}

// The selection within each needed bucket, whose keys were gathered bucket after
// bucket into `gathered`; bounds(b) gives bucket b's key range {lo, hi}.
template <class Bounds>
void select_in_buckets(const RankBuckets& rb, const uint64_t* hist, uint64_t* gathered, const size_t* ranks, size_t nr,
                       Bounds bounds, uint64_t* out) {
    std::vector<size_t> sub(nr);
    size_t at = 0;
    for (size_t j = 0, r = 0; j < rb.needed.size(); ++j) {
        const size_t b = rb.needed[j], cnt = hist[b];
        const size_t r0 = r;
        while (r < nr && rb.bucket_of[r] == b) {
            sub[r] = ranks[r] - rb.base_of[r];
            ++r;
        }
        const auto [blo, bhi] = bounds(b);
        select_keys(gathered + at, cnt, blo, bhi, sub.data() + r0, r - r0, out + r0);
        at += cnt;
    }
}

// One radix step: the elements are key_at(i) for i < size, those outside [lo, hi]
// ignored (non-finite values at the top level). A histogram of a 16-bit digit of
// key - lo finds the buckets that hold the wanted ranks (sorted ascending, each
// below the number of elements in range); only those buckets' keys are gathered
// and the selection goes on within them. Each step narrows the key range by 2^16,
// so there are at most four.
template <class KeyAt>
void radix_select(size_t size, KeyAt key_at, uint64_t lo, uint64_t hi, const size_t* ranks, size_t nr, uint64_t* out) {
    if (nr > 255) {  // bucket slots are bytes: at most 255 distinct buckets at a time
        for (size_t r0 = 0; r0 < nr; r0 += 255) radix_select(size, key_at, lo, hi, ranks + r0, std::min<size_t>(255, nr - r0), out + r0);
        return;
    }
    const uint64_t span = hi - lo;
    const int width = span ? 64 - __builtin_clzll(span) : 0;
    const int sh = std::max(0, width - kDigitBits);
    std::vector<uint64_t> hist(kBuckets + 1, 0);  // the last bucket: out of range
    {
        // k - lo <= span exactly when lo <= k <= hi (unsigned wrap-around).
        uint64_t* const h = hist.data();
        const uint64_t base = lo;
        for (size_t i = 0; i < size; ++i) {
            const uint64_t d = key_at(i) - base;
            ++h[d <= span ? static_cast<size_t>(d >> sh) : kBuckets];
        }
    }
    // Gather the needed buckets' keys, each into its own stretch of one array
    // (slot 0 is a sink for everything else).
    const RankBuckets rb = locate_ranks(hist.data(), 0, ranks, nr);
    Gather g = prepare_gather(rb, hist.data(), kBuckets + 1);
    if (rb.needed.size() <= 7) {
        // Write cursors in a local array for up to 7 buckets (summarize needs at
        // most 6), which the compiler keeps out of the vectors' way.
        uint64_t* pos[8];
        for (size_t j = 1; j <= rb.needed.size(); ++j) pos[j] = g.start[j];
        const unsigned char* const sl = g.slot.data();
        const uint64_t base = lo;
        for (size_t i = 0; i < size; ++i) {
            const uint64_t k = key_at(i), d = k - base;
            const unsigned s = sl[d <= span ? static_cast<size_t>(d >> sh) : kBuckets];
            if (s) *pos[s]++ = k;
        }
    } else {
        for (size_t i = 0; i < size; ++i) {
            const uint64_t k = key_at(i), d = k - lo;
            const unsigned s = g.slot[d <= span ? static_cast<size_t>(d >> sh) : kBuckets];
            if (s) *g.start[s]++ = k;
        }
    }
    select_in_buckets(rb, hist.data(), g.keys.data(), ranks, nr,
                      [&](size_t b) {
                          const uint64_t blo = lo + (static_cast<uint64_t>(b) << sh);
                          return std::pair<uint64_t, uint64_t>{blo, std::min(hi, blo + ((uint64_t{1} << sh) - 1))};
                      },
                      out);
}

// The keys k[0..n), all within [lo, hi]; ranks sorted ascending, each < n.
void select_keys(uint64_t* k, size_t n, uint64_t lo, uint64_t hi, const size_t* ranks, size_t nr, uint64_t* out) {
    if (lo == hi) {
        std::fill(out, out + nr, lo);
    } else if (n < kSortBelow) {
        std::sort(k, k + n);
        for (size_t r = 0; r < nr; ++r) out[r] = k[ranks[r]];
    } else {
        // The range actually taken (a bucket's bounds can be much wider): the
        // digits then fit the keys, and equal keys end the search at once.
        uint64_t a = ~uint64_t{0}, b = 0;
        for (size_t i = 0; i < n; ++i) {
            a = std::min(a, k[i]);
            b = std::max(b, k[i]);
        }
        if (a == b) std::fill(out, out + nr, a);
        else radix_select(n, [k](size_t i) { return k[i]; }, a, b, ranks, nr, out);
    }
}

// Selection by std::nth_element, for small columns without a -0.0: equal
// values then have equal bits, so it picks exactly what the key order picks
// (with both zeros it could return either, minmax_element the first in array
// order: such columns take order_statistics_by_keys).
void order_statistics_by_nth_element(double* v, size_t size, size_t n, Summary& s) {
    // Order statistics: the finite values to the front, then selection. The median
    // first splits them in halves; q05 is then found in the lower half and q95 in
    // the upper one (about 3n element visits in all).
    std::partition(v, v + size, [](double x) { return std::isfinite(x); });
    const auto [mn, mx] = std::minmax_element(v, v + n);
    s.min = *mn;
    s.max = *mx;
    const QuantileAt qm = quantile_at(0.5, n), q05 = quantile_at(0.05, n), q95 = quantile_at(0.95, n);
    const size_t m = qm.lo, l05 = q05.lo, l95 = q95.lo;
    std::nth_element(v, v + m, v + n);  // v[m] in place; below it <=, above it >=
    const double vm = v[m];
    const double vm1 = m + 1 < n ? *std::min_element(v + m + 1, v + n) : vm;
    s.median = interpolate(vm, vm1, qm.frac);
    // q05 from [0, m]: its order statistics l05 and l05 + 1 (<= m) are both there.
    if (l05 == m) {
        s.q05 = interpolate(vm, vm1, q05.frac);
    } else {
        std::nth_element(v, v + l05, v + m);
        const double a = v[l05];
        const double b = *std::min_element(v + l05 + 1, v + m + 1);
        s.q05 = interpolate(a, b, q05.frac);
    }
    // q95 from [m, n): order statistics l95 >= m and l95 + 1.
    if (l95 == m) {
        s.q95 = interpolate(vm, vm1, q95.frac);
    } else {
        std::nth_element(v + m + 1, v + l95, v + n);
        const double a = v[l95];
        const double b = l95 + 1 < n ? *std::min_element(v + l95 + 1, v + n) : a;
        s.q95 = interpolate(a, b, q95.frac);
    }
}

// Smallest and largest key of the finite values, and whether -0.0 is among them.
struct KeyRange {
    uint64_t lo = ~uint64_t{0}, hi = 0;
    bool neg_zero = false;
};
KeyRange finite_key_range(const double* v, size_t size) {
    // Branch-free on the bits (so it vectorises); -0.0 is the only value with kNegZeroKey.
    uint64_t lo = ~uint64_t{0}, hi = 0, neg_zero = 0;
    for (size_t i = 0; i < size; ++i) {
        const uint64_t k = order_key(v[i]);
        const bool finite = hd_finite(v[i]);
        lo = std::min(lo, finite ? k : ~uint64_t{0});
        hi = std::max(hi, finite ? k : uint64_t{0});
        neg_zero |= k == kNegZeroKey;
    }
    KeyRange r;
    r.lo = lo;
    r.hi = hi;
    r.neg_zero = neg_zero != 0;
    return r;
}

void select_finite(const double* v, size_t size, const KeyRange& kr, const size_t* ranks, size_t nr, uint64_t* out) {
    if (size < kSortBelow) {
        std::vector<uint64_t> k;
        k.reserve(size);
        for (size_t i = 0; i < size; ++i)
            if (std::isfinite(v[i])) k.push_back(order_key(v[i]));
        select_keys(k.data(), k.size(), kr.lo, kr.hi, ranks, nr, out);
    } else {
        radix_select(size, [v](size_t i) { return order_key(v[i]); }, kr.lo, kr.hi, ranks, nr, out);
    }
}

// min, max and the quantiles as the k-th smallest keys (order_key: -0.0 below
// +0.0), what the device's sort of the keys gives.
void order_statistics_by_keys(const double* v, size_t size, size_t n, Summary& s) {
    const KeyRange kr = finite_key_range(v, size);
    s.min = from_key(kr.lo);
    s.max = from_key(kr.hi);
    const QuantileAt qm = quantile_at(0.5, n), q05 = quantile_at(0.05, n), q95 = quantile_at(0.95, n);
    const size_t ranks[6] = {q05.lo, std::min(q05.lo + 1, n - 1), qm.lo, std::min(qm.lo + 1, n - 1), q95.lo, std::min(q95.lo + 1, n - 1)};
    uint64_t k[6];
    select_finite(v, size, kr, ranks, 6, k);
    s.q05 = interpolate(from_key(k[0]), from_key(k[1]), q05.frac);
    s.median = interpolate(from_key(k[2]), from_key(k[3]), qm.frac);
    s.q95 = interpolate(from_key(k[4]), from_key(k[5]), q95.frac);
}

bool has_negative_zero(const double* v, size_t size) {
    uint64_t any = 0;
    for (size_t i = 0; i < size; ++i) any |= hd_bits(v[i]) == 0x8000000000000000ull;
    return any != 0;
}

// Below this many values nth_element is as quick, and the radix path's fixed
// costs (a 512 KiB histogram) are not worth it.
constexpr size_t kRadixFrom = 8192;

// One group of kSumLanes values into the lanes. Out of line: inlined into the
// block loop, g++ unrolls it first and then finds it too branchy to vectorise.
template <class Term>
[[gnu::noinline]] void add_group(double* lane, const double* v, Term term) {
    for (int j = 0; j < kSumLanes; ++j) lane[j] = term(lane[j], v[j]);
}

// A sum of one lane term over the values in the shared order (column_sums.hpp):
// the same operations as block_partial and pairwise_tree, the lanes of a group
// of 32 values side by side so that they vectorise.
template <class Term>
double blocked_sum(const double* v, size_t size, Term term) {
    const uint64_t nb = sum_blocks(size);
    std::vector<double> partial(nb);
    for (uint64_t b = 0; b < nb; ++b) {
        alignas(64) double lane[kSumLanes] = {};
        const size_t begin = b * kSumBlock, end = std::min<size_t>(begin + kSumBlock, size);
        size_t i = begin;
        for (; i + kSumLanes <= end; i += kSumLanes) add_group(lane, v + i, term);
        for (int j = 0; i < end; ++i, ++j) lane[j] = term(lane[j], v[i]);
        partial[b] = lane_tree(lane);
    }
    return pairwise_tree(partial.data(), nb);
}

// The finite values in order: `v` itself when every value is finite, else a
// copy of the finite ones in buf (the sums' order counts positions among them).
const double* finite_values(const double* v, size_t size, size_t n, std::vector<double>& buf) {
    if (n == size) return v;
    buf.clear();
    buf.reserve(n);
    for (size_t i = 0; i < size; ++i)
        if (hd_finite(v[i])) buf.push_back(v[i]);
    return buf.data();
}

// The counts of a column's values: finite, and of them positive and zero.
ColumnSums count_values(const double* values, size_t size) {
    ColumnSums cs;
    uint64_t n = 0, n_pos = 0, n_zero = 0;
    for (size_t i = 0; i < size; ++i) {
        const double x = values[i];
        const bool finite = hd_finite(x);
        n += finite;
        n_pos += finite & (x > 0);  // & rather than &&: no branch, so the loop vectorises
        n_zero += x == 0;
    }
    cs.n = n;
    cs.n_pos = n_pos;
    cs.n_zero = n_zero;
    return cs;
}

// The sums of the n finite values f (in order) and of their logs, into cs: both
// in one pass over each group of 32.
void sum_finite(const double* f, size_t n, ColumnSums& cs) {
    const uint64_t nb = sum_blocks(n);
    std::vector<double> sums(nb), logs(nb);
    for (uint64_t b = 0; b < nb; ++b) {
        alignas(64) double ls[kSumLanes] = {}, ll[kSumLanes] = {};
        const size_t begin = b * kSumBlock, end = std::min<size_t>(begin + kSumBlock, n);
        size_t i = begin;
        for (; i + kSumLanes <= end; i += kSumLanes) {
            add_group(ls, f + i, [](double acc, double x) { return add_value(acc, x); });
            add_group(ll, f + i, [](double acc, double x) { return add_log(acc, x); });
        }
        for (int j = 0; i < end; ++i, ++j) {
            ls[j] = add_value(ls[j], f[i]);
            ll[j] = add_log(ll[j], f[i]);
        }
        sums[b] = lane_tree(ls);
        logs[b] = lane_tree(ll);
    }
    cs.sum = pairwise_tree(sums.data(), nb);
    cs.log_sum = pairwise_tree(logs.data(), nb);
}

// Mean, std and geomean (NaN for all when n == 0) and the counts.
void finish_moments(const double* values, size_t size, Summary& s) {
    ColumnSums cs = count_values(values, size);
    if (cs.n == 0) return moments_from_sums(cs, size, [](SumTerm, double, double) { return 0.0; }, s);
    std::vector<double> buf;
    const double* f = finite_values(values, size, cs.n, buf);
    sum_finite(f, cs.n, cs);
    moments_from_sums(
        cs, size,
        [f, n = cs.n](SumTerm t, double a, double b) {
            switch (t) {  // each term's own loop, so that it vectorises
                case SumTerm::square_dev: return blocked_sum(f, n, [a](double acc, double x) { return add_square_dev(acc, x, a); });
                case SumTerm::scaled_value: return blocked_sum(f, n, [a](double acc, double x) { return add_scaled_value(acc, x, a); });
                case SumTerm::scaled_square_dev:
                    return blocked_sum(f, n, [a, b](double acc, double x) { return add_scaled_square_dev(acc, x, a, b); });
                default: return blocked_sum(f, n, [t, a, b](double acc, double x) { return add_term(t, acc, x, a, b); });
            }
        },
        s);
}

// The keys of the given ranks (ascending, below the number of finite values)
// among the finite values, from `top`, the histogram of every value's key >> 48.
// Finite values' keys have top 16 bits in [0x0010, 0xffef]; infinities and NaN
// fall outside (-inf and negative NaN below, +inf and positive NaN above).
void select_by_top_bits(const double* v, size_t size, const uint64_t* top, const size_t* ranks, size_t nr, uint64_t* out) {
    constexpr size_t kFirst = 0x0010;  // the first finite bucket
    const RankBuckets rb = locate_ranks(top, kFirst, ranks, nr);  // nr <= 6 buckets
    Gather g = prepare_gather(rb, top, kBuckets);
    uint64_t* pos[8];
    for (size_t j = 1; j <= rb.needed.size(); ++j) pos[j] = g.start[j];
    const unsigned char* const sl = g.slot.data();
    for (size_t i = 0; i < size; ++i) {
        const uint64_t k = order_key(v[i]);
        const unsigned sj = sl[k >> 48];
        if (sj) *pos[sj]++ = k;
    }
    select_in_buckets(rb, top, g.keys.data(), ranks, nr,
                      [](size_t b) {
                          const uint64_t blo = static_cast<uint64_t>(b) << 48;
                          return std::pair<uint64_t, uint64_t>{blo, blo | 0x0000ffffffffffffull};
                      },
                      out);
}

}  // namespace

void select_order_statistics(const double* values, size_t size, const size_t* ranks, size_t nr, double* out) {
    if (nr == 0) return;
    const KeyRange kr = finite_key_range(values, size);
    std::vector<uint64_t> keys(nr);
    select_finite(values, size, kr, ranks, nr, keys.data());
    for (size_t r = 0; r < nr; ++r) out[r] = from_key(keys[r]);
}

ColumnSums column_sums(const double* values, size_t size) {
    ColumnSums cs = count_values(values, size);
    std::vector<double> buf;
    sum_finite(finite_values(values, size, cs.n, buf), cs.n, cs);
    return cs;
}

Summary summarize(double* values, size_t size) {
    Summary s;
    // Sums run over the values in seed order (as given) in the one order the host
    // and the device share (column_sums.hpp), so they are fixed by the input
    // alone. Non-finite values are counted, then kept out of every other
    // statistic, so one exploding network never poisons the others' aggregates.
    finish_moments(values, size, s);
    const size_t n = s.n;
    if (n == 0) return s;
    if (size < kRadixFrom) {
        if (has_negative_zero(values, size)) order_statistics_by_keys(values, size, n, s);
        else order_statistics_by_nth_element(values, size, n, s);
        return s;
    }
    // Large inputs: each value's order-preserving key, its smallest and largest
    // finite one, and a histogram of its top 16 bits for the radix select below.
    std::vector<uint64_t> top(kBuckets, 0);
    uint64_t lo = ~uint64_t{0}, hi = 0, neg_zero = 0;
    {
        uint64_t* const h = top.data();
        for (size_t i = 0; i < size; ++i) {
            const double x = values[i];
            const uint64_t k = order_key(x);
            ++h[k >> 48];
            const bool finite = std::isfinite(x);
            lo = std::min(lo, finite ? k : ~uint64_t{0});
            hi = std::max(hi, finite ? k : uint64_t{0});
            neg_zero |= k == kNegZeroKey;
        }
    }
    // Order statistics (the k-th smallest finite keys) by radix select, which
    // leaves the values in place: -0.0 below +0.0, as the device's sort of the keys.
    (void)neg_zero;
    s.min = from_key(lo);
    s.max = from_key(hi);
    const QuantileAt qm = quantile_at(0.5, n), q05 = quantile_at(0.05, n), q95 = quantile_at(0.95, n);
    // The quantile interpolates between order statistics lo and lo + 1 (lo itself at the top end).
    const size_t ranks[6] = {q05.lo, std::min(q05.lo + 1, n - 1), qm.lo, std::min(qm.lo + 1, n - 1), q95.lo, std::min(q95.lo + 1, n - 1)};
    uint64_t k[6];
    select_by_top_bits(values, size, top.data(), ranks, 6, k);
    s.q05 = interpolate(from_key(k[0]), from_key(k[1]), q05.frac);
    s.median = interpolate(from_key(k[2]), from_key(k[3]), qm.frac);
    s.q95 = interpolate(from_key(k[4]), from_key(k[5]), q95.frac);
    return s;
}

Summary summarize(std::vector<double>& values) { return summarize(values.data(), values.size()); }

}  // namespace gs
