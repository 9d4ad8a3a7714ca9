// SPDX-License-Identifier: BSD-2-Clause
//
// The memory domain and interface as UCX sees them: capabilities,
// registration, and remote keys packed in one process and used by another.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <string>

#include <cstring>

#include "target.hpp"
#include "rdma/tbrdma_abi.h"  // the limits the transport reports

using namespace uctest;

BOOST_AUTO_TEST_SUITE(md)

BOOST_AUTO_TEST_CASE(query)
{
    const std::string fabric = unique_fabric("uct");
    node n(fabric);
    const uct_md_attr_t &a = n.md_attr();
    BOOST_CHECK(a.cap.flags & UCT_MD_FLAG_REG);
    BOOST_CHECK(a.cap.flags & UCT_MD_FLAG_NEED_RKEY);
    BOOST_CHECK(a.cap.reg_mem_types & UCS_BIT(UCS_MEMORY_TYPE_HOST));
    BOOST_CHECK_GE(a.cap.max_reg, size_t(1) << 30);
    BOOST_CHECK_GT(a.rkey_packed_size, 0u);
    BOOST_CHECK_EQUAL(std::string(a.component_name), "tb");
    BOOST_CHECK(!n.dev_name().empty());

    // The interface's capabilities, as documented for the soft device.
    const uct_iface_attr_t &i = n.attr();
    uint64_t want = UCT_IFACE_FLAG_AM_SHORT | UCT_IFACE_FLAG_AM_BCOPY | UCT_IFACE_FLAG_AM_ZCOPY |
                    UCT_IFACE_FLAG_PUT_SHORT | UCT_IFACE_FLAG_PUT_BCOPY |
                    UCT_IFACE_FLAG_PUT_ZCOPY | UCT_IFACE_FLAG_GET_BCOPY |
                    UCT_IFACE_FLAG_GET_ZCOPY | UCT_IFACE_FLAG_ATOMIC_DEVICE |
                    UCT_IFACE_FLAG_PENDING | UCT_IFACE_FLAG_CB_SYNC |
                    UCT_IFACE_FLAG_CONNECT_TO_IFACE | UCT_IFACE_FLAG_ERRHANDLE_PEER_FAILURE |
                    UCT_IFACE_FLAG_EP_CHECK;
    BOOST_CHECK_EQUAL(i.cap.flags & want, want);
    uint64_t events = UCT_IFACE_FLAG_EVENT_SEND_COMP | UCT_IFACE_FLAG_EVENT_RECV |
                      UCT_IFACE_FLAG_EVENT_FD;
    BOOST_CHECK_EQUAL(i.cap.event_flags & events, events);
    BOOST_CHECK_EQUAL(i.cap.put.max_short, TBRDMA_INLINE_MAX);
    BOOST_CHECK_EQUAL(i.cap.put.max_bcopy, 8192u);
    BOOST_CHECK_GE(i.cap.put.max_zcopy, size_t(1) << 30);
    BOOST_CHECK_EQUAL(i.cap.get.max_bcopy, 8192u);
    BOOST_CHECK_GE(i.cap.get.max_zcopy, size_t(1) << 30);
    BOOST_CHECK_EQUAL(i.cap.am.max_short, TBRDMA_INLINE_MAX);
    BOOST_CHECK_EQUAL(i.cap.am.max_bcopy, TBRDMA_SEND_MAX);
    BOOST_CHECK_EQUAL(i.cap.am.max_zcopy, TBRDMA_SEND_MAX);
    BOOST_CHECK_EQUAL(i.cap.am.max_hdr, 128u);
    BOOST_CHECK_EQUAL(i.cap.am.max_iov, 8u);
    uint64_t ops = UCS_BIT(UCT_ATOMIC_OP_ADD) | UCS_BIT(UCT_ATOMIC_OP_AND) |
                   UCS_BIT(UCT_ATOMIC_OP_OR) | UCS_BIT(UCT_ATOMIC_OP_XOR);
    uint64_t fops = ops | UCS_BIT(UCT_ATOMIC_OP_SWAP) | UCS_BIT(UCT_ATOMIC_OP_CSWAP);
    BOOST_CHECK_EQUAL(i.cap.atomic32.op_flags, ops);
    BOOST_CHECK_EQUAL(i.cap.atomic64.op_flags, ops);
    BOOST_CHECK_EQUAL(i.cap.atomic32.fop_flags, fops);
    BOOST_CHECK_EQUAL(i.cap.atomic64.fop_flags, fops);
    // UCP packs these into its worker address: small limits.
    BOOST_CHECK_LE(i.device_addr_len, 31u);
    BOOST_CHECK_LE(i.iface_addr_len, 63u);
    node_options far;
    far.far_end = true;
    const iface_address peer = node(fabric, far).address();
    BOOST_CHECK(uct_iface_is_reachable(n.iface(),
                                       reinterpret_cast<const uct_device_addr_t *>(peer.dev),
                                       reinterpret_cast<const uct_iface_addr_t *>(peer.iface)));
}

