// tb_mpi_test: checks that MPI moves the right bytes over UCX (pml ucx,
// osc ucx). It verifies data, it does not measure speed.
//
// Areas: point-to-point (blocking, nonblocking, wildcard receives and
// ordering), collectives, and one-sided communication on windows made by
// MPI_Win_create and MPI_Win_allocate (fence, lock/unlock, PSCW).
// Every received byte is compared with a pattern that depends on sender,
// receiver, size and iteration, so stale, shifted or misrouted data shows.
//
// Usage: tb_mpi_test [--max-size BYTES[k|m]] [--only AREA] [--flush-gets] [--verbose]
// Runs with any number of ranks >= 2. Rank 0 prints one line per area and
// "mpi: N passed, M failed" (checks summed over all ranks); the exit status
// is non-zero on every rank if any check failed anywhere.

// Only the C API is used; skip the deprecated C++ bindings (they warn).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

MPI_Comm comm = MPI_COMM_WORLD;
int rank_ = 0;
int nranks = 0;
size_t max_size = size_t(64) << 20;
bool verbose = false;
bool flush_gets = false;  // --flush-gets, see usage()

constexpr size_t KiB = 1024, MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// Recording results

long n_passed = 0, n_failed = 0;
constexpr long max_printed_failures = 40;

// Records one check. On failure prints the message, prefixed with the rank.
__attribute__((format(printf, 2, 3)))
bool check(bool ok, const char *fmt, ...)
{
    if (ok) {
        ++n_passed;
        return true;
    }
    if (++n_failed <= max_printed_failures) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "rank %d: FAIL: %s\n", rank_, msg);
        if (n_failed == max_printed_failures)
            fprintf(stderr, "rank %d: (further failures not printed)\n", rank_);
    }
    return false;
}

// ---------------------------------------------------------------------------
// Data patterns

uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Areas keep the patterns of different tests apart.
enum Area : uint64_t {
    A_RING = 1, A_SENDRECV, A_SSEND, A_NB_RING, A_NB_MANY, A_ORDER, A_TAGS,
    A_PROBE, A_BCAST, A_ALLTOALL, A_ALLGATHER, A_RMA_PUT, A_RMA_GET,
    A_RMA_LOCK, A_PSCW,
};

uint64_t seed_of(Area area, int src, int dst, size_t size, int iter)
{
    uint64_t s = mix(area);
    s = mix(s ^ uint64_t(src));
    s = mix(s ^ uint64_t(dst));
    s = mix(s ^ uint64_t(size));
    return mix(s ^ uint64_t(iter));
}

// Byte i of the pattern is byte (i % 8) of mix(seed + i / 8 * 8).
void fill(void *buf, size_t n, uint64_t seed)
{
    auto *p = static_cast<unsigned char *>(buf);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = mix(seed + i);
        memcpy(p + i, &w, 8);
    }
    if (i < n) {
        uint64_t w = mix(seed + i);
        memcpy(p + i, &w, n - i);
    }
}

// Offset of the first byte that differs from the pattern, or SIZE_MAX.
size_t first_bad(const void *buf, size_t n, uint64_t seed)
{
    auto *p = static_cast<const unsigned char *>(buf);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w = mix(seed + i);
        size_t len = std::min<size_t>(8, n - i);
        if (memcmp(p + i, &w, len) != 0) {
            auto *e = reinterpret_cast<const unsigned char *>(&w);
            for (size_t j = 0; j < len; ++j)
                if (p[i + j] != e[j])
                    return i + j;
        }
    }
    return SIZE_MAX;
}

uint8_t pattern_byte(uint64_t seed, size_t i)
{
    uint64_t w = mix(seed + i / 8 * 8);
    return reinterpret_cast<const unsigned char *>(&w)[i % 8];
}

__attribute__((format(printf, 4, 5)))
bool check_data(const void *buf, size_t n, uint64_t seed, const char *fmt, ...)
{
    size_t bad = first_bad(buf, n, seed);
    if (bad == SIZE_MAX)
        return check(true, "data");
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return check(false, "%s: %zu bytes, first wrong byte at %zu: 0x%02x, expected 0x%02x",
                 what, n, bad, static_cast<const unsigned char *>(buf)[bad],
                 pattern_byte(seed, bad));
}

bool check_status(const MPI_Status &st, int src, int tag, size_t size, const char *what)
{
    int count = -1;
    MPI_Get_count(&st, MPI_BYTE, &count);
    return check(st.MPI_SOURCE == src && st.MPI_TAG == tag && count == int(size),
                 "%s: status source %d tag %d count %d, expected %d %d %zu", what,
                 st.MPI_SOURCE, st.MPI_TAG, count, src, tag, size);
}

// ---------------------------------------------------------------------------
// Sizes and buffers

// Message sizes: zero, odd, through the eager and rendezvous thresholds.
std::vector<size_t> p2p_sizes()
{
    static const size_t all[] = {0, 1, 7, 64, 1000, 4 * KiB, 8 * KiB, 64 * KiB,
                                 256 * KiB, 1 * MiB, 8 * MiB, 64 * MiB};
    std::vector<size_t> v;
    for (size_t s : all)
        if (s <= max_size)
            v.push_back(s);
    return v;
}

std::vector<size_t> capped(std::initializer_list<size_t> sizes)
{
    std::vector<size_t> v;
    for (size_t s : sizes)
        if (s <= max_size)
            v.push_back(s);
    return v;
}

// Fewer repetitions for the big messages, to keep runs short.
int iters_for(size_t size) { return size >= 8 * MiB ? 1 : 3; }

// Buffers that are never empty (so data() is never null for 0-byte
// messages), filled with a junk byte before every receive.
struct Buf {
    std::vector<unsigned char> v;
    explicit Buf(size_t n) : v(std::max<size_t>(n, 1)) {}
    unsigned char *p() { return v.data(); }
    void junk() { memset(v.data(), 0xa5, v.size()); }
};

int right() { return (rank_ + 1) % nranks; }
int left() { return (rank_ + nranks - 1) % nranks; }
int count_of(size_t n) { return static_cast<int>(n); }

