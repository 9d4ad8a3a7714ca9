// SPDX-License-Identifier: BSD-2-Clause
//
// Wire format: header encode/decode round trips, the exact little-endian
// byte layout, and rejection of every kind of malformed header. Buffers
// handed to the decoders are exactly frame-sized heap vectors, so ASan
// reports any read past the frame.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

extern "C" {
#include "tb_wire.h"
}

namespace {

using bytes = std::vector<uint8_t>;

// A valid header of the given type for a frame of 32 + len bytes.
tb_link_hdr link_hdr(uint8_t type, uint16_t len)
{
    tb_link_hdr h{};
    h.type = type;
    h.len = len;
    if (type != TB_LINK_ACK)  // an ACK has no sequence number
        h.seq = 0x01020304;
    h.ack = 0x05060708;
    h.credit = 0x090a0b0c;
    h.epoch_src = 0x11223344;
    h.epoch_dst = 0x55667788;
    return h;
}

// A whole frame (link header + payload of zeros), exactly sized.
bytes link_frame(const tb_link_hdr &h)
{
    bytes f(TB_LINK_HDR_LEN + h.len, 0);
    tb_link_hdr_encode(f.data(), &h);
    return f;
}

int link_decode(const bytes &f, tb_link_hdr *out = nullptr)
{
    tb_link_hdr h;
    return tb_link_hdr_decode(f.data(), static_cast<uint32_t>(f.size()), out ? out : &h);
}

// An engine header followed by payload bytes, exactly sized.
bytes engine_frame(const tb_engine_hdr &h, uint32_t payload)
{
    bytes f(TB_ENGINE_HDR_LEN + payload, 0xa5);
    tb_engine_hdr_encode(f.data(), &h);
    return f;
}

int engine_decode(const bytes &f, tb_engine_hdr *out = nullptr)
{
    tb_engine_hdr h;
    return tb_engine_hdr_decode(f.data(), static_cast<uint32_t>(f.size()), 0, out ? out : &h);
}

tb_engine_hdr engine_hdr(uint8_t op, uint32_t len)
{
    tb_engine_hdr h{};
    h.op = op;
    h.len = len;
    h.dst_ctx = 7;
    h.src_ctx = 9;
    h.msn = 1;
    if (op == TB_EOP_ATOMIC)
        h.arg = 8;
    if (op == TB_EOP_NAK)
        h.arg = TBRDMA_WC_REM_ACCESS_ERR;
    return h;
}

bool same(const tb_link_hdr &a, const tb_link_hdr &b)
{
    return a.type == b.type && a.len == b.len && a.flags == b.flags && a.seq == b.seq &&
           a.ack == b.ack && a.credit == b.credit && a.epoch_src == b.epoch_src &&
           a.epoch_dst == b.epoch_dst && a.ext_len == b.ext_len && a.sack == b.sack &&
           a.user_ack == b.user_ack;
}

bool same(const tb_engine_hdr &a, const tb_engine_hdr &b)
{
    return a.op == b.op && a.flags == b.flags && a.aop == b.aop && a.arg == b.arg &&
           a.dst_ctx == b.dst_ctx && a.src_ctx == b.src_ctx && a.dst_secret == b.dst_secret &&
           a.rkey == b.rkey &&
           a.addr == b.addr && a.len == b.len && a.msn == b.msn && a.ack_msn == b.ack_msn &&
           a.am_id == b.am_id && a.imm == b.imm && a.compare == b.compare;
}

const uint32_t link_payload_max = TBRDMA_FRAME_MAX - TB_LINK_HDR_LEN;

// The rule tb_engine_hdr_decode must enforce, restated independently.
bool engine_lengths_ok(const tb_engine_hdr &h, uint32_t payload_len)
{
    uint32_t data = payload_len - TB_ENGINE_HDR_LEN;
    switch (h.op) {
    case TB_EOP_WRITE:
    case TB_EOP_READ_RESP:
    case TB_EOP_SEND:
    case TB_EOP_MSG:
    case TB_EOP_DGRAM:
        return h.len == data;
    case TB_EOP_READ_REQ:
        return data == 0 && h.len >= 1 && h.len <= TB_READ_REQ_MAX;
    case TB_EOP_ATOMIC:
        return data == 0 && (h.arg == 4 || h.arg == 8) && h.aop <= TBRDMA_ATOMIC_MAX;
    case TB_EOP_NAK:
        return data == 0 &&
               (h.arg == TBRDMA_WC_REM_ACCESS_ERR || h.arg == TBRDMA_WC_REM_INVALID);
    case TB_EOP_ATOMIC_RESP:
    case TB_EOP_ACK:
    case TB_EOP_RNR_NAK:
        return data == 0;
    default:
        return false;
    }
}

bool is_request(uint8_t op)
{
    return op == TB_EOP_WRITE || op == TB_EOP_READ_REQ || op == TB_EOP_ATOMIC ||
           op == TB_EOP_SEND || op == TB_EOP_MSG || op == TB_EOP_DGRAM;
}

// Known flags only; RESUME and an endpoint only on requests, IMM only on
// WRITE, MSG and DGRAM.
bool engine_shape_ok(const tb_engine_hdr &h)
{
    return !(h.flags & ~TB_EF_ALL) &&
           (is_request(h.op) || (!(h.flags & TB_EF_RESUME) && !h.src_ep)) &&
           (!(h.flags & TB_EF_IMM) || h.op == TB_EOP_WRITE || h.op == TB_EOP_MSG ||
            h.op == TB_EOP_DGRAM);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wire)

BOOST_AUTO_TEST_CASE(link_hdr_round_trip_random)
{
    std::mt19937_64 rng(0x5eed0001);
    const uint8_t types[] = {TB_LINK_DATA, TB_LINK_ACK, TB_LINK_HELLO};
    for (int i = 0; i < 20000; i++) {
        tb_link_hdr h{};
        h.type = types[rng() % 3];
        h.len = h.type == TB_LINK_DATA
                    ? static_cast<uint16_t>(TB_ENGINE_HDR_LEN +
                                            rng() % (link_payload_max - TB_ENGINE_HDR_LEN + 1))
                    : 0;
        h.flags = static_cast<uint16_t>(rng() & TB_LINK_F_ALL);
        // An ext is announced by DATA only, with its length; a selective
        // ack comes with ACKs only, in the 8 bytes behind the header.
        if (h.type != TB_LINK_DATA)
            h.flags &= static_cast<uint16_t>(~TB_LINK_F_EXT);
        if (h.type != TB_LINK_ACK)
            h.flags &= static_cast<uint16_t>(~(TB_LINK_F_SACK | TB_LINK_F_USER_ACK));
        if (h.flags & TB_LINK_F_EXT)
            h.ext_len = static_cast<uint16_t>(1 + rng() % TB_EXT_MAX);
        if (h.flags & TB_LINK_F_SACK) {
            h.len = TB_LINK_SACK_LEN;
            h.sack = rng();
        }
        // An ACK has no sequence number; in its place, the user's ack.
        if (h.type != TB_LINK_ACK)
            h.seq = static_cast<uint32_t>(rng());
        else if (h.flags & TB_LINK_F_USER_ACK)
            h.user_ack = static_cast<uint32_t>(rng());
        h.ack = static_cast<uint32_t>(rng());
        h.credit = static_cast<uint32_t>(rng());
        do
            h.epoch_src = static_cast<uint32_t>(rng());
        while (!h.epoch_src);
        h.epoch_dst = static_cast<uint32_t>(rng());  // 0 is legal: peer not known yet
        // Extremes now and then.
        if (i % 97 == 0) {
            h.ack = h.credit = h.epoch_dst = ~0u;
            (h.type != TB_LINK_ACK ? h.seq : h.user_ack) = ~0u;
            if (h.type == TB_LINK_ACK)
                h.flags |= TB_LINK_F_USER_ACK;
        }
        if (i % 89 == 0 && h.type == TB_LINK_DATA)
            h.len = static_cast<uint16_t>(i & 1 ? link_payload_max : TB_ENGINE_HDR_LEN);

        bytes f = link_frame(h);
        tb_link_hdr d;
        std::memset(&d, 0xcc, sizeof(d));
        BOOST_REQUIRE_EQUAL(link_decode(f, &d), 0);
        BOOST_REQUIRE(same(h, d));
    }
}

BOOST_AUTO_TEST_CASE(engine_hdr_round_trip_every_op)
{
    std::mt19937_64 rng(0x5eed0002);
    const uint32_t data_max = link_payload_max - TB_ENGINE_HDR_LEN;
    BOOST_REQUIRE_EQUAL(data_max, TB_PAYLOAD_MAX);
    int checked = 0;
    for (uint8_t op = 1; op <= TB_EOP_MAX; op++) {
        for (int i = 0; i < 3000; i++) {
            tb_engine_hdr h{};
            h.op = op;
            h.flags = static_cast<uint8_t>(
                rng() & (is_request(op) ? TB_EF_ALL : TB_EF_LAST | TB_EF_ACK_NOW));
            if (op != TB_EOP_WRITE && op != TB_EOP_MSG)
                h.flags &= static_cast<uint8_t>(~TB_EF_IMM);
            h.aop = static_cast<uint8_t>(rng());
            h.arg = static_cast<uint8_t>(rng());
            h.dst_ctx = static_cast<uint32_t>(rng());
            h.src_ctx = static_cast<uint32_t>(rng());
            h.src_ep = is_request(op) ? static_cast<uint32_t>(rng()) : 0;
            h.dst_secret = rng();
            h.rkey = rng();
            h.addr = rng();
            h.len = static_cast<uint32_t>(rng());
            h.msn = static_cast<uint32_t>(rng());
            h.ack_msn = static_cast<uint32_t>(rng());
            h.am_id = static_cast<uint32_t>(rng());
            h.imm = rng();
            h.compare = rng();
            uint32_t payload = 0;
            // Each op with the payload sizes and arguments it allows; the
            // ends of every range are forced on the first iterations.
            switch (op) {
            case TB_EOP_WRITE:
            case TB_EOP_READ_RESP:
            case TB_EOP_SEND:
            case TB_EOP_MSG:
            case TB_EOP_DGRAM:
                payload = i == 0 ? 0 : i == 1 ? data_max : static_cast<uint32_t>(rng() % (data_max + 1));
                h.len = payload;
                break;
            case TB_EOP_READ_REQ:
                h.len = i == 0 ? 1 : i == 1 ? TB_READ_REQ_MAX
                                            : 1 + static_cast<uint32_t>(rng() % TB_READ_REQ_MAX);
                break;
            case TB_EOP_ATOMIC:
                h.arg = (rng() & 1) ? 8 : 4;
                h.aop = static_cast<uint8_t>(i <= TBRDMA_ATOMIC_MAX ? i : rng() % (TBRDMA_ATOMIC_MAX + 1));
                break;
            case TB_EOP_NAK:
                // The two statuses a responder gives.
                h.arg = (i & 1) ? TBRDMA_WC_REM_INVALID : TBRDMA_WC_REM_ACCESS_ERR;
                break;
            default:  // ATOMIC_RESP, ACK, RNR_NAK: no payload, other fields free
                break;
            }
            bytes f = engine_frame(h, payload);
            tb_engine_hdr d;
            std::memset(&d, 0xcc, sizeof(d));
            BOOST_REQUIRE_MESSAGE(engine_decode(f, &d) == 0, "op " << int(op) << " iter " << i);
            BOOST_REQUIRE(same(h, d));
            // The payload bytes behind the header are left alone.
            BOOST_REQUIRE(std::all_of(f.begin() + TB_ENGINE_HDR_LEN, f.end(),
                                      [](uint8_t b) { return b == 0xa5; }));
            checked++;
        }
    }
    BOOST_TEST(checked == 3000 * TB_EOP_MAX);
}

BOOST_AUTO_TEST_CASE(link_hdr_bytes_little_endian)
{
    tb_link_hdr h{};
    h.type = TB_LINK_DATA;
    h.len = 0x0140;  // 320
    h.flags = TB_LINK_F_GAP | TB_LINK_F_HELLO_REPLY;
    h.seq = 0xa1a2a3a4;
    h.ack = 0xb1b2b3b4;
    h.credit = 0xc1c2c3c4;
    h.epoch_src = 0xd1d2d3d4;
    h.epoch_dst = 0xe1e2e3e4;
    bytes f(TB_LINK_HDR_LEN + 8, 0xee);  // sentinel bytes after the header
    tb_link_hdr_encode(f.data(), &h);
    const uint8_t want[TB_LINK_HDR_LEN] = {
        0x62, 0x74,              // magic 0x7462
        0x09,                    // version
        0x01,                    // type DATA
        0x40, 0x01,              // len
        0x03, 0x00,              // flags
        0xa4, 0xa3, 0xa2, 0xa1,  // seq
        0xb4, 0xb3, 0xb2, 0xb1,  // ack
        0xc4, 0xc3, 0xc2, 0xc1,  // credit
        0xd4, 0xd3, 0xd2, 0xd1,  // epoch_src
        0xe4, 0xe3, 0xe2, 0xe1,  // epoch_dst
        0x00, 0x00,              // ext_len
        0x00, 0x00,              // reserved
    };
    BOOST_TEST(std::memcmp(f.data(), want, sizeof(want)) == 0);
    for (size_t i = TB_LINK_HDR_LEN; i < f.size(); i++)
        BOOST_TEST(f[i] == 0xee);  // the encoder writes exactly 32 bytes

    // Decoding the hand-written bytes gives the same values.
    bytes frame(TB_LINK_HDR_LEN + 0x140, 0);
    std::memcpy(frame.data(), want, sizeof(want));
    tb_link_hdr d;
    BOOST_REQUIRE_EQUAL(link_decode(frame, &d), 0);
    BOOST_TEST(same(h, d));
}

BOOST_AUTO_TEST_CASE(link_sack_bytes_little_endian)
{
    tb_link_hdr h = link_hdr(TB_LINK_ACK, TB_LINK_SACK_LEN);
    h.flags = TB_LINK_F_GAP | TB_LINK_F_SACK;
    h.sack = 0x8877665544332211ull;
    bytes f(TB_LINK_HDR_LEN + TB_LINK_SACK_LEN + 4, 0xee);
    tb_link_hdr_encode(f.data(), &h);
    BOOST_TEST(f[6] == 0x11);  // flags
    BOOST_TEST(f[7] == 0x00);
    const uint8_t want[TB_LINK_SACK_LEN] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    BOOST_TEST(std::memcmp(f.data() + TB_LINK_HDR_LEN, want, sizeof(want)) == 0);
    for (size_t i = TB_LINK_HDR_LEN + TB_LINK_SACK_LEN; i < f.size(); i++)
        BOOST_TEST(f[i] == 0xee);  // and nothing after the bitmap

    f.resize(TB_LINK_HDR_LEN + TB_LINK_SACK_LEN);
    tb_link_hdr d;
    BOOST_REQUIRE_EQUAL(link_decode(f, &d), 0);
    BOOST_TEST(same(h, d));
}

BOOST_AUTO_TEST_CASE(engine_hdr_bytes_little_endian)
{
    tb_engine_hdr h{};
    h.op = TB_EOP_ATOMIC;
    h.flags = TB_EF_LAST;
    h.aop = TBRDMA_ATOMIC_CSWAP;
    h.arg = 8;
    h.dst_ctx = 0x10111213;
    h.src_ctx = 0x20212223;
    h.src_ep = 0xc0c1c2c3;
    h.dst_secret = 0xb0b1b2b3b4b5b6b7ull;
    h.rkey = 0x3031323334353637ull;
    h.addr = 0x4041424344454647ull;
    h.len = 0x50515253;
    h.msn = 0x60616263;
    h.ack_msn = 0x70717273;
    h.am_id = 0x80818283;
    h.imm = 0x9091929394959697ull;
    h.compare = 0xa0a1a2a3a4a5a6a7ull;
    bytes f(TB_ENGINE_HDR_LEN + 4, 0xee);
    tb_engine_hdr_encode(f.data(), &h);
    const uint8_t want[TB_ENGINE_HDR_LEN] = {
        0x04, 0x01, 0x05, 0x08,                          // op flags aop arg
        0x13, 0x12, 0x11, 0x10,                          // dst_ctx
        0x23, 0x22, 0x21, 0x20,                          // src_ctx
        0xc3, 0xc2, 0xc1, 0xc0,                          // src_ep
        0xb7, 0xb6, 0xb5, 0xb4, 0xb3, 0xb2, 0xb1, 0xb0,  // dst_secret
        0x37, 0x36, 0x35, 0x34, 0x33, 0x32, 0x31, 0x30,  // rkey
        0x47, 0x46, 0x45, 0x44, 0x43, 0x42, 0x41, 0x40,  // addr
        0x53, 0x52, 0x51, 0x50,                          // len
        0x63, 0x62, 0x61, 0x60,                          // msn
        0x73, 0x72, 0x71, 0x70,                          // ack_msn
        0x83, 0x82, 0x81, 0x80,                          // am_id
        0x97, 0x96, 0x95, 0x94, 0x93, 0x92, 0x91, 0x90,  // imm
        0xa7, 0xa6, 0xa5, 0xa4, 0xa3, 0xa2, 0xa1, 0xa0,  // compare
    };
    BOOST_TEST(std::memcmp(f.data(), want, sizeof(want)) == 0);
    for (size_t i = TB_ENGINE_HDR_LEN; i < f.size(); i++)
        BOOST_TEST(f[i] == 0xee);
}

BOOST_AUTO_TEST_CASE(link_hdr_rejects_malformed)
{
    const tb_link_hdr data = link_hdr(TB_LINK_DATA, 100);
    const bytes good = link_frame(data);
    BOOST_REQUIRE_EQUAL(link_decode(good), 0);

    auto mutated = [&](size_t off, uint8_t v) {
        bytes f = good;
        f[off] = v;
        return f;
    };
    // Magic, version.
    BOOST_TEST(link_decode(mutated(0, 0x63)) == -EBADMSG);
    BOOST_TEST(link_decode(mutated(1, 0x00)) == -EBADMSG);
    BOOST_TEST(link_decode(mutated(2, 0)) == -EBADMSG);
    BOOST_TEST(link_decode(mutated(2, 1)) == -EBADMSG);
    BOOST_TEST(link_decode(mutated(2, TB_WIRE_VERSION - 1)) == -EBADMSG);
    BOOST_TEST(link_decode(mutated(2, 0xff)) == -EBADMSG);
    // Unknown types (payload-free frames so only the type is wrong).
    for (uint8_t t : {0, 4, 5, 0x80, 0xff}) {
        tb_link_hdr h = link_hdr(t, 0);
        BOOST_TEST(link_decode(link_frame(h)) == -EBADMSG, "type " << int(t));
    }
    // ext_len without the flag, and reserved bytes, each one alone.
    for (size_t off = 28; off < 32; off++)
        BOOST_TEST(link_decode(mutated(off, 1)) == -EBADMSG, "byte " << off);
    // Unknown flags.
    for (uint16_t fl : {uint16_t(TB_LINK_F_ALL + 1), uint16_t(0x8000), uint16_t(0xffff)}) {
        tb_link_hdr h = data;
        h.flags = fl;
        BOOST_TEST(link_decode(link_frame(h)) == -EBADMSG, "flags " << fl);
    }
    // epoch_src 0 never names an incarnation; epoch_dst 0 is fine.
    {
        tb_link_hdr h = link_hdr(TB_LINK_HELLO, 0);
        h.epoch_src = 0;
        BOOST_TEST(link_decode(link_frame(h)) == -EBADMSG);
        h.epoch_src = 1;
        h.epoch_dst = 0;
        BOOST_TEST(link_decode(link_frame(h)) == 0);
    }
    // Shorter than the header (exact-size buffers: no read past them).
    for (size_t n : {size_t(0), size_t(1), size_t(4), size_t(TB_LINK_HDR_LEN - 1)}) {
        bytes f(good.begin(), good.begin() + static_cast<long>(n));
        tb_link_hdr h;
        BOOST_TEST(tb_link_hdr_decode(f.data(), static_cast<uint32_t>(n), &h) == -EBADMSG,
                   "length " << n);
    }
    // Longer than a frame, even with a matching len field.
    {
        tb_link_hdr h = link_hdr(TB_LINK_DATA, static_cast<uint16_t>(link_payload_max + 1));
        BOOST_TEST(link_decode(link_frame(h)) == -EBADMSG);
        h.len = static_cast<uint16_t>(link_payload_max);
        BOOST_TEST(link_decode(link_frame(h)) == 0);  // the largest legal one
        bytes big(70000, 0);
        h.len = 0xffff;
        tb_link_hdr_encode(big.data(), &h);
        BOOST_TEST(tb_link_hdr_decode(big.data(), TB_LINK_HDR_LEN + 0xffff, &h) == -EBADMSG);
    }
    // len field not matching the frame length, both ways.
    {
        bytes f = good;
        f.push_back(0);
        BOOST_TEST(link_decode(f) == -EBADMSG);
        f.resize(good.size() - 1);
        BOOST_TEST(link_decode(f) == -EBADMSG);
        tb_link_hdr h;
        BOOST_TEST(tb_link_hdr_decode(good.data(), TB_LINK_HDR_LEN, &h) == -EBADMSG);
    }
    // DATA shorter than an engine header: TB_ENGINE_HDR_LEN is the minimum.
    for (uint16_t len : {uint16_t(0), uint16_t(1), uint16_t(TB_ENGINE_HDR_LEN - 1)}) {
        BOOST_TEST(link_decode(link_frame(link_hdr(TB_LINK_DATA, len))) == -EBADMSG, "len " << len);
    }
    BOOST_TEST(link_decode(link_frame(link_hdr(TB_LINK_DATA, TB_ENGINE_HDR_LEN))) == 0);
    // ACK and HELLO carry no payload.
    for (uint8_t t : {uint8_t(TB_LINK_ACK), uint8_t(TB_LINK_HELLO)}) {
        BOOST_TEST(link_decode(link_frame(link_hdr(t, 0))) == 0);
        BOOST_TEST(link_decode(link_frame(link_hdr(t, 1))) == -EBADMSG);
        BOOST_TEST(link_decode(link_frame(link_hdr(t, TB_ENGINE_HDR_LEN))) == -EBADMSG);
    }
    // A selective ack: on ACKs only, exactly its 8 bytes.
    BOOST_TEST(link_decode(link_frame(link_hdr(TB_LINK_ACK, TB_LINK_SACK_LEN))) == -EBADMSG);
    for (uint16_t len : {uint16_t(0), uint16_t(TB_LINK_SACK_LEN - 1), uint16_t(TB_LINK_SACK_LEN),
                         uint16_t(TB_LINK_SACK_LEN + 1)}) {
        tb_link_hdr h = link_hdr(TB_LINK_ACK, len);
        h.flags = TB_LINK_F_SACK;
        bytes f(TB_LINK_HDR_LEN + TB_LINK_SACK_LEN + 1, 0);  // room for the encoder
        tb_link_hdr_encode(f.data(), &h);
        f.resize(TB_LINK_HDR_LEN + len);
        BOOST_TEST(link_decode(f) == (len == TB_LINK_SACK_LEN ? 0 : -EBADMSG), "len " << len);
    }
    for (uint8_t t : {uint8_t(TB_LINK_DATA), uint8_t(TB_LINK_HELLO)}) {
        tb_link_hdr h = link_hdr(t, t == TB_LINK_DATA ? TB_ENGINE_HDR_LEN : 0);
        h.flags = TB_LINK_F_SACK;
        bytes f(TB_LINK_HDR_LEN + h.len + TB_LINK_SACK_LEN, 0);
        tb_link_hdr_encode(f.data(), &h);
        f.resize(TB_LINK_HDR_LEN + h.len);
        BOOST_TEST(link_decode(f) == -EBADMSG, "type " << int(t));
    }
}

BOOST_AUTO_TEST_CASE(link_user_ack_on_acks_only)
{
    // The user's ack takes an ACK's sequence number word; nothing else may.
    for (uint8_t t : {uint8_t(TB_LINK_DATA), uint8_t(TB_LINK_HELLO)}) {
        tb_link_hdr h = link_hdr(t, t == TB_LINK_DATA ? TB_ENGINE_HDR_LEN : 0);
        h.flags = TB_LINK_F_USER_ACK;
        BOOST_TEST(link_decode(link_frame(h)) == -EBADMSG, "type " << int(t));
    }
    tb_link_hdr h = link_hdr(TB_LINK_ACK, 0);
    h.flags = TB_LINK_F_USER_ACK;
    h.user_ack = 0x89abcdef;
    bytes f = link_frame(h);
    tb_link_hdr d;
    BOOST_TEST(link_decode(f, &d) == 0);
    BOOST_TEST(d.user_ack == 0x89abcdefu);
    BOOST_TEST(d.seq == 0u);
    // Without the flag, the word must be 0.
    h.flags = 0;
    h.user_ack = 0;
    f = link_frame(h);
    f[8] = 1;
    BOOST_TEST(link_decode(f) == -EBADMSG);
}

BOOST_AUTO_TEST_CASE(engine_hdr_rejects_malformed)
{
    // Unknown ops.
    for (uint8_t op : {0, TB_EOP_MAX + 1, 0x7f, 255})
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(op, 0), 0)) == -EBADMSG, "op " << int(op));
    // An endpoint (the word after src_ctx) only on requests.
    for (size_t at = 12; at < 16; at++) {
        bytes f = engine_frame(engine_hdr(TB_EOP_ACK, 0), 0);
        f[at] = 1;
        BOOST_TEST(engine_decode(f) == -EBADMSG, "src_ep byte " << at << " on an ACK");
        f = engine_frame(engine_hdr(TB_EOP_READ_REQ, 8), 0);
        f[at] = 1;
        BOOST_TEST(engine_decode(f) == 0, "src_ep byte " << at << " on a READ_REQ");
    }
    // Unknown flags, on an otherwise valid ACK; RESUME only on requests.
    for (uint8_t fl : {uint8_t(TB_EF_RESUME), uint8_t(TB_EF_ALL + 1), uint8_t(0x80), uint8_t(0xff)}) {
        tb_engine_hdr h = engine_hdr(TB_EOP_ACK, 0);
        h.flags = fl;
        BOOST_TEST(engine_decode(engine_frame(h, 0)) == -EBADMSG, "flags " << int(fl));
    }
    {
        tb_engine_hdr h = engine_hdr(TB_EOP_SEND, 4);
        h.flags = TB_EF_RESUME | TB_EF_ACK_NOW;
        BOOST_TEST(engine_decode(engine_frame(h, 4)) == 0);
        h = engine_hdr(TB_EOP_ACK, 0);
        h.flags = TB_EF_ACK_NOW;  // a FLUSH asking for the peer's ack
        BOOST_TEST(engine_decode(engine_frame(h, 0)) == 0);
    }
    // Data-carrying ops: len must equal the payload.
    for (uint8_t op : {uint8_t(TB_EOP_WRITE), uint8_t(TB_EOP_SEND), uint8_t(TB_EOP_READ_RESP),
                       uint8_t(TB_EOP_MSG)}) {
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(op, 10), 10)) == 0);
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(op, 11), 10)) == -EBADMSG);
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(op, 9), 10)) == -EBADMSG);
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(op, 0), 10)) == -EBADMSG);
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(op, 1), 0)) == -EBADMSG);
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(op, 0xffffffffu), 10)) == -EBADMSG);
    }
    // READ_REQ: no payload, 1 <= len <= TB_READ_REQ_MAX.
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_READ_REQ, 100), 0)) == 0);
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_READ_REQ, 100), 1)) == -EBADMSG);
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_READ_REQ, 100), 100)) == -EBADMSG);
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_READ_REQ, 0), 0)) == -EBADMSG);
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_READ_REQ, TB_READ_REQ_MAX + 1), 0)) ==
               -EBADMSG);
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_READ_REQ, 0xffffffffu), 0)) == -EBADMSG);
    // ATOMIC: size 4 or 8, a known op, no payload.
    for (uint8_t size = 0; size < 20; size++) {
        tb_engine_hdr h = engine_hdr(TB_EOP_ATOMIC, 0);
        h.arg = size;
        int want = (size == 4 || size == 8) ? 0 : -EBADMSG;
        BOOST_TEST(engine_decode(engine_frame(h, 0)) == want, "size " << int(size));
    }
    for (uint8_t aop : {uint8_t(TBRDMA_ATOMIC_MAX + 1), uint8_t(0x80), uint8_t(255)}) {
        tb_engine_hdr h = engine_hdr(TB_EOP_ATOMIC, 0);
        h.aop = aop;
        BOOST_TEST(engine_decode(engine_frame(h, 0)) == -EBADMSG, "aop " << int(aop));
    }
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_ATOMIC, 0), 8)) == -EBADMSG);
    // NAK: a status a responder gives (one for every refusal), no payload.
    for (unsigned st = 0; st < 256; st++) {
        tb_engine_hdr h = engine_hdr(TB_EOP_NAK, 0);
        h.arg = static_cast<uint8_t>(st);
        int want = (st == TBRDMA_WC_REM_ACCESS_ERR || st == TBRDMA_WC_REM_INVALID) ? 0 : -EBADMSG;
        BOOST_TEST(engine_decode(engine_frame(h, 0)) == want, "status " << st);
    }
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_NAK, 0), 1)) == -EBADMSG);
    // ATOMIC_RESP and ACK: no payload.
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_ATOMIC_RESP, 0), 8)) == -EBADMSG);
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_ACK, 0), 1)) == -EBADMSG);
    BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_RNR_NAK, 0), 1)) == -EBADMSG);
    // Shorter than the engine header (exact-size buffers).
    for (uint32_t n : {0u, 1u, TB_ENGINE_HDR_LEN - 1}) {
        bytes f = engine_frame(engine_hdr(TB_EOP_ACK, 0), 0);
        f.resize(n);
        tb_engine_hdr h;
        BOOST_TEST(tb_engine_hdr_decode(f.data(), n, 0, &h) == -EBADMSG, "length " << n);
    }
    // Longer than fits in a frame after the link header.
    {
        uint32_t too_big = TB_PAYLOAD_MAX + 1;
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_SEND, too_big), too_big)) == -EBADMSG);
        BOOST_TEST(engine_decode(engine_frame(engine_hdr(TB_EOP_SEND, TB_PAYLOAD_MAX), TB_PAYLOAD_MAX)) ==
                   0);
    }
}