// Another fabric is another machine: not reachable (the kernel's loop
// links of one host have nothing like it).
BOOST_AUTO_TEST_CASE(other_fabric_unreachable, *boost::unit_test::precondition(on_soft_device))
{
    iface_address theirs;
    {
        node other(unique_fabric("uct"));
        theirs = other.address();
    }
    node n(unique_fabric("uct"));
    BOOST_CHECK(!uct_iface_is_reachable(n.iface(),
                                        reinterpret_cast<const uct_device_addr_t *>(theirs.dev),
                                        reinterpret_cast<const uct_iface_addr_t *>(theirs.iface)));
}

BOOST_AUTO_TEST_CASE(reg_pack_unpack)
{
    node n(unique_fabric("uct"));
    std::vector<uint8_t> mem(3 << 20);
    // Unaligned starts and lengths, one byte to more than a megabyte.
    const size_t cases[][2] = {{0, 1}, {1, 4095}, {4096, 4096}, {3, (1 << 20) + 3}, {7, 2 << 20}};
    for (const auto &c : cases) {
        BOOST_TEST_CONTEXT("offset " << c[0] << " length " << c[1])
        {
            uct_mem_h memh = nullptr;
            BOOST_REQUIRE_EQUAL(uct_md_mem_reg(n.md(), mem.data() + c[0], c[1],
                                               UCT_MD_MEM_ACCESS_ALL, &memh),
                                UCS_OK);
            std::vector<uint8_t> packed(n.md_attr().rkey_packed_size), again(packed.size());
            BOOST_CHECK_EQUAL(uct_md_mkey_pack(n.md(), memh, packed.data()), UCS_OK);
            BOOST_CHECK_EQUAL(uct_md_mkey_pack(n.md(), memh, again.data()), UCS_OK);
            BOOST_CHECK(packed == again);
            uct_rkey_bundle_t r{};
            BOOST_CHECK_EQUAL(uct_rkey_unpack(n.component(), packed.data(), &r), UCS_OK);
            BOOST_CHECK_EQUAL(uct_rkey_release(n.component(), &r), UCS_OK);
            BOOST_CHECK_EQUAL(uct_md_mem_dereg(n.md(), memh), UCS_OK);
        }
    }
}

namespace {

// Registers the same page twice; whether both have the same key.
bool same_key_twice(node &n, uint8_t *page)
{
    uct_mem_h a = nullptr, b = nullptr;
    BOOST_REQUIRE_EQUAL(uct_md_mem_reg(n.md(), page, 4096, UCT_MD_MEM_ACCESS_ALL, &a), UCS_OK);
    BOOST_REQUIRE_EQUAL(uct_md_mem_reg(n.md(), page, 4096, UCT_MD_MEM_ACCESS_ALL, &b), UCS_OK);
    std::vector<uint8_t> ka(n.md_attr().rkey_packed_size), kb(ka.size());
    uct_md_mkey_pack(n.md(), a, ka.data());
    uct_md_mkey_pack(n.md(), b, kb.data());
    BOOST_CHECK_EQUAL(uct_md_mem_dereg(n.md(), a), UCS_OK);
    BOOST_CHECK_EQUAL(uct_md_mem_dereg(n.md(), b), UCS_OK);
    return ka == kb;
}

}  // namespace

// The registration cache hands memory registered again its registration
// (rendezvous pins once); without it each registration is its own key.
BOOST_AUTO_TEST_CASE(registration_cache)
{
    alignas(4096) static uint8_t page[4096];
    {
        node n(unique_fabric("uct"));
        BOOST_CHECK(same_key_twice(n, page));
        // Far cheaper than pinning: what UCP's rendezvous threshold uses.
        BOOST_CHECK_LT(n.md_attr().reg_cost.c, 1e-6);
        BOOST_CHECK_EQUAL(n.md_attr().reg_cost.m, 0);
    }
    node_options no_cache;
    no_cache.md_config = {{"RCACHE", "n"}};
    node n(unique_fabric("uct"), no_cache);
    BOOST_CHECK(!same_key_twice(n, page));
}

