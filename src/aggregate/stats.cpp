#include "gradsweep/stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <utility>

namespace gs {

namespace {
// numpy's default ("linear") quantile at position pos = p*(n-1): v[lo] + (v[lo+1] - v[lo]) * frac,
// lo = floor(pos), from order statistics found by selection (O(n)) instead of a sort.
double interpolate(double a, double b, double pos) { return a + (b - a) * (pos - std::floor(pos)); }

// Order-preserving integer key of a double: for non-NaN x < y, key(x) < key(y), and
// -0.0 < +0.0. Finite keys lie strictly between the keys of -inf and +inf.
inline uint64_t order_key(double x) {
    uint64_t b;
    std::memcpy(&b, &x, 8);
    return b ^ (static_cast<uint64_t>(static_cast<int64_t>(b) >> 63) | 0x8000000000000000ull);
}
inline double from_key(uint64_t k) {
    const uint64_t b = (k >> 63) ? (k ^ 0x8000000000000000ull) : ~k;
    double x;
    std::memcpy(&x, &b, 8);
    return x;
}
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

// Today's selection (std::nth_element), kept for inputs where the radix path
// could differ in bits: both -0.0 and +0.0 among the values (nth_element returns
// either for an order statistic, minmax_element the first in array order).
void order_statistics_by_nth_element(double* v, size_t size, size_t n, Summary& s) {
    // Order statistics: the finite values to the front, then selection. The median
    // first splits them in halves; q05 is then found in the lower half and q95 in
    // the upper one (about 3n element visits in all).
    std::partition(v, v + size, [](double x) { return std::isfinite(x); });
    const auto [mn, mx] = std::minmax_element(v, v + n);
    s.min = *mn;
    s.max = *mx;
    auto pos_of = [n](double p) { return p * static_cast<double>(n - 1); };
    auto lo_of = [](double pos) { return static_cast<size_t>(std::floor(pos)); };
    const double pm = pos_of(0.5), p05 = pos_of(0.05), p95 = pos_of(0.95);
    const size_t m = lo_of(pm), l05 = lo_of(p05), l95 = lo_of(p95);
    std::nth_element(v, v + m, v + n);  // v[m] in place; below it <=, above it >=
    const double vm = v[m];
    const double vm1 = m + 1 < n ? *std::min_element(v + m + 1, v + n) : vm;
    s.median = interpolate(vm, vm1, pm);
    // q05 from [0, m]: its order statistics l05 and l05 + 1 (<= m) are both there.
    if (l05 == m) {
        s.q05 = interpolate(vm, vm1, p05);
    } else {
        std::nth_element(v, v + l05, v + m);
        const double a = v[l05];
        const double b = *std::min_element(v + l05 + 1, v + m + 1);
        s.q05 = interpolate(a, b, p05);
    }
    // q95 from [m, n): order statistics l95 >= m and l95 + 1.
    if (l95 == m) {
        s.q95 = interpolate(vm, vm1, p95);
    } else {
        std::nth_element(v + m + 1, v + l95, v + n);
        const double a = v[l95];
        const double b = l95 + 1 < n ? *std::min_element(v + l95 + 1, v + n) : a;
        s.q95 = interpolate(a, b, p95);
    }
}

// Smallest and largest key of the finite values, and whether -0.0 is among them.
struct KeyRange {
    uint64_t lo = ~uint64_t{0}, hi = 0;
    bool neg_zero = false;
};
KeyRange finite_key_range(const double* v, size_t size) {
    // Branch-free on the bits (so it vectorises): a value is finite unless its
    // exponent bits are all ones; -0.0 is the only value with kNegZeroKey.
    constexpr uint64_t kExp = 0x7ff0000000000000ull;
    uint64_t lo = ~uint64_t{0}, hi = 0, neg_zero = 0;
    for (size_t i = 0; i < size; ++i) {
        uint64_t b;
        std::memcpy(&b, v + i, 8);
        const uint64_t k = b ^ (static_cast<uint64_t>(static_cast<int64_t>(b) >> 63) | 0x8000000000000000ull);
        const bool finite = (b & kExp) != kExp;
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

// Below this many values nth_element is as quick, and the radix path's fixed
// costs (a 512 KiB histogram) are not worth it.
constexpr size_t kRadixFrom = 8192;

// Every value is finite but their sum, a deviation or its square is not (float64
// networks reach 1e300): the mean and std again over values scaled by powers of
// two, exact but for values near the bottom of the range, which cannot matter to
// sums that large. Out of line, so the ordinary loops compile as they always have.
[[gnu::noinline]] void rescaled_moments(const double* values, size_t size, size_t n, Summary& s) {
    if (!std::isfinite(s.mean)) {
        const double c = std::ldexp(1.0, -(std::ilogb(static_cast<double>(n)) + 2));  // n c < 1/2
        double scaled = 0;
        for (size_t i = 0; i < size; ++i)
            if (std::isfinite(values[i])) scaled += values[i] * c;
        s.mean = scaled / static_cast<double>(n) / c;
    }
    // Deviations scaled by 2^-600: below 2^424 each, squares far from overflow.
    const double c = std::ldexp(1.0, -600), mc = s.mean * c;
    double ss = 0;
    for (size_t i = 0; i < size; ++i)
        if (std::isfinite(values[i])) ss += (values[i] * c - mc) * (values[i] * c - mc);
    s.std = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) / c : std::numeric_limits<double>::quiet_NaN();
}

// The running sums over the finite values, in the order given: the floating-point
// operations that define n, mean and geomean, shared by both passes below.
struct Sums {
    size_t n = 0, n_pos = 0, n_zero = 0;
    double sum = 0, log_sum = 0;
    void add(double x) {  // x finite
        ++n;
        sum += x;
        if (x == 0) ++n_zero;
        if (x > 0) {
            log_sum += std::log(x);
            ++n_pos;
        }
    }
};

// Mean, std and geomean from the first pass's sums (NaN for all when n == 0).
void finish_moments(const double* values, size_t size, const Sums& sums, Summary& s) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const size_t n = sums.n, n_pos = sums.n_pos;
    const double sum = sums.sum, log_sum = sums.log_sum;
    s.n = n;
    s.n_zero = sums.n_zero;
    s.n_nonfinite = size - n;
    if (n == 0) {
        s.mean = s.std = s.min = s.q05 = s.median = s.q95 = s.max = s.geomean = nan;
        return;
    }
    s.mean = sum / static_cast<double>(n);
    double ss = 0;
    for (size_t i = 0; i < size; ++i)
        if (std::isfinite(values[i])) ss += (values[i] - s.mean) * (values[i] - s.mean);
    // Sample std (ddof = 1): undefined for one value, NaN as numpy's std(ddof=1) and pandas give.
    s.std = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : nan;
    if (!std::isfinite(s.mean) || (n > 1 && !std::isfinite(s.std))) rescaled_moments(values, size, n, s);
    s.geomean = n_pos ? std::exp(log_sum / static_cast<double>(n_pos)) : nan;
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

Summary summarize(double* values, size_t size) {
    Summary s;
    // Sums run over the values in the order given (seed order everywhere in the
    // engine), so they are fixed by the input alone. Non-finite values are
    // counted, then kept out of every other statistic, so one exploding network
    // never poisons the others' aggregates.
    Sums sums;
    if (size < kRadixFrom) {
        for (size_t i = 0; i < size; ++i)
            if (std::isfinite(values[i])) sums.add(values[i]);
        finish_moments(values, size, sums, s);
        if (sums.n) order_statistics_by_nth_element(values, size, sums.n, s);
        return s;
    }
    // Large inputs: the same sums, and in the same pass (integer work only, the
    // floating-point operations are those above, in the same order) each value's
    // order-preserving key: its smallest and largest finite one, and a histogram
    // of its top 16 bits for the radix select below.
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
            if (finite) sums.add(x);
        }
    }
    finish_moments(values, size, sums, s);
    const size_t n = sums.n;
    if (n == 0) return s;
    // Order statistics (the k-th smallest finite values) by radix select, which
    // leaves the values in place. It finds the same values as nth_element; only
    // where -0.0 and +0.0 both occur could the two pick differently signed zeros,
    // so such inputs take the nth_element path.
    if (neg_zero) {
        order_statistics_by_nth_element(values, size, n, s);
        return s;
    }
    s.min = from_key(lo);
    s.max = from_key(hi);
    auto pos_of = [n](double p) { return p * static_cast<double>(n - 1); };
    auto lo_of = [](double pos) { return static_cast<size_t>(std::floor(pos)); };
    const double pm = pos_of(0.5), p05 = pos_of(0.05), p95 = pos_of(0.95);
    const size_t m = lo_of(pm), l05 = lo_of(p05), l95 = lo_of(p95);
    // The quantile at pos interpolates between order statistics lo and lo + 1
    // (lo itself at the top end).
    const size_t ranks[6] = {l05, std::min(l05 + 1, n - 1), m, std::min(m + 1, n - 1), l95, std::min(l95 + 1, n - 1)};
    uint64_t k[6];
    select_by_top_bits(values, size, top.data(), ranks, 6, k);
    s.q05 = interpolate(from_key(k[0]), from_key(k[1]), p05);
    s.median = interpolate(from_key(k[2]), from_key(k[3]), pm);
    s.q95 = interpolate(from_key(k[4]), from_key(k[5]), p95);
    return s;
}

Summary summarize(std::vector<double>& values) { return summarize(values.data(), values.size()); }

}  // namespace gs