// Every single-byte change of a valid frame, at every position: decoding
// must not crash or read past the frame; what it accepts must still have
// consistent lengths, and the fields that fix the frame's shape must
// never be accepted changed.
BOOST_AUTO_TEST_CASE(single_byte_corruptions)
{
    for (uint8_t op : {uint8_t(TB_EOP_WRITE), uint8_t(TB_EOP_READ_REQ), uint8_t(TB_EOP_NAK)}) {
        uint32_t data = op == TB_EOP_WRITE ? 40 : 0;
        tb_engine_hdr eh = engine_hdr(op, op == TB_EOP_READ_REQ ? 4096 : data);
        eh.arg = op == TB_EOP_NAK ? TBRDMA_WC_REM_ACCESS_ERR : 0;
        bytes payload = engine_frame(eh, data);
        tb_link_hdr lh = link_hdr(TB_LINK_DATA, static_cast<uint16_t>(payload.size()));
        bytes good = link_frame(lh);
        std::memcpy(good.data() + TB_LINK_HDR_LEN, payload.data(), payload.size());
        BOOST_REQUIRE_EQUAL(link_decode(good), 0);
        BOOST_REQUIRE_EQUAL(tb_engine_hdr_decode(good.data() + TB_LINK_HDR_LEN,
                                                 static_cast<uint32_t>(payload.size()), 0, &eh),
                            0);

        unsigned accepted_link = 0, accepted_engine = 0, rejected = 0;
        for (size_t pos = 0; pos < good.size(); pos++) {
            for (unsigned v = 0; v < 256; v++) {
                if (v == good[pos])
                    continue;
                bytes f = good;
                f[pos] = static_cast<uint8_t>(v);
                tb_link_hdr h;
                if (tb_link_hdr_decode(f.data(), static_cast<uint32_t>(f.size()), &h)) {
                    rejected++;
                    continue;
                }
                accepted_link++;
                // Magic, version, type, len and reserved admit no other value
                // for this frame.
                BOOST_REQUIRE_MESSAGE(pos >= TB_LINK_HDR_LEN || (pos >= 6 && pos < 28),
                                      "accepted a change at byte " << pos);
                BOOST_REQUIRE_EQUAL(TB_LINK_HDR_LEN + h.len, f.size());
                BOOST_REQUIRE_EQUAL(h.type, TB_LINK_DATA);
                BOOST_REQUIRE_NE(h.epoch_src, 0u);
                BOOST_REQUIRE_EQUAL(h.flags & ~TB_LINK_F_ALL, 0);
                // Engine header in an exact-size buffer of its own.
                bytes ef(f.begin() + TB_LINK_HDR_LEN, f.end());
                tb_engine_hdr e;
                if (tb_engine_hdr_decode(ef.data(), h.len, 0, &e) == 0) {
                    accepted_engine++;
                    BOOST_REQUIRE(engine_lengths_ok(e, h.len));
                    BOOST_REQUIRE(engine_shape_ok(e));
                } else {
                    BOOST_REQUIRE(!engine_lengths_ok(e, h.len) || !engine_shape_ok(e));
                }
            }
        }
        // Sanity of the loop itself: both outcomes happened.
        BOOST_TEST(accepted_link > 0u);
        BOOST_TEST(accepted_engine > 0u);
        BOOST_TEST(rejected > 0u);
    }
}