// UCX_TB_MAX_MR bounds the registrations of a memory domain, on either
// device; one more is refused, and one less makes room again.
BOOST_AUTO_TEST_CASE(max_mr_is_enforced)
{
    node_options four;
    four.md_config = {{"MAX_MR", "4"}, {"RCACHE", "n"}};
    node n(unique_fabric("uct"), four);  // holds none yet: its interface's own
                                    // bcopy buffers are the first
    std::vector<uint8_t> mem(8 << 12);
    std::vector<uct_mem_h> h;
    ucs_status_t s = UCS_OK;
    for (size_t i = 0; i < 8 && s == UCS_OK; i++) {
        uct_mem_h m = nullptr;
        s = uct_md_mem_reg(n.md(), mem.data() + (i << 12), 4096,
                           UCT_MD_MEM_ACCESS_ALL | UCT_MD_MEM_FLAG_HIDE_ERRORS, &m);
        if (s == UCS_OK)
            h.push_back(m);
    }
    BOOST_CHECK_EQUAL(s, UCS_ERR_NO_MEMORY);
    BOOST_CHECK_EQUAL(h.size(), 3u);  // with the interface's buffers, four
    BOOST_CHECK_EQUAL(uct_md_mem_dereg(n.md(), h.back()), UCS_OK);
    h.pop_back();
    uct_mem_h m = nullptr;
    BOOST_CHECK_EQUAL(uct_md_mem_reg(n.md(), mem.data(), 4096, UCT_MD_MEM_ACCESS_ALL, &m), UCS_OK);
    h.push_back(m);
    for (uct_mem_h x : h)
        BOOST_CHECK_EQUAL(uct_md_mem_dereg(n.md(), x), UCS_OK);
}

// Remote rights are the ones asked for: memory registered for puts only
// refuses gets and atomics. The requester sees the one status every
// refusal gets, and its endpoint fails (as a verbs QP goes to error).
BOOST_AUTO_TEST_CASE(access_flags_are_enforced)
{
    const std::string fabric = unique_fabric("uct");
    node_options mine;
    mine.err_handler = true;
    node n(fabric, mine);
    node_options far;
    far.far_end = true;
    node target(fabric, far);
    buffer &local = n.alloc(4096);
    buffer &put_only = target.alloc(4096, UCT_MD_MEM_ACCESS_REMOTE_PUT);
    uct_ep_h ep = n.connect(target.address());
    uct_rkey_t rkey = n.unpack(target.pack(put_only));
    fill(local.p, 64, 3);
    BOOST_CHECK_EQUAL(uct_ep_put_short(ep, local.p, 64, put_only.addr(), rkey), UCS_OK);
    BOOST_REQUIRE_EQUAL(n.flush(ep), UCS_OK);
    BOOST_CHECK_EQUAL(mismatches(put_only.p, 64, 3), 0u);

    completion c;
    uct_iov_t iov = local.iov(0, 64);
    ucs_status_t s = n.wait(uct_ep_get_zcopy(ep, &iov, 1, put_only.addr(), rkey, &c), c);
    BOOST_CHECK_EQUAL(s, UCS_ERR_ENDPOINT_TIMEOUT);
    BOOST_CHECK(n.progress_until([&] { return !n.errors.empty(); }));
    BOOST_CHECK_EQUAL(uct_ep_put_short(ep, local.p, 64, put_only.addr(), rkey),
                      UCS_ERR_ENDPOINT_TIMEOUT);
    // A new endpoint is good again, until it too asks for what it may not.
    ep = n.connect(target.address());
    uint64_t old = 0;
    completion c2;
    s = n.wait(uct_ep_atomic64_fetch(ep, UCT_ATOMIC_OP_ADD, 1, &old, put_only.addr(), rkey, &c2),
               c2);
    BOOST_CHECK_EQUAL(s, UCS_ERR_ENDPOINT_TIMEOUT);
    BOOST_CHECK_EQUAL(mismatches(put_only.p, 64, 3), 0u);  // the add did not happen
}

// A key packed by the target works in this process, and stops working
// once the target deregisters the memory.
BOOST_AUTO_TEST_CASE(rkey_across_processes)
{
    node_options mine;
    mine.err_handler = true;  // the refused get fails the endpoint
    rma_pair p(1 << 16, 1 << 16, mine);
    fill(p.local.p, 64, 7);
    BOOST_REQUIRE_EQUAL(uct_ep_put_short(p.ep, p.local.p, 64, p.raddr(100), p.rkey), UCS_OK);
    BOOST_REQUIRE_EQUAL(p.me.flush(p.ep), UCS_OK);
    BOOST_CHECK_EQUAL(p.tgt.check(100, 64, 7), 0u);

    completion c;
    uct_iov_t iov = p.local.iov(1000, 4096);
    BOOST_CHECK_EQUAL(p.me.wait(uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(2000), p.rkey, &c), c),
                      UCS_OK);
    BOOST_CHECK_EQUAL(mismatches(p.local.p + 1000, 4096, 0, 2000), 0u);

    BOOST_CHECK_EQUAL(p.tgt.ask({cmd_op::dereg}), uint64_t(UCS_OK));
    completion c2;
    ucs_status_t s = p.me.wait(uct_ep_get_zcopy(p.ep, &iov, 1, p.raddr(2000), p.rkey, &c2), c2);
    BOOST_TEST_MESSAGE("get with a deregistered key: " << status_str(s));
    BOOST_CHECK_EQUAL(s, UCS_ERR_ENDPOINT_TIMEOUT);
    BOOST_CHECK_EQUAL(p.tgt.finish(), 0);
}

BOOST_AUTO_TEST_SUITE_END()
