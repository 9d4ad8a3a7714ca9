// SPDX-License-Identifier: BSD-2-Clause
#include "target.hpp"

#include <cstring>
#include <stdexcept>

#include <uct/api/v2/uct_v2.h>

namespace uctest {

namespace {

// The target process: serves commands until told to exit, progressing
// in between (the soft device's own thread also runs its engine).
int serve(channel &c, const std::string &fabric, size_t len, const node_options &o)
{
    node n(fabric, o);
    buffer &b = n.alloc(len);
    unsigned bg = 0;
    fill(b.p, len, bg);
    c.send(n.address());
    c.send(n.pack(b));
    n.connect(c.recv<iface_address>());  // both directions exist, as in UCP
    c.send<uint64_t>(0);                 // connected: hello() returns
    for (;;) {
        unsigned k = n.progress();
        if (!c.readable(k ? 0 : 1))
            continue;
        cmd m = c.recv<cmd>();
        uint64_t answer = 0;
        switch (m.op) {
        case cmd_op::fill:
            bg = m.seed;
            fill(b.p, len, bg);
            break;
        case cmd_op::check:
            if (m.off + m.len > len)
                throw std::runtime_error("check beyond the buffer");
            answer = mismatches(b.p + m.off, m.len, m.seed, m.base, "target region");
            // Nothing written around the region.
            if (!m.guards)
                break;
            if (m.off > 0)
                answer += mismatches(b.p + m.off - 1, 1, bg, m.off - 1, "byte before region");
            if (m.off + m.len < len)
                answer += mismatches(b.p + m.off + m.len, 1, bg, m.off + m.len,
                                     "byte after region");
            break;
        case cmd_op::read64:
            std::memcpy(&answer, b.p + m.off, 8);
            break;
        case cmd_op::read32: {
            uint32_t v;
            std::memcpy(&v, b.p + m.off, 4);
            answer = v;
            break;
        }
        case cmd_op::dereg: {
            // With INVALIDATE, as UCP does for a failed peer: the key is
            // dead once the completion comes, even for a cached region.
            completion done;
            uct_md_mem_dereg_params_t p{};
            p.field_mask = UCT_MD_MEM_DEREG_FIELD_MEMH | UCT_MD_MEM_DEREG_FIELD_FLAGS |
                           UCT_MD_MEM_DEREG_FIELD_COMPLETION;
            p.memh = b.memh;
            p.flags = UCT_MD_MEM_DEREG_FLAG_INVALIDATE;
            p.comp = &done;
            ucs_status_t s = uct_md_mem_dereg_v2(n.md(), &p);
            b.memh = nullptr;
            if (s == UCS_OK && !n.progress_until([&] { return done.done(); }))
                s = UCS_ERR_TIMED_OUT;
            answer = static_cast<uint64_t>(s);
            break;
        }
        case cmd_op::exit:
            c.send<uint64_t>(0);
            return 0;  // the node closes everything on the way out
        }
        c.send(answer);
    }
}

}  // namespace

target::target(const std::string &fabric, size_t len, const node_options &o)
    : proc_([fabric, len, o](channel &c) { return serve(c, fabric, len, o); })
{
    addr_ = chan().recv<iface_address>();
    mem_ = chan().recv<remote_mem>();
}

uint64_t target::ask(const cmd &c)
{
    chan().send(c);
    return chan().recv<uint64_t>();
}

int target::finish()
{
    ask({cmd_op::exit});
    return proc_.wait();
}

rma_pair::rma_pair(size_t remote_len, size_t local_len, const node_options &mine,
                   const node_options &theirs)
    : fabric(unique_fabric("uct")),
      tgt(fabric, remote_len, theirs),  // forks before this process opens UCT
      me(fabric, mine),
      ep(me.connect(tgt.address())),
      rkey(me.unpack(tgt.mem())),
      local(me.alloc(local_len))
{
    tgt.hello(me.address());
}

}  // namespace uctest