// ---------------------------------------------------------------------------
// Point-to-point, blocking

void p2p_blocking()
{
    size_t top = p2p_sizes().back();
    Buf sbuf(top), rbuf(top);
    MPI_Status st;

    // Ring with MPI_Send/MPI_Recv: even ranks send first, odd ranks receive
    // first, so large (rendezvous) messages cannot deadlock.
    for (size_t size : p2p_sizes()) {
        for (int it = 0; it < iters_for(size); ++it) {
            const int tag = 100 + it;
            fill(sbuf.p(), size, seed_of(A_RING, rank_, right(), size, it));
            rbuf.junk();
            if (rank_ % 2 == 0) {
                MPI_Send(sbuf.p(), count_of(size), MPI_BYTE, right(), tag, comm);
                MPI_Recv(rbuf.p(), count_of(size), MPI_BYTE, left(), tag, comm, &st);
            } else {
                MPI_Recv(rbuf.p(), count_of(size), MPI_BYTE, left(), tag, comm, &st);
                MPI_Send(sbuf.p(), count_of(size), MPI_BYTE, right(), tag, comm);
            }
            check_status(st, left(), tag, size, "ring send/recv");
            check_data(rbuf.p(), size, seed_of(A_RING, left(), rank_, size, it),
                       "ring send/recv from %d, iteration %d", left(), it);
        }
    }

    // Every pair in both directions: MPI_Sendrecv at every ring distance.
    for (size_t size : p2p_sizes()) {
        for (int dist = 1; dist < nranks; ++dist) {
            int to = (rank_ + dist) % nranks, from = (rank_ + nranks - dist) % nranks;
            fill(sbuf.p(), size, seed_of(A_SENDRECV, rank_, to, size, dist));
            rbuf.junk();
            MPI_Sendrecv(sbuf.p(), count_of(size), MPI_BYTE, to, dist,
                         rbuf.p(), count_of(size), MPI_BYTE, from, dist, comm, &st);
            check_status(st, from, dist, size, "pairwise sendrecv");
            check_data(rbuf.p(), size, seed_of(A_SENDRECV, from, rank_, size, dist),
                       "pairwise sendrecv %d -> %d", from, rank_);
        }
    }

    // Synchronous sends around the ring.
    for (size_t size : capped({0, 8, 4 * KiB, 64 * KiB, 1 * MiB})) {
        fill(sbuf.p(), size, seed_of(A_SSEND, rank_, right(), size, 0));
        rbuf.junk();
        if (rank_ % 2 == 0) {
            MPI_Ssend(sbuf.p(), count_of(size), MPI_BYTE, right(), 7, comm);
            MPI_Recv(rbuf.p(), count_of(size), MPI_BYTE, left(), 7, comm, &st);
        } else {
            MPI_Recv(rbuf.p(), count_of(size), MPI_BYTE, left(), 7, comm, &st);
            MPI_Ssend(sbuf.p(), count_of(size), MPI_BYTE, right(), 7, comm);
        }
        check_status(st, left(), 7, size, "ring ssend");
        check_data(rbuf.p(), size, seed_of(A_SSEND, left(), rank_, size, 0),
                   "ring ssend from %d", left());
    }
}

// ---------------------------------------------------------------------------
// Point-to-point, nonblocking

void p2p_nonblocking()
{
    size_t top = p2p_sizes().back();
    Buf sbuf(top), rbuf(top);

    // Ring in both directions at once; the second half of the iterations
    // completes with MPI_Test polling instead of MPI_Waitall.
    for (size_t size : p2p_sizes()) {
        for (int it = 0; it < iters_for(size); ++it) {
            Buf sbuf2(size), rbuf2(size);
            fill(sbuf.p(), size, seed_of(A_NB_RING, rank_, right(), size, it));
            fill(sbuf2.p(), size, seed_of(A_NB_RING, rank_, left(), size, it));
            rbuf.junk();
            rbuf2.junk();
            MPI_Request req[4];
            MPI_Status st[4];
            MPI_Irecv(rbuf.p(), count_of(size), MPI_BYTE, left(), 1, comm, &req[0]);
            MPI_Irecv(rbuf2.p(), count_of(size), MPI_BYTE, right(), 2, comm, &req[1]);
            MPI_Isend(sbuf.p(), count_of(size), MPI_BYTE, right(), 1, comm, &req[2]);
            MPI_Isend(sbuf2.p(), count_of(size), MPI_BYTE, left(), 2, comm, &req[3]);
            if (it % 2 == 0) {
                MPI_Waitall(4, req, st);
            } else {
                for (int i = 0; i < 4; ++i) {
                    int done = 0;
                    while (!done)
                        MPI_Test(&req[i], &done, &st[i]);
                }
            }
            check_status(st[0], left(), 1, size, "nonblocking ring (right-going)");
            check_status(st[1], right(), 2, size, "nonblocking ring (left-going)");
            check_data(rbuf.p(), size, seed_of(A_NB_RING, left(), rank_, size, it),
                       "nonblocking ring from left %d, iteration %d", left(), it);
            check_data(rbuf2.p(), size, seed_of(A_NB_RING, right(), rank_, size, it),
                       "nonblocking ring from right %d, iteration %d", right(), it);
        }
    }

    // Many outstanding messages of mixed sizes to every other rank.
    const std::vector<size_t> mixed = capped({8, 4 * KiB, 64 * KiB, 256 * KiB});
    const int per_peer = 16;
    std::vector<Buf> sbufs, rbufs;
    std::vector<MPI_Request> reqs;
    struct Expect { int src, tag; size_t size; };
    std::vector<Expect> expect;
    for (int peer = 0; peer < nranks; ++peer) {
        if (peer == rank_)
            continue;
        for (int m = 0; m < per_peer; ++m) {
            size_t size = mixed[m % mixed.size()];
            rbufs.emplace_back(size);
            rbufs.back().junk();
            reqs.emplace_back();
            MPI_Irecv(rbufs.back().p(), count_of(size), MPI_BYTE, peer, m, comm, &reqs.back());
            expect.push_back({peer, m, size});
        }
    }
    for (int peer = 0; peer < nranks; ++peer) {
        if (peer == rank_)
            continue;
        for (int m = 0; m < per_peer; ++m) {
            size_t size = mixed[m % mixed.size()];
            sbufs.emplace_back(size);
            fill(sbufs.back().p(), size, seed_of(A_NB_MANY, rank_, peer, size, m));
            reqs.emplace_back();
            MPI_Isend(sbufs.back().p(), count_of(size), MPI_BYTE, peer, m, comm, &reqs.back());
        }
    }
    std::vector<MPI_Status> sts(reqs.size());
    MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), sts.data());
    for (size_t i = 0; i < expect.size(); ++i) {
        const Expect &e = expect[i];
        check_status(sts[i], e.src, e.tag, e.size, "many outstanding");
        check_data(rbufs[i].p(), e.size, seed_of(A_NB_MANY, e.src, rank_, e.size, e.tag),
                   "many outstanding: message %d from %d", e.tag, e.src);
    }
}

