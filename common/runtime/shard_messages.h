#pragma once
// Typed cross-shard messages over ShardGroup's mailboxes (docs/architecture.md,
// "Typed messages"). A service lists its message types once:
//
//   using MyMessages = ShardMessageList<Claim, ClaimResult, Tick>;
//
// and that one list generates everything else: each type's kind number (its
// index, from shard_message::first_service_kind), how it travels, how it is
// delivered (MyMessages::dispatch calls handler.on(payload) for the type the
// kind names: a listed type without a handler does not compile) and how it is
// freed when it is never delivered (MyMessages::dispose, for
// ShardGroupOptions::dispose_undelivered). Posting a type that is not in the
// list does not compile either, so a message cannot be sent without being
// dispatched, nor dispatched without being disposed.
//
// How a type travels (decided by the type, never by the sender):
//  - inline: trivially copyable and at most 24 bytes: copied into the
//    message itself (counters, indexes, rounds; empty notifications).
//  - handle: derived from OwnedPointer<Body, Deleter>: the body pointer rides
//    in ShardMessage::pointer, the receiver gets the handle back; a dropped
//    or undelivered one runs its Deleter. Several message types may carry
//    the same body (a packet that hops from one kind to the next) and a
//    body from a pool travels without allocating.
//  - boxed: anything else is posted and received as std::unique_ptr<T>.
// Posted<T> names what is posted and received for T.
//
// Which delivery a type gets is part of the type, too: a type that declares
//   static constexpr bool must_arrive = true;
// undoes or answers something and goes through Shard::post_obligation (never
// dropped: it waits in the sender's overflow list while the mailbox is full);
// post() then returns nothing. Any other type is a request the sender can
// refuse to its client: post() returns false when the mailbox is full and the
// payload is freed right there.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

#include "common/runtime/shard_group.h"

namespace mf {

// A message type that carries one heap (or pool) object and owns it. Derive a
// distinct type per message: struct RouteSignal : OwnedPointer<Packet> { using OwnedPointer::OwnedPointer; };
template <class Body, class Deleter = std::default_delete<Body>>
class OwnedPointer {
 public:
  using body_type = Body;
  using deleter_type = Deleter;
  OwnedPointer() = default;
  explicit OwnedPointer(Body* body) : body_(body) {}
  explicit OwnedPointer(std::unique_ptr<Body, Deleter> body) : body_(body.release()) {}
  OwnedPointer(OwnedPointer&& other) noexcept : body_(std::exchange(other.body_, nullptr)) {}
  OwnedPointer& operator=(OwnedPointer&& other) noexcept {
    if (this != &other) reset(std::exchange(other.body_, nullptr));
    return *this;
  }
  OwnedPointer(const OwnedPointer&) = delete;
  OwnedPointer& operator=(const OwnedPointer&) = delete;
  ~OwnedPointer() { reset(nullptr); }

  Body* get() const { return body_; }
  Body* operator->() const { return body_; }
  Body& operator*() const { return *body_; }
  explicit operator bool() const { return body_ != nullptr; }
  [[nodiscard]] Body* release() { return std::exchange(body_, nullptr); }
  // The body as a unique_ptr with the same deleter.
  std::unique_ptr<Body, Deleter> take() { return std::unique_ptr<Body, Deleter>(release()); }
  void reset(Body* body) {
    Body* old = std::exchange(body_, body);
    if (old != nullptr) Deleter{}(old);
  }

 private:
  Body* body_ = nullptr;
};

namespace shard_messages_detail {

template <class T>
concept Handle = requires {
  typename T::body_type;
  typename T::deleter_type;
} && std::is_base_of_v<OwnedPointer<typename T::body_type, typename T::deleter_type>, T> &&
                 sizeof(T) == sizeof(void*);

// The 24 bytes after kind/from_shard/arg32 carry an inline payload.
inline constexpr size_t inline_offset = offsetof(ShardMessage, arg64_a);
inline constexpr size_t inline_capacity = sizeof(ShardMessage) - inline_offset;
static_assert(inline_capacity == 24);

template <class T>
concept Inline = !Handle<T> && std::is_trivially_copyable_v<T> && sizeof(T) <= inline_capacity &&
                 alignof(T) <= alignof(uint64_t);

template <class T>
concept MustArrive = requires {
  { T::must_arrive } -> std::convertible_to<bool>;
} && T::must_arrive;

template <class T, class... Ts>
constexpr int index_of() {
  int index = 0;
  int found = -1;
  ((std::is_same_v<T, Ts> ? (found = found < 0 ? index : found, ++index) : ++index), ...);
  return found;
}

template <class T, class... Ts>
constexpr int count_of() {
  return (0 + ... + (std::is_same_v<T, Ts> ? 1 : 0));
}

}  // namespace shard_messages_detail

// What is posted and received for T.
template <class T>
using Posted = std::conditional_t<shard_messages_detail::Inline<T> || shard_messages_detail::Handle<T>, T,
                                  std::unique_ptr<T>>;

template <class T>
inline constexpr bool must_arrive_v = shard_messages_detail::MustArrive<T>;

// Packs a payload into a message and back. encode leaves ownership in the
// message; decode takes it back out (call it once per message).
template <class T>
struct MessageCodec {
  static void encode(Posted<T>&& payload, ShardMessage& message) {
    if constexpr (shard_messages_detail::Inline<T>) {
      std::memcpy(reinterpret_cast<unsigned char*>(&message) + shard_messages_detail::inline_offset, &payload,
                  sizeof(T));
    } else {
      message.pointer = payload.release();
    }
  }
  static Posted<T> decode(const ShardMessage& message) {
    if constexpr (shard_messages_detail::Inline<T>) {
      T payload;
      std::memcpy(&payload, reinterpret_cast<const unsigned char*>(&message) + shard_messages_detail::inline_offset,
                  sizeof(T));
      return payload;
    } else if constexpr (shard_messages_detail::Handle<T>) {
      return T(static_cast<typename T::body_type*>(message.pointer));
    } else {
      return std::unique_ptr<T>(static_cast<T*>(message.pointer));
    }
  }
};

template <class... Ts>
class ShardMessageList {
 public:
  static constexpr size_t size = sizeof...(Ts);
  static_assert(size + shard_message::first_service_kind <= UINT16_MAX);
  static_assert(((shard_messages_detail::count_of<Ts, Ts...>() == 1) && ...),
                "a message type appears twice in the list: its kind would be ambiguous");
  static_assert(((std::is_default_constructible_v<Ts> || !shard_messages_detail::Inline<Ts>) && ...),
                "an inline message type must be default-constructible");

