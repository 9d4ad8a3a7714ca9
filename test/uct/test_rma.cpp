// SPDX-License-Identifier: BSD-2-Clause
//
// Puts and gets of every flavour at the sizes around each limit (inline,
// one bcopy buffer, page and frame boundaries, large zcopy), at aligned
// and odd addresses. Puts are checked by the target, bytes around the
// region included; gets are checked here, with the bytes around them.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>

#include "target.hpp"
#include "rdma/tbrdma_abi.h"  // the limits the transport reports

using namespace uctest;

namespace {

// The largest put_short.
constexpr size_t put_max = TBRDMA_INLINE_MAX;

constexpr size_t remote_len = 4 << 20, local_len = 4 << 20;

enum class how { short_, bcopy, zcopy };

const char *name(how h)
{
    return h == how::short_ ? "short" : h == how::bcopy ? "bcopy" : "zcopy";
}

struct span {
    const uint8_t *src;
    size_t n;
};

size_t pack_span(void *dest, void *arg)
{
    auto *s = static_cast<span *>(arg);
    std::memcpy(dest, s->src, s->n);
    return s->n;
}

struct unpack_to {
    uint8_t *dst;
    size_t want;
    size_t got = 0;
    int calls = 0;
};

void unpack_span(void *arg, const void *data, size_t length)
{
    auto *u = static_cast<unpack_to *>(arg);
    u->calls++;
    u->got = length;
    std::memcpy(u->dst, data, std::min(length, u->want));
}

// Posts (retrying while the transport has no resources) and waits for it.
template <class Post> ucs_status_t post_wait(node &me, Post post)
{
    completion c;
    ucs_status_t s = UCS_ERR_NO_RESOURCE;
    if (!me.progress_until([&] { return (s = post(c)) != UCS_ERR_NO_RESOURCE; }))
        return UCS_ERR_TIMED_OUT;
    return me.wait(s, c);
}

ucs_status_t put(rma_pair &p, how h, size_t loff, size_t roff, size_t n)
{
    return post_wait(p.me, [&](completion &c) -> ucs_status_t {
        switch (h) {
        case how::short_:
            return uct_ep_put_short(p.ep, p.local.p + loff, static_cast<unsigned>(n),
                                    p.raddr(roff), p.rkey);
        case how::bcopy: {
            span s{p.local.p + loff, n};
            ssize_t r = uct_ep_put_bcopy(p.ep, pack_span, &s, p.raddr(roff), p.rkey);
            if (r < 0)
                return static_cast<ucs_status_t>(r);
            return size_t(r) == n ? UCS_OK : UCS_ERR_INVALID_PARAM;
        }
        case how::zcopy: {
            uct_iov_t iov = p.local.iov(loff, n);
            return uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(roff), p.rkey, &c);
        }
        }
        return UCS_ERR_INVALID_PARAM;
    });
}

void check_puts(how h, std::initializer_list<size_t> sizes)
{
    rma_pair p(remote_len, local_len);
    unsigned seed = 1;
    for (size_t off : {size_t(0), size_t(3)}) {
        for (size_t n : sizes) {
            BOOST_TEST_CONTEXT("put_" << name(h) << " of " << n << " bytes, offset " << off)
            {
                p.tgt.fill(seed++);
                size_t loff = off ? off + 2 : 0;
                fill(p.local.p + loff, n, seed);
                BOOST_CHECK_EQUAL(put(p, h, loff, off + 64, n), UCS_OK);
                // put_short and put_bcopy are done locally only: flush.
                BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
                BOOST_CHECK_EQUAL(p.tgt.check(off + 64, n, seed), 0u);
                seed++;
            }
        }
    }
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

ucs_status_t get(rma_pair &p, how h, size_t loff, size_t roff, size_t n)
{
    unpack_to u{p.local.p + loff, n};
    ucs_status_t s = post_wait(p.me, [&](completion &c) -> ucs_status_t {
        if (h == how::bcopy)
            return uct_ep_get_bcopy(p.ep, unpack_span, &u, n, p.raddr(roff), p.rkey, &c);
        uct_iov_t iov = p.local.iov(loff, n);
        return uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(roff), p.rkey, &c);
    });
    if (h == how::bcopy && s == UCS_OK) {
        BOOST_CHECK_EQUAL(u.calls, 1);
        BOOST_CHECK_EQUAL(u.got, n);
    }
    return s;
}