// ---------------------------------------------------------------------------
// Wildcard receives, ordering, tag selection, probe

// Message header for the ordering test: who sent it and its sequence number.
struct Header { int32_t src, seq; };

void p2p_ordering()
{
    // Every other rank sends `per_sender` messages to the root with varying
    // tags and sizes; the root receives them with MPI_ANY_SOURCE/MPI_ANY_TAG.
    // Messages from one sender must arrive in the order they were sent
    // (same communicator, and the wildcard tag matches all of them).
    const std::vector<size_t> sizes = capped({16, 100, 8 * KiB, 100 * KiB});
    const int per_sender = 200;
    for (int root : {0, nranks - 1}) {
        if (rank_ == root) {
            size_t top = *std::max_element(sizes.begin(), sizes.end());
            Buf rbuf(top);
            std::vector<int> next(nranks, 0);
            for (int n = 0; n < (nranks - 1) * per_sender; ++n) {
                MPI_Status st;
                rbuf.junk();
                MPI_Recv(rbuf.p(), count_of(top), MPI_BYTE, MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &st);
                int count = 0;
                MPI_Get_count(&st, MPI_BYTE, &count);
                Header h;
                memcpy(&h, rbuf.p(), sizeof(h));
                int src = st.MPI_SOURCE;
                if (!check(src >= 0 && src < nranks && src != root && h.src == src,
                           "any-source: message from %d carries sender %d", src, h.src))
                    continue;
                int seq = next[src]++;
                size_t size = sizes[seq % sizes.size()];
                check(h.seq == seq, "any-source order: from %d got message %d, expected %d",
                      src, h.seq, seq);
                check(st.MPI_TAG == seq % 5 && count == int(size),
                      "any-source: message %d from %d has tag %d count %d, expected %d %zu",
                      seq, src, st.MPI_TAG, count, seq % 5, size);
                check_data(rbuf.p() + sizeof(h), size - sizeof(h),
                           seed_of(A_ORDER, src, root, size, seq),
                           "any-source: message %d from %d", seq, src);
            }
        } else {
            std::vector<Buf> bufs;
            std::vector<MPI_Request> reqs(per_sender);
            bufs.reserve(per_sender);
            for (int seq = 0; seq < per_sender; ++seq) {
                size_t size = sizes[seq % sizes.size()];
                bufs.emplace_back(size);
                Header h{rank_, seq};
                memcpy(bufs.back().p(), &h, sizeof(h));
                fill(bufs.back().p() + sizeof(h), size - sizeof(h),
                     seed_of(A_ORDER, rank_, root, size, seq));
                MPI_Isend(bufs.back().p(), count_of(size), MPI_BYTE, root, seq % 5, comm, &reqs[seq]);
            }
            MPI_Waitall(per_sender, reqs.data(), MPI_STATUSES_IGNORE);
        }
        MPI_Barrier(comm);
    }

    // Tag selection: three messages to the right neighbour, received in the
    // reverse order of sending by their tags (one rendezvous-sized).
    {
        const size_t sz[3] = {std::min(max_size, 1 * MiB), 8, std::min(max_size, 16 * KiB)};
        Buf s[3] = {Buf(sz[0]), Buf(sz[1]), Buf(sz[2])};
        Buf r[3] = {Buf(sz[0]), Buf(sz[1]), Buf(sz[2])};
        MPI_Request req[3];
        for (int t = 0; t < 3; ++t) {
            fill(s[t].p(), sz[t], seed_of(A_TAGS, rank_, right(), sz[t], t));
            MPI_Isend(s[t].p(), count_of(sz[t]), MPI_BYTE, right(), 10 + t, comm, &req[t]);
        }
        for (int t = 2; t >= 0; --t) {
            MPI_Status st;
            r[t].junk();
            MPI_Recv(r[t].p(), count_of(sz[t]), MPI_BYTE, left(), 10 + t, comm, &st);
            check_status(st, left(), 10 + t, sz[t], "tag selection");
            check_data(r[t].p(), sz[t], seed_of(A_TAGS, left(), rank_, sz[t], t),
                       "tag selection: tag %d from %d", 10 + t, left());
        }
        MPI_Waitall(3, req, MPI_STATUSES_IGNORE);
    }

    // Probe: the receiver learns the size from MPI_Probe / MPI_Iprobe.
    for (size_t size : capped({0, 3, 5000, 300 * KiB})) {
        Buf s(size);
        fill(s.p(), size, seed_of(A_PROBE, rank_, right(), size, 0));
        MPI_Request req;
        MPI_Isend(s.p(), count_of(size), MPI_BYTE, right(), 77, comm, &req);
        MPI_Status st;
        if (size % 2 == 0) {
            MPI_Probe(MPI_ANY_SOURCE, 77, comm, &st);
        } else {
            int flag = 0;
            while (!flag)
                MPI_Iprobe(left(), MPI_ANY_TAG, comm, &flag, &st);
        }
        int count = -1;
        MPI_Get_count(&st, MPI_BYTE, &count);
        check_status(st, left(), 77, size, "probe");
        Buf r(count > 0 ? size_t(count) : 0);
        r.junk();
        MPI_Recv(r.p(), std::max(count, 0), MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, comm, &st);
        check_data(r.p(), size, seed_of(A_PROBE, left(), rank_, size, 0),
                   "probed message of %zu bytes from %d", size, left());
        MPI_Wait(&req, MPI_STATUS_IGNORE);
    }
}

