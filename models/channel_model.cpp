// models/channel_model.cpp: Relacy models of the channel protocol, <lockstep/ipc/detail/ring.hpp>,
// the production header, with the ring in model memory instead of a mapping.
//
// The slots are seam::var cells (model_slots below): Relacy reports any access to a slot's
// size or bytes that the protocol's release/acquire pairs do not order as a DATA RACE, a
// sleeper that nobody wakes as DEADLOCK, and the explicit checks as USER ASSERT FAILED.
//
// Bound: a smoke model for now, two threads, one message, full search (every interleaving).
#include "harness/harness.hpp"

#include <lockstep/ipc/detail/ring.hpp>

namespace {

namespace seam = lockstep::seam;
using lockstep::ipc::detail::channel_control;
using lockstep::ipc::detail::message_ring;
using lockstep::ipc::detail::ring_status;
using lockstep::ipc::detail::wait_forever;

// The slot array in model memory: every size and byte a seam::var.
template <unsigned Capacity, unsigned MaxSize>
struct model_slots {
  seam::var<std::uint32_t> size[Capacity];
  seam::var<unsigned char> bytes[Capacity][MaxSize];
};

// The ring's Slots policy over model_slots: it only copies, byte by byte.
template <unsigned Capacity, unsigned MaxSize>
class model_slot_view {
 public:
  explicit model_slot_view(model_slots<Capacity, MaxSize>& s) : s_(&s) {}
  void write_size(std::uint32_t slot, std::uint32_t n) const { s_->size[slot].write(n); }
  std::uint32_t read_size(std::uint32_t slot) const { return s_->size[slot].read(); }
  void copy_in(std::uint32_t slot, const void* src, std::uint32_t n) const {
    for (std::uint32_t i = 0; i < n; ++i) s_->bytes[slot][i].write(static_cast<const unsigned char*>(src)[i]);
  }
  void copy_out(std::uint32_t slot, void* dst, std::uint32_t n) const {
    for (std::uint32_t i = 0; i < n; ++i) static_cast<unsigned char*>(dst)[i] = s_->bytes[slot][i].read();
  }

 private:
  model_slots<Capacity, MaxSize>* s_;
};

// One send, one blocking receive. The receiver may find the message at once, while spinning,
// or after sleeping on tail (no lost wake-up: DEADLOCK otherwise); its bytes must be the
// sender's (no DATA RACE on the slot: publish is a release the receiver acquires); afterwards
// the ring is empty (nothing lost, nothing left).
struct handoff : rl::test_suite<handoff, 2> {
  static constexpr unsigned capacity = 2;
  static constexpr unsigned max_size = 2;
  channel_control control;
  model_slots<capacity, max_size> slots;

  message_ring<model_slot_view<capacity, max_size>> ring() {
    return {control, model_slot_view<capacity, max_size>(slots), capacity, max_size};
  }

  void thread(unsigned id) {
    auto r = ring();
    if (id == 0) {
      const unsigned char msg[max_size] = {7, 9};
      RL_ASSERT(r.send(msg, max_size, wait_forever) == ring_status::ok);
    } else {
      unsigned char buf[max_size] = {0, 0};
      std::uint32_t size = 0;
      RL_ASSERT(r.receive(buf, max_size, size, wait_forever) == ring_status::ok);
      RL_ASSERT(size == max_size && buf[0] == 7 && buf[1] == 9);
    }
  }
  void after() { RL_ASSERT(ring().num_msg() == 0); }
};

const lockstep::model::model models[] = {
    {"handoff", "one send, one blocking receive: bytes visible (no data race), nothing lost, no lost wake-up", 2,
     lockstep::model::full(), lockstep::model::simulate<handoff>},
};

}  // namespace

LOCKSTEP_MODEL_MAIN(models)