void check_gets(how h, std::initializer_list<size_t> sizes)
{
    rma_pair p(remote_len, local_len);
    unsigned seed = 1;
    for (size_t off : {size_t(0), size_t(3)}) {
        for (size_t n : sizes) {
            BOOST_TEST_CONTEXT("get_" << name(h) << " of " << n << " bytes, offset " << off)
            {
                unsigned remote = seed++, local = seed++;
                p.tgt.fill(remote);
                fill(p.local.p, local_len, local);
                size_t loff = off ? off + 2 : 64, roff = off + 64;
                BOOST_CHECK_EQUAL(get(p, h, loff, roff, n), UCS_OK);
                BOOST_CHECK_EQUAL(mismatches(p.local.p + loff, n, remote, roff, "got"), 0u);
                // Not a byte more.
                BOOST_CHECK_EQUAL(mismatches(p.local.p + loff - 1, 1, local, loff - 1), 0u);
                BOOST_CHECK_EQUAL(mismatches(p.local.p + loff + n, 1, local, loff + n), 0u);
            }
        }
    }
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rma)

BOOST_AUTO_TEST_CASE(put_short)
{
    check_puts(how::short_, {0, 1, 8, put_max - 1, put_max});
}

BOOST_AUTO_TEST_CASE(put_bcopy)
{
    check_puts(how::bcopy, {1, put_max, put_max + 1, 4095, 4096, 4097, 8191, 8192});
}

BOOST_AUTO_TEST_CASE(put_zcopy)
{
    check_puts(how::zcopy, {1, put_max, put_max + 1, 4095, 4096, 4097, 65536, (1 << 20) + 3});
}

BOOST_AUTO_TEST_CASE(get_bcopy)
{
    check_gets(how::bcopy, {1, 8, put_max, put_max + 1, 4095, 4096, 4097, 8191, 8192});
}

BOOST_AUTO_TEST_CASE(get_zcopy)
{
    check_gets(how::zcopy, {1, put_max, put_max + 1, 4095, 4096, 4097, 65536, (1 << 20) + 3});
}

// Many operations of all kinds in flight at once, to distinct places;
// one flush, then every region is checked.
BOOST_AUTO_TEST_CASE(mixed_burst)
{
    rma_pair p(remote_len, local_len);
    const size_t sizes[] = {7, put_max, 1000, 8192, 5000, 65536, 33};
    const how kinds[] = {how::short_, how::bcopy, how::zcopy};
    struct region {
        size_t off, n;
    };
    std::vector<region> done;
    size_t off = 0;
    std::vector<completion> comps(200);
    int posted = 0;
    fill(p.local.p, local_len, 9);
    for (int i = 0; i < 200; i++) {
        how h = kinds[i % 3];
        size_t n = sizes[i % 7];
        if (h == how::short_)
            n = std::min<size_t>(n, put_max);
        if (h == how::bcopy)
            n = std::min<size_t>(n, 8192);
        if (off + n + 16 > remote_len)
            break;
        // Source bytes at the same offset here, so the target checks pat(9, off + k).
        ucs_status_t s = UCS_ERR_NO_RESOURCE;
        BOOST_REQUIRE(p.me.progress_until([&] {
            uct_iov_t iov = p.local.iov(off, n);
            span sp{p.local.p + off, n};
            switch (h) {
            case how::short_:
                s = uct_ep_put_short(p.ep, p.local.p + off, unsigned(n), p.raddr(off), p.rkey);
                break;
            case how::bcopy: {
                ssize_t r = uct_ep_put_bcopy(p.ep, pack_span, &sp, p.raddr(off), p.rkey);
                s = r < 0 ? ucs_status_t(r) : UCS_OK;
                break;
            }
            case how::zcopy:
                s = uct_ep_put_zcopy(p.ep, &iov, 1, p.raddr(off), p.rkey, &comps[i]);
                break;
            }
            return s != UCS_ERR_NO_RESOURCE;
        }));
        BOOST_REQUIRE(s == UCS_OK || s == UCS_INPROGRESS);
        posted += s == UCS_INPROGRESS;
        if (s == UCS_OK && h == how::zcopy)
            comps[i].calls = 1;  // done at once: no callback will come
        done.push_back({off, n});
        off += n + 16;  // gaps keep the target's last fill
    }
    BOOST_CHECK_EQUAL(p.me.flush(p.ep), UCS_OK);
    for (int i = 0; i < int(done.size()); i++)
        if (kinds[i % 3] == how::zcopy) {
            BOOST_CHECK(comps[i].done());
            BOOST_CHECK_EQUAL(comps[i].status, UCS_OK);
        }
    for (const auto &r : done)
        BOOST_CHECK_EQUAL(p.tgt.check(r.off, r.n, 9, r.off), 0u);
    BOOST_TEST_MESSAGE(done.size() << " operations, " << posted << " zcopy in flight");
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_SUITE_END()