// ---------------------------------------------------------------------------
// Collectives

// Reduction inputs: small integers (also in doubles, so sums are exact).
int32_t ival(int r, size_t i) { return int32_t((r + 1) * (int(i % 1000) + 1)); }
double dval(int r, size_t i) { return 0.5 * (r + 1) * double(i % 977 + 1); }

void coll_bcast()
{
    for (size_t size : capped({1, 1000, 64 * KiB, 1 * MiB, 8 * MiB})) {
        Buf b(size);
        for (int root = 0; root < nranks; ++root) {
            uint64_t seed = seed_of(A_BCAST, root, -1, size, 0);
            if (rank_ == root)
                fill(b.p(), size, seed);
            else
                b.junk();
            MPI_Bcast(b.p(), count_of(size), MPI_BYTE, root, comm);
            check_data(b.p(), size, seed, "bcast of %zu bytes from root %d", size, root);
        }
    }
}

void coll_allreduce()
{
    const long long sum_r = (long long)nranks * (nranks + 1) / 2;  // sum of (r + 1)
    for (size_t n : {size_t(1), size_t(1000), size_t(256 * 1024), 8 * MiB / 8}) {
        if (n * sizeof(double) > max_size && n > 1)
            continue;
        std::vector<int32_t> is(n), ir(n);
        std::vector<double> ds(n), dr(n);
        for (size_t i = 0; i < n; ++i) {
            is[i] = ival(rank_, i);
            ds[i] = dval(rank_, i);
        }
        auto count_bad = [&](auto &got, auto expect) {
            size_t bad = 0, first = SIZE_MAX;
            for (size_t i = 0; i < n; ++i)
                if (got[i] != expect(i)) {
                    ++bad;
                    first = std::min(first, i);
                }
            return std::make_pair(bad, first);
        };
        struct Case { const char *name; MPI_Op op; };
        for (Case c : {Case{"sum", MPI_SUM}, Case{"max", MPI_MAX}}) {
            const bool sum = c.op == MPI_SUM;
            std::fill(ir.begin(), ir.end(), -1);
            MPI_Allreduce(is.data(), ir.data(), int(n), MPI_INT32_T, c.op, comm);
            auto [ibad, ifirst] = count_bad(ir, [&](size_t i) {
                return sum ? int32_t(sum_r * ival(0, i)) : ival(nranks - 1, i);
            });
            check(ibad == 0, "allreduce %s of %zu int32: %zu wrong, first at %zu",
                  c.name, n, ibad, ifirst);

            std::fill(dr.begin(), dr.end(), -1.0);
            MPI_Allreduce(ds.data(), dr.data(), int(n), MPI_DOUBLE, c.op, comm);
            auto [dbad, dfirst] = count_bad(dr, [&](size_t i) {
                return sum ? double(sum_r) * dval(0, i) : dval(nranks - 1, i);
            });
            check(dbad == 0, "allreduce %s of %zu doubles: %zu wrong, first at %zu",
                  c.name, n, dbad, dfirst);
        }
        // In place.
        std::copy(is.begin(), is.end(), ir.begin());
        MPI_Allreduce(MPI_IN_PLACE, ir.data(), int(n), MPI_INT32_T, MPI_SUM, comm);
        auto [pbad, pfirst] = count_bad(ir, [&](size_t i) { return int32_t(sum_r * ival(0, i)); });
        check(pbad == 0, "allreduce in place of %zu int32: %zu wrong, first at %zu", n, pbad, pfirst);
    }
}

void coll_reduce()
{
    const long long sum_r = (long long)nranks * (nranks + 1) / 2;
    for (size_t n : {size_t(1), size_t(1000), size_t(128 * 1024)}) {
        if (n * sizeof(int64_t) > max_size && n > 1)
            continue;
        std::vector<int64_t> s(n), r(n, -1);
        for (size_t i = 0; i < n; ++i)
            s[i] = int64_t(rank_ + 1) * int64_t(i + 1);
        for (int root = 0; root < nranks; ++root) {
            std::fill(r.begin(), r.end(), -1);
            MPI_Reduce(s.data(), r.data(), int(n), MPI_INT64_T, MPI_SUM, root, comm);
            if (rank_ != root)
                continue;
            size_t bad = 0;
            for (size_t i = 0; i < n; ++i)
                bad += r[i] != sum_r * int64_t(i + 1);
            check(bad == 0, "reduce sum of %zu int64 to root %d: %zu wrong", n, root, bad);
        }
    }
}

void coll_alltoall_allgather()
{
    for (size_t blk : capped({1, 1000, 64 * KiB, 1 * MiB})) {
        Buf s(blk * nranks), r(blk * nranks);
        for (int d = 0; d < nranks; ++d)
            fill(s.p() + d * blk, blk, seed_of(A_ALLTOALL, rank_, d, blk, 0));
        r.junk();
        MPI_Alltoall(s.p(), count_of(blk), MPI_BYTE, r.p(), count_of(blk), MPI_BYTE, comm);
        for (int src = 0; src < nranks; ++src)
            check_data(r.p() + src * blk, blk, seed_of(A_ALLTOALL, src, rank_, blk, 0),
                       "alltoall block of %zu bytes from %d", blk, src);
    }
    for (size_t blk : capped({1, 1000, 256 * KiB, 2 * MiB})) {
        Buf s(blk), r(blk * nranks);
        fill(s.p(), blk, seed_of(A_ALLGATHER, rank_, -1, blk, 0));
        r.junk();
        MPI_Allgather(s.p(), count_of(blk), MPI_BYTE, r.p(), count_of(blk), MPI_BYTE, comm);
        for (int src = 0; src < nranks; ++src)
            check_data(r.p() + src * blk, blk, seed_of(A_ALLGATHER, src, -1, blk, 0),
                       "allgather block of %zu bytes from %d", blk, src);
    }
}