// Truncating a valid frame anywhere is always rejected.
BOOST_AUTO_TEST_CASE(truncations_rejected)
{
    tb_engine_hdr eh = engine_hdr(TB_EOP_SEND, 200);
    bytes payload = engine_frame(eh, 200);
    bytes good = link_frame(link_hdr(TB_LINK_DATA, static_cast<uint16_t>(payload.size())));
    std::memcpy(good.data() + TB_LINK_HDR_LEN, payload.data(), payload.size());
    BOOST_REQUIRE_EQUAL(link_decode(good), 0);
    for (size_t n = 0; n < good.size(); n++) {
        bytes f(good.begin(), good.begin() + static_cast<long>(n));
        BOOST_REQUIRE_EQUAL(link_decode(f), -EBADMSG);
    }
    for (size_t n = 0; n < payload.size(); n++) {
        bytes f(payload.begin(), payload.begin() + static_cast<long>(n));
        BOOST_REQUIRE_EQUAL(engine_decode(f), -EBADMSG);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// Ext buffers: announced only by DATA frames, 1..TB_EXT_MAX bytes; the
// engine header then carries no data of its own, and only WRITE, MSG and
// READ_RESP may use one, with len equal to the ext's length.
BOOST_AUTO_TEST_CASE(ext_announcements)
{
    auto announce = [](uint8_t type, uint16_t flags, uint16_t ext_len, uint16_t len) {
        tb_link_hdr h = link_hdr(type, len);
        h.flags = flags;
        h.ext_len = ext_len;
        return link_frame(h);
    };
    const uint16_t eh = TB_ENGINE_HDR_LEN;
    tb_link_hdr out;
    bytes ok = announce(TB_LINK_DATA, TB_LINK_F_EXT, 4096, eh);
    BOOST_REQUIRE_EQUAL(link_decode(ok, &out), 0);
    BOOST_TEST(out.ext_len == 4096u);
    BOOST_TEST(tb_link_frame_ext_len(ok.data(), static_cast<uint32_t>(ok.size())) == 4096u);
    BOOST_TEST(link_decode(announce(TB_LINK_DATA, TB_LINK_F_EXT, 1, eh)) == 0);
    BOOST_TEST(link_decode(announce(TB_LINK_DATA, TB_LINK_F_EXT, 0, eh)) == -EBADMSG);
    BOOST_TEST(link_decode(announce(TB_LINK_DATA, TB_LINK_F_EXT, 4097, eh)) == -EBADMSG);
    BOOST_TEST(link_decode(announce(TB_LINK_DATA, 0, 100, eh)) == -EBADMSG);
    BOOST_TEST(link_decode(announce(TB_LINK_ACK, TB_LINK_F_EXT, 100, 0)) == -EBADMSG);
    BOOST_TEST(link_decode(announce(TB_LINK_HELLO, TB_LINK_F_EXT, 100, 0)) == -EBADMSG);
    bytes plain = announce(TB_LINK_DATA, 0, 0, eh);
    BOOST_TEST(tb_link_frame_ext_len(plain.data(), static_cast<uint32_t>(plain.size())) == 0u);
    BOOST_TEST(tb_link_frame_ext_len(ok.data(), 10) == 0u);  // cut short: malformed

    tb_engine_hdr e;
    bytes w = engine_frame(engine_hdr(TB_EOP_WRITE, 4096), 0);
    BOOST_TEST(tb_engine_hdr_decode(w.data(), eh, 4096, &e) == 0);
    BOOST_TEST(tb_engine_hdr_decode(w.data(), eh, 4095, &e) == -EBADMSG);
    bytes r = engine_frame(engine_hdr(TB_EOP_READ_RESP, 1000), 0);
    BOOST_TEST(tb_engine_hdr_decode(r.data(), eh, 1000, &e) == 0);
    bytes m = engine_frame(engine_hdr(TB_EOP_MSG, 2000), 0);
    BOOST_TEST(tb_engine_hdr_decode(m.data(), eh, 2000, &e) == 0);
    // Data both inline and in an ext, or an op that takes none.
    bytes both = engine_frame(engine_hdr(TB_EOP_WRITE, 1000), 10);
    BOOST_TEST(tb_engine_hdr_decode(both.data(), eh + 10, 1000, &e) == -EBADMSG);
    bytes send = engine_frame(engine_hdr(TB_EOP_SEND, 1000), 0);
    BOOST_TEST(tb_engine_hdr_decode(send.data(), eh, 1000, &e) == -EBADMSG);
    bytes rreq = engine_frame(engine_hdr(TB_EOP_READ_REQ, 1000), 0);
    BOOST_TEST(tb_engine_hdr_decode(rreq.data(), eh, 1000, &e) == -EBADMSG);
    bytes big = engine_frame(engine_hdr(TB_EOP_WRITE, 5000), 0);
    BOOST_TEST(tb_engine_hdr_decode(big.data(), eh, 5000, &e) == -EBADMSG);
}