  template <class T>
  static constexpr bool contains = shard_messages_detail::count_of<T, Ts...>() == 1;

  template <class T>
  static constexpr uint16_t kind() {
    static_assert(contains<T>, "this message type is not in the service's message list");
    return static_cast<uint16_t>(shard_message::first_service_kind + shard_messages_detail::index_of<T, Ts...>());
  }

  template <class T>
  static ShardMessage encode(Posted<T>&& payload) {
    ShardMessage message;
    message.kind = kind<T>();
    MessageCodec<T>::encode(std::move(payload), message);
    return message;
  }

  // Delivers a message of a listed kind to handler.on(Posted<T>). False for
  // a kind outside the list (the runtime's, or a defect): nothing was done.
  template <class Handler>
  static bool dispatch(const ShardMessage& message, Handler& handler) {
    return dispatch_at<Handler, Ts...>(message, handler, shard_message::first_service_kind);
  }

  // Sends `payload` to shard `to` as post() does, except that a message to
  // this shard is handled at once by handler.on (not queued), and a refused
  // request counts in `drops`. Returns what post() returns.
  template <class Handler, class P>
  static auto send(Shard& shard, Handler& handler, uint32_t to, P payload, uint64_t& drops);

  // Frees what a message of a listed kind owns (never delivered: still in a
  // mailbox or an overflow list when every shard stopped). Others own nothing.
  static void dispose(const ShardMessage& message) {
    dispose_at<Ts...>(message, shard_message::first_service_kind);
  }

 private:
  template <class Handler, class First, class... Rest>
  static bool dispatch_at(const ShardMessage& message, Handler& handler, uint16_t kind) {
    if (message.kind == kind) {
      handler.on(MessageCodec<First>::decode(message));
      return true;
    }
    if constexpr (sizeof...(Rest) > 0) return dispatch_at<Handler, Rest...>(message, handler, kind + 1);
    return false;
  }

  template <class First, class... Rest>
  static void dispose_at(const ShardMessage& message, uint16_t kind) {
    if (message.kind == kind) {
      // Taking the payload back and letting it go out of scope frees it.
      (void)MessageCodec<First>::decode(message);
      return;
    }
    if constexpr (sizeof...(Rest) > 0) dispose_at<Rest...>(message, kind + 1);
  }
};

template <class P>
struct MessageTypeOf {
  using type = P;
};
template <class T>
struct MessageTypeOf<std::unique_ptr<T>> {
  using type = T;
};

// Sends `payload` to shard `to` as a message of List; the payload's type
// (T, or std::unique_ptr<T> for a boxed T) names the message. A must_arrive
// type never drops (Shard::post_obligation) and returns nothing; any other
// type returns false when the target's mailbox is full, and the payload is
// freed right there.
template <class List, class P>
auto post(Shard& shard, uint32_t to, P payload) {
  using T = typename MessageTypeOf<P>::type;
  static_assert(List::template contains<T>, "this message type is not in the service's message list");
  static_assert(std::is_same_v<Posted<T>, P>,
                "post a boxed message type as std::unique_ptr<T>, an inline or handle type by value");
  ShardMessage message = List::template encode<T>(std::move(payload));
  if constexpr (must_arrive_v<T>) {
    shard.post_obligation(to, message);
  } else {
    if (shard.post(to, message)) return true;
    List::dispose(message);
    return false;
  }
}

template <class... Ts>
template <class Handler, class P>
auto ShardMessageList<Ts...>::send(Shard& shard, Handler& handler, uint32_t to, P payload, uint64_t& drops) {
  using T = typename MessageTypeOf<P>::type;
  if constexpr (must_arrive_v<T>) {
    if (to == shard.id()) return handler.on(std::move(payload));
    post<ShardMessageList>(shard, to, std::move(payload));
  } else {
    if (to == shard.id()) {
      handler.on(std::move(payload));
      return true;
    }
    if (post<ShardMessageList>(shard, to, std::move(payload))) return true;
    drops++;
    return false;
  }
}

}  // namespace mf