// A barrier must hold everyone until the last rank arrives. Each rank in
// turn arrives 200 ms late; the others must wait in MPI_Barrier for most of
// that time (measured on their own clock; 100 ms leaves room for
// oversubscribed scheduling).
void coll_barrier()
{
    for (int late = 0; late < std::min(nranks, 3); ++late) {
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        if (rank_ == late)
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        MPI_Barrier(comm);
        double waited = MPI_Wtime() - t0;
        check(waited >= 0.1, "barrier returned after %.3f s while rank %d was 200 ms late",
              waited, late);
    }
    for (int i = 0; i < 200; ++i)
        MPI_Barrier(comm);
    check(true, "barrier loop");
}

// ---------------------------------------------------------------------------
// One-sided

enum class WinKind { create, allocate };
const char *kind_name(WinKind k) { return k == WinKind::create ? "Win_create" : "Win_allocate"; }

// A window of `bytes` bytes with displacement unit 1, zeroed, made by
// MPI_Win_create (user memory) or MPI_Win_allocate.
struct Window {
    MPI_Win win = MPI_WIN_NULL;
    unsigned char *base = nullptr;
    std::vector<unsigned char> storage;

    Window(WinKind kind, size_t bytes)
    {
        if (kind == WinKind::create) {
            storage.assign(bytes, 0);
            base = storage.data();
            MPI_Win_create(base, MPI_Aint(bytes), 1, MPI_INFO_NULL, comm, &win);
        } else {
            MPI_Win_allocate(MPI_Aint(bytes), 1, MPI_INFO_NULL, comm, &base, &win);
            memset(base, 0, bytes);
        }
        sync_local();
    }
    ~Window() { MPI_Win_free(&win); }
    Window(const Window &) = delete;
    Window &operator=(const Window &) = delete;

    // Makes local loads/stores and remote accesses of passive-target epochs
    // visible to each other (the barrier orders the ranks).
    void sync_local()
    {
        MPI_Win_lock(MPI_LOCK_SHARED, rank_, 0, win);
        MPI_Win_sync(win);
        MPI_Win_unlock(rank_, win);
        MPI_Barrier(comm);
        MPI_Win_lock(MPI_LOCK_SHARED, rank_, 0, win);
        MPI_Win_sync(win);
        MPI_Win_unlock(rank_, win);
    }
    int64_t *i64(size_t byte_offset) { return reinterpret_cast<int64_t *>(base + byte_offset); }
};

// Put into the right neighbour and get from the left one, under fences.
void rma_fence_put_get(WinKind kind)
{
    const std::vector<size_t> sizes = capped({8, 1000, 64 * KiB, 1 * MiB, 8 * MiB});
    const size_t top = sizes.back();
    Window w(kind, 2 * top);  // [0, top): put target; [top, 2 top): get source
    Buf src(top), got(top);
    for (size_t size : sizes) {
        fill(w.base + top, size, seed_of(A_RMA_GET, rank_, -1, size, int(kind)));
        memset(w.base, 0, size);
        fill(src.p(), size, seed_of(A_RMA_PUT, rank_, right(), size, int(kind)));
        got.junk();
        MPI_Win_fence(0, w.win);
        MPI_Put(src.p(), count_of(size), MPI_BYTE, right(), 0, count_of(size), MPI_BYTE, w.win);
        MPI_Get(got.p(), count_of(size), MPI_BYTE, left(), MPI_Aint(top), count_of(size), MPI_BYTE, w.win);
        MPI_Win_fence(0, w.win);
        check_data(w.base, size, seed_of(A_RMA_PUT, left(), rank_, size, int(kind)),
                   "%s fence: put of %zu bytes from %d", kind_name(kind), size, left());
        check_data(got.p(), size, seed_of(A_RMA_GET, left(), -1, size, int(kind)),
                   "%s fence: get of %zu bytes from %d", kind_name(kind), size, left());
        MPI_Win_fence(0, w.win);  // nobody reads the get source any more
    }
}

// Every rank accumulates (MPI_SUM) into every rank's array.
void rma_fence_accumulate(WinKind kind)
{
    for (size_t n : {size_t(1), size_t(1000), size_t(128 * 1024)}) {
        if (n * 8 > max_size && n > 1)
            continue;
        Window w(kind, n * 8);
        std::vector<int64_t> v(n);
        for (size_t i = 0; i < n; ++i)
            v[i] = int64_t(rank_ + 1) * int64_t(i + 1);
        MPI_Win_fence(0, w.win);
        for (int t = 0; t < nranks; ++t)
            MPI_Accumulate(v.data(), int(n), MPI_INT64_T, t, 0, int(n), MPI_INT64_T, MPI_SUM, w.win);
        MPI_Win_fence(0, w.win);
        const int64_t sum_r = int64_t(nranks) * (nranks + 1) / 2;
        size_t bad = 0, first = SIZE_MAX;
        for (size_t i = 0; i < n; ++i)
            if (*w.i64(i * 8) != sum_r * int64_t(i + 1)) {
                ++bad;
                first = std::min(first, i);
            }
        check(bad == 0, "%s fence: accumulate sum of %zu int64 from %d ranks: %zu wrong, first at %zu",
              kind_name(kind), n, nranks, bad, first);
    }
}

// Checks that the values fetched by atomic adds of 1 << origin to one
// location were seen in some serial order: sorted by the number of bits,
// each one adds exactly one new bit, and nobody saw its own bit.
void check_atomic_chain(const std::vector<int64_t> &old, int64_t final_value, const char *what)
{
    const int64_t all = (int64_t(1) << nranks) - 1;
    check(final_value == all, "%s: final value 0x%" PRIx64 ", expected 0x%" PRIx64,
          what, uint64_t(final_value), uint64_t(all));
    std::vector<std::pair<int, int>> by_bits;  // (popcount, origin)
    for (int o = 0; o < nranks; ++o) {
        check((old[o] & (int64_t(1) << o)) == 0 && (old[o] & ~all) == 0,
              "%s: origin %d fetched 0x%" PRIx64, what, o, uint64_t(old[o]));
        by_bits.emplace_back(__builtin_popcountll(uint64_t(old[o])), o);
    }
    std::sort(by_bits.begin(), by_bits.end());
    int64_t seen = 0;
    bool serial = true;
    for (int k = 0; k < nranks; ++k) {
        int o = by_bits[k].second;
        serial = serial && old[o] == seen;
        seen |= int64_t(1) << o;
    }
    check(serial, "%s: fetched values are not a serial order of the adds", what);
}

// Get_accumulate and Fetch_and_op (MPI_SUM) of 1 << rank to the same
// location on every rank, under fences.
void rma_fence_fetching(WinKind kind)
{
    if (nranks > 62)
        return;  // one bit per rank in an int64
    Window w(kind, 16);
    for (int variant = 0; variant < 2; ++variant) {
        const char *name = variant == 0 ? "get_accumulate" : "fetch_and_op";
        *w.i64(0) = 0;
        std::vector<int64_t> fetched(nranks, -1), old(nranks, -1);
        const int64_t bit = int64_t(1) << rank_;
        MPI_Win_fence(0, w.win);
        for (int t = 0; t < nranks; ++t) {
            if (variant == 0)
                MPI_Get_accumulate(&bit, 1, MPI_INT64_T, &fetched[t], 1, MPI_INT64_T,
                                   t, 0, 1, MPI_INT64_T, MPI_SUM, w.win);
            else
                MPI_Fetch_and_op(&bit, &fetched[t], MPI_INT64_T, t, 0, MPI_SUM, w.win);
        }
        MPI_Win_fence(0, w.win);
        // old[o] = what origin o fetched from my location.
        MPI_Alltoall(fetched.data(), 1, MPI_INT64_T, old.data(), 1, MPI_INT64_T, comm);
        std::string what = std::string(kind_name(kind)) + " fence: " + name + " SUM";
        check_atomic_chain(old, *w.i64(0), what.c_str());
        MPI_Win_fence(0, w.win);
    }
}

// Gathers each rank's vector of `k` int64 to all ranks.
std::vector<int64_t> allgather_i64(const std::vector<int64_t> &mine)
{
    std::vector<int64_t> all(mine.size() * nranks);
    MPI_Allgather(mine.data(), int(mine.size()), MPI_INT64_T, all.data(), int(mine.size()),
                  MPI_INT64_T, comm);
    return all;
}

// Passive target: shared counters with fetch_and_op, replace chains,
// compare_and_swap, exclusive-lock read-modify-write, put/get round trips.
void rma_lock(WinKind kind)
{
    const size_t blk = std::min(max_size, 1 * MiB);
    Window w(kind, 64 + blk);  // 8 int64 slots, then a data block
    const int K = 50;
    const std::string kn = kind_name(kind);

    // Shared counter on every rank in turn, incremented by everybody with
    // fetch_and_op(SUM) under a shared lock: the fetched values must be
    // exactly 0 .. np*K-1 and the counter must end at np*K.
    for (int target = 0; target < nranks; target += std::max(1, nranks - 1)) {
        std::vector<int64_t> mine(K);
        const int64_t one = 1;
        MPI_Win_lock(MPI_LOCK_SHARED, target, 0, w.win);
        for (int k = 0; k < K; ++k) {
            MPI_Fetch_and_op(&one, &mine[k], MPI_INT64_T, target, 0, MPI_SUM, w.win);
            MPI_Win_flush(target, w.win);
        }
        MPI_Win_unlock(target, w.win);
        std::vector<int64_t> all = allgather_i64(mine);
        std::sort(all.begin(), all.end());
        bool perm = true;
        for (size_t i = 0; i < all.size(); ++i)
            perm = perm && all[i] == int64_t(i);
        check(perm, "%s lock shared: fetch_and_op SUM counter on %d: fetched values are not 0..%d",
              kn.c_str(), target, nranks * K - 1);
        w.sync_local();
        if (rank_ == target)
            check(*w.i64(0) == int64_t(nranks) * K, "%s lock shared: counter ended at %" PRId64
                  ", expected %d", kn.c_str(), *w.i64(0), nranks * K);
    }

    // Replace chain: everybody swaps unique tokens into slot 1 of rank 0
    // with fetch_and_op(REPLACE). Every token and the initial 0 must be seen
    // exactly once, as a fetched value or as the final value.
    {
        const int R = 20;
        std::vector<int64_t> mine(R);
        MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, w.win);
        for (int k = 0; k < R; ++k) {
            int64_t token = int64_t(rank_ + 1) * 1000 + k + 1;
            MPI_Fetch_and_op(&token, &mine[k], MPI_INT64_T, 0, 8, MPI_REPLACE, w.win);
            MPI_Win_flush(0, w.win);
        }
        MPI_Win_unlock(0, w.win);
        std::vector<int64_t> all = allgather_i64(mine);
        w.sync_local();
        int64_t final_value = *w.i64(8);
        MPI_Bcast(&final_value, 1, MPI_INT64_T, 0, comm);
        all.push_back(final_value);
        std::vector<int64_t> expect{0};
        for (int r = 0; r < nranks; ++r)
            for (int k = 0; k < R; ++k)
                expect.push_back(int64_t(r + 1) * 1000 + k + 1);
        std::sort(all.begin(), all.end());
        std::sort(expect.begin(), expect.end());
        check(all == expect, "%s lock shared: fetch_and_op REPLACE chain lost or duplicated a value",
              kn.c_str());
    }

    // compare_and_swap: everybody tries to claim slot 2 of the last rank
    // (initially -1); exactly one wins and the others see the winner.
    {
        const int target = nranks - 1;
        if (rank_ == target)
            *w.i64(16) = -1;
        w.sync_local();
        int64_t cmp = -1, mine_v = rank_, old = -2;
        MPI_Win_lock(MPI_LOCK_SHARED, target, 0, w.win);
        MPI_Compare_and_swap(&mine_v, &cmp, &old, MPI_INT64_T, target, 16, w.win);
        MPI_Win_unlock(target, w.win);
        std::vector<int64_t> all = allgather_i64({old});
        w.sync_local();
        int64_t final_value = *w.i64(16);
        MPI_Bcast(&final_value, 1, MPI_INT64_T, target, comm);
        int winners = int(std::count(all.begin(), all.end(), int64_t(-1)));
        check(winners == 1, "%s compare_and_swap claim: %d winners", kn.c_str(), winners);
        for (int r = 0; r < nranks; ++r)
            if (all[r] != -1)
                check(all[r] == final_value, "%s compare_and_swap claim: rank %d saw %" PRId64
                      ", winner is %" PRId64, kn.c_str(), r, all[r], final_value);
        check(final_value >= 0 && final_value < nranks && all[final_value] == -1,
              "%s compare_and_swap claim: final value %" PRId64 " is not the winner",
              kn.c_str(), final_value);
    }

    // compare_and_swap counter: read, CAS(old -> old + 1), retry on conflict.
    {
        const int C = 20;
        MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, w.win);
        for (int k = 0; k < C; ++k) {
            int64_t cur = 0, dummy = 0;
            MPI_Fetch_and_op(&dummy, &cur, MPI_INT64_T, 0, 24, MPI_NO_OP, w.win);
            MPI_Win_flush(0, w.win);
            for (;;) {
                int64_t next = cur + 1, seen = 0;
                MPI_Compare_and_swap(&next, &cur, &seen, MPI_INT64_T, 0, 24, w.win);
                MPI_Win_flush(0, w.win);
                if (seen == cur)
                    break;
                cur = seen;
            }
        }
        MPI_Win_unlock(0, w.win);
        w.sync_local();
        if (rank_ == 0)
            check(*w.i64(24) == int64_t(nranks) * C, "%s compare_and_swap counter ended at %"
                  PRId64 ", expected %d", kn.c_str(), *w.i64(24), nranks * C);
    }

    // Exclusive lock: get, add one, put, unlock. Without mutual exclusion
    // increments get lost.
    {
        const int E = 10;
        for (int k = 0; k < E; ++k) {
            int64_t v = -1;
            MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, w.win);
            MPI_Get(&v, 1, MPI_INT64_T, 0, 32, 1, MPI_INT64_T, w.win);
            MPI_Win_flush(0, w.win);
            ++v;
            MPI_Put(&v, 1, MPI_INT64_T, 0, 32, 1, MPI_INT64_T, w.win);
            MPI_Win_unlock(0, w.win);
        }
        w.sync_local();
        if (rank_ == 0)
            check(*w.i64(32) == int64_t(nranks) * E, "%s lock exclusive get+put counter ended at %"
                  PRId64 ", expected %d", kn.c_str(), *w.i64(32), nranks * E);
    }

    // Put a block to the right neighbour, flush, read it back with get in
    // the same epoch; then the owner checks its memory. Once with
    // MPI_Win_lock, once with MPI_Win_lock_all, where MPI_Win_unlock_all
    // must complete the get: osc/ucx does that with a UCP worker flush,
    // which relies on uct_iface_flush() of every transport.
    for (int variant = 0; variant < 2; ++variant) {
        Buf src(blk), back(blk);
        fill(src.p(), blk, seed_of(A_RMA_LOCK, rank_, right(), blk, variant));
        back.junk();
        if (variant == 0)
            MPI_Win_lock(MPI_LOCK_SHARED, right(), 0, w.win);
        else
            MPI_Win_lock_all(0, w.win);
        MPI_Put(src.p(), count_of(blk), MPI_BYTE, right(), 64, count_of(blk), MPI_BYTE, w.win);
        MPI_Win_flush(right(), w.win);
        MPI_Get(back.p(), count_of(blk), MPI_BYTE, right(), 64, count_of(blk), MPI_BYTE, w.win);
        if (flush_gets)
            MPI_Win_flush(right(), w.win);
        if (variant == 0)
            MPI_Win_unlock(right(), w.win);
        else
            MPI_Win_unlock_all(w.win);
        const char *how = variant == 0 ? "lock" : "lock_all";
        check_data(back.p(), blk, seed_of(A_RMA_LOCK, rank_, right(), blk, variant),
                   "%s %s: get after put+flush of %zu bytes at %d", kn.c_str(), how, blk, right());
        w.sync_local();
        check_data(w.base + 64, blk, seed_of(A_RMA_LOCK, left(), rank_, blk, variant),
                   "%s %s: target memory after put of %zu bytes from %d", kn.c_str(), how, blk, left());
        w.sync_local();
    }
}

// Post-start-complete-wait: first with one-rank groups (the left
// neighbour puts into me, I put into the right one), then with all others.
void rma_pscw(WinKind kind)
{
    MPI_Group world, from_left, to_right, others;
    MPI_Comm_group(comm, &world);
    int l = left(), r = right();
    MPI_Group_incl(world, 1, &l, &from_left);
    MPI_Group_incl(world, 1, &r, &to_right);
    MPI_Group_excl(world, 1, &rank_, &others);

    for (size_t blk : capped({8, 4 * KiB, 1 * MiB})) {
        Window w(kind, blk * nranks);
        Buf src(blk);

        // Neighbour groups.
        fill(src.p(), blk, seed_of(A_PSCW, rank_, r, blk, 0));
        MPI_Win_post(from_left, 0, w.win);
        MPI_Win_start(to_right, 0, w.win);
        MPI_Put(src.p(), count_of(blk), MPI_BYTE, r, 0, count_of(blk), MPI_BYTE, w.win);
        MPI_Win_complete(w.win);
        MPI_Win_wait(w.win);
        check_data(w.base, blk, seed_of(A_PSCW, l, rank_, blk, 0),
                   "%s PSCW neighbour: put of %zu bytes from %d", kind_name(kind), blk, l);
        MPI_Barrier(comm);

        // Everybody puts into slot `origin` of everybody else.
        MPI_Win_post(others, 0, w.win);
        MPI_Win_start(others, 0, w.win);
        std::vector<Buf> srcs;  // origin buffers live until MPI_Win_complete
        srcs.reserve(nranks);
        for (int t = 0; t < nranks; ++t) {
            srcs.emplace_back(blk);
            if (t == rank_)
                continue;
            fill(srcs[t].p(), blk, seed_of(A_PSCW, rank_, t, blk, 1));
            MPI_Put(srcs[t].p(), count_of(blk), MPI_BYTE, t, MPI_Aint(rank_ * blk), count_of(blk),
                    MPI_BYTE, w.win);
        }
        MPI_Win_complete(w.win);
        MPI_Win_wait(w.win);
        for (int o = 0; o < nranks; ++o)
            if (o != rank_)
                check_data(w.base + o * blk, blk, seed_of(A_PSCW, o, rank_, blk, 1),
                           "%s PSCW all: put of %zu bytes from %d", kind_name(kind), blk, o);
        MPI_Barrier(comm);
    }
    MPI_Group_free(&world);
    MPI_Group_free(&from_left);
    MPI_Group_free(&to_right);
    MPI_Group_free(&others);
}

// ---------------------------------------------------------------------------
// Driver

struct AreaDef { const char *group, *name; void (*fn)(); };

const AreaDef areas[] = {
    {"p2p", "p2p blocking", p2p_blocking},
    {"p2p", "p2p nonblocking", p2p_nonblocking},
    {"p2p", "p2p ordering/wildcards", p2p_ordering},
    {"coll", "bcast", coll_bcast},
    {"coll", "allreduce", coll_allreduce},
    {"coll", "reduce", coll_reduce},
    {"coll", "alltoall/allgather", coll_alltoall_allgather},
    {"coll", "barrier", coll_barrier},
    {"rma", "rma fence Win_create", [] { rma_fence_put_get(WinKind::create);
                                          rma_fence_accumulate(WinKind::create);
                                          rma_fence_fetching(WinKind::create); }},
    {"rma", "rma fence Win_allocate", [] { rma_fence_put_get(WinKind::allocate);
                                            rma_fence_accumulate(WinKind::allocate);
                                            rma_fence_fetching(WinKind::allocate); }},
    {"rma", "rma lock Win_create", [] { rma_lock(WinKind::create); }},
    {"rma", "rma lock Win_allocate", [] { rma_lock(WinKind::allocate); }},
    {"rma", "rma pscw Win_create", [] { rma_pscw(WinKind::create); }},
    {"rma", "rma pscw Win_allocate", [] { rma_pscw(WinKind::allocate); }},
};

bool parse_size(const char *s, size_t *out)
{
    char *end = nullptr;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return false;
    switch (*end) {
    case 'k': case 'K': v <<= 10; ++end; break;
    case 'm': case 'M': v <<= 20; ++end; break;
    default: break;
    }
    if (*end != '\0' || v > (size_t(1) << 31) - 1)
        return false;
    *out = size_t(v);
    return true;
}

void usage()
{
    if (rank_ == 0)
        fprintf(stderr,
                "usage: tb_mpi_test [--max-size BYTES[k|m]] [--only p2p|coll|rma|NAME] [--flush-gets] [--verbose]\n"
                "  --max-size    largest message/window block (default 64m, at most 2047m)\n"
                "  --only        run the areas of one group, or the areas whose name contains NAME\n"
                "  --flush-gets  complete gets with MPI_Win_flush before MPI_Win_unlock_all: UCX 1.13's\n"
                "                worker flush does not wait for GETs that UCP emulates over active\n"
                "                messages (\"rma_am\" lanes, e.g. MPI_Win_create memory over posix)\n");
}

}  // namespace

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(comm, &rank_);
    MPI_Comm_size(comm, &nranks);

    std::string only;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--max-size" && i + 1 < argc) {
            if (!parse_size(argv[++i], &max_size)) {
                usage();
                MPI_Finalize();
                return 2;
            }
        } else if (a == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else if (a == "--flush-gets") {
            flush_gets = true;
        } else if (a == "--verbose" || a == "-v") {
            verbose = true;
        } else {
            usage();
            MPI_Finalize();
            return 2;
        }
    }
    if (nranks < 2) {
        if (rank_ == 0)
            fprintf(stderr, "tb_mpi_test: needs at least 2 ranks\nmpi: 0 passed, 1 failed\n");
        MPI_Finalize();
        return 1;
    }
    if (max_size < 16)
        max_size = 16;  // the ordering test carries a 8-byte header

    if (rank_ == 0) {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        std::string first_line(lib, strcspn(lib, "\n,"));
        printf("tb_mpi_test: %d ranks, max size %zu bytes, %s\n", nranks, max_size, first_line.c_str());
        fflush(stdout);
    }

    double t_start = MPI_Wtime();
    for (const AreaDef &a : areas) {
        if (!only.empty() && only != a.group && std::string(a.name).find(only) == std::string::npos)
            continue;
        long p0 = n_passed, f0 = n_failed;
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        if (verbose && rank_ == 0) {
            printf("  running %s\n", a.name);
            fflush(stdout);
        }
        a.fn();
        MPI_Barrier(comm);
        long mine[2] = {n_passed - p0, n_failed - f0}, sum[2] = {0, 0};
        MPI_Reduce(mine, sum, 2, MPI_LONG, MPI_SUM, 0, comm);
        if (rank_ == 0) {
            printf("%-26s %6ld passed, %ld failed  (%.2f s)\n", a.name, sum[0], sum[1],
                   MPI_Wtime() - t0);
            fflush(stdout);
        }
    }

    long mine[2] = {n_passed, n_failed}, sum[2] = {0, 0};
    MPI_Allreduce(mine, sum, 2, MPI_LONG, MPI_SUM, comm);
    if (rank_ == 0) {
        printf("total time %.2f s\n", MPI_Wtime() - t_start);
        printf("mpi: %ld passed, %ld failed\n", sum[0], sum[1]);
        fflush(stdout);
    }
    MPI_Finalize();
    return sum[1] == 0 && sum[0] > 0 ? 0 : 1;
}
